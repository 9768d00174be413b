// The Session's feed logic in Node (no browser), against a real tessera: a token that expires
// during a long-poll, a refresh that cannot reach the issuer when a change arrives, API calls
// that need a refresh at the same time, sign-out.
// The token source here is the test's own, with no timed renewal, so the feed meets expiry.
import { test } from "node:test";
import { createServer } from "node:http";
import assert from "node:assert/strict";
import { Session } from "../dist/index.js";
import { startTessera } from "../../test/tessera.mjs";
import { signInByFetch } from "./support/sign-in.mjs";

const REDIRECT = "http://127.0.0.1:9/cb";

/** Tokens from a sign-in, refreshed only when asked; `failNext` makes one refresh throw. */
function tokenSource(t, answer) {
  const source = {
    access: answer.access_token,
    refreshToken: answer.refresh_token,
    refreshes: 0,
    failNext: false,
    accessToken: () => source.access,
    async refresh() {
      source.refreshes += 1;
      if (source.failNext) {
        source.failNext = false;
        throw new TypeError("fetch failed"); // what a network failure looks like
      }
      const { status, body } = await t.token({ grant_type: "refresh_token", client_id: "app", refresh_token: source.refreshToken });
      if (status !== 200) return (source.access = null);
      source.refreshToken = body.refresh_token;
      return (source.access = body.access_token);
    },
  };
  return source;
}

/** Polls `cond` every 20 ms until it holds; fails after `ms`. */
async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

async function setUp(env) {
  const t = await startTessera({ env: { TESSERA_PERMISSION_CHANGE_POLICY: "reissue", ...env } });
  const password = t.addUser("alice", ["viewer", "editor"]);
  t.addClient("app", ["--public", "--grant", "authorization_code", "--redirect-uri", REDIRECT]);
  const answer = await signInByFetch(t, { clientId: "app", redirectUri: REDIRECT, username: "alice", password });
  return { t, source: tokenSource(t, answer) };
}

test("a token that expires during a long-poll is refreshed and the feed goes on", { timeout: 40_000 }, async () => {
  const { t, source } = await setUp({ TESSERA_ACCESS_TOKEN_TTL: "2" });
  const session = new Session({ issuer: t.issuer, tokens: source, wait: 1 }).start();
  try {
    assert.deepEqual(session.roles, ["viewer", "editor"]);
    await until(() => source.refreshes >= 1, 10_000, "a refresh after the token expired");
    assert.equal(session.state.status, "signed-in");
    t.setRoles("alice", ["viewer"]);
    await until(() => session.roles.join() === "viewer", 5_000, "the new roles");
  } finally {
    session.stop();
    await t.close();
  }
});

test("a change whose refresh cannot reach the issuer is taken again, not lost", { timeout: 40_000 }, async () => {
  const { t, source } = await setUp();
  const events = [];
  const session = new Session({ issuer: t.issuer, tokens: source, onEvent: (e, info) => events.push([e.type, info.acted]) }).start();
  try {
    source.failNext = true;
    t.setRoles("alice", ["viewer"]);
    await until(() => session.roles.join() === "viewer", 10_000, "the new roles after a failed refresh");
    assert.equal(source.refreshes, 2, "one failed refresh, then one that passed");
    assert.deepEqual(events, [["user.roles_changed", true]], "the event reported once, when acted on");
    assert.equal(session.state.status, "signed-in");
  } finally {
    session.stop();
    await t.close();
  }
});

test("sign-out ends the session and stops the feed", { timeout: 40_000 }, async () => {
  const { t, source } = await setUp();
  const polls = { started: 0, open: 0 };
  const counting = async (input, init) => {
    polls.started += 1;
    polls.open += 1;
    try {
      return await fetch(input, init);
    } finally {
      polls.open -= 1;
    }
  };
  let forgotten = false;
  source.signOut = async () => {
    forgotten = true;
  };
  const seen = [];
  const session = new Session({ issuer: t.issuer, tokens: source, fetch: counting }).start();
  session.subscribe((s) => seen.push(s.status));
  try {
    await until(() => polls.open === 1, 5_000, "a poll waiting");
    await session.signOut();
    assert.deepEqual(session.state, { status: "ended", roles: [], reason: "signed out" });
    assert.deepEqual(seen, ["ended"]);
    assert.equal(forgotten, true, "the token source was told to forget");
    await until(() => polls.open === 0, 2_000, "the waiting poll aborted");
    const started = polls.started;
    t.setRoles("alice", ["viewer"]);
    await t.restart(); // the watcher has read the change; any poll would now return it
    assert.equal(polls.started, started, "no poll after sign-out");
  } finally {
    session.stop();
    await t.close();
  }
});

test("API calls refused at the same time share one refresh, and each is retried once", { timeout: 40_000 }, async () => {
  const { t, source } = await setUp();
  const first = source.access;
  const seen = [];
  // 401 "roles changed: refresh" for the sign-in's token, 200 for any other.
  const api = createServer((req, res) => {
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    seen.push(token === first ? "old" : "new");
    if (token === first) {
      res.writeHead(401, { "www-authenticate": 'Bearer error="invalid_token", error_description="roles changed: refresh"' }).end();
    } else {
      res.writeHead(200).end("ok");
    }
  });
  await new Promise((ok) => api.listen(0, "127.0.0.1", ok));
  const url = `http://127.0.0.1:${api.address().port}/x`;
  const session = new Session({ issuer: t.issuer, tokens: source }).start();
  try {
    const answers = await Promise.all([session.fetch(url), session.fetch(url), session.fetch(url)]);
    assert.deepEqual(answers.map((r) => r.status), [200, 200, 200]);
    assert.equal(source.refreshes, 1, "one refresh for three refused calls");
    assert.deepEqual(seen.sort(), ["new", "new", "new", "old", "old", "old"]);
  } finally {
    session.stop();
    await new Promise((ok) => api.close(ok));
    await t.close();
  }
});
