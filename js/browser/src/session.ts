import { decodeClaims, type AccessClaims } from "./claims.js";
import type { TokenSource } from "./tokens.js";

/** What the UI shows: signed in with these roles, signed out, or ended (and why). */
export type SessionState =
  | { status: "signed-out"; roles: readonly string[] }
  | { status: "signed-in"; roles: readonly string[]; claims: AccessClaims }
  | { status: "ended"; roles: readonly string[]; reason: string };

/** One event of tessera's feed (docs/protocol.md, "When roles change"). */
export interface TesseraEvent {
  id: number;
  type: string;
  sub: string | null;
  sid: string | null;
  ver: number | null;
  roles: string[] | null;
  reason: string | null;
  at: string;
}

export interface SessionOptions {
  /** The issuer URL (tokens' `iss`); the feed is `${issuer}/events`. */
  issuer: string;
  tokens: TokenSource;
  /** How long one long-poll waits for an event, in seconds (server caps it); 25 by default. */
  wait?: number;
  /** Keep following while the tab is hidden (default false: pause, catch up on return). */
  followWhileHidden?: boolean;
  fetch?: typeof fetch;
  /**
   * Called with each event of the user's feed after the session has acted on it: `acted`
   * when it refreshed or ended the session, `arrivedAt` the `performance.now()` of the poll's
   * answer (to measure event → UI).
   */
  onEvent?: (event: TesseraEvent, info: { acted: boolean; arrivedAt: number }) => void;
}

const USER_CHANGES = new Set([
  "user.roles_changed",
  "user.disabled",
  "user.password_changed",
  "user.credential_changed",
]);
const NO_ROLES: readonly string[] = Object.freeze([]);

/**
 * A signed-in user's session that follows the user's own events on tessera's feed: a role
 * change refreshes the tokens at once (policy `reissue`), or ends the session when tessera
 * revoked it (policy `revoke`, a disabled user, a password change). `subscribe()` gives the
 * state to a UI; `fetch()` calls an API with the token and retries once after a 401 that asks
 * for a refresh.
 *
 * The feed is followed by long-poll (`GET /events?after=N&wait=25`), not a streamed fetch of
 * the SSE stream: `EventSource` cannot send `Authorization`, and each poll carries the token
 * in force, so a refreshed token takes over at the next poll instead of a stream bound to a
 * token that expires or is replaced. An event wakes a waiting poll at once, so the latency
 * is the stream's.
 */
export class Session {
  #state: SessionState = { status: "signed-out", roles: NO_ROLES };
  #listeners = new Set<(state: SessionState) => void>();
  #unsubscribeTokens: (() => void) | undefined;
  /** The running feed loop; replaced (and the old one stopped) on a new sign-in. */
  #feed: { abort: AbortController; sub: string } | null = null;
  #after: number | null = null;
  #token: string | null = null;
  #refreshing: Promise<string | null> | null = null;
  readonly #fetch: typeof fetch;

  constructor(readonly options: SessionOptions) {
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** The current state (a new object on every change, so it can be a React snapshot). */
  get state(): SessionState {
    return this.#state;
  }

  /** The signed-in user's roles; empty when not signed in. */
  get roles(): readonly string[] {
    return this.#state.roles;
  }

  /** Calls `listener` on every change of state; returns the function that stops it. */
  subscribe(listener: (state: SessionState) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Starts following the token source: signed in as soon as it has a token. */
  start(): this {
    this.#unsubscribeTokens ??= this.options.tokens.subscribe?.(() => this.#sync());
    this.#sync();
    return this;
  }

  /** Stops following (the tokens are kept). */
  stop(): void {
    this.#unsubscribeTokens?.();
    this.#unsubscribeTokens = undefined;
    this.#token = null; // so that start() reads the source afresh
    this.#stopFeed();
  }

  /** Signs out: stops the feed, then lets the token source revoke and forget its tokens. */
  async signOut(): Promise<void> {
    const forget = this.options.tokens.signOut?.();
    this.#end("signed out");
    await forget;
  }

  /**
   * `fetch` with the access token; after a 401 whose description asks for a refresh (roles
   * changed, expired, signing key revoked) it refreshes once and retries. A 401 saying the
   * session is gone (revoked, user disabled) ends the session.
   */
  async fetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const send = (token: string | null) => {
      const headers = new Headers(init.headers);
      if (token) headers.set("Authorization", `Bearer ${token}`);
      return this.#fetch(input, { ...init, headers });
    };
    const sent = this.options.tokens.accessToken();
    const res = await send(sent);
    if (res.status !== 401) return res;
    const description = await describe401(res);
    if (/roles changed|expired|key revoked|: refresh/.test(description)) {
      // Refreshed by someone else since this was sent: retry with that token.
      const current = this.options.tokens.accessToken();
      const token = current && current !== sent ? current : await this.#refresh(description);
      return token ? send(token) : res;
    }
    if (/session revoked|user disabled|sign in again/.test(description)) this.#end(description);
    return res;
  }

  /** Reads the token source again: a new sign-in starts the feed, no token ends it. */
  #sync(): void {
    const token = this.options.tokens.accessToken();
    if (token === this.#token) return;
    this.#token = token;
    if (!token) {
      // A refresh that fails ends the session with its own reason.
      if (this.#state.status === "signed-in" && !this.#refreshing) this.#end("signed out");
      return;
    }
    const claims = decodeClaims(token);
    const roles = claims.roles ?? [];
    const kept = this.#state.status === "signed-in" && sameRoles(this.#state.roles, roles);
    this.#set({ status: "signed-in", roles: kept ? this.#state.roles : Object.freeze([...roles]), claims });
    if (this.#feed?.sub !== claims.sub) {
      this.#stopFeed();
      this.#after = null;
      const abort = new AbortController();
      this.#feed = { abort, sub: claims.sub };
      void this.#follow(abort.signal);
    }
  }

  #ended(): boolean {
    return this.#state.status === "ended";
  }

  #set(state: SessionState): void {
    this.#state = state;
    for (const listener of [...this.#listeners]) listener(state);
  }

  /** Ends the session; the source forgets its tokens (they no longer serve). */
  #end(reason: string): void {
    this.#stopFeed();
    if (this.#state.status === "ended") return;
    this.#set({ status: "ended", roles: NO_ROLES, reason });
    if (this.options.tokens.accessToken()) void this.options.tokens.signOut?.().catch(() => undefined);
  }

  #stopFeed(): void {
    this.#feed?.abort.abort();
    this.#feed = null;
  }

  /**
   * Refreshes: the new token; null when the source could not, and then the session has
   * ended (the source answered null) or not (it threw: the issuer unreachable). Callers at
   * the same time (the feed, API calls) share one refresh: one refresh token, one grant.
   */
  #refresh(why: string): Promise<string | null> {
    this.#refreshing ??= (async () => {
      let token: string | null;
      try {
        token = await this.options.tokens.refresh();
      } catch {
        return null;
      } finally {
        this.#refreshing = null;
      }
      if (token === null) this.#end(why);
      else this.#sync();
      return token;
    })();
    return this.#refreshing;
  }

  /** The long-poll loop; ends when `signal` aborts. */
  async #follow(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (!this.options.followWhileHidden) await visible(signal);
      const token = this.options.tokens.accessToken();
      if (signal.aborted || !token) return;
      const url = new URL("/events", this.options.issuer);
      url.searchParams.set("wait", String(this.options.wait ?? 25));
      // The first poll starts from the token's issue time, so a change made between the
      // sign-in and this poll is not missed (older events carry a `ver` the token has).
      if (this.#after === null) url.searchParams.set("since", String(decodeClaims(token).iat));
      else url.searchParams.set("after", String(this.#after));
      let res: Response;
      try {
        res = await this.#fetch(url, {
          headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
          signal,
          cache: "no-store",
        });
      } catch {
        if (signal.aborted) return;
        await backoff(++failures, signal);
        continue;
      }
      if (signal.aborted) return;
      if (res.status === 401) {
        // Expired during the wait, or the session ended (its events came first).
        if (await this.#refresh(await describe401(res))) continue;
        if (signal.aborted) return; // ended
        await backoff(++failures, signal); // the issuer unreachable: try again
        continue;
      }
      const body = (await res.json().catch(() => null)) as { events?: TesseraEvent[]; next_after?: number } | null;
      if (res.status === 410 && typeof body?.next_after === "number") {
        this.#after = body.next_after; // beyond retention: resume from the oldest kept
        continue;
      }
      if (!res.ok || !body || !Array.isArray(body.events)) {
        // A third-party app without scope `events`: the session stays, without the feed.
        if (res.status === 403) return;
        await backoff(++failures, signal);
        continue;
      }
      failures = 0;
      const arrivedAt = performance.now();
      const before = this.#after;
      if (typeof body.next_after === "number") this.#after = body.next_after;
      let last = before;
      for (const event of body.events) {
        if (signal.aborted) return;
        const acted = await this.#onEvent(event);
        if (acted === null) {
          // The refresh could not reach the issuer: take this event again after a pause.
          this.#after = last;
          await backoff(++failures, signal);
          break;
        }
        last = event.id;
        this.options.onEvent?.(event, { acted, arrivedAt });
      }
    }
  }

  /** Acts on one event: true when it refreshed or ended the session, null when it could not refresh yet. */
  async #onEvent(event: TesseraEvent): Promise<boolean | null> {
    if (this.#state.status !== "signed-in" || event.sub !== this.#state.claims.sub) return false;
    const claims = this.#state.claims;
    if (event.type === "session.revoked") {
      if (event.sid !== claims.sid) return false; // another session of the same user
      this.#end(event.reason ? `session revoked (${event.reason.replace(/_/g, " ")})` : "session revoked");
      return true;
    }
    if (!USER_CHANGES.has(event.type)) return false;
    if (event.ver !== null && claims.ver !== undefined && event.ver <= claims.ver) return false; // the token has it
    const why = `${event.type.replace("user.", "").replace(/_/g, " ")}: the session was revoked`;
    return (await this.#refresh(why)) !== null || this.#ended() ? true : null;
  }
}

function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

/** The `error_description` of a 401, from `WWW-Authenticate` (RFC 6750 §3) or the JSON body. */
async function describe401(res: Response): Promise<string> {
  const header = res.headers.get("WWW-Authenticate") ?? "";
  const m = /error_description="([^"]*)"/.exec(header);
  if (m?.[1]) return m[1];
  const body = (await res.clone().json().catch(() => null)) as { error_description?: unknown; error?: unknown } | null;
  for (const value of [body?.error_description, body?.error]) if (typeof value === "string") return value;
  return `HTTP ${res.status}`;
}

/** Resolves when the page is visible (at once outside a browser), or when `signal` aborts. */
function visible(signal: AbortSignal): Promise<void> {
  if (typeof document === "undefined" || document.visibilityState !== "hidden") return Promise.resolve();
  return new Promise((ok) => {
    const done = () => {
      document.removeEventListener("visibilitychange", check);
      signal.removeEventListener("abort", done);
      ok();
    };
    const check = () => {
      if (document.visibilityState !== "hidden") done();
    };
    document.addEventListener("visibilitychange", check);
    signal.addEventListener("abort", done);
  });
}

/** Waits 1, 2, 4 … 30 s (with jitter) after consecutive failures, or until `signal` aborts. */
function backoff(failures: number, signal: AbortSignal): Promise<void> {
  const ms = Math.min(30_000, 1000 * 2 ** Math.min(failures - 1, 5)) * (0.5 + Math.random() / 2);
  return new Promise((ok) => {
    const timer = setTimeout(ok, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      ok();
    });
  });
}
