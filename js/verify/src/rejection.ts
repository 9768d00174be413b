// Why a request is refused, and the RFC 6750 §3 answer a client can act on (the same
// wording as the Rust crate tessera-verify, so clients need one rule for both).

/** Every reason a token is refused. */
export type RejectionKind =
  | "missing"
  | "invalid"
  | "expired"
  | "roles_changed"
  | "session_revoked"
  | "user_disabled"
  | "key_revoked"
  | "inactive"
  | "state_unknown"
  | "missing_role"
  | "missing_scope"
  | "missing_amr";

/**
 * A refused token. `status` is 401, or 403 for a missing role or scope; `description` is the
 * RFC 6750 `error_description`, worded so that a client knows whether to refresh
 * (`roles changed: refresh`) or to sign in again (`session revoked: sign in again`).
 */
export class Rejection extends Error {
  readonly kind: RejectionKind;
  /** For `invalid`: which check failed; for `missing_role`/`missing_scope`: what is missing. */
  readonly detail: string | undefined;

  constructor(kind: RejectionKind, detail?: string) {
    super(kind === "missing" ? "no bearer token" : describe(kind, detail));
    this.name = "Rejection";
    this.kind = kind;
    this.detail = detail;
  }

  static missing(): Rejection {
    return new Rejection("missing");
  }
  static invalid(why: string): Rejection {
    return new Rejection("invalid", why);
  }
  static missingRole(role: string): Rejection {
    return new Rejection("missing_role", role);
  }
  static missingScope(scope: string): Rejection {
    return new Rejection("missing_scope", scope);
  }
  static missingAmr(method: string): Rejection {
    return new Rejection("missing_amr", method);
  }

  /** 401, or 403 for a missing role or scope (RFC 6750 §3.1). */
  get status(): 401 | 403 {
    return this.kind === "missing_role" || this.kind === "missing_scope" ? 403 : 401;
  }

  /** The RFC 6750 `error` code; undefined when no credentials were presented. */
  get error(): "invalid_token" | "insufficient_scope" | "insufficient_user_authentication" | undefined {
    if (this.kind === "missing") return undefined;
    if (this.kind === "missing_amr") return "insufficient_user_authentication";
    return this.status === 403 ? "insufficient_scope" : "invalid_token";
  }

  /** The `error_description`; empty when no token was presented. */
  get description(): string {
    return this.kind === "missing" ? "" : describe(this.kind, this.detail);
  }

  /** The `WWW-Authenticate` value (RFC 6750 §3). */
  wwwAuthenticate(realm: string): string {
    let v = `Bearer realm="${quoted(realm)}"`;
    const error = this.error;
    if (error) v += `, error="${error}", error_description="${quoted(this.description)}"`;
    if (this.kind === "missing_scope") v += `, scope="${quoted(this.detail ?? "")}"`;
    return v;
  }

  /** The JSON body that goes with it (empty when no token was presented). */
  body(): { error: string; error_description: string } | undefined {
    const error = this.error;
    return error ? { error, error_description: this.description } : undefined;
  }

  /** Status, headers and body of the whole answer, for any framework. */
  response(realm: string): { status: number; headers: Record<string, string>; body: string } {
    const headers: Record<string, string> = {
      "www-authenticate": this.wwwAuthenticate(realm),
      "cache-control": "no-store",
    };
    const body = this.body();
    if (body) headers["content-type"] = "application/json";
    return { status: this.status, headers, body: body ? JSON.stringify(body) : "" };
  }
}

function describe(kind: RejectionKind, detail: string | undefined): string {
  switch (kind) {
    case "missing":
      return "";
    case "invalid":
      return `invalid token: ${detail ?? "malformed"}`;
    case "expired":
      return "expired";
    case "roles_changed":
      return "roles changed: refresh";
    case "session_revoked":
      return "session revoked: sign in again";
    case "user_disabled":
      return "user disabled";
    case "key_revoked":
      return "signing key revoked: refresh";
    case "inactive":
      return "token no longer active: sign in again";
    case "state_unknown":
      return "authorization state unknown: try again later";
    case "missing_role":
      return `requires role ${detail ?? ""}`;
    case "missing_scope":
      return `requires scope ${detail ?? ""}`;
    case "missing_amr":
      return `requires signing in with ${detail ?? ""}: sign in again`;
  }
}

/** Keeps a value inside an RFC 6750 quoted string: printable ASCII without `"` or `\`. */
function quoted(s: string): string {
  return s.replace(/["\\]|[^ -~]/g, "?");
}

/**
 * The bearer token of an `Authorization` header value (RFC 6750 §2.1). Another scheme counts
 * as no token (401 without `error`), as does no header.
 */
export function bearer(value: string | string[] | undefined | null): string {
  if (value === undefined || value === null) throw Rejection.missing();
  if (Array.isArray(value)) throw Rejection.invalid("malformed Authorization header");
  const space = value.indexOf(" ");
  if (space < 0) throw Rejection.invalid("malformed Authorization header");
  if (value.slice(0, space).toLowerCase() !== "bearer") throw Rejection.missing();
  const token = value.slice(space + 1).trim();
  if (!token) throw Rejection.invalid("malformed Authorization header");
  return token;
}
