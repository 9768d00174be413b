// Following `GET /events` (verify/src/feed.rs): a catch-up of one token lifetime (JSON
// long-poll with `since`), then an SSE stream over a streamed fetch resumed with
// `Last-Event-ID`, reconnected with jittered backoff (a stream request unanswered for HEAD_MS,
// and a stream ended within MIN_STREAM_MS of opening, are failures too). The issuer ends a
// stream at its token's `exp`: ahead of that, the next stream is opened with a fresh
// client-credentials token while the current one still delivers, so that no change waits for a
// reconnection.

import { LEEWAY } from "./claims.js";
import { SseParser, type SseEvent } from "./sse.js";
import type { Freshness, SecurityEvent } from "./state.js";

type Fetch = typeof globalThis.fetch;

/** A stream silent for this long is dead (the issuer sends a heartbeat every 10-15 s). */
const IDLE_MS = 35_000;
/** A stream the other side ends sooner than this after it opened counts as a failure. */
const MIN_STREAM_MS = 1000;
/** How long a stream request may wait for its response head (status and headers). An issuer, or
 * a proxy, that accepts the connection and never answers would otherwise hold the attempt, and
 * the follower with it, for ever. The body has no such bound: a stream is long-lived, and
 * IDLE_MS watches it. */
const HEAD_MS = 10_000;
/** Seconds of margin on the catch-up's start, beyond the token lifetime and leeway (event
 * times are whole seconds, taken just before their transaction commits). */
const MARGIN = 5;
/** The next stream is opened this long before the current one's token may expire (at most half
 * the token's lifetime): time for a token request, a reconnection and a few retries. */
const RENEW_AHEAD_MS = 10_000;
/** Nor sooner than this after the token was asked for: at most two token requests a second,
 * however short the issuer's lifetime. */
const MIN_RENEW_MS = 500;

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

/** How long to wait after a failure: what its cause says, else the backoff. */
function retryIn(e: unknown, failures: number): number {
  return e instanceof FeedError && e.retryAfter !== undefined ? e.retryAfter : backoff(failures);
}

/** The verifier's own access token. */
interface Token {
  value: string;
  /** When to open a stream with a fresh one (ms since the epoch). */
  renewAt: number;
}

/** A stream the issuer accepted, to be read. */
interface Stream {
  body: NonNullable<Response["body"]>;
  controller: AbortController;
  /** The token it was opened with: the issuer ends the stream when that expires. */
  token: Token;
}

const unixNow = () => Math.floor(Date.now() / 1000);

export class Feed {
  connected = false;
  synced = false;
  /** When the feed last gave a sign of life (ms since the epoch). */
  alive: number | undefined;
  lastId: number | undefined;
  connections = 0;
  #token: Token | undefined;
  #resync = true;
  #closed = false;
  /** Every stream open or being opened (two while one takes over from the other). */
  #streams = new Set<AbortController>();
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
    // A stream opened ahead of the previous one's end, to be read next.
    let next: Stream | undefined;
    while (!this.#closed) {
      try {
        const stream = next ?? (await this.#open());
        next = undefined;
        next = await this.#read(stream);
        failures = 0; // the stream ended (by the issuer, or taken over by the next): go on at once
      } catch (e) {
        if (this.#closed) break;
        failures += 1;
        const wait = retryIn(e, failures);
        this.#opts.warn(`tessera event feed unavailable (${(e as Error).message}); retrying in ${Math.round(wait)} ms`);
        await this.#sleep(wait);
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.connected = false;
    for (const stream of this.#streams) stream.abort();
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

  /** The cached token unless it is due for renewal, or is the one a new stream `replaces`. */
  async #bearer(replaces?: Token): Promise<Token> {
    const t = this.#token;
    if (t && t !== replaces && Date.now() < t.renewAt) return t;
    return await this.#renew();
  }

  async #renew(): Promise<Token> {
    const asked = Date.now();
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
    // The issuer counts `expires_in` from the token's `iat`, its clock cut to the second: the
    // token may expire up to a second sooner than `expires_in` after it was asked for.
    const lifetime = Math.max(0, t.expires_in - 1) * 1000;
    const ahead = Math.min(RENEW_AHEAD_MS, lifetime / 2);
    this.#token = { value: t.access_token, renewAt: asked + Math.max(lifetime - ahead, MIN_RENEW_MS) };
    return this.#token;
  }

  /** Opens a stream that resumes after the last event applied, with a token other than the
   * one it `replaces`. */
  async #open(replaces?: Token): Promise<Stream> {
    const token = await this.#bearer(replaces);
    if (this.#resync) {
      await this.#catchUp(token.value);
      this.#resync = false;
    }
    if (this.#closed) throw new FeedError("closed");
    const controller = new AbortController();
    this.#streams.add(controller);
    // The deadline is the head's: cleared once it is in, so that the body is never aborted by it.
    let late = false;
    const head = setTimeout(() => {
      late = true;
      controller.abort();
    }, HEAD_MS);
    head.unref();
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${token.value}`, accept: "text/event-stream" };
      if (this.lastId !== undefined) headers["last-event-id"] = String(this.lastId);
      let res: Response;
      try {
        res = await this.#opts.fetch(this.endpoints.events, { headers, signal: controller.signal });
      } catch (e) {
        if (late) throw new FeedError(`the feed did not answer within ${HEAD_MS / 1000} s`);
        throw e;
      } finally {
        clearTimeout(head);
      }
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
      return { body: res.body, controller, token };
    } catch (e) {
      controller.abort();
      this.#streams.delete(controller);
      throw e;
    }
  }

  /**
   * Reads `stream` until it ends; resolves to the stream to read next, if any. Ahead of its
   * token's expiry the next stream is opened, resuming after the last event applied, while this
   * one still delivers; once that one is open this one is closed. An event both deliver is
   * applied once (`apply`), so the switch neither loses nor repeats one.
   */
  async #read(stream: Stream): Promise<Stream | undefined> {
    this.connected = true;
    this.connections += 1;
    this.alive = Date.now();
    const opened = Date.now();
    // Why the stream is being ended from this side, if it is.
    let ending: "silent" | "taken over" | undefined;
    const idle = setTimeout(() => {
      ending = "silent";
      stream.controller.abort();
    }, IDLE_MS);
    idle.unref();
    // The next stream, on its way or open. While this one is read, a failure to open it (the
    // token endpoint down, say) is retried with backoff; once this one has ended, the attempt
    // in flight is follow()'s to wait for, and its failure follow()'s to retry.
    let next: Promise<Stream> | undefined;
    let reading = true;
    let renewTimer: NodeJS.Timeout | undefined;
    const renewIn = (ms: number, failures: number) => {
      renewTimer = setTimeout(() => {
        const opening = this.#open(stream.token);
        next = opening;
        opening.then(
          () => {
            if (!reading) return;
            ending = "taken over";
            stream.controller.abort();
          },
          (e: Error) => {
            if (!reading) return;
            next = undefined;
            const wait = retryIn(e, failures + 1);
            this.#opts.warn(`opening the next feed stream failed (${e.message}); retrying in ${Math.round(wait)} ms`);
            renewIn(wait, failures + 1);
          },
        );
      }, ms);
      renewTimer.unref();
    };
    renewIn(Math.max(0, stream.token.renewAt - Date.now()), 0);
    const parser = new SseParser();
    const reader = stream.body.pipeThrough(new TextDecoderStream()).getReader();
    let failed: Error | undefined;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.alive = Date.now();
        idle.refresh();
        for (const e of parser.feed(value)) this.#deliver(e);
      }
    } catch (e) {
      failed = e as Error;
    } finally {
      reading = false;
      clearTimeout(idle);
      clearTimeout(renewTimer);
      stream.controller.abort();
      this.#streams.delete(stream.controller);
      if (ending !== "taken over") this.connected = false;
    }
    if (this.#closed) return undefined;
    // Whatever ended this one (its token's expiry, most often), the next is already on its way.
    if (next) return await next;
    if (ending === "silent") throw new FeedError("the feed went silent", 0);
    if (failed) throw failed;
    // Ended by the other side. At once after it opened is not the issuer's way (it ends a stream
    // at its token's expiry, which is renewed before): back off, never a hot loop.
    if (Date.now() - opened < MIN_STREAM_MS) throw new FeedError("the feed ended the stream at once");
    return undefined;
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
