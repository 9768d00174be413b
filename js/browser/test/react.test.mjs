// A React app (useTessera over the package's own code flow) signed in through tessera's login
/* global Event */
// page follows a role change made on the command line under both policies; under reissue it
// also follows across an issuer restart (resuming with `after`), pauses while the tab is
// hidden and catches up on return, retries an API call once after a 401 "roles changed", and
// signs out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { freePort } from "../../test/tessera.mjs";
import { roleChangeFollowed, skipWithoutBrowser, text } from "./support/browser.mjs";

/**
 * An API that answers 401 "roles changed: refresh" to the first token it sees at /whoami and
 * 200 to any other, and always 401 at /always-stale; it counts the calls.
 */
async function fakeApi() {
  const port = await freePort();
  const calls = { whoami: 0, stale: 0 };
  let first = null;
  const server = createServer((req, res) => {
    const cors = {
      "access-control-allow-origin": req.headers.origin ?? "*",
      "access-control-allow-headers": "authorization",
      "access-control-expose-headers": "www-authenticate",
    };
    if (req.method === "OPTIONS") return res.writeHead(204, cors).end();
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    const stale = () => res.writeHead(401, {
      ...cors,
      "www-authenticate": 'Bearer error="invalid_token", error_description="roles changed: refresh"',
    }).end();
    if (req.url === "/always-stale") {
      calls.stale += 1;
      return stale();
    }
    calls.whoami += 1;
    first ??= token;
    if (token === first) return stale();
    res.writeHead(200, { ...cors, "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${port}`, calls, close: () => new Promise((ok) => server.close(ok)) };
}

test("React: a role change shows in the page (policy reissue), across a restart, a hidden tab, a stale token",
  { skip: skipWithoutBrowser, timeout: 55_000 }, async (tc) => {
    const api = await fakeApi();
    try {
      await roleChangeFollowed(tc, "react-app.jsx", "reissue", assert, {
        config: { api: api.url },
        more: async ({ t, page }) => {
          const polls = [];
          const inFlight = new Set();
          const isPoll = (r) => r.url().startsWith(`${t.issuer}/events`) && r.method() === "GET";
          page.on("request", (r) => {
            if (!isPoll(r)) return;
            polls.push(new URL(r.url()).searchParams);
            inFlight.add(r);
          });
          for (const ended of ["requestfinished", "requestfailed"]) page.on(ended, (r) => inFlight.delete(r));

          // The issuer restarts: the page reconnects and resumes after the last event it saw.
          await t.restart();
          t.setRoles("alice", ["viewer", "editor"]);
          await page.waitForFunction(() => document.querySelector("[data-testid=roles]").textContent === "viewer,editor",
            null, { timeout: 20_000 });
          assert.ok(polls.some((p) => p.has("after")), "resumed with after=");
          assert.ok(!polls.some((p) => p.has("since")), "no catch-up from scratch after the restart");

          // Hidden: the poll in flight still delivers, then no new poll until visible again.
          await page.evaluate(() => {
            Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
            document.dispatchEvent(new Event("visibilitychange"));
          });
          t.setRoles("alice", ["viewer"]);
          await page.waitForFunction(() => document.querySelector("[data-testid=roles]").textContent === "viewer");
          await page.evaluate(() => fetch("/").then((r) => r.text())); // a round trip for the loop to move on
          assert.equal(inFlight.size, 0, "no poll while hidden");
          t.setRoles("alice", ["viewer", "auditor"]);
          await page.evaluate(() => {
            delete document.visibilityState;
            document.dispatchEvent(new Event("visibilitychange"));
          });
          await page.waitForFunction(() => document.querySelector("[data-testid=roles]").textContent === "viewer,auditor");

          // A 401 "roles changed": one refresh, one retry; a token still refused is not retried again.
          await page.getByTestId("call").click();
          await page.waitForFunction(() => document.querySelector("[data-testid=result]").textContent !== "");
          assert.equal(await text(page, "result"), '200 {"ok":true}');
          assert.equal(api.calls.whoami, 2);
          const status = await page.evaluate((u) => window.tessera.fetch(`${u}/always-stale`).then((r) => r.status), api.url);
          assert.equal(status, 401);
          assert.equal(api.calls.stale, 2);
          assert.equal(await text(page, "status"), "signed-in");

          // Sign-out: the session ends, the refresh token is revoked at tessera.
          await page.evaluate(() => window.tessera.signOut());
          assert.equal(await text(page, "status"), "ended");
          assert.equal(await text(page, "reason"), "signed out");
        },
      });
    } finally {
      await api.close();
    }
  });

test("React: a role change ends the session (policy revoke)", { skip: skipWithoutBrowser, timeout: 50_000 }, (tc) =>
  roleChangeFollowed(tc, "react-app.jsx", "revoke", assert));
