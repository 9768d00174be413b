// What the browser tests share: an app bundled by esbuild from test/apps/ (importing the
/* global MutationObserver */
// BUILT package, as a user's bundler would), served on a loopback port, a public client for
// it at tessera, Debian's Chromium through playwright-core, the sign-in through tessera's
// login page, and a role change measured from the CLI's exit to the page's update.
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";
import { freePort, startTessera } from "../../../test/tessera.mjs";

const here = dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** node:test's `skip` for browser tests: a reason without Chromium, unless it is required. */
export const skipWithoutBrowser =
  existsSync(CHROMIUM) || process.env.TESSERA_REQUIRE_BROWSER === "1" ? false : `no Chromium at ${CHROMIUM}`;

/** Bundles test/apps/NAME into one ES module (a string). */
export async function bundle(name) {
  const out = await esbuild.build({
    entryPoints: [join(here, "..", "apps", name)],
    bundle: true,
    write: false,
    format: "esm",
    target: "es2022",
    jsx: "automatic",
    logLevel: "error",
    define: { "process.env.NODE_ENV": '"production"' },
    // Angular's decorators, compiled JIT in the page.
    tsconfigRaw: { compilerOptions: { experimentalDecorators: true, useDefineForClassFields: false } },
  });
  return out.outputFiles[0].text;
}

/** Serves one page with the bundle at /app.js and `window.CONFIG`; resolves { origin, close }. */
export async function serveApp(js, config, { rootTag = '<div id="root"></div>' } = {}) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>app</title>
<link rel="icon" href="data:,"><script>window.CONFIG = ${JSON.stringify(config)};</script></head>
<body>${rootTag}<script type="module" src="/app.js"></script></body></html>`;
  const server = createServer((req, res) => {
    const path = new URL(req.url, origin).pathname;
    if (path === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    } else if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return { origin, close: () => new Promise((ok) => server.close(ok)) };
}

/**
 * tessera with `policy`, a user `alice` (viewer, editor), the app `name` bundled, served and
 * registered as a public client, and Chromium on it: everything a scenario needs, and `close`.
 */
export async function setUp(name, policy, { rootTag, config = {} } = {}) {
  const t = await startTessera({ env: { TESSERA_PERMISSION_CHANGE_POLICY: policy } });
  const closers = [() => t.close()];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  try {
    const password = t.addUser("alice", ["viewer", "editor"]);
    const js = await bundle(name);
    const app = await serveApp(js, { issuer: t.issuer, clientId: "app", ...config }, rootTag ? { rootTag } : {});
    closers.push(app.close);
    t.addClient("app", ["--public", "--grant", "authorization_code", "--redirect-uri", `${app.origin}/`,
      "--origin", app.origin, "--scope", "openid"]);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    closers.push(() => browser.close());
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    return { t, app, page, errors, password, close };
  } catch (e) {
    await close();
    throw e;
  }
}

export const text = (page, id) => page.getByTestId(id).textContent();

/** Opens the app, signs in through tessera's login page, waits until the app is signed in. */
export async function signIn(page, origin, username, password) {
  await page.goto(`${origin}/`);
  await page.getByTestId("signin").click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForFunction(
    () => document.querySelector("[data-testid=status]")?.textContent === "signed-in" || window.signInError,
    null, { timeout: 15_000 });
  const error = await page.evaluate(() => window.signInError ?? null);
  if (error) throw new Error(`sign-in failed in the page: ${error}`);
}

/**
 * Runs `change()` (a CLI command) and waits until `done(arg)` holds in the page; returns the
 * milliseconds to the first change of the roles or status in the DOM (a MutationObserver's
 * clock, the same machine's) from the command's exit and from its start (the command commits
 * before it exits, so the first can be a little negative).
 */
export async function timeChange(page, change, done, arg) {
  await page.evaluate(() => {
    window.changedAt = null;
    const seen = () => {
      window.changedAt ??= Date.now();
    };
    for (const id of ["roles", "status"]) {
      new MutationObserver(seen).observe(document.querySelector(`[data-testid=${id}]`),
        { childList: true, characterData: true, subtree: true });
    }
  });
  const started = Date.now();
  change();
  const exited = Date.now();
  // A generous bound so a loaded machine does not fail the test; the figure is printed.
  await page.waitForFunction(done, arg, { timeout: 5_000, polling: "raf" });
  const changedAt = await page.evaluate(() => window.changedAt);
  return { afterExit: changedAt - exited, afterStart: changedAt - started };
}

/**
 * The scenario every app runs: sign in, change the roles with the CLI, see the page follow;
 * then `more(s)` if given, then everything is closed.
 */
export async function roleChangeFollowed(tc, name, policy, assert, { more, ...options } = {}) {
  const s = await setUp(name, policy, options);
  try {
    await signIn(s.page, s.app.origin, "alice", s.password);
    assert.equal(await text(s.page, "roles"), "viewer,editor");
    const { afterExit, afterStart } = await timeChange(s.page, () => s.t.setRoles("alice", ["viewer"]),
      policy === "revoke"
        ? () => document.querySelector("[data-testid=status]").textContent === "ended"
        : () => document.querySelector("[data-testid=roles]").textContent === "viewer");
    tc.diagnostic(`${name}, policy ${policy}: \`tessera user roles\` exited → page updated in ${afterExit} ms (${afterStart} ms from its start)`);
    if (policy === "revoke") {
      assert.equal(await text(s.page, "roles"), "");
      assert.match(await text(s.page, "reason"), /roles changed/);
      assert.equal(await s.page.getByTestId("signin").isVisible(), true);
    } else {
      assert.equal(await text(s.page, "status"), "signed-in");
      assert.equal(await s.page.getByTestId("editor-badge").count(), 0);
    }
    if (more) await more(s);
    assert.deepEqual(s.errors, []);
    return afterExit;
  } catch (e) {
    throw new Error(`${e.message}\n--- tessera log ---\n${s.t.tail()}`, { cause: e });
  } finally {
    await s.close();
  }
}
