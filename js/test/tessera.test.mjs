// The test harness itself: a real tessera starts, the CLI reaches its database, a token is
// issued, and a restart keeps the issuer and the keys (tokens already out stay valid).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startTessera } from "./tessera.mjs";

test("the harness starts tessera, runs the CLI on its database and restarts it", async () => {
  const t = await startTessera();
  try {
    const secret = t.addClient("svc", ["--grant", "client_credentials", "--audience", "https://api.test"]);
    const first = await t.token({ grant_type: "client_credentials", client_id: "svc", client_secret: secret });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const jwks = async () => (await (await fetch(`${t.issuer}/.well-known/jwks.json`)).json()).keys.map((k) => k.kid);
    const before = await jwks();
    await t.restart();
    const meta = await (await fetch(`${t.issuer}/.well-known/oauth-authorization-server`)).json();
    assert.equal(meta.issuer, t.issuer);
    assert.deepEqual(await jwks(), before);
  } finally {
    await t.close();
  }
});
