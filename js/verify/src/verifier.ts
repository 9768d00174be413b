// The verifier: RFC 8414 discovery, offline verification with jose (RFC 9068, RFC 8725),
// and freshness from the issuer's event feed (verify/src/lib.rs).

import { errors, jwtVerify, type JWTHeaderParameters } from "jose";

import { LEEWAY, toClaims, type Claims } from "./claims.js";
import { Feed, type Endpoints } from "./feed.js";
import { Introspection } from "./introspect.js";
import { Jwks, type Key } from "./jwks.js";
import { Rejection } from "./rejection.js";
import { Freshness, type SecurityEvent } from "./state.js";

type Fetch = typeof globalThis.fetch;

/**
 * What to do with a token while the feed has been out of reach for longer than
 * `maxStaleness` (or has not caught up yet after a start):
 * - `refuse` (default): 401 "authorization state unknown" — fail closed, so a revoked
 *   session or a removed role never gets through;
 * - `introspect`: ask the issuer's `/introspect` (the client needs capability `introspect`);
 * - `accept`: accept what verifies offline with what the feed said before it went away.
 */
export type StalePolicy = "refuse" | "introspect" | "accept";

/** How to reach and trust the issuer. Durations are in seconds. */
export interface VerifierOptions {
  /** Exactly the tokens' `iss` (and the metadata's `issuer`). */
  issuer: string;
  /** This resource server: the `aud` a token must include. */
  audience: string;
  /** A confidential client with capability `events` (and `introspect` for that policy). */
  clientId: string;
  clientSecret: string;
  /** How long the verifier may go without hearing from the feed before `policy` applies (30). */
  maxStaleness?: number;
  policy?: StalePolicy;
  /** How long an introspection answer is reused for the same token (5). */
  introspectCache?: number;
  /** At most one JWKS refetch per this interval because of an unknown `kid` (10). */
  unknownKidInterval?: number;
  /** Clock skew allowed on `exp`, `nbf`, `iat` (5). */
  leeway?: number;
  /** The `realm` of `WWW-Authenticate` answers (default: the audience). */
  realm?: string;
  /** Override of the metadata's `tessera_events_endpoint` (a proxy in between, tests). */
  eventsEndpoint?: string;
  /** The fetch used for every request to the issuer (default: the global one). */
  fetch?: Fetch;
  /** Where warnings go (default: console.warn). Never given a secret or a token. */
  warn?: (message: string) => void;
}

/** The feed's health, for the service's readiness check and metrics. */
export interface Health {
  /** An SSE stream is open. */
  connected: boolean;
  /** The first catch-up (one token lifetime of events) is done. */
  synced: boolean;
  /** Seconds since the feed last gave a sign of life (an event or a heartbeat). */
  lag: number | undefined;
  /** Past `maxStaleness` or not caught up: the policy applies. */
  stale: boolean;
  /** The last event applied, where a reconnection resumes. */
  lastEventId: number | undefined;
  /** Streams opened so far (1 + reconnections). */
  connections: number;
  /** JWKS documents fetched so far (start, schedule and unknown `kid`s). */
  jwksFetches: number;
  /** Entries held: revoked sessions, changed users, revoked keys. */
  tracked: { sessions: number; users: number; keys: number };
}

/** Why a verifier could not start (no metadata, or an issuer that is not the configured one). */
export class StartError extends Error {
  override name = "StartError";
}

/** Tokens the verifier accepts carry `typ` `at+jwt` (any case, with or without `application/`). */
function typOk(typ: unknown): boolean {
  if (typeof typ !== "string") return false;
  const t = typ.toLowerCase();
  return t === "at+jwt" || t === "application/at+jwt";
}

/** Verifies access tokens. Start one with `createVerifier`; `close()` it when done. */
export class Verifier {
  /** The options in force (defaults filled in), without the client secret. */
  readonly options: Required<Omit<VerifierOptions, "clientSecret" | "eventsEndpoint" | "fetch" | "warn">>;
  /** @internal */ readonly jwks: Jwks;
  /** @internal */ readonly state: Freshness;
  /** @internal */ readonly feed: Feed;
  readonly #introspection: Introspection;
  readonly #warn: (m: string) => void;
  #keysTimer: NodeJS.Timeout | undefined;
  #closed = false;

  /** @internal Use `createVerifier`. */
  constructor(options: VerifierOptions, endpoints: Endpoints, jwksUri: string) {
    const fetch = options.fetch ?? globalThis.fetch;
    const warn = options.warn ?? ((m: string) => console.warn(`@tessera/verify: ${m}`));
    this.options = {
      issuer: options.issuer,
      audience: options.audience,
      clientId: options.clientId,
      maxStaleness: options.maxStaleness ?? 30,
      policy: options.policy ?? "refuse",
      introspectCache: options.introspectCache ?? 5,
      unknownKidInterval: options.unknownKidInterval ?? 10,
      leeway: options.leeway ?? LEEWAY,
      realm: options.realm ?? options.audience,
    };
    this.jwks = new Jwks(jwksUri, fetch, this.options.unknownKidInterval * 1000);
    this.state = new Freshness(endpoints.ttl);
    this.feed = new Feed(
      { clientId: options.clientId, clientSecret: options.clientSecret, fetch, warn },
      endpoints,
      this.state,
      () => this.#refreshKeys(0),
    );
    this.#introspection = new Introspection(
      endpoints.introspection,
      options.clientId,
      options.clientSecret,
      this.options.introspectCache * 1000,
      fetch,
    );
    this.#warn = warn;
  }

  /** @internal Starts following the feed and keeping the keys fresh. */
  start(): void {
    void this.feed.follow();
    this.#refreshKeys(Math.max(0, this.jwks.expires - Date.now()));
  }

  /** Refetches the JWKS after `ms` (its `max-age`), or at once on `keys.rotated`. */
  #refreshKeys(ms: number, failures = 0): void {
    if (this.#closed) return;
    clearTimeout(this.#keysTimer);
    this.#keysTimer = setTimeout(() => {
      this.jwks.refetch().then(
        () => this.#refreshKeys(Math.max(1000, this.jwks.expires - Date.now())),
        (e: Error) => {
          this.#warn(`JWKS fetch failed (${e.message})`);
          this.#refreshKeys(Math.min(10_000, 100 * 2 ** Math.min(failures + 1, 7)), failures + 1);
        },
      );
    }, ms);
    this.#keysTimer.unref();
  }

  /** Resolves true once the first catch-up is done; false if not within `seconds`. */
  ready(seconds = 10): Promise<boolean> {
    return this.feed.ready(seconds * 1000);
  }

  /** Whether the policy applies now: not caught up, or out of touch for longer than the budget. */
  get stale(): boolean {
    const f = this.feed;
    if (!f.synced) return true;
    if (f.connected) return false; // a stream that dies silently is dropped after 35 s
    return f.alive === undefined || Date.now() - f.alive > this.options.maxStaleness * 1000;
  }

  /** A snapshot of the feed's state, cheap enough for every readiness probe. */
  health(): Health {
    const f = this.feed;
    return {
      connected: f.connected,
      synced: f.synced,
      lag: f.alive === undefined ? undefined : (Date.now() - f.alive) / 1000,
      stale: this.stale,
      lastEventId: f.lastId,
      connections: f.connections,
      jwksFetches: this.jwks.fetches,
      tracked: { sessions: this.state.sessions.size, users: this.state.users.size, keys: this.state.keys.size },
    };
  }

  /**
   * Verifies a bearer token: signature with the key its `kid` names (one rate-limited JWKS
   * refetch when that kid is unknown), claims, then freshness. Resolves to the claims;
   * rejects with a `Rejection` (status, RFC 6750 answer).
   */
  async verify(token: string): Promise<Claims> {
    const { claims, kid } = await this.#verifySigned(token);
    this.state.check(claims, kid);
    if (this.stale) {
      if (this.options.policy === "refuse") throw new Rejection("state_unknown");
      if (this.options.policy === "introspect") await this.#introspection.check(token);
    }
    return claims;
  }

  /**
   * RFC 9068 §4 and RFC 8725: `typ` at+jwt, the algorithm of the JWK the `kid` names (never
   * the token's own choice), the signature (jose), then the claims. The `jku`, `x5u` and
   * `jwk` headers are never read.
   */
  async #verifySigned(token: string): Promise<{ claims: Claims; kid: string }> {
    let kid = "";
    // Synchronous when the key is known (the common case): no extra promise per token.
    const getKey = (header: JWTHeaderParameters): Key["key"] | Promise<Key["key"]> => {
      if (typeof header.alg !== "string" || header.alg.toLowerCase() === "none") throw Rejection.invalid("malformed");
      if (!typOk(header.typ)) throw Rejection.invalid("typ must be at+jwt");
      if (typeof header.kid !== "string") throw Rejection.invalid("no kid");
      kid = header.kid;
      const key = this.jwks.get(kid);
      if (key) return this.#pinned(key, header.alg);
      this.state.checkKey(kid); // a revoked key is said so, not "unknown"
      return this.jwks.refetchForUnknownKid().then(() => {
        const fetched = this.jwks.get(kid);
        if (!fetched) throw Rejection.invalid("unknown key");
        return this.#pinned(fetched, header.alg);
      });
    };
    try {
      const { payload } = await jwtVerify(token, getKey, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.leeway,
        requiredClaims: ["sub", "client_id", "iat", "exp", "jti"],
      });
      return { claims: toClaims(payload, Math.floor(Date.now() / 1000)), kid };
    } catch (e) {
      throw asRejection(e);
    }
  }

  /** The key, when the token's `alg` is the one its JWK names (never the token's choice). */
  #pinned(key: Key, alg: string): Key["key"] {
    if (alg !== key.alg) throw Rejection.invalid("alg does not match the key");
    return key.key;
  }

  /** Stops following the feed and refreshing keys. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#keysTimer);
    this.feed.close();
  }

  /** @internal Applies one feed event as the follower would (tests, benchmarks). */
  apply(event: SecurityEvent): void {
    this.feed.apply(event);
  }
}

/** jose's errors as the Rust crate's rejections (the same `error_description`s). */
function asRejection(e: unknown): Rejection {
  if (e instanceof Rejection) return e;
  if (e instanceof errors.JWTExpired) return new Rejection("expired");
  if (e instanceof errors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case "iss":
        return Rejection.invalid("wrong issuer");
      case "aud":
        return Rejection.invalid("wrong audience");
      case "nbf":
        return Rejection.invalid("not yet valid");
      default:
        return Rejection.invalid("claims missing or malformed");
    }
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return Rejection.invalid("bad signature");
  if (e instanceof errors.JOSEAlgNotAllowed) return Rejection.invalid("alg does not match the key");
  if (e instanceof errors.JWTInvalid) return Rejection.invalid("claims missing or malformed");
  return Rejection.invalid("malformed");
}

/**
 * Reads the issuer's RFC 8414 metadata (its `issuer` must be exactly the configured one),
 * fetches the JWKS and starts following the feed. Resolves at once after that; until the
 * first catch-up is done (`await verifier.ready()`), tokens meet `policy`.
 */
export async function createVerifier(options: VerifierOptions): Promise<Verifier> {
  const fetch = options.fetch ?? globalThis.fetch;
  const url = `${options.issuer.replace(/\/+$/, "")}/.well-known/oauth-authorization-server`;
  let meta: Record<string, unknown>;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000), redirect: "error" });
    if (!res.ok) throw new Error(`answered ${res.status}`);
    meta = (await res.json()) as Record<string, unknown>;
  } catch (e) {
    throw new StartError(`cannot read the issuer's metadata at ${url}: ${(e as Error).message}`);
  }
  if (meta.issuer !== options.issuer) {
    throw new StartError(
      `the metadata names issuer ${JSON.stringify(meta.issuer)}, not the configured ${JSON.stringify(options.issuer)} (RFC 8414 §3.3)`,
    );
  }
  const member = (name: string): string => {
    const v = meta[name];
    if (typeof v !== "string") throw new StartError(`the issuer's metadata has no ${name}`);
    return v;
  };
  const ttl = meta.tessera_access_token_max_ttl;
  if (typeof ttl !== "number") throw new StartError("the issuer's metadata has no tessera_access_token_max_ttl");
  const endpoints: Endpoints = {
    token: member("token_endpoint"),
    events: options.eventsEndpoint ?? member("tessera_events_endpoint"),
    introspection: typeof meta.introspection_endpoint === "string" ? meta.introspection_endpoint : undefined,
    ttl,
  };
  const verifier = new Verifier(options, endpoints, member("jwks_uri"));
  try {
    await verifier.jwks.refetch();
  } catch (e) {
    (options.warn ?? console.warn)(`@tessera/verify: JWKS fetch failed (${(e as Error).message}); retrying in the background`);
  }
  verifier.start();
  return verifier;
}
