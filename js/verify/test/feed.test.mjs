// Every kind of change is refused within a second of the command that makes it (measured
// from the change, by polling, never by sleeping), with the RFC 6750 description that tells
// the client whether to refresh or sign in again; the verifier keeps following across an
// issuer restart, a cold start and its own token's renewals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { ReadableStream } from "node:stream/web";
import { rig, refusedWithin, eventually, decode, AUD } from "./rig.mjs";
import { stubIssuer, STUB_AUD } from "./stub.mjs";
import { createVerifier } from "../dist/index.js";

test("a role change is refused within a second as roles changed: refresh", async () => {
  const r = await rig({ TESSERA_PERMISSION_CHANGE_POLICY: "reissue" });
  try {
    const v = await r.verifier();
    const { access } = await r.login();
    const claims = await v.verify(access);
    assert.deepEqual(claims.roles, ["reader"]);
    r.t.setRoles("alice", ["writer"]);
    const { rejection, ms } = await refusedWithin((x) => v.verify(x), access);
    assert.equal(rejection.kind, "roles_changed", rejection.message);
    assert.equal(rejection.status, 401);
    assert.equal(
      rejection.wwwAuthenticate(AUD),
      `Bearer realm="${AUD}", error="invalid_token", error_description="roles changed: refresh"`,
    );
    console.log(`role change refused after ${ms.toFixed(0)} ms`);
    // A token minted after the change carries the new ver and is accepted.
    const fresh = await r.login();
    assert.deepEqual((await v.verify(fresh.access)).roles, ["writer"]);
  } finally {
    await r.close();
  }
});

test("a session revoked with POST /revoke is refused within a second, and only that session", async () => {
  const r = await rig();
  try {
    const v = await r.verifier();
    const one = await r.login();
    const other = await r.login();
    await v.verify(one.access);
    await r.revoke(one.refresh);
    const { rejection } = await refusedWithin((x) => v.verify(x), one.access);
    assert.equal(rejection.kind, "session_revoked");
    assert.equal(rejection.description, "session revoked: sign in again");
    await v.verify(other.access);
  } finally {
    await r.close();
  }
});

test("a disabled user is refused within a second", async () => {
  const r = await rig();
  try {
    const v = await r.verifier();
    const { access } = await r.login();
    await v.verify(access);
    r.t.cli(["user", "disable", "alice"]);
    const { rejection } = await refusedWithin((x) => v.verify(x), access);
    assert.equal(rejection.kind, "user_disabled");
    assert.equal(rejection.description, "user disabled");
  } finally {
    await r.close();
  }
});

test("an emergency key revocation refuses the key's tokens within a second", async () => {
  const r = await rig();
  try {
    const v = await r.verifier();
    const { access } = await r.login();
    await v.verify(access);
    const fetchesBefore = v.health().jwksFetches;
    r.t.cli(["keys", "rotate", "--revoke-current"]);
    const { rejection } = await refusedWithin((x) => v.verify(x), access);
    assert.equal(rejection.kind, "key_revoked");
    assert.equal(rejection.description, "signing key revoked: refresh");
    // keys.rotated made the verifier refetch the JWKS, so the new key's tokens verify.
    await eventually(() => v.health().jwksFetches > fetchesBefore);
    await eventually(async () => {
      const fresh = await r.login();
      return await v.verify(fresh.access).then(() => true, () => false);
    }, 5000, () => "a token of the new key never verified");
  } finally {
    await r.close();
  }
});

test("an issuer restart loses no event: a change made while it is down is honoured", async () => {
  const r = await rig({ TESSERA_PERMISSION_CHANGE_POLICY: "reissue" });
  try {
    const v = await r.verifier();
    const { access } = await r.login();
    await v.verify(access);
    await r.t.stop();
    r.t.setRoles("alice", ["writer"]); // the CLI writes the database while the issuer is down
    await r.t.start();
    const { rejection } = await refusedWithin((x) => v.verify(x), access, 5000);
    assert.equal(rejection.kind, "roles_changed");
    assert.ok(v.health().connections >= 2, JSON.stringify(v.health()));
    // A change just after the restart arrives within a second, on the resumed stream.
    const fresh = await r.login();
    await eventually(() => v.verify(fresh.access).then(() => true, () => false));
    r.t.setRoles("alice", ["reader"]);
    assert.equal((await refusedWithin((x) => v.verify(x), fresh.access)).rejection.kind, "roles_changed");
  } finally {
    await r.close();
  }
});

test("a cold start honours a change made before the verifier started (since)", async () => {
  const r = await rig();
  try {
    const revoked = await r.login();
    const kept = await r.login();
    await r.revoke(revoked.refresh);
    const v = await r.verifier();
    await assert.rejects(v.verify(revoked.access), (e) => e.kind === "session_revoked");
    await v.verify(kept.access);
  } finally {
    await r.close();
  }
});

test("the verifier renews its own token and stream without losing an event", async () => {
  // Two-second tokens: the verifier's own expires several times during the test.
  const r = await rig({ TESSERA_ACCESS_TOKEN_TTL: "2", TESSERA_PERMISSION_CHANGE_POLICY: "reissue" });
  try {
    const v = await r.verifier();
    for (let round = 0; round < 3; round++) {
      const before = v.health().connections;
      await eventually(() => {
        assert.ok(!v.health().stale, `round ${round}: stale while renewing ${JSON.stringify(v.health())}`);
        return v.health().connections > before;
      }, 5000, () => `round ${round}: never renewed`);
      const { access } = await r.login();
      await v.verify(access);
      r.t.setRoles("alice", [`r${round}`]);
      const { rejection } = await refusedWithin((x) => v.verify(x), access);
      assert.equal(rejection.kind, "roles_changed", `round ${round}`);
    }
  } finally {
    await r.close();
  }
});

test("a change made as the verifier's own token expires is refused within a second: the next stream opens before the old one ends", async () => {
  // Two-second tokens again; each change is timed to commit around the moment the issuer ends
  // the verifier's newest stream (its token's exp), a little earlier or later each round.
  const r = await rig({ TESSERA_ACCESS_TOKEN_TTL: "2", TESSERA_PERMISSION_CHANGE_POLICY: "reissue" });
  const streams = watchStreams();
  try {
    const v = await r.verifier({ fetch: streams.fetch });
    // The CLI's change commits at the end of its run: start it that long before the moment aimed at.
    const started = performance.now();
    r.t.setRoles("alice", ["reader"]);
    const cli = performance.now() - started;
    for (const [round, offset] of [-100, 0, 50, 100, 200, 300].entries()) {
      const { access } = await r.login();
      await v.verify(access);
      let at;
      await eventually(() => (at = streams.exps.at(-1) * 1000 + offset - cli) > Date.now(), 5000, () => `round ${round}: no stream to aim at`);
      await new Promise((ok) => setTimeout(ok, at - Date.now()));
      r.t.setRoles("alice", [`r${round}`]);
      const { rejection, ms } = await refusedWithin((x) => v.verify(x), access);
      assert.equal(rejection.kind, "roles_changed", `round ${round}`);
      console.log(`round ${round}: a change ${offset} ms from the stream's end refused after ${ms.toFixed(0)} ms`);
    }
    assert.ok(streams.exps.length >= 4, `${streams.exps.length} streams: the token was not renewed`);
    assert.deepEqual(streams.gaps.map(Math.round), [], "moments (ms) without an open stream between two streams");
  } finally {
    await r.close();
  }
});

test("when the token endpoint fails at renewal time, the current stream is kept and the renewal retried", async () => {
  // Four-second tokens: the next stream is due 1.5 s before the current one's may expire.
  const r = await rig({ TESSERA_ACCESS_TOKEN_TTL: "4", TESSERA_PERMISSION_CHANGE_POLICY: "reissue" });
  const streams = watchStreams();
  const warnings = [];
  try {
    const v = await r.verifier({ fetch: streams.fetch, warn: (m) => warnings.push(m) });
    await eventually(() => streams.exps.length === 1);
    streams.failTokens(2);
    await eventually(() => streams.exps.length === 2, 8000, () => JSON.stringify({ warnings, health: v.health() }));
    assert.equal(warnings.filter((m) => m.startsWith("opening the next feed stream failed (the token endpoint answered 503)")).length, 2, warnings.join("\n"));
    assert.deepEqual(streams.gaps.map(Math.round), [], "moments (ms) without an open stream between two streams");
    const { access } = await r.login();
    await v.verify(access);
    r.t.setRoles("alice", ["writer"]);
    assert.equal((await refusedWithin((x) => v.verify(x), access)).rejection.kind, "roles_changed");
  } finally {
    await r.close();
  }
});

/**
 * A fetch for the verifier that watches its event streams: the `exp` of each one's token, in
 * the order they opened, and how long the verifier went without one each time it had none;
 * it can make the token endpoint fail.
 */
function watchStreams() {
  let open = 0;
  let noneSince;
  const exps = [];
  const gaps = [];
  let failing = 0;
  const watched = async (url, init = {}) => {
    if (failing > 0 && init.method === "POST" && String(url).endsWith("/token")) {
      failing -= 1;
      return new Response("", { status: 503 });
    }
    const res = await fetch(url, init);
    if (init.headers?.accept !== "text/event-stream" || res.status !== 200) return res;
    open += 1;
    if (noneSince !== undefined) gaps.push(performance.now() - noneSince);
    noneSince = undefined;
    exps.push(decode(init.headers.authorization.slice("Bearer ".length)).exp);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      open -= 1;
      if (open === 0) noneSince = performance.now();
    };
    init.signal?.addEventListener("abort", end);
    const reader = res.body.getReader();
    const body = new ReadableStream({
      async pull(c) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            end();
            c.close();
          } else c.enqueue(value);
        } catch (e) {
          end();
          c.error(e);
        }
      },
      cancel(reason) {
        end();
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  /** The next `n` token requests answer 503. */
  const failTokens = (n) => {
    failing = n;
  };
  return { fetch: watched, exps, gaps, failTokens };
}

test("after the issuer's log is restored from an older backup (410), the verifier catches up again", async () => {
  // A stand-in issuer (test/stub.mjs): tessera's own database cannot be rewound from here.
  const stub = await stubIssuer();
  const v = await createVerifier({ issuer: stub.issuer, audience: STUB_AUD, clientId: "rs", clientSecret: "x", warn: () => {} });
  try {
    assert.ok(await v.ready(5));
    for (const ver of [2, 3, 4]) stub.publish({ type: "user.roles_changed", sub: "u1", ver });
    await eventually(() => v.health().lastEventId === 3, 5000, () => JSON.stringify(v.health()));
    const token = await stub.sign(stub.header(), stub.claims({ ver: 4 }));
    await v.verify(token);
    // Restored to event 1; the next change reuses id 2, which the verifier saw once already.
    stub.restore(1);
    stub.publish({ type: "user.roles_changed", sub: "u1", ver: 5 });
    stub.dropStreams();
    const { rejection } = await refusedWithin((x) => v.verify(x), token, 5000);
    assert.equal(rejection.kind, "roles_changed");
    assert.equal(v.health().lastEventId, 2);
  } finally {
    v.close();
    await stub.close();
  }
});
