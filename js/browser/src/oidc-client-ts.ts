import type { TokenSource } from "./tokens.js";

/** The part of oidc-client-ts's `UserManager` (v3) the adapter uses. */
export interface UserManagerLike {
  getUser(): Promise<{ access_token: string; expired?: boolean } | null>;
  signinSilent(): Promise<{ access_token: string } | null>;
  removeUser(): Promise<void>;
  events: {
    addUserLoaded(cb: (user: { access_token: string }) => void): () => void;
    addUserUnloaded(cb: () => void): () => void;
  };
}

/**
 * A `TokenSource` over oidc-client-ts's `UserManager`: its access token, `signinSilent()` (a
 * refresh-token grant when it holds one) to refresh, `removeUser()` to forget. Resolves once
 * the stored user (if any) is loaded.
 */
export async function fromUserManager(manager: UserManagerLike): Promise<TokenSource> {
  let token: string | null = null;
  const listeners = new Set<() => void>();
  const set = (next: string | null) => {
    if (next === token) return;
    token = next;
    for (const listener of [...listeners]) listener();
  };
  manager.events.addUserLoaded((user) => set(user.access_token));
  manager.events.addUserUnloaded(() => set(null));
  const user = await manager.getUser();
  token = user && !user.expired ? user.access_token : null;
  return {
    accessToken: () => token,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async refresh() {
      try {
        const renewed = await manager.signinSilent();
        set(renewed?.access_token ?? null);
      } catch (e) {
        // oidc-client-ts's ErrorResponse carries the OAuth `error`: the grant was refused.
        if (typeof (e as { error?: unknown }).error !== "string") throw e;
        await manager.removeUser();
        set(null);
      }
      return token;
    },
    async signOut() {
      await manager.removeUser();
      set(null);
    },
  };
}
