// The Angular test app (JIT: the compiler is imported, no CLI): the package's own code flow,
// the state through TesseraService's signals, zoneless change detection.
import "@angular/compiler";
import { Component, inject, provideZonelessChangeDetection } from "@angular/core";
import { bootstrapApplication } from "@angular/platform-browser";
import { CodeFlow, Session } from "@tessera/browser";
import { TesseraService, provideTessera } from "@tessera/browser/angular";

const { issuer, clientId } = (window as unknown as { CONFIG: { issuer: string; clientId: string } }).CONFIG;
const flow = new CodeFlow({ issuer, clientId, redirectUri: `${location.origin}/` });
const session = new Session({ issuer, tokens: flow });

@Component({
  selector: "app-root",
  template: `
    <main>
      <p data-testid="status">{{ tessera.status() }}</p>
      <p data-testid="roles">{{ tessera.roles().join(",") }}</p>
      <p data-testid="reason">{{ reason() }}</p>
      @if (editor()) { <span data-testid="editor-badge">editor</span> }
      @if (tessera.status() !== "signed-in") { <button data-testid="signin" (click)="signIn()">Sign in</button> }
    </main>
  `,
})
class App {
  readonly tessera = inject(TesseraService);
  readonly editor = this.tessera.hasRole("editor");
  reason(): string {
    const state = this.tessera.state();
    return state.status === "ended" ? state.reason : "";
  }
  signIn(): void {
    void flow.signIn();
  }
}

try {
  await flow.handleCallback();
} catch (e) {
  (window as unknown as { signInError: string }).signInError = String(e);
}
session.start();
await bootstrapApplication(App, { providers: [provideZonelessChangeDetection(), provideTessera(session)] });
