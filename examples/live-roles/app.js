// The live-roles app on @tessera/browser: CodeFlow signs in (code flow + PKCE, tokens in
// memory, refreshed before expiry), Session follows the user's own events and refreshes the
// moment the roles change (or reports the session ended), session.fetch() retries once after
// a 401 "roles changed". run.sh bundles this file with the package (esbuild; no CDN) and
// gives it the Express API's URL as EXPRESS_API.
import { CodeFlow, Session, decodeClaims } from '@tessera/browser';

/* global EXPRESS_API */
const cfg = await (await fetch('/config.json')).json();
const apis = { rust: cfg.api, express: EXPRESS_API };
const $ = (id) => document.getElementById(id);

const flow = new CodeFlow({ issuer: cfg.issuer, clientId: cfg.clientId, redirectUri: cfg.redirectUri });
const session = new Session({ issuer: cfg.issuer, tokens: flow, onEvent: record });
let username = '-';

function render(state) {
  const signedIn = state.status === 'signed-in';
  $('status').textContent = signedIn ? 'signed in'
    : state.status === 'ended' ? `session ended: ${state.reason}. Sign in again.` : 'signed out';
  $('user').textContent = signedIn ? username : '-';
  $('roles').textContent = state.roles.join(',');
  $('expires').textContent = signedIn ? new Date(state.claims.exp * 1000).toLocaleTimeString() : '-';
  $('signin').hidden = signedIn;
  for (const id of ['call-open', 'call-role', 'call-express']) $(id).disabled = !signedIn;
  $('call-role').textContent = `Rust API: GET /publish (needs ${cfg.role})`;
  $('call-express').textContent = `Express API: GET /roles/${cfg.role}`;
  if (!signedIn) $('api-result').textContent = '';
}

/** A row per event the session acted on: "change → UI" from the event's `at`, "arrival → UI". */
function record(event, { acted, arrivedAt }) {
  if (!acted) return;
  const state = session.state;
  const roles = state.status === 'signed-in' ? state.roles.join(',') : '(session ended)';
  const fromChange = Date.now() - Date.parse(event.at);
  const fromArrival = Math.round(performance.now() - arrivedAt);
  const tr = document.createElement('tr');
  tr.dataset.fromChangeMs = fromChange;
  tr.dataset.fromArrivalMs = fromArrival;
  for (const text of [event.type, event.at, roles, `${fromChange} ms`, `${fromArrival} ms`]) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  $('changes').prepend(tr);
}

/** Calls an API through session.fetch (one refresh and retry after a 401 "roles changed"). */
async function callApi(api, path) {
  const before = flow.accessToken();
  const r = await session.fetch(apis[api] + path);
  const retried = flow.accessToken() !== before && r.ok;
  const body = await r.json().catch(() => ({}));
  const detail = body.error ? `${body.error}: ${body.error_description ?? ''}`
    : (body.message ?? (body.role ? `you hold ${body.role}` : ''));
  $('api-result').textContent = `GET ${path} → ${r.status} ${detail}${retried ? ' (after one refresh)' : ''}`;
  $('api-result').className = r.ok ? 'ok' : 'bad';
}

$('signin').addEventListener('click', () => flow.signIn());
$('call-open').addEventListener('click', () => callApi('rust', '/whoami'));
$('call-role').addEventListener('click', () => callApi('rust', '/publish'));
$('call-express').addEventListener('click', () => callApi('express', `/roles/${cfg.role}`));

session.subscribe(render);
render(session.state);
try {
  if (await flow.handleCallback()) {
    $('status').textContent = 'signing in';
    const id = flow.idToken();
    username = id ? decodeClaims(id).preferred_username : undefined;
    if (!username) {
      const me = await fetch(new URL('/userinfo', cfg.issuer), { headers: { Authorization: `Bearer ${flow.accessToken()}` } });
      username = me.ok ? (await me.json()).preferred_username : decodeClaims(flow.accessToken()).sub;
    }
  }
} catch (e) {
  $('status').textContent = `sign-in failed: ${e.error ?? e}`;
}
session.start();
