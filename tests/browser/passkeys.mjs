// Passkeys in Debian's Chromium with a CDP virtual authenticator (ctap2, internal transport,
// resident keys, user verification): one is added on tessera's account page, then signs in
// alone, then as the second step after a password; a replayed answer and a cloned
// authenticator (the same key with a lower sign counter) are refused.
// Started by tests/api/browser/passkeys.rs with one JSON argument:
// {base, chromium, userDataDir, shots: {account, login}, username, password,
//  plain: {clientId, redirectUri}, bank: {clientId, redirectUri}}
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { launch } from './chromium.mjs';

const args = JSON.parse(process.argv[2]);

const server = createServer((_, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>app</title><p>app</p>');
});
await new Promise((ok) => server.listen(Number(new URL(args.plain.redirectUri).port), ok));

function authorizeUrl(app, verifier) {
  const u = new URL('/authorize', args.base);
  const q = {
    response_type: 'code', client_id: app.clientId, redirect_uri: app.redirectUri,
    scope: 'openid', state: 'st', nonce: 'n-1', code_challenge_method: 'S256',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
  };
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  return u.toString();
}

async function addAuthenticator(cdp) {
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return authenticatorId;
}

const browser = await launch(args.chromium, args.userDataDir, { width: 900, height: 900 });
const out = {};
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  const cdp = await browser.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  let authenticator = await addAuthenticator(cdp);
  let answer = null;
  out.console = [];
  page.on('console', (m) => { if (m.type() === 'error') out.console.push(m.text()); });
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/login/passkey') answer = r.postData();
  });

  // 0. The login page, before any passkey: its passkey button (the screenshot).
  await page.goto(authorizeUrl(args.plain, 'unused-verifier-unused-verifier-unused-verifier'));
  await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor();
  await page.screenshot({ path: args.shots.login, fullPage: true });

  // 1. The account page: sign in with the password, add a passkey named Laptop.
  await page.goto(new URL('/account', args.base).toString());
  await page.getByLabel('Username').fill(args.username);
  await page.getByLabel('Password').fill(args.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('button', { name: 'Add a passkey' }).waitFor();
  out.inlineScripts = await page.locator('script:not([src])').count();
  await page.locator('#passkey-name').fill('Laptop');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByRole('button', { name: 'Remove Laptop' }).waitFor({ timeout: 15000 });
  out.listed = await page.locator('ul.items li strong').allTextContents();
  await page.screenshot({ path: args.shots.account, fullPage: true });
  out.registered = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: authenticator })).credentials.length;

  // 2. Signed out: the passkey alone signs in to an app. First through the browser's
  // autofill (conditional mediation, which the virtual authenticator answers at once)...
  await browser.clearCookies();
  const verifier0 = randomBytes(32).toString('base64url');
  await page.goto(authorizeUrl(args.plain, verifier0));
  await page.waitForURL((x) => x.toString().startsWith(args.plain.redirectUri), { timeout: 15000 });
  out.autofill = { code: new URL(page.url()).searchParams.get('code'), verifier: verifier0 };

  // ... then, autofill off, with the button.
  await page.addInitScript(() => {
    if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });
  await browser.clearCookies();
  const verifier = randomBytes(32).toString('base64url');
  await page.goto(authorizeUrl(args.plain, verifier));
  const button = page.getByRole('button', { name: 'Sign in with a passkey' });
  await button.waitFor();
  await Promise.all([
    page.waitForURL((x) => x.toString().startsWith(args.plain.redirectUri), { timeout: 15000 }),
    button.click(),
  ]);
  out.alone = { code: new URL(page.url()).searchParams.get('code'), verifier };

  // 3. The same answer again: its challenge was spent.
  const replay = await page.request.post(new URL('/login/passkey', args.base).toString(), {
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(args.base).origin },
    data: answer,
    maxRedirects: 0,
  });
  out.replay = { status: replay.status(), text: await replay.text() };

  // 4. An app that requires a second factor: the password, then the passkey.
  await browser.clearCookies();
  const verifier2 = randomBytes(32).toString('base64url');
  await page.goto(authorizeUrl(args.bank, verifier2));
  await page.getByLabel('Username').fill(args.username);
  await page.getByLabel('Password').fill(args.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByLabel('Code').waitFor();
  await Promise.all([
    page.waitForURL((x) => x.toString().startsWith(args.bank.redirectUri), { timeout: 15000 }),
    page.getByRole('button', { name: 'Use a passkey' }).click(),
  ]);
  out.second = { code: new URL(page.url()).searchParams.get('code'), verifier: verifier2 };

  // 5. A clone: the same key on a second authenticator whose counter is behind.
  const [cred] = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: authenticator })).credentials;
  out.signCount = cred.signCount;
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: authenticator });
  authenticator = await addAuthenticator(cdp);
  await cdp.send('WebAuthn.addCredential', {
    authenticatorId: authenticator,
    credential: { ...cred, signCount: 1 },
  });
  await browser.clearCookies();
  await page.goto(authorizeUrl(args.plain, randomBytes(32).toString('base64url')));
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.locator('p.error').first().waitFor({ timeout: 15000 });
  out.cloned = { url: page.url(), text: await page.locator('p.error').first().textContent() };
} catch (e) {
  out.error = String(e && e.stack || e);
  const page = browser.pages()[0];
  if (page) out.page = { url: page.url(), text: (await page.locator('main').textContent().catch(() => '')).slice(0, 600) };
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(out));
