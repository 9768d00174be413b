// The React test app: the package's own code flow, the state through useTessera().
/* global location */
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { CodeFlow, Session } from "@tessera/browser";
import { useTessera } from "@tessera/browser/react";

const { issuer, clientId, api } = window.CONFIG;
const flow = new CodeFlow({ issuer, clientId, redirectUri: `${location.origin}/` });
const session = new Session({ issuer, tokens: flow });
window.tessera = session; // for the test: fetch(), signOut()

function App() {
  const state = useTessera(session);
  const [result, setResult] = useState("");
  const call = async () => {
    const res = await session.fetch(`${api}/whoami`);
    setResult(`${res.status} ${await res.text()}`);
  };
  return (
    <main>
      <p data-testid="status">{state.status}</p>
      <p data-testid="roles">{state.roles.join(",")}</p>
      <p data-testid="reason">{state.status === "ended" ? state.reason : ""}</p>
      {state.roles.includes("editor") && <span data-testid="editor-badge">editor</span>}
      {state.status !== "signed-in" && <button data-testid="signin" onClick={() => flow.signIn()}>Sign in</button>}
      {state.status === "signed-in" && <button data-testid="call" onClick={call}>Call the API</button>}
      <pre data-testid="result">{result}</pre>
    </main>
  );
}

try {
  await flow.handleCallback();
} catch (e) {
  window.signInError = String(e);
}
session.start();
createRoot(document.getElementById("root")).render(<App />);
