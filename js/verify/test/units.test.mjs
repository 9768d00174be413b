// The pieces without an issuer: RFC 6750 answers, the bearer header, the SSE parser, the
// freshness state and its bounds, Cache-Control max-age, the reconnect backoff.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rejection, bearer } from "../dist/index.js";
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
