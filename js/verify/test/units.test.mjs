// The pieces without an issuer: RFC 6750 answers, the bearer header, the SSE parser, the
// freshness state and its bounds, Cache-Control max-age, the reconnect backoff, the deadline
// on a stream request's answer (over an issuer that is a fetch function).
import { test } from "node:test";
import { setImmediate as turn } from "node:timers/promises";
import { ReadableStream } from "node:stream/web";
import assert from "node:assert/strict";
import { Rejection, bearer, requireAmr } from "../dist/index.js";
import { SseParser } from "../dist/sse.js";
import { Freshness } from "../dist/state.js";
import { maxAge } from "../dist/jwks.js";
import { backoff } from "../dist/feed.js";

test("answers follow RFC 6750 with the Rust crate's wording", () => {
  assert.equal(Rejection.missing().wwwAuthenticate("api"), 'Bearer realm="api"');
  assert.equal(Rejection.missing().response("api").body, "");
  assert.equal(
    new Rejection("roles_changed").wwwAuthenticate("api"),
    'Bearer realm="api", error="invalid_token", error_description="roles changed: refresh"',
  );
  const scope = Rejection.missingScope('a"b');
  assert.equal(scope.status, 403);
  assert.ok(scope.wwwAuthenticate("api").endsWith('scope="a?b"'));
  const r = new Rejection("session_revoked").response("api");
  assert.equal(r.status, 401);
  assert.deepEqual(JSON.parse(r.body), { error: "invalid_token", error_description: "session revoked: sign in again" });
  assert.equal(r.headers["cache-control"], "no-store");
});

test("requireAmr asks for a step-up (RFC 9470) unless the user signed in with the method", () => {
  const claims = { amr: ["pwd", "otp", "mfa"] };
  assert.doesNotThrow(() => requireAmr(claims, "mfa"));
  for (const c of [{ amr: ["pwd"] }, {}]) {
    assert.throws(
      () => requireAmr(c, "mfa"),
      (e) =>
        e.kind === "missing_amr" &&
        e.status === 401 &&
        e.wwwAuthenticate("api") ===
          'Bearer realm="api", error="insufficient_user_authentication", error_description="requires signing in with mfa: sign in again"',
    );
  }
});

test("bearer tokens are read strictly", () => {
  assert.equal(bearer("Bearer abc"), "abc");
  assert.equal(bearer("bearer abc"), "abc");
  assert.throws(() => bearer(undefined), (e) => e.kind === "missing");
  assert.throws(() => bearer("Basic abc"), (e) => e.kind === "missing");
  assert.throws(() => bearer("Bearer "), (e) => e.kind === "invalid");
  assert.throws(() => bearer("Bearer"), (e) => e.kind === "invalid");
});

test("SSE events split across chunks are reassembled; comments dispatch nothing", () => {
  const p = new SseParser();
  assert.deepEqual(p.feed(": keep-alive\n\nid: 7\nevent: user.dis"), []);
  assert.deepEqual(p.feed('abled\ndata: {"a":\r\ndata: 1}\n\n'), [{ id: "7", event: "user.disabled", data: '{"a":\n1}' }]);
  const got = p.feed("id: 3\n\n: bye\n\ndata: x\n\nid:4\ndata:y\n\n");
  assert.deepEqual(got.map((e) => [e.id, e.event, e.data]), [["3", "message", "x"], ["4", "message", "y"]]);
  assert.deepEqual(p.feed("id: 5\ndata: {}\n"), []);
  assert.equal(p.feed("\n").length, 1);
});

const T0 = Date.parse("2026-01-01T00:00:00Z") / 1000;
const token = (sub, sid, ver, iat = T0) => ({ iss: "i", sub, aud: "a", client_id: "c", roles: [], iat, exp: iat + 300, jti: "j", sid, ver });
const event = (id, type, fields) => ({ id, type, sub: "u", sid: null, ver: null, roles: null, reason: null, kid: null, at: "2026-01-01T00:00:00Z", ...fields });
const kind = (f) => {
  try {
    f();
    return "ok";
  } catch (e) {
    return e.kind;
  }
};

test("stale ver, revoked sid, disabled user and revoked key are refused; replays never loosen", () => {
  const s = new Freshness(300);
  const t = token("u", "s1", 1);
  assert.equal(kind(() => s.check(t, "k")), "ok");
  s.apply(event(1, "user.roles_changed", { ver: 2 }));
  assert.equal(kind(() => s.check(t, "k")), "roles_changed");
  assert.equal(kind(() => s.check(token("u", "s2", 2), "k")), "ok");
  s.apply(event(2, "session.revoked", { sid: "s2" }));
  assert.equal(kind(() => s.check(token("u", "s2", 2), "k")), "session_revoked");
  s.apply(event(3, "user.disabled", { ver: 3 }));
  s.apply(event(1, "user.roles_changed", { ver: 2 }));
  assert.equal(kind(() => s.check(token("u", "s3", 3), "k")), "user_disabled");
  assert.equal(s.apply(event(4, "keys.rotated", { sub: null, kid: "k1", reason: "rotated" })), true);
  assert.equal(kind(() => s.check(token("v", "s", 1), "k1")), "ok");
  s.apply(event(5, "keys.rotated", { sub: null, kid: "k1", reason: "revoked" }));
  assert.equal(kind(() => s.check(token("v", "s", 1), "k1")), "key_revoked");
  s.apply(event(6, "user.something_new", {}));
  // Re-enabled at ver 4: new tokens pass, older ones stay stale; replays change nothing.
  s.apply(event(7, "user.enabled", { ver: 4 }));
  assert.equal(kind(() => s.check(token("u", "s4", 4), "k")), "ok");
  assert.equal(kind(() => s.check(token("u", "s3", 3), "k")), "roles_changed");
  s.apply(event(3, "user.disabled", { ver: 3 }));
  assert.equal(kind(() => s.check(token("u", "s4", 4), "k")), "ok");
  s.apply(event(8, "user.disabled", { ver: 5 }));
  s.apply(event(7, "user.enabled", { ver: 4 }));
  assert.equal(kind(() => s.check(token("u", "s5", 5), "k")), "user_disabled");
  s.horizon = T0;
  assert.equal(kind(() => s.check(token("w", "s", 1, T0 - 1), "k")), "state_unknown");
});

test("entries are dropped once no unexpired token can carry them", () => {
  const s = new Freshness(300);
  s.apply(event(1, "session.revoked", { sid: "s" }));
  s.apply(event(2, "user.roles_changed", { ver: 2 }));
  s.prune(T0 + 300 + 5);
  assert.deepEqual([s.sessions.size, s.users.size], [1, 1]);
  s.prune(T0 + 301 + 5);
  assert.deepEqual([s.sessions.size, s.users.size], [0, 0]);
});

test("max-age is read and bounded; the backoff grows, is capped and jittered", () => {
  assert.equal(maxAge("public, max-age=600"), 600);
  assert.equal(maxAge("max-age=0"), 1);
  assert.equal(maxAge("no-store"), 1);
  assert.equal(maxAge("public"), 300);
  assert.equal(maxAge(null), 300);
  assert.equal(maxAge("max-age=99999999"), 86_400);
  for (let n = 1; n < 20; n++) {
    const base = Math.min(100 * 2 ** Math.min(n, 7), 10_000);
    const d = backoff(n);
    assert.ok(d >= base / 2 && d <= base, `${n}: ${d}`);
  }
});

test("a stream request the feed never answers is given up after 10 s and retried; an answered stream is not cut then", async (t) => {
  // The verifier's timers on node:test's mock clock: its ten seconds pass at a tick. The issuer
  // is a fetch function, so no socket (whose own timers the mock clock would upset) is involved;
  // before any test here that uses one.
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { createVerifier } = await import("../dist/index.js");
  const issuer = fetchIssuer((n, signal) =>
    n === 1
      ? new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)))
      : new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode(": connected\n\n"));
              signal.addEventListener("abort", () => c.error(signal.reason)); // as fetch does
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        ),
  );
  const warnings = [];
  const v = await createVerifier({ ...issuer.options, warn: (m) => warnings.push(m) });
  const state = () => JSON.stringify({ streamRequests: issuer.streamRequests, warnings, health: v.health() });
  // Lets the verifier's promises run (not its timers) until `until()`, or a while.
  const settle = async (until = () => false) => {
    for (let i = 0; i < 100 && !until(); i++) await turn();
    return until();
  };
  try {
    assert.ok(await settle(() => issuer.streamRequests === 1), state());
    t.mock.timers.tick(9_900);
    assert.ok(!(await settle(() => warnings.length > 0 || issuer.streamRequests > 1)), `given up before 10 s: ${state()}`);
    t.mock.timers.tick(100);
    assert.ok(await settle(() => warnings.length > 0), `not given up at 10 s: ${state()}`);
    assert.match(warnings[0], /^tessera event feed unavailable \(the feed did not answer within 10 s\); retrying in \d+ ms$/);
    t.mock.timers.tick(200); // the backoff after a first failure: 100-200 ms
    assert.ok(await settle(() => v.health().connected), `not retried: ${state()}`);
    assert.equal(issuer.streamRequests, 2);
    // The deadline is the head's: the stream answered goes on past it (idle only after 35 s).
    t.mock.timers.tick(20_000);
    await settle(() => !v.health().connected);
    const h = v.health();
    assert.ok(h.connected && h.connections === 1 && issuer.streamRequests === 2, state());
  } finally {
    v.close();
  }
});

/** An issuer as a fetch function: its metadata, a token, no keys, an empty log, and each stream
 * request answered by `stream(n, signal)` (the nth request, and its abort signal). */
function fetchIssuer(stream) {
  const url = "https://issuer.test";
  const json = (body) => new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });
  const issuer = { streamRequests: 0 };
  const fetch = async (to, init = {}) => {
    const path = new URL(to).pathname;
    if (path === "/.well-known/oauth-authorization-server") {
      return json({
        issuer: url,
        token_endpoint: `${url}/token`,
        jwks_uri: `${url}/jwks`,
        tessera_events_endpoint: `${url}/events`,
        tessera_access_token_max_ttl: 300,
      });
    }
    if (path === "/jwks") return json({ keys: [] });
    if (path === "/token") return json({ access_token: "t", token_type: "Bearer", expires_in: 300 });
    if (init.headers?.accept !== "text/event-stream") return json({ events: [], next_after: 0 });
    issuer.streamRequests += 1;
    return await stream(issuer.streamRequests, init.signal);
  };
  issuer.options = { issuer: url, audience: "https://api.test", clientId: "rs", clientSecret: "x", fetch };
  return issuer;
}

test("the client secret never shows when a verifier is inspected or logged", async () => {
  const { inspect } = await import("node:util");
  const { stubIssuer, STUB_AUD } = await import("./stub.mjs");
  const { createVerifier } = await import("../dist/index.js");
  const stub = await stubIssuer();
  const secret = "s3cr3t-that-must-not-leak";
  const v = await createVerifier({ issuer: stub.issuer, audience: STUB_AUD, clientId: "rs", clientSecret: secret, warn: () => {} });
  try {
    assert.ok(await v.ready(5));
    const shown = inspect(v, { depth: 20, showHidden: true }) + JSON.stringify(v.options) + JSON.stringify(v.health());
    assert.ok(shown.includes("rs"), "the inspection shows the verifier");
    assert.ok(!shown.includes(secret), "the secret shows");
  } finally {
    v.close();
    await stub.close();
  }
});
