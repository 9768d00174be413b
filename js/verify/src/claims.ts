// The claims of a tessera access token (RFC 9068 §2.2, proto/src/claims.rs) and the checks
// jose does not make on them.

import { Rejection } from "./rejection.js";

/** The one leeway, in seconds, for `exp`, `nbf` and `iat` (clock skew). */
export const LEEWAY = 5;

/** A verified access token's claims. `sid` and `ver` are absent on client tokens. */
export interface Claims {
  iss: string;
  /** The user's id, or the client's id for a client-credentials token. */
  sub: string;
  aud: string | string[];
  client_id: string;
  /** Space-separated (RFC 6749 §3.3). */
  scope?: string;
  /** The user's roles when minted (the client's own for a client token). */
  roles: string[];
  iat: number;
  exp: number;
  nbf?: number;
  jti: string;
  /** The session (refresh family) a user token came from. */
  sid?: string;
  /** The user's authorization version when the token was minted. */
  ver?: number;
  /** How the user signed in (RFC 8176: `pwd`, `otp`, `hwk`, `swk`, `mfa`); absent on client tokens. */
  amr?: string[];
}

/** Whether the token carries `role` (exact match). */
export function hasRole(claims: Claims, role: string): boolean {
  return claims.roles.includes(role);
}

/** Whether the token's space-separated `scope` includes `wanted`. */
export function hasScope(claims: Claims, wanted: string): boolean {
  return (claims.scope ?? "").split(" ").includes(wanted);
}

/** Whether the user signed in with `method` (an `amr` value, exact match). */
export function hasAmr(claims: Claims, method: string): boolean {
  return (claims.amr ?? []).includes(method);
}

/**
 * Throws 401 `insufficient_user_authentication` (RFC 9470) unless the user signed in with
 * `method` (an `amr` value such as `mfa`): the client should send the user to sign in again.
 */
export function requireAmr(claims: Claims, method: string): void {
  if (!hasAmr(claims, method)) throw Rejection.missingAmr(method);
}

/** Throws 403 `insufficient_scope` unless the token carries `role`. */
export function requireRole(claims: Claims, role: string): void {
  if (!hasRole(claims, role)) throw Rejection.missingRole(role);
}

/** Throws 403 `insufficient_scope` (naming the scope) unless the token was granted `scope`. */
export function requireScope(claims: Claims, scope: string): void {
  if (!hasScope(claims, scope)) throw Rejection.missingScope(scope);
}

const isString = (v: unknown): v is string => typeof v === "string";
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const optional = (v: unknown, ok: (v: unknown) => boolean) => v === undefined || v === null || ok(v);

/**
 * The payload as claims, or "claims missing or malformed" (the members proto requires, with
 * their types). jose has checked the signature, `iss`, `aud`, `exp` and `nbf` already; `iat`
 * in the future is checked here (jose checks it only with `maxTokenAge`).
 */
export function toClaims(p: Record<string, unknown>, now: number): Claims {
  const ok =
    isString(p.iss) &&
    isString(p.sub) &&
    (isString(p.aud) || (Array.isArray(p.aud) && p.aud.every(isString))) &&
    isString(p.client_id) &&
    isString(p.jti) &&
    isInt(p.iat) &&
    isInt(p.exp) &&
    optional(p.scope, isString) &&
    optional(p.nbf, isInt) &&
    optional(p.sid, isString) &&
    optional(p.ver, isInt) &&
    optional(p.amr, (a) => Array.isArray(a) && a.every(isString)) &&
    optional(p.roles, (r) => Array.isArray(r) && r.every(isString));
  if (!ok) throw Rejection.invalid("claims missing or malformed");
  const claims = { ...p, roles: p.roles ?? [] } as unknown as Claims;
  if (claims.iat > now + LEEWAY) throw Rejection.invalid("issued in the future");
  return claims;
}
