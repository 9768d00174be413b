/** The access-token claims the package reads (RFC 9068 plus tessera's `roles`, `sid`, `ver`). */
export interface AccessClaims {
  sub: string;
  sid?: string;
  /** The user's authorization version when the token was minted; a change bumps it. */
  ver?: number;
  roles?: string[];
  iat: number;
  exp: number;
  [claim: string]: unknown;
}

/**
 * Reads a JWT's payload without verifying it: the browser only displays what the token says;
 * the APIs it calls verify it.
 */
export function decodeClaims(jwt: string): AccessClaims {
  const payload = jwt.split(".")[1];
  if (payload === undefined) throw new Error("not a JWT");
  const b64 = payload.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as AccessClaims;
}

export function base64url(bytes: ArrayBuffer | Uint8Array): string {
  const arr = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (const b of arr) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
