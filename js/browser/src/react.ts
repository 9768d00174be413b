// @tessera/browser/react: the session's state as React state (`useSyncExternalStore`, so every
// component reads the same snapshot and updates at once when the roles change).
import { useCallback, useSyncExternalStore } from "react";
import type { Session, SessionState } from "./session.js";

/** The session's state: `status`, `roles`, and `reason` once ended. */
export function useTessera(session: Session): SessionState {
  const subscribe = useCallback((onChange: () => void) => session.subscribe(onChange), [session]);
  return useSyncExternalStore(subscribe, () => session.state, () => session.state);
}

/** The signed-in user's roles (empty when not signed in). */
export function useRoles(session: Session): readonly string[] {
  return useTessera(session).roles;
}
