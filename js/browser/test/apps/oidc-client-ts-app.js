// The interop app: oidc-client-ts signs in (its own code flow, PKCE, refresh tokens) and
/* global location, history */
// @tessera/browser only follows the roles, through fromUserManager(). Plain DOM.
import { UserManager } from "oidc-client-ts";
import { Session, fromUserManager } from "@tessera/browser";

const { issuer, clientId } = window.CONFIG;
const manager = new UserManager({
  authority: issuer,
  client_id: clientId,
  redirect_uri: `${location.origin}/`,
  scope: "openid",
  automaticSilentRenew: false,
});
if (new URLSearchParams(location.search).has("code")) {
  try {
    await manager.signinRedirectCallback();
  } catch (e) {
    window.signInError = String(e);
  }
  history.replaceState(null, "", "/");
}
const session = new Session({ issuer, tokens: await fromUserManager(manager) }).start();

const root = document.getElementById("root");
root.innerHTML = `<main><p data-testid="status"></p><p data-testid="roles"></p><p data-testid="reason"></p>
  <button data-testid="signin">Sign in</button></main>`;
const $ = (id) => root.querySelector(`[data-testid=${id}]`);
$("signin").addEventListener("click", () => manager.signinRedirect());
function render(state) {
  $("status").textContent = state.status;
  $("roles").textContent = state.roles.join(",");
  $("reason").textContent = state.status === "ended" ? state.reason : "";
  $("signin").hidden = state.status === "signed-in";
}
session.subscribe(render);
render(session.state);
