import { base64url, decodeClaims } from "./claims.js";
import type { TokenSource } from "./tokens.js";

export interface CodeFlowOptions {
  /** The issuer URL, exactly as in the tokens' `iss` (`https://id.example.com`). */
  issuer: string;
  /** A public client registered with this page's redirect URI and origin. */
  clientId: string;
  /** Where tessera sends the browser back with the code (registered with `--redirect-uri`). */
  redirectUri: string;
  /** Space-separated scopes; `openid` by default. */
  scope?: string;
  /** Renew this many seconds before expiry at most (a quarter of the lifetime when shorter). */
  refreshEarlySeconds?: number;
  fetch?: typeof fetch;
}

interface TokenAnswer {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  expires_in?: number;
}

/** A refusal from `/token` (RFC 6749 §5.2). */
export class TokenError extends Error {
  constructor(readonly error: string, readonly description: string | undefined) {
    super(description ? `${error}: ${description}` : error);
    this.name = "TokenError";
  }
}

const PENDING = "tessera.pkce";

/**
 * The authorization code flow with PKCE (RFC 7636) for a public client: `signIn()` goes to
 * tessera's login page, `handleCallback()` exchanges the code, tokens stay in memory (nothing
 * in storage a script could read later; only the one-time verifier lives in sessionStorage
 * across the redirect) and are refreshed before they expire.
 */
export class CodeFlow implements TokenSource {
  #tokens: { access: string; refresh: string | undefined; idToken: string | undefined } | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #refreshing: Promise<string | null> | null = null;
  #listeners = new Set<() => void>();
  #metadata: Promise<Record<string, unknown>> | null = null;
  readonly #fetch: typeof fetch;

  constructor(readonly options: CodeFlowOptions) {
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  accessToken(): string | null {
    return this.#tokens?.access ?? null;
  }

  /** The ID token of the sign-in (for `preferred_username`), if one was issued. */
  idToken(): string | null {
    return this.#tokens?.idToken ?? null;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Goes to the login page (a full-page navigation). */
  async signIn(extra: Record<string, string> = {}): Promise<void> {
    const verifier = random();
    const state = random();
    const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
    const url = new URL(await this.#endpoint("authorization_endpoint", "/authorize"));
    const params = {
      response_type: "code",
      client_id: this.options.clientId,
      redirect_uri: this.options.redirectUri,
      scope: this.options.scope ?? "openid",
      state,
      nonce: random(),
      code_challenge: challenge,
      code_challenge_method: "S256",
      ...extra,
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    location.assign(url);
  }

  /**
   * On the redirect back: exchanges the code and removes it from the address bar. Resolves to
   * true when signed in, false when the URL is not a callback; throws `TokenError` when the
   * sign-in was refused (or the state does not match: a forged callback).
   */
  async handleCallback(href: string = location.href): Promise<boolean> {
    const url = new URL(href);
    const code = url.searchParams.get("code");
    const error = url.searchParams.get("error");
    if (!code && !error) return false;
    const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as { verifier: string; state: string } | null;
    sessionStorage.removeItem(PENDING);
    for (const k of ["code", "state", "error", "error_description", "iss", "session_state"]) url.searchParams.delete(k);
    history.replaceState(history.state, "", url);
    if (error) throw new TokenError(error, url.searchParams.get("error_description") ?? undefined);
    if (!pending || new URL(href).searchParams.get("state") !== pending.state) {
      throw new TokenError("invalid_request", "the callback's state does not match this browser's sign-in");
    }
    this.#keep(
      await this.#token({
        grant_type: "authorization_code",
        code: code!,
        redirect_uri: this.options.redirectUri,
        code_verifier: pending.verifier,
      }),
    );
    return true;
  }

  /** One refresh at a time: concurrent callers share it. */
  refresh(): Promise<string | null> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<string | null> {
    const refreshToken = this.#tokens?.refresh;
    if (!refreshToken) return null;
    try {
      this.#keep(await this.#token({ grant_type: "refresh_token", refresh_token: refreshToken }));
      return this.#tokens!.access;
    } catch (e) {
      if (!(e instanceof TokenError)) throw e; // the network: the caller tries again later
      this.#forget();
      return null;
    }
  }

  /** Revokes the refresh token (RFC 7009) and forgets the tokens. */
  async signOut(): Promise<void> {
    const refreshToken = this.#tokens?.refresh;
    this.#forget();
    if (!refreshToken) return;
    const url = await this.#endpoint("revocation_endpoint", "/revoke");
    await this.#fetch(url, {
      method: "POST",
      body: new URLSearchParams({ client_id: this.options.clientId, token: refreshToken, token_type_hint: "refresh_token" }),
    }).catch(() => undefined);
  }

  #keep(answer: TokenAnswer): void {
    this.#tokens = {
      access: answer.access_token,
      refresh: answer.refresh_token ?? this.#tokens?.refresh,
      idToken: answer.id_token ?? this.#tokens?.idToken,
    };
    clearTimeout(this.#timer);
    const claims = decodeClaims(answer.access_token);
    const ttl = answer.expires_in ?? claims.exp - claims.iat;
    const early = Math.min(this.options.refreshEarlySeconds ?? 30, ttl / 4);
    this.#timer = setTimeout(() => void this.refresh().catch(() => this.#retrySoon()), Math.max(1, ttl - early) * 1000);
    this.#notify();
  }

  #retrySoon(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.refresh().catch(() => this.#retrySoon()), 5000);
  }

  #forget(): void {
    clearTimeout(this.#timer);
    if (this.#tokens === null) return;
    this.#tokens = null;
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  async #token(params: Record<string, string>): Promise<TokenAnswer> {
    const url = await this.#endpoint("token_endpoint", "/token");
    const res = await this.#fetch(url, {
      method: "POST",
      body: new URLSearchParams({ client_id: this.options.clientId, ...params }),
    });
    const body = (await res.json().catch(() => ({}))) as Partial<TokenAnswer> & { error?: string; error_description?: string };
    if (!res.ok || typeof body.access_token !== "string") {
      throw new TokenError(body.error ?? `http_${res.status}`, body.error_description);
    }
    return body as TokenAnswer;
  }

  async #endpoint(name: string, fallback: string): Promise<string> {
    this.#metadata ??= this.#fetch(new URL("/.well-known/openid-configuration", this.options.issuer))
      .then((r) => (r.ok ? (r.json() as Promise<Record<string, unknown>>) : {}))
      .catch(() => {
        this.#metadata = null;
        return {};
      });
    const value = (await this.#metadata)[name];
    return typeof value === "string" ? value : new URL(fallback, this.options.issuer).toString();
  }
}

function random(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}
