// The operator's console in Debian's Chromium: sign-in through tessera's login page, a user
// found by search among many, a role change (the user's sessions revoked, the change reaching
// the feed's subscribers), the keys pages, a forged cross-site form, and an admin demoted in
// another tab refused on the next action. Reports what happened as JSON on stdout. Started by
// tests/api/browser/console.rs with one JSON argument:
// {base, chromium, userDataDir, shots, admin: {username, password}, target, prefix, forgedPort}
import { createServer } from 'node:http';
import { launch } from './chromium.mjs';

const args = JSON.parse(process.argv[2]);
const out = {};
const servers = [];
const shot = (page, name, fullPage = true) => page.screenshot({ path: `${args.shots}/${name}.png`, fullPage });

const browser = await launch(args.chromium, args.userDataDir, { width: 1200, height: 800 });
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  const cspErrors = [];
  page.on('console', (m) => { if (/Content.Security.Policy|Refused/i.test(m.text())) cspErrors.push(m.text()); });

  // 1. Sign in: /console → tessera's login page → back to the console's users.
  await page.goto(new URL('/console', args.base).toString());
  out.loginTitle = await page.title();
  await page.getByLabel('Username').fill(args.admin.username);
  await page.getByLabel('Password').fill(args.admin.password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/console/users', { timeout: 15000 }),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  out.signedInAs = await page.locator('nav .who strong').textContent();
  out.usersOnFirstPage = await page.locator('tbody tr').count();
  out.scripts = await page.locator('script').count();
  await shot(page, 'console-users', false);

  // 2. Find the user by a username prefix among many, open their page.
  await page.getByLabel('Username starts with').fill(args.prefix);
  await Promise.all([page.waitForURL(/q=/), page.getByRole('button', { name: 'Search' }).click()]);
  out.searchRows = await page.locator('tbody tr').count();
  await page.getByRole('link', { name: args.target, exact: true }).click();
  await page.waitForURL(/\/console\/users\/[0-9a-f-]{36}$/);
  const userUrl = page.url();
  out.sessionsBefore = await page.getByRole('button', { name: /^Revoke session / }).count();
  await shot(page, 'console-user');

  // 3. Change their roles: the sessions are revoked, the change reaches the subscribers.
  await page.getByLabel('Roles (comma-separated)').fill('viewer, auditor');
  await Promise.all([page.waitForURL(/done=roles/), page.getByRole('button', { name: 'Save roles' }).click()]);
  out.notice = await page.getByRole('status').textContent();
  out.sessionsAfter = await page.getByRole('button', { name: /^Revoke session / }).count();
  out.noLiveSession = await page.getByText('No live session.').count();
  out.newestEventOfUser = await page.locator('tr.event td:nth-child(2)').allTextContents();
  await page.goto(new URL('/console/reach', args.base).toString());
  // The page reloads itself every two seconds (meta refresh) until every subscriber has it.
  const started = Date.now();
  for (;;) {
    const rows = await page.locator('tr.subscriber').count();
    const reached = await page.locator('tr.subscriber .badge.ok').count();
    if (rows > 0 && rows === reached) break;
    if (Date.now() - started > 15000) throw new Error(`the change never reached the subscribers (${reached}/${rows})`);
    await page.waitForEvent('load', { timeout: 5000 }).catch(() => {});
  }
  out.reachNewest = await page.locator('#newest').textContent();
  out.reachSubscribers = await page.locator('tr.subscriber td:first-child').allTextContents();
  await shot(page, 'console-reach');

  // The change is in the audit trail, made through the console.
  await page.getByRole('link', { name: 'Audit trail' }).click();
  out.auditFirst = await page.locator('tr.entry').first().locator('td').allTextContents();
  await shot(page, 'console-audit', false);
  await page.getByRole('link', { name: 'Clients' }).click();
  out.clientFields = await page.locator('form input:not([type=hidden])').count();
  out.unlabelled = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden])')]
    .filter((i) => !(i.labels && i.labels.length)).map((i) => i.name));
  await shot(page, 'console-clients');
  // Rotate a client's secret: the new one is shown once.
  await page.getByRole('link', { name: args.client, exact: true }).click();
  await page.getByRole('button', { name: `Rotate the secret of ${args.client}` }).click();
  out.newSecret = (await page.locator('#secret').textContent()).trim();
  out.secretNotice = await page.getByRole('status').textContent();
  await shot(page, 'console-secret');

  // 4. The keys, and the emergency revocation's confirmation (not confirmed).
  await page.getByRole('link', { name: 'Signing keys' }).click();
  out.keyRows = await page.locator('tbody tr').count();
  await shot(page, 'console-keys');
  await page.getByRole('link', { name: /revoke the active key/ }).click();
  out.revokeButton = await page.getByRole('button', { name: 'Revoke the active key now' }).count();
  await shot(page, 'console-revoke');

  // 5. A page on another origin posts a form to the console: refused.
  const forged = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>evil</title>
      <form method="post" action="${userUrl}/roles">
        <input type="hidden" name="roles" value="admin"><button type="submit">Win a prize</button>
      </form>`);
  });
  await new Promise((ok) => forged.listen(args.forgedPort, ok));
  servers.push(forged);
  await page.goto(`http://localhost:${args.forgedPort}/`);
  const [forgedResp] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/roles')),
    page.getByRole('button', { name: 'Win a prize' }).click(),
  ]);
  out.forgedStatus = forgedResp.status();
  out.forgedText = await page.locator('h1').textContent();

  // 6. Another tab removes the admin's own role; the first tab's next action is refused.
  await page.goto(userUrl);
  const other = await browser.newPage();
  await other.goto(new URL('/console/users?q=' + encodeURIComponent(args.admin.username), args.base).toString());
  await other.getByRole('link', { name: args.admin.username, exact: true }).click();
  await other.waitForURL(/\/console\/users\/[0-9a-f-]{36}$/);
  await other.getByLabel('Roles (comma-separated)').fill('viewer');
  await other.getByRole('button', { name: 'Save roles' }).click();
  await other.waitForLoadState();
  await page.getByLabel('Roles (comma-separated)').fill('admin');
  await page.getByRole('button', { name: 'Save roles' }).click();
  await page.waitForLoadState();
  out.afterDemotionUrl = new URL(page.url()).pathname;
  // Sent to sign in (the role change ended the console's session); signing in again: 403.
  if (await page.getByLabel('Password').count()) {
    await page.getByLabel('Username').fill(args.admin.username);
    await page.getByLabel('Password').fill(args.admin.password);
    const [resp] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/console/users'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    out.signInAgainStatus = resp.status();
  }
  out.afterDemotionText = await page.locator('main').textContent();
  out.cspErrors = cspErrors;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
  for (const s of servers) s.close();
}
console.log(JSON.stringify(out));
