/**
 * Where a `Session` gets its access token: the package's own `CodeFlow`, `fromUserManager()`
 * for oidc-client-ts, or any object of this shape around another OIDC library.
 */
export interface TokenSource {
  /** The current access token, or null when signed out. */
  accessToken(): string | null;
  /**
   * Gets new tokens now (refresh grant, silent sign-in). Resolves to the new access token, or
   * null when the session cannot be renewed (refresh token revoked: the user must sign in).
   * Should reject only for a transient failure (network), so the session tries again later.
   */
  refresh(): Promise<string | null>;
  /** Calls `listener` whenever the token changes on its own (sign-in, timed renewal). */
  subscribe?(listener: () => void): () => void;
  /** Forgets the tokens (and revokes them where it can). */
  signOut?(): Promise<void>;
}
