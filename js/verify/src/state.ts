// What the event feed has said: revoked sessions, each user's current `ver`, disabled users
// and revoked keys (verify/src/state.rs). Bounded: an entry is dropped once every token that
// could carry the old state has expired (its `until`, in the issuer's clock, the same clock
// as the tokens' `exp`).

import { LEEWAY, type Claims } from "./claims.js";
import { Rejection } from "./rejection.js";

/** An event as served on `/events` (proto/src/events.rs); absent members are null. */
export interface SecurityEvent {
  id: number;
  type: string;
  sub?: string | null;
  sid?: string | null;
  ver?: number | null;
  roles?: string[] | null;
  reason?: string | null;
  kid?: string | null;
  at: string;
}

interface User {
  ver: number;
  disabled: boolean;
  until: number;
}

export class Freshness {
  readonly sessions = new Map<string, number>();
  readonly users = new Map<string, User>();
  readonly keys = new Map<string, number>();
  /** Tokens issued before this (issuer clock, Unix seconds) predate what the feed has told. */
  horizon = 0;

  /** `ttl`: the longest access-token lifetime, in seconds: how long an entry matters. */
  constructor(private readonly ttl: number) {}

  /** Applies one event; returns true when the key set changed (refetch the JWKS now). */
  apply(e: SecurityEvent): boolean {
    const at = Date.parse(e.at);
    if (!Number.isFinite(at)) return false;
    // Every token minted before the event expires by `at + ttl`.
    const until = Math.floor(at / 1000) + this.ttl;
    switch (e.type) {
      case "session.revoked":
        if (e.sid) this.sessions.set(e.sid, Math.max(until, this.sessions.get(e.sid) ?? until));
        return false;
      case "user.roles_changed":
      case "user.password_changed":
      case "user.disabled":
      case "user.enabled": {
        if (!e.sub) return false;
        let u = this.users.get(e.sub);
        if (!u) {
          u = { ver: -Infinity, disabled: false, until };
          this.users.set(e.sub, u);
        }
        const ver = typeof e.ver === "number" ? e.ver : null;
        // Ordered by `ver`, so that an older event replayed never re-enables or disables
        // again: a disable counts unless a newer version is known, an enable only when it
        // is newer than everything known (the disable's too).
        if (e.type === "user.disabled" && (ver === null || ver >= u.ver)) u.disabled = true;
        if (e.type === "user.enabled" && ver !== null && ver > u.ver) u.disabled = false;
        if (ver !== null) u.ver = Math.max(u.ver, ver);
        u.until = Math.max(u.until, until);
        return false;
      }
      case "keys.rotated":
        if (e.kid && e.reason === "revoked") this.keys.set(e.kid, until);
        return true;
      default:
        return false; // a kind this version does not know, or one without effect here
    }
  }

  /** Refuses a key the feed said was revoked. */
  checkKey(kid: string): void {
    if (this.keys.has(kid)) throw new Rejection("key_revoked");
  }

  /** Throws the rejection when what the feed said refuses this token (signed by `kid`). */
  check(claims: Claims, kid: string): void {
    this.checkKey(kid);
    if (claims.iat < this.horizon) throw new Rejection("state_unknown");
    const user = this.users.get(claims.sub);
    if (user?.disabled) throw new Rejection("user_disabled");
    if (claims.sid && this.sessions.has(claims.sid)) throw new Rejection("session_revoked");
    if (user && typeof claims.ver === "number" && claims.ver < user.ver) {
      throw new Rejection("roles_changed");
    }
  }

  /** Drops entries no token this verifier still accepts could carry (`now`: Unix seconds). */
  prune(now: number): void {
    const dead = (until: number) => now > until + LEEWAY;
    for (const [k, until] of this.sessions) if (dead(until)) this.sessions.delete(k);
    for (const [k, u] of this.users) if (dead(u.until)) this.users.delete(k);
    for (const [k, until] of this.keys) if (dead(until)) this.keys.delete(k);
  }
}
