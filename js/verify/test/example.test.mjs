// examples/express.mjs, the resource server other programs run (the live-roles demo): its
// command line, `listening` on stdout, GET /whoami and /roles/{role}, CORS for one origin,
// a role change refused within a second, and --max-staleness.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { rig, refusedWithin, eventually, AUD } from "./rig.mjs";
import { freePort } from "../../test/tessera.mjs";

const EXAMPLE = fileURLToPath(new URL("../examples/express.mjs", import.meta.url));

/** Starts the example; resolves once it printed `listening`. */
async function example(args, env = {}) {
  const child = spawn(process.execPath, [EXAMPLE, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  await new Promise((ok, fail) => {
    child.stdout.on("data", (d) => {
      out += d;
      if (out.split("\n").includes("listening")) ok();
    });
    child.once("exit", (code) => fail(new Error(`the example exited ${code}: ${err}`)));
  });
  return child;
}

test("the Express example: the contract, CORS, a role change and --max-staleness", async () => {
  const r = await rig({ TESSERA_PERMISSION_CHANGE_POLICY: "reissue" });
  const port = await freePort();
  const origin = "http://127.0.0.1:1234";
  const child = await example(
    ["--issuer", r.t.issuer, "--audience", AUD, "--port", String(port), "--client-id", "rs",
      "--max-staleness", "0.5", "--cors-origin", origin],
    { TESSERA_VERIFY_CLIENT_SECRET: r.secret },
  );
  try {
    const api = `http://127.0.0.1:${port}`;
    const get = async (path, token, headers = {}) => {
      const res = await fetch(`${api}${path}`, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });
      return { status: res.status, headers: res.headers, body: await res.text() };
    };
    const { access, claims } = await r.login();
    const who = await get("/whoami", access);
    assert.equal(who.status, 200, who.body);
    assert.deepEqual(JSON.parse(who.body), { sub: claims.sub, roles: ["reader"] });
    const none = await get("/whoami");
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), `Bearer realm="${AUD}"`);
    assert.equal((await get("/roles/reader", access)).status, 200);
    const forbidden = await get("/roles/admin", access);
    assert.equal(forbidden.status, 403);
    assert.deepEqual(JSON.parse(forbidden.body), { error: "insufficient_scope", error_description: "requires role admin" });

    const preflight = await fetch(`${api}/whoami`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), origin);
    const elsewhere = await fetch(`${api}/whoami`, { method: "OPTIONS", headers: { origin: "http://evil.test" } });
    assert.equal(elsewhere.status, 403);
    const cors = await get("/whoami", access, { origin });
    assert.equal(cors.headers.get("access-control-allow-origin"), origin);
    assert.equal(cors.headers.get("access-control-expose-headers"), "WWW-Authenticate");

    r.t.setRoles("alice", ["writer"]);
    const { rejection } = await refusedWithin(async (token) => {
      const res = await get("/whoami", token);
      if (res.status !== 200) throw res;
    }, access);
    assert.equal(rejection.status, 401);
    assert.match(rejection.headers.get("www-authenticate"), /error_description="roles changed: refresh"/);

    const fresh = await r.login();
    assert.equal((await get("/whoami", fresh.access)).status, 200);
    assert.equal((await get("/readyz")).status, 200);
    await r.t.stop();
    await eventually(async () => (await get("/readyz")).status === 503);
    const stale = await get("/whoami", fresh.access);
    assert.equal(stale.status, 401);
    assert.match(stale.headers.get("www-authenticate"), /authorization state unknown: try again later/);
  } finally {
    child.kill();
    await r.close();
  }
});

test("the Express example refuses to start without its required options", async () => {
  const child = spawn(process.execPath, [EXAMPLE, "--issuer", "http://127.0.0.1:1"], {
    env: { PATH: process.env.PATH },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const code = await new Promise((ok) => child.once("exit", ok));
  assert.equal(code, 2);
  assert.match(err, /--audience is required/);
});
