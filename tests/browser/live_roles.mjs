// Drives the live-roles demo (examples/live-roles/run.sh) in Debian's Chromium: signs in
// through tessera's login page, reads the roles, changes them with `tessera user roles`
// against the demo's database and measures how long the page takes to show it, then calls
// both APIs (Rust on tessera-verify, Express on @tessera/verify); reports JSON on stdout.
// Started by tests/api/browser/live_roles.rs with one JSON argument:
// {chromium, userDataDir, demo: <run.sh's JSON line>, tessera, policy, setRoles, before, after}
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { launch } from './chromium.mjs';

const args = JSON.parse(process.argv[2]);
const { demo } = args;
const out = {};
const browser = await launch(args.chromium, args.userDataDir, { width: 900, height: 640 });
let errors = [];
const consoleErrors = [];
const text = (page, id) => page.getByTestId(id).textContent();
try {
  const page = browser.pages()[0] ?? await browser.newPage();

  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/favicon/.test(m.location().url)) consoleErrors.push(`${m.text()} (${m.location().url})`);
  });

  // The page's event polls pass through here; `holdEvents` drops their answers (the page
  // then misses a change, and its token goes stale at the API).
  let holdEvents = false;
  await page.route((u) => u.origin === demo.issuer && u.pathname === '/events', async (route) => {
    const response = await route.fetch().catch(() => null);
    if (response && !holdEvents) await route.fulfill({ response }).catch(() => {});
  });
  await page.goto(demo.app);
  await page.getByTestId('signin').click();
  await page.getByLabel('Username').fill(demo.username);
  await page.getByLabel('Password').fill(demo.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid=status]').textContent === 'signed in',
    null, { timeout: 15000 });
  out.user = await text(page, 'user');
  out.rolesBefore = await text(page, 'roles');
  await page.getByTestId('call-role').click();
  await page.waitForFunction(() => /→ \d/.test(document.querySelector('[data-testid=api-result]').textContent));
  out.roleCallBefore = await text(page, 'api-result');
  await page.getByTestId('call-express').click();
  await page.waitForFunction(() => /GET \/roles\/\S+ → \d/.test(document.querySelector('[data-testid=api-result]').textContent));
  out.expressCallBefore = await text(page, 'api-result');
  await page.screenshot({ path: args.before });

  // Record in the page when the roles or the status change, then change them.
  await page.evaluate(() => {
    window.changedAt = null;
    const seen = () => { window.changedAt ??= Date.now(); };
    for (const id of ['roles', 'status']) {
      new MutationObserver(seen).observe(document.querySelector(`[data-testid=${id}]`),
        { childList: true, characterData: true, subtree: true });
    }
  });
  const started = Date.now();
  await promisify(execFile)(args.tessera, ['user', 'roles', demo.username, '--set', args.setRoles], {
    env: { ...process.env, DATABASE_URL: demo.database_url, TESSERA_KEYS_DIR: demo.keys_dir },
  });
  const committed = Date.now();
  const done = args.policy === 'revoke'
    ? () => document.querySelector('[data-testid=status]').textContent.startsWith('session ended')
    : (roles) => document.querySelector('[data-testid=roles]').textContent === roles;
  await page.waitForFunction(done, args.setRoles, { timeout: 5000, polling: 'raf' });
  const changedAt = await page.evaluate(() => window.changedAt);
  out.cliMs = committed - started;
  out.latencyMs = changedAt - committed;
  out.fromCliStartMs = changedAt - started;
  out.rolesAfter = await text(page, 'roles');
  out.statusAfter = await text(page, 'status');
  out.signinVisible = await page.getByTestId('signin').isVisible();
  const row = page.locator('[data-testid=changes] tr').first();
  await row.waitFor();
  out.change = {
    cells: await row.locator('td').allTextContents(),
    fromChangeMs: Number(await row.getAttribute('data-from-change-ms')),
    fromArrivalMs: Number(await row.getAttribute('data-from-arrival-ms')),
  };
  if (args.policy !== 'revoke') {
    await page.getByTestId('call-open').click();
    await page.waitForFunction(() => /GET \/whoami →/.test(document.querySelector('[data-testid=api-result]').textContent));
    out.openCallAfter = await text(page, 'api-result');
    await page.getByTestId('call-role').click();
    await page.waitForFunction(() => /GET \/publish →/.test(document.querySelector('[data-testid=api-result]').textContent));
    out.roleCallAfter = await text(page, 'api-result');
    await page.getByTestId('call-express').click();
    await page.waitForFunction(() => /GET \/roles\/\S+ →/.test(document.querySelector('[data-testid=api-result]').textContent));
    out.expressCallAfter = await text(page, 'api-result');
  }
  await page.screenshot({ path: args.after });
  if (args.policy !== 'revoke') {
    // The "401 → refresh" path: a change the page does not hear of.
    holdEvents = true;
    const lastSeen = async () => (await (await fetch(`${demo.api}/readyz`)).json()).last_event_id ?? 0;
    const seen = await lastSeen();
    await promisify(execFile)(args.tessera, ['user', 'roles', demo.username, '--set', out.rolesBefore], {
      env: { ...process.env, DATABASE_URL: demo.database_url, TESSERA_KEYS_DIR: demo.keys_dir },
    });
    // Until the API's verifier has the change (it follows the same feed).
    for (let i = 0; i < 500 && (await lastSeen()) <= seen; i++) await new Promise((ok) => setTimeout(ok, 10));
    out.rolesWhileHeld = await text(page, 'roles');
    await page.evaluate(() => { document.querySelector('[data-testid=api-result]').textContent = ''; });
    await page.getByTestId('call-role').click();
    await page.waitForFunction(() => /→/.test(document.querySelector('[data-testid=api-result]').textContent));
    out.retriedCall = await text(page, 'api-result');
    out.rolesAfterRetry = await text(page, 'roles');
  }
  out.errors = errors;
  out.consoleErrors = consoleErrors;
} catch (e) {
  out.error = String(e.stack ?? e);
  out.errors = errors;
  out.consoleErrors = consoleErrors;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
