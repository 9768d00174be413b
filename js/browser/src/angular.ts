// @tessera/browser/angular: the session's state as Angular signals. No decorators, so it works
// compiled ahead of time or JIT: `providers: [provideTessera(session)]`, then
// `inject(TesseraService).roles()` in a component or template.
import { DestroyRef, computed, inject, signal, type Provider, type Signal } from "@angular/core";
import type { Session, SessionState } from "./session.js";

export class TesseraService {
  readonly #state;
  /** The whole state: `status`, `roles`, `reason` once ended. */
  readonly state: Signal<SessionState>;
  /** The signed-in user's roles (empty when not signed in). */
  readonly roles: Signal<readonly string[]>;
  readonly status: Signal<SessionState["status"]>;

  constructor(readonly session: Session) {
    this.#state = signal(session.state);
    this.state = this.#state.asReadonly();
    this.roles = computed(() => this.#state().roles);
    this.status = computed(() => this.#state().status);
    const stop = session.subscribe((s) => this.#state.set(s));
    inject(DestroyRef).onDestroy(stop);
  }

  /** True while the user holds `role`. */
  hasRole(role: string): Signal<boolean> {
    return computed(() => this.#state().roles.includes(role));
  }
}

/** Provides `TesseraService` for `session` (in `bootstrapApplication` or a component). */
export function provideTessera(session: Session): Provider[] {
  return [{ provide: TesseraService, useFactory: () => new TesseraService(session) }];
}
