// The issuer's signing keys, cached by `Cache-Control: max-age`, refetched at once on
// `keys.rotated` and at most once per interval on an unknown `kid` (so hostile tokens with
// random kids never turn into a JWKS storm against the issuer).

import { importJWK, type JWK } from "jose";

type Fetch = typeof globalThis.fetch;

/** One verification key: the algorithm of its JWK (never the token's) and the key. */
export interface Key {
  alg: string;
  key: CryptoKey | Uint8Array;
}

/** Bounds on a `max-age`, in seconds: at least a second, at most a day; 300 when absent. */
const MIN_AGE = 1;
const MAX_AGE = 86_400;
const DEFAULT_AGE = 300;

/** What each algorithm's JWK must be (RFC 7518 §3, RFC 8037). */
function fits(alg: string, jwk: JWK): boolean {
  switch (alg) {
    case "ES256":
      return jwk.kty === "EC" && jwk.crv === "P-256";
    case "EdDSA":
    case "Ed25519":
      return jwk.kty === "OKP" && jwk.crv === "Ed25519";
    case "RS256":
      return jwk.kty === "RSA";
    default:
      return false; // HS*, none and the rest: never for an issuer's published keys
  }
}

/**
 * Parses a JWKS; keys that are unusable (no `kid`, not `use: sig`, an `alg` that tessera
 * does not sign with or that does not fit the `kty`/`crv`) are skipped, never trusted.
 */
export async function parseKeySet(doc: unknown): Promise<Map<string, Key>> {
  const keys = new Map<string, Key>();
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) return keys;
  for (const jwk of list as JWK[]) {
    if (typeof jwk !== "object" || jwk === null) continue;
    const { kid, alg } = jwk;
    if (typeof kid !== "string" || typeof alg !== "string") continue;
    if (jwk.use !== undefined && jwk.use !== "sig") continue;
    if (!fits(alg, jwk)) continue;
    try {
      keys.set(kid, { alg, key: await importJWK(jwk, alg) });
    } catch {
      // a malformed key: skipped like any other unusable one
    }
  }
  return keys;
}

/** `max-age` of a `Cache-Control` value, in seconds; `no-store`/`no-cache` count as the minimum. */
export function maxAge(cc: string | null): number {
  if (cc === null) return DEFAULT_AGE;
  let age: number | undefined;
  for (const d of cc.split(",").map((s) => s.trim().toLowerCase())) {
    if (d === "no-store" || d === "no-cache") return MIN_AGE;
    if (d.startsWith("max-age=")) {
      const n = Number(d.slice(8).replace(/"/g, ""));
      age = Number.isFinite(n) && n >= 0 ? n : undefined;
    }
  }
  return Math.min(Math.max(age ?? DEFAULT_AGE, MIN_AGE), MAX_AGE);
}

export class Jwks {
  #keys = new Map<string, Key>();
  /** When the cached set should be fetched again (ms since the epoch). */
  expires = 0;
  fetches = 0;
  #lastUnknownKid = -Infinity;
  #pending: Promise<void> | undefined;

  constructor(
    private readonly uri: string,
    private readonly fetch: Fetch,
    /** At most one refetch per this many ms because of an unknown `kid`. */
    private readonly unknownKidInterval: number,
  ) {}

  get(kid: string): Key | undefined {
    return this.#keys.get(kid);
  }

  /** Replaces the set (tests and benchmarks over a fixed JWKS). */
  async set(doc: unknown): Promise<void> {
    this.#keys = await parseKeySet(doc);
  }

  /** Fetches the JWKS and swaps it in; the old set stays on failure (which throws). */
  async refetch(): Promise<void> {
    this.fetches += 1;
    const res = await this.fetch(this.uri, { signal: AbortSignal.timeout(10_000), redirect: "error" });
    if (!res.ok) throw new Error(`the JWKS endpoint answered ${res.status}`);
    const age = maxAge(res.headers.get("cache-control"));
    this.#keys = await parseKeySet(await res.json());
    this.expires = Date.now() + age * 1000;
  }

  /**
   * On an unknown kid: refetch, unless a refetch for that reason started within the interval
   * (then the caller keeps the set it has). Concurrent callers share one fetch.
   */
  async refetchForUnknownKid(): Promise<void> {
    if (this.#pending) return this.#pending;
    if (Date.now() - this.#lastUnknownKid < this.unknownKidInterval) return;
    this.#lastUnknownKid = Date.now();
    this.#pending = this.refetch()
      .catch(() => undefined)
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }
}
