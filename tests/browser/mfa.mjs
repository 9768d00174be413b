// Adds an authenticator app on tessera's account page in Debian's Chromium, creates
// recovery codes, then signs in to an app that requires a second factor with one of them.
// TOTP codes are computed here with node:crypto (RFC 6238), independently of the server.
// Started by tests/api/browser/mfa.rs with one JSON argument:
// {base, chromium, userDataDir, shots: {account, enroll, codes, second}, username, password,
//  app: {clientId, redirectUri}}
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { launch } from './chromium.mjs';

const args = JSON.parse(process.argv[2]);

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(secret, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

const server = createServer((_, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>app</title><p>app</p>');
});
await new Promise((ok) => server.listen(Number(new URL(args.app.redirectUri).port), ok));

const browser = await launch(args.chromium, args.userDataDir, { width: 900, height: 900 });
const out = {};
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  // 1. The account page: sign in with the password.
  await page.goto(new URL('/account', args.base).toString());
  await page.getByLabel('Username').fill(args.username);
  await page.getByLabel('Password').fill(args.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Add an authenticator app' }).waitFor();
  out.scripts = await page.locator('script').count();

  // 2. Enrollment: the otpauth:// URI as text beside the QR code, a field labelled Code.
  await page.getByRole('button', { name: 'Add an authenticator app' }).click();
  const uri = await page.locator('code.uri').textContent();
  out.enroll = {
    uri,
    qr: await page.locator('svg.qr').count(),
    codeField: await page.getByLabel('Code').count(),
  };
  await page.screenshot({ path: args.shots.enroll, fullPage: true });
  const secret = new URL(uri).searchParams.get('secret');
  await page.getByLabel('Name').fill('Phone');
  await page.getByLabel('Code').fill(totp(secret, Date.now() / 1000));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByRole('button', { name: 'Create new recovery codes' }).waitFor();
  out.listed = await page.locator('ul.items li strong').allTextContents();
  await page.screenshot({ path: args.shots.account, fullPage: true });

  // 3. Recovery codes, shown once.
  await page.getByRole('button', { name: 'Create new recovery codes' }).click();
  const codes = await page.locator('ul.codes code').allTextContents();
  out.recoveryCodes = codes.length;
  await page.screenshot({ path: args.shots.codes, fullPage: true });

  // 4. Signed out, an app that requires a second factor: password, then the second step.
  await browser.clearCookies();
  const verifier = randomBytes(32).toString('base64url');
  const u = new URL('/authorize', args.base);
  const q = {
    response_type: 'code', client_id: args.app.clientId, redirect_uri: args.app.redirectUri,
    scope: 'openid', state: 'st', code_challenge_method: 'S256',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
  };
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  await page.goto(u.toString());
  await page.getByLabel('Username').fill(args.username);
  await page.getByLabel('Password').fill(args.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Code').waitFor();
  out.secondStep = { title: await page.title() };
  await page.screenshot({ path: args.shots.second, fullPage: true });
  await page.getByLabel('Code').fill(codes[0]);
  await Promise.all([
    page.waitForURL((x) => x.toString().startsWith(args.app.redirectUri), { timeout: 15000 }),
    page.getByRole('button', { name: 'Continue' }).click(),
  ]);
  out.code = new URL(page.url()).searchParams.get('code');
  out.verifier = verifier;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(out));
