// Signs in through tessera's login page in Debian's Chromium, as two apps on another
// origin would, and reports what happened as JSON on stdout. Started by
// tests/api/browser/sign_in.rs with one JSON argument:
// {base, chromium, userDataDir, screenshot, username, password, apps: [{clientId, redirectUri}]}
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { launch } from './chromium.mjs';

const servers = [];

const args = JSON.parse(process.argv[2]);
const b64url = (buf) => buf.toString('base64url');

function pkce() {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()) };
}

function authorizeUrl(app, p, state, extra = {}) {
  const u = new URL('/authorize', args.base);
  const q = {
    response_type: 'code', client_id: app.clientId, redirect_uri: app.redirectUri,
    scope: 'openid', state, code_challenge: p.challenge, code_challenge_method: 'S256',
    nonce: 'n-' + state, ...extra,
  };
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  return u.toString();
}

const browser = await launch(args.chromium, args.userDataDir, { width: 1100, height: 760 });
const out = { steps: [] };
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  // The apps: a page each on their own port of localhost (another site than tessera's 127.0.0.1).
  for (const app of args.apps) {
    const server = createServer((_, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>app</title><p>app</p>');
    });
    await new Promise((ok) => server.listen(Number(new URL(app.redirectUri).port), ok));
    servers.push(server);
  }
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error' && /Content.Security.Policy|Refused/i.test(m.text())) consoleErrors.push(m.text()); });

  // 1. The first app: the login page, signed in through the form.
  const [app1, app2] = args.apps;
  const p1 = pkce();
  const resp = await page.goto(authorizeUrl(app1, p1, 'state-one'));
  const headers = resp.headers();
  out.loginPage = {
    status: resp.status(),
    csp: headers['content-security-policy'] ?? null,
    referrerPolicy: headers['referrer-policy'] ?? null,
    title: await page.title(),
    usernameAutocomplete: await page.getByLabel('Username').getAttribute('autocomplete'),
    passwordAutocomplete: await page.getByLabel('Password').getAttribute('autocomplete'),
    buttons: await page.locator('button[type=submit]').count(),
    scripts: await page.locator('script').count(),
    stylesheetApplied: await page.evaluate(() => getComputedStyle(document.querySelector('main')).borderRadius),
  };
  await page.screenshot({ path: args.screenshot, fullPage: true });
  await page.getByLabel('Username').fill(args.username);
  await page.getByLabel('Password').fill(args.password);
  await Promise.all([
    page.waitForURL((u) => u.toString().startsWith(app1.redirectUri), { timeout: 15000 }),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const landed = new URL(page.url());
  out.first = {
    code: landed.searchParams.get('code'),
    state: landed.searchParams.get('state'),
    iss: landed.searchParams.get('iss'),
  };

  // 2. The app exchanges the code from its own origin (CORS), then reads /userinfo
  //    (a preflighted request: Authorization header) and follows its user's events
  //    with a long-poll (fetch + Authorization; EventSource cannot send the header).
  out.exchange = await page.evaluate(async ({ base, app, code, verifier }) => {
    const body = new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: app.redirectUri,
      code_verifier: verifier, client_id: app.clientId,
    });
    const t = await fetch(base + '/token', { method: 'POST', body });
    const tokens = await t.json();
    const auth = { Authorization: 'Bearer ' + tokens.access_token };
    const u = await fetch(base + '/userinfo', { headers: auth });
    const userinfo = await u.json();
    const e = await fetch(base + '/events?after=0&wait=0', { headers: { ...auth, Accept: 'application/json' } });
    const events = await e.json();
    return { tokenStatus: t.status, tokens, userinfoStatus: u.status, userinfo, eventsStatus: e.status, events };
  }, { base: args.base, app: app1, code: out.first.code, verifier: p1.verifier });

  // 3. The second app: the browser session signs the user in without a form.
  const p2 = pkce();
  let formShown = false;
  page.on('framenavigated', async (f) => { if (f.url().startsWith(args.base + '/authorize')) formShown = true; });
  await page.goto(authorizeUrl(app2, p2, 'state-two'));
  await page.waitForURL((u) => u.toString().startsWith(app2.redirectUri), { timeout: 15000 });
  const second = new URL(page.url());
  out.second = {
    code: second.searchParams.get('code'),
    state: second.searchParams.get('state'),
    verifier: p2.verifier,
    formShown,
  };

  // 4. prompt=login: the form again, even with a session.
  const p3 = pkce();
  const r3 = await page.goto(authorizeUrl(app2, p3, 'state-three', { prompt: 'login' }));
  out.promptLogin = {
    status: r3.status(),
    url: page.url(),
    passwordFields: await page.locator('input[type=password]').count(),
  };

  // 5. The first app signs the user out with a form it posts from its own site
  //    (RP-Initiated Logout §2). The SameSite=Lax session cookie stays behind on a
  //    cross-site POST, so tessera sends the browser on to the GET, which carries it.
  const bye = new URL('/bye', app1.redirectUri).toString();
  await page.goto(new URL('/', app1.redirectUri).toString());
  await Promise.all([
    page.waitForURL((u) => u.toString().startsWith(bye), { timeout: 15000 }),
    page.evaluate(({ base, fields }) => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = base + '/end_session';
      for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        form.appendChild(input);
      }
      document.body.appendChild(form);
      form.submit();
    }, {
      base: args.base,
      fields: {
        id_token_hint: out.exchange.tokens.id_token, client_id: app1.clientId,
        post_logout_redirect_uri: bye, state: 'state-bye',
      },
    }),
  ]);
  out.logout = { url: page.url() };
  // 6. Signed out: prompt=none gets login_required.
  const p4 = pkce();
  await page.goto(authorizeUrl(app1, p4, 'state-four', { prompt: 'none' }));
  await page.waitForURL((u) => u.toString().startsWith(app1.redirectUri), { timeout: 15000 });
  out.afterLogout = { error: new URL(page.url()).searchParams.get('error') };
  out.consoleErrors = consoleErrors;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
  for (const s of servers) s.close();
}
process.stdout.write(JSON.stringify(out));
