// When the feed is out of reach: past maxStaleness the policy decides (refuse, the default;
// introspect; accept), health() says so, and the verifier recovers when the issuer is back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { rig, eventually } from "./rig.mjs";
import { stubIssuer, STUB_AUD } from "./stub.mjs";
import { createVerifier, StartError } from "../dist/index.js";

test("feed gone: refuse after maxStaleness (default policy), accept keeps accepting, and both recover", async () => {
  const r = await rig();
  try {
    const { access } = await r.login();
    const refuse = await r.verifier({ maxStaleness: 0.5 });
    const accept = await r.verifier({ maxStaleness: 0.5, policy: "accept" });
    assert.equal(refuse.options.policy, "refuse");
    await refuse.verify(access);
    await r.t.stop();
    await eventually(() => refuse.health().stale && accept.health().stale, 5000, () => JSON.stringify(refuse.health()));
    const h = refuse.health();
    assert.equal(h.connected, false);
    assert.ok(h.lag > 0.5, JSON.stringify(h));
    await assert.rejects(refuse.verify(access), (e) => {
      assert.equal(e.kind, "state_unknown");
      assert.equal(e.description, "authorization state unknown: try again later");
      return true;
    });
    await accept.verify(access);
    await r.t.start();
    await eventually(() => !refuse.health().stale, 5000, () => JSON.stringify(refuse.health()));
    await refuse.verify(access);
  } finally {
    await r.close();
  }
});

test("feed unreachable: the introspect policy asks /introspect, active then inactive after a revocation", async () => {
  const r = await rig();
  try {
    const one = await r.login();
    // A feed that cannot be reached: the verifier never catches up, so the policy applies.
    const port = await new Promise((ok) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = s.address().port;
        s.close(() => ok(p));
      });
    });
    const v = await createVerifier(r.options({ policy: "introspect", introspectCache: 0, eventsEndpoint: `http://127.0.0.1:${port}/events` }));
    r.verifiers.push(v);
    assert.equal(v.health().stale, true);
    assert.equal((await v.verify(one.access)).sub, one.claims.sub);
    await r.revoke(one.refresh);
    await assert.rejects(v.verify(one.access), (e) => e.kind === "inactive" && e.description === "token no longer active: sign in again");
    // Under the refuse policy the same verifier setup refuses outright.
    const refuse = await createVerifier(r.options({ eventsEndpoint: `http://127.0.0.1:${port}/events` }));
    r.verifiers.push(refuse);
    const two = await r.login();
    await assert.rejects(refuse.verify(two.access), (e) => e.kind === "state_unknown");
  } finally {
    await r.close();
  }
});

test("discovery needs the exact issuer (RFC 8414 §3.3)", async () => {
  const r = await rig();
  try {
    await assert.rejects(createVerifier(r.options({ issuer: `${r.t.issuer}/` })), (e) => {
      assert.ok(e instanceof StartError, String(e));
      assert.match(e.message, /not the configured/);
      return true;
    });
    await assert.rejects(createVerifier(r.options({ issuer: "http://127.0.0.1:1" })), StartError);
  } finally {
    await r.close();
  }
});

test("a feed that ends every stream at once is retried with backoff, not in a hot loop", async () => {
  const stub = await stubIssuer();
  stub.endStreamsAtOnce = true;
  const v = await createVerifier({ issuer: stub.issuer, audience: STUB_AUD, clientId: "rs", clientSecret: "x", warn: () => {} });
  try {
    assert.ok(await v.ready(5));
    await eventually(() => v.health().connections >= 2);
    const start = Date.now();
    const before = v.health().connections;
    await new Promise((ok) => setTimeout(ok, 1000)); // a window to count reconnections in, not a readiness wait
    const per = ((v.health().connections - before) * 1000) / (Date.now() - start);
    // Backoff from 100 ms doubling: a handful per second at first, fewer after; a hot loop is hundreds.
    assert.ok(per <= 10, `${per.toFixed(0)} reconnections per second`);
  } finally {
    v.close();
    await stub.close();
  }
});
