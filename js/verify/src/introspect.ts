// The introspect policy: ask the issuer (RFC 7662) when the feed is stale, reusing an
// answer for the same token briefly. Keyed by the token's SHA-256, never the token.

import { createHash } from "node:crypto";

import { Rejection } from "./rejection.js";

type Fetch = typeof globalThis.fetch;

/** Answers kept at most; beyond that the cache starts over. */
const MAX_ENTRIES = 10_000;

export class Introspection {
  #cache = new Map<string, { active: boolean; at: number }>();

  /** Private (#): never shows in `util.inspect` or a log of the verifier. */
  readonly #clientSecret: string;

  constructor(
    private readonly endpoint: string | undefined,
    private readonly clientId: string,
    clientSecret: string,
    /** How long an answer is reused (ms). */
    private readonly keep: number,
    private readonly fetch: Fetch,
  ) {
    this.#clientSecret = clientSecret;
  }

  /** Resolves when the issuer says the token is active; throws the rejection otherwise. */
  async check(token: string): Promise<void> {
    const key = createHash("sha256").update(token).digest("base64");
    const cached = this.#cache.get(key);
    let active: boolean;
    if (cached && Date.now() - cached.at < this.keep) {
      active = cached.active;
    } else {
      active = await this.#ask(token);
      if (this.#cache.size >= MAX_ENTRIES) {
        for (const [k, v] of this.#cache) if (Date.now() - v.at >= this.keep) this.#cache.delete(k);
        if (this.#cache.size >= MAX_ENTRIES) this.#cache.clear();
      }
      this.#cache.set(key, { active, at: Date.now() });
    }
    if (!active) throw new Rejection("inactive");
  }

  async #ask(token: string): Promise<boolean> {
    if (!this.endpoint) throw new Rejection("state_unknown");
    try {
      const res = await this.fetch(this.endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ client_id: this.clientId, client_secret: this.#clientSecret, token }),
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) throw new Error(`introspection answered ${res.status}`);
      const body = (await res.json()) as { active?: unknown };
      return body.active === true;
    } catch {
      throw new Rejection("state_unknown");
    }
  }
}
