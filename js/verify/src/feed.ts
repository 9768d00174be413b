// Following `GET /events` (verify/src/feed.rs): a catch-up of one token lifetime (JSON
// long-poll with `since`), then an SSE stream over a streamed fetch resumed with
// `Last-Event-ID`, renewed with a fresh client-credentials token before the old one expires
// (the issuer ends a stream at its token's `exp`), reconnected with jittered backoff.

import { LEEWAY } from "./claims.js";
import { SseParser, type SseEvent } from "./sse.js";
import type { Freshness, SecurityEvent } from "./state.js";

type Fetch = typeof globalThis.fetch;

/** A stream silent for this long is dead (the issuer sends a heartbeat every 10-15 s). */
const IDLE_MS = 35_000;
/** A stream the other side ends sooner than this after it opened counts as a failure. */
const MIN_STREAM_MS = 1000;
/** Seconds of margin on the catch-up's start, beyond the token lifetime and leeway (event
 * times are whole seconds, taken just before their transaction commits). */
const MARGIN = 5;

export interface Endpoints {
  token: string;
  events: string;
  introspection: string | undefined;
  /** The longest access-token lifetime, in seconds. */
  ttl: number;
}

export interface FeedOptions {
  clientId: string;
  clientSecret: string;
  fetch: Fetch;
  warn: (message: string) => void;
}

class FeedError extends Error {
  constructor(
    message: string,
    /** How long to wait before the next attempt, when the cause says (ms). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** 100 ms doubling to 10 s, with up to 50 % jitter so that verifiers do not reconnect in step. */
export function backoff(failures: number): number {
  const base = Math.min(100 * 2 ** Math.min(failures, 7), 10_000);
  return base / 2 + Math.random() * (base / 2);
}

const unixNow = () => Math.floor(Date.now() / 1000);

export class Feed {
  connected = false;
  synced = false;
  /** When the feed last gave a sign of life (ms since the epoch). */
  alive: number | undefined;
  lastId: number | undefined;
  connections = 0;
  #token: { value: string; renewAt: number } | undefined;
  #resync = true;
  #closed = false;
  #stream: AbortController | undefined;
  #wake: (() => void) | undefined;
  #synced: Array<() => void> = [];
  #prunedAt = 0;

  /** Private (#): the client secret never shows in `util.inspect` or a log of the verifier. */
  readonly #opts: FeedOptions;

  constructor(
    opts: FeedOptions,
    private readonly endpoints: Endpoints,
    private readonly state: Freshness,
    private readonly keysChanged: () => void,
  ) {
    this.#opts = opts;
  }

  /** Runs until `close()`. */
  async follow(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      try {
        await this.#session();
        failures = 0; // the stream ended (by the issuer, or to renew the token): resume at once
      } catch (e) {
        if (this.#closed) break;
        failures += 1;
        const wait = e instanceof FeedError && e.retryAfter !== undefined ? e.retryAfter : backoff(failures);
        this.#opts.warn(`tessera event feed unavailable (${(e as Error).message}); retrying in ${Math.round(wait)} ms`);
        await this.#sleep(wait);
      } finally {
        this.connected = false;
        this.#stream = undefined;
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#stream?.abort();
    this.#wake?.();
  }

  /** Resolves true once the first catch-up is done, false after `ms`. */
  ready(ms: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.#synced.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async #bearer(): Promise<string> {
    if (this.#token && Date.now() < this.#token.renewAt) return this.#token.value;
    return await this.#renew();
  }

  async #renew(): Promise<string> {
    const res = await this.#opts.fetch(this.endpoints.token, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: this.#opts.clientId,
        client_secret: this.#opts.clientSecret,
      }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new FeedError(`the token endpoint answered ${res.status}`);
    const t = (await res.json()) as { access_token?: unknown; expires_in?: unknown };
    if (typeof t.access_token !== "string" || typeof t.expires_in !== "number") {
      throw new FeedError("the token endpoint answered without a token");
    }
    // Renew at three quarters of the lifetime: well before the issuer ends the stream.
    this.#token = { value: t.access_token, renewAt: Date.now() + t.expires_in * 750 };
    return t.access_token;
  }

  async #session(): Promise<void> {
    const bearer = await this.#bearer();
    if (this.#resync) {
      await this.#catchUp(bearer);
      this.#resync = false;
    }
    const stream = new AbortController();
    this.#stream = stream;
    const headers: Record<string, string> = { authorization: `Bearer ${bearer}`, accept: "text/event-stream" };
    if (this.lastId !== undefined) headers["last-event-id"] = String(this.lastId);
    const res = await this.#opts.fetch(this.endpoints.events, { headers, signal: stream.signal });
    if (res.status === 410) {
      this.#resync = true;
      throw new FeedError("the feed cannot resume from the last event id", 0);
    }
    if (res.status === 401) {
      this.#token = undefined;
      throw new FeedError("the feed refused the verifier's token");
    }
    if (res.status !== 200 || !res.body) {
      const after = Number(res.headers.get("retry-after"));
      throw new FeedError(`the feed answered ${res.status}`, Number.isFinite(after) && after > 0 ? after * 1000 : undefined);
    }
    this.connected = true;
    this.connections += 1;
    this.alive = Date.now();
    const opened = Date.now();
    // Why the stream is being ended from this side, if it is.
    let ending: "silent" | "renewed" | undefined;
    const idle = setTimeout(() => {
      ending = "silent";
      stream.abort();
    }, IDLE_MS);
    idle.unref();
    let renewTimer: NodeJS.Timeout | undefined;
    const renewIn = (ms: number) => {
      renewTimer = setTimeout(() => {
        this.#renew().then(
          () => {
            ending = "renewed";
            stream.abort();
          },
          (e: Error) => {
            this.#opts.warn(`renewing the feed token failed (${e.message}); retrying`);
            renewIn(1000);
          },
        );
      }, ms);
      renewTimer.unref();
    };
    renewIn(Math.max(0, (this.#token?.renewAt ?? 0) - Date.now()));
    const parser = new SseParser();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          // Ended by the other side. At once after it opened is not the issuer's way (it ends a
          // stream at its token's expiry, which is renewed before): back off, never a hot loop.
          if (Date.now() - opened < MIN_STREAM_MS) throw new FeedError("the feed ended the stream at once");
          return;
        }
        this.alive = Date.now();
        idle.refresh();
        for (const e of parser.feed(value)) this.#deliver(e);
      }
    } catch (e) {
      if (ending === "renewed" || this.#closed) return;
      if (ending === "silent") throw new FeedError("the feed went silent", 0);
      throw e;
    } finally {
      clearTimeout(idle);
      clearTimeout(renewTimer);
      stream.abort();
    }
  }

  #deliver(e: SseEvent): void {
    const id = e.id === undefined ? NaN : Number(e.id.trim());
    if (!Number.isSafeInteger(id)) return; // no id: not a security event (e.g. `event: end`)
    let event: SecurityEvent;
    try {
      event = JSON.parse(e.data) as SecurityEvent;
    } catch {
      this.#opts.warn(`unreadable feed event ${id}`);
      this.#record(id);
      return;
    }
    this.apply(event);
  }

  /** Applies an event once (a resumed stream may repeat what was already seen). */
  apply(e: SecurityEvent): void {
    if (typeof e?.id !== "number" || (this.lastId !== undefined && e.id <= this.lastId)) return;
    const keys = this.state.apply(e);
    this.lastId = e.id;
    const now = Date.now();
    if (now - this.#prunedAt > 1000) {
      this.#prunedAt = now;
      this.state.prune(Math.floor(now / 1000));
    }
    if (keys) this.keysChanged();
  }

  #record(id: number): void {
    this.lastId = Math.max(this.lastId ?? id, id);
  }

  /** Reads every event since one token lifetime ago (long-poll pages), so that a change made
   * before this verifier started, while its tokens live, is honoured. */
  async #catchUp(bearer: string): Promise<void> {
    const since = unixNow() - this.endpoints.ttl - LEEWAY - MARGIN;
    // The position is re-read from the log: after a restore from an older backup the last id
    // seen may be past the newest event, and resuming from it answers 410.
    this.lastId = undefined;
    let query = `since=${since}`;
    for (let pages = 0; ; pages++) {
      const res = await this.#opts.fetch(`${this.endpoints.events}?${query}`, {
        headers: { authorization: `Bearer ${bearer}`, accept: "application/json" },
        signal: AbortSignal.timeout(30_000),
      });
      if (res.status === 410 && pages < 3) {
        query = `since=${since}`; // pruned meanwhile: from the time again
        continue;
      }
      if (res.status === 401) this.#token = undefined;
      if (res.status !== 200) throw new FeedError(`the feed answered ${res.status}`);
      const page = (await res.json()) as { events?: SecurityEvent[]; next_after?: number };
      const events = Array.isArray(page.events) ? page.events : [];
      for (const e of events) this.apply(e);
      if (typeof page.next_after === "number") this.#record(page.next_after);
      if (events.length === 0 || typeof page.next_after !== "number") break;
      query = `after=${page.next_after}`;
    }
    this.state.horizon = Math.max(this.state.horizon, since);
    this.alive = Date.now();
    this.synced = true;
    for (const done of this.#synced.splice(0)) done();
  }
}
