// The live-roles app: signs in with the authorization code flow and PKCE, keeps its tokens
// in memory, follows its own user's events (fetch long-poll: EventSource cannot send
// Authorization) and refreshes the moment its roles change. No build step, no dependency.
const cfg = await (await fetch('/config.json')).json();
const $ = (id) => document.getElementById(id);

/** The signed-in state, in memory only: {access, refresh, claims}; null when signed out. */
let tokens = null;
let username = '-';
let refreshTimer = null;
let refreshing = null;
/** Bumped to stop the event loop of a session that ended. */
let feedGeneration = 0;

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
const claimsOf = (jwt) => JSON.parse(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

function render(status) {
  $('status').textContent = status;
  $('user').textContent = tokens ? username : '-';
  $('roles').textContent = tokens ? (tokens.claims.roles ?? []).join(',') : '';
  $('expires').textContent = tokens ? new Date(tokens.claims.exp * 1000).toLocaleTimeString() : '-';
  $('signin').hidden = tokens !== null;
  $('call-open').disabled = $('call-role').disabled = tokens === null;
  $('call-role').textContent = `GET /publish (needs ${cfg.role})`;
}

async function signIn() {
  const verifier = random();
  const state = random();
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem('pkce', JSON.stringify({ verifier, state }));
  const u = new URL('/authorize', cfg.issuer);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: cfg.clientId, redirect_uri: cfg.redirectUri, scope: 'openid',
    state, nonce: random(), code_challenge: challenge, code_challenge_method: 'S256',
  })) u.searchParams.set(k, v);
  location.assign(u);
}

/** POST /token; returns the JSON answer, or null (with the error shown) when refused. */
async function token(params) {
  const r = await fetch(new URL('/token', cfg.issuer), {
    method: 'POST', body: new URLSearchParams({ client_id: cfg.clientId, ...params }),
  });
  const body = await r.json().catch(() => ({}));
  return r.ok ? body : { refused: body.error ?? String(r.status), description: body.error_description };
}

function keep(answer) {
  tokens = { access: answer.access_token, refresh: answer.refresh_token, claims: claimsOf(answer.access_token) };
  clearTimeout(refreshTimer);
  // Refresh before expiry: a quarter of the lifetime early, at most 30 s.
  const ttl = answer.expires_in ?? 300;
  refreshTimer = setTimeout(refresh, Math.max(1, ttl - Math.min(30, ttl / 4)) * 1000);
}

/** Refreshes once (concurrent callers share it); false when the session has ended. */
function refresh(why = 'the refresh token was refused') {
  refreshing ??= (async () => {
    if (!tokens) return false;
    const answer = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh });
    if (answer.refused) {
      ended(`${why} (${answer.refused})`);
      return false;
    }
    keep(answer);
    render('signed in');
    return true;
  })().finally(() => { refreshing = null; });
  return refreshing;
}

function ended(why) {
  tokens = null;
  clearTimeout(refreshTimer);
  feedGeneration += 1;
  $('api-result').textContent = '';
  render(`session ended: ${why}. Sign in again.`);
}

function record(event, roles, arrived) {
  const now = Date.now();
  const tr = document.createElement('tr');
  const fromChange = now - Date.parse(event.at);
  const fromArrival = Math.round(performance.now() - arrived);
  tr.dataset.fromChangeMs = fromChange;
  tr.dataset.fromArrivalMs = fromArrival;
  for (const text of [event.type, event.at, roles, `${fromChange} ms`, `${fromArrival} ms`]) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  $('changes').prepend(tr);
}

async function onEvent(event) {
  const arrived = performance.now();
  if (!tokens || event.sub !== tokens.claims.sub) return;
  if (event.type === 'session.revoked') {
    if (event.sid !== tokens.claims.sid) return;
    ended(`session revoked (${event.reason})`);
    record(event, '(session ended)', arrived);
  } else if (['user.roles_changed', 'user.disabled', 'user.password_changed'].includes(event.type)) {
    if (event.ver !== null && event.ver <= tokens.claims.ver) return; // already seen by a refresh
    const ok = await refresh(`${event.type.replace('user.', '').replace('_', ' ')}: the session was revoked`);
    record(event, ok ? tokens.claims.roles.join(',') : '(session ended)', arrived);
  }
}

/** Follows the user's own events: GET /events long-poll, resuming after the last id. */
async function follow(generation) {
  let after = null;
  while (generation === feedGeneration && tokens) {
    const u = new URL('/events', cfg.issuer);
    u.searchParams.set('wait', '25');
    // Start from the token's issue time (whole seconds), so a change made before the first
    // poll is not missed; events older than the token carry a `ver` it already has.
    if (after === null) u.searchParams.set('since', tokens.claims.iat);
    else u.searchParams.set('after', after);
    let r;
    try {
      r = await fetch(u, { headers: { Authorization: `Bearer ${tokens.access}`, Accept: 'application/json' } });
    } catch {
      await sleep(1000);
      continue;
    }
    if (generation !== feedGeneration) return;
    if (r.status === 401) {
      if (!(await refresh())) return;
      continue;
    }
    const body = await r.json().catch(() => ({}));
    if (r.status === 410) {
      after = body.next_after;
      continue;
    }
    if (!r.ok) {
      await sleep(1000);
      continue;
    }
    after = body.next_after;
    for (const event of body.events) await onEvent(event);
  }
}

/** Calls the API; on a 401 "roles changed" it refreshes once and retries. */
async function callApi(path, retried = false) {
  if (!tokens) return;
  const r = await fetch(cfg.api + path, { headers: { Authorization: `Bearer ${tokens.access}` } });
  const body = await r.json().catch(() => ({}));
  const why = body.error_description ?? '';
  if (r.status === 401 && /roles changed/.test(why) && !retried && (await refresh())) {
    return callApi(path, true);
  }
  if (r.status === 401 && /session revoked|user disabled/.test(why)) ended(why);
  const detail = body.error ? `${body.error}: ${why}` : (body.message ?? '');
  $('api-result').textContent = `GET ${path} → ${r.status} ${detail}${retried ? ' (after one refresh)' : ''}`;
  $('api-result').className = r.ok ? 'ok' : 'bad';
}

$('signin').addEventListener('click', signIn);
$('call-open').addEventListener('click', () => callApi('/whoami'));
$('call-role').addEventListener('click', () => callApi('/publish'));

const params = new URLSearchParams(location.search);
const pending = JSON.parse(sessionStorage.getItem('pkce') ?? 'null');
sessionStorage.removeItem('pkce');
history.replaceState(null, '', '/');
if (params.get('error')) {
  render(`sign-in failed: ${params.get('error')}`);
} else if (params.get('code') && pending && params.get('state') === pending.state) {
  render('signing in');
  const answer = await token({
    grant_type: 'authorization_code', code: params.get('code'), redirect_uri: cfg.redirectUri,
    code_verifier: pending.verifier,
  });
  if (answer.refused) {
    render(`sign-in failed: ${answer.refused}`);
  } else {
    keep(answer);
    username = answer.id_token ? (claimsOf(answer.id_token).preferred_username ?? null) : null;
    if (!username) {
      const me = await fetch(new URL('/userinfo', cfg.issuer), { headers: { Authorization: `Bearer ${tokens.access}` } });
      username = me.ok ? (await me.json()).preferred_username : tokens.claims.sub;
    }
    render('signed in');
    follow(feedGeneration);
  }
} else {
  render('signed out');
}
