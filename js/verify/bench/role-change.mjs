// Benchmark (never a test): an admin role change through the admin API until an Express API
// on @tessera/verify (examples/express.mjs, its own process on a loopback port) answers 401 to
// the user's previous access token, polled over HTTP back to back. Reports p50/p99/max.
//
//   cd js && node verify/bench/role-change.mjs [CHANGES]      (default 200)
//
// Runs the release tessera (target/release/tessera from `cargo build --release`, or TESSERA_BIN).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const RELEASE = fileURLToPath(new URL("../../../target/release/tessera", import.meta.url));
if (!process.env.TESSERA_BIN && existsSync(RELEASE)) process.env.TESSERA_BIN = RELEASE;
const { startTessera, freePort } = await import("../../test/tessera.mjs");

const changes = Number(process.argv[2] ?? 200);
const AUD = "https://api.bench";
const here = dirname(fileURLToPath(import.meta.url));

const t = await startTessera({ env: { TESSERA_PERMISSION_CHANGE_POLICY: "reissue", RUST_LOG: "warn" } });
let api;
try {
  const secret = t.addClient("rs", ["--grant", "client_credentials", "--can", "events"]);
  t.cli(["client", "add", "app", "--public", "--grant", "password", "--audience", AUD]);
  t.cli(["client", "add", "console", "--public", "--grant", "password", "--audience", `${t.issuer}/admin`]);
  const alicePw = t.addUser("alice", ["r0"]);
  const rootPw = t.addUser("root", ["admin"]);
  const login = async (client, username, password) => {
    const { status, body } = await t.token({ grant_type: "password", client_id: client, username, password });
    if (status !== 200) throw new Error(JSON.stringify(body));
    return body.access_token;
  };
  const admin = await login("console", "root", rootPw);
  const aliceId = JSON.parse(Buffer.from((await login("app", "alice", alicePw)).split(".")[1], "base64url")).sub;

  const port = await freePort();
  api = spawn(process.execPath, [resolve(here, "../examples/express.mjs"), "--issuer", t.issuer, "--audience", AUD,
    "--port", String(port), "--client-id", "rs"], { env: { ...process.env, TESSERA_VERIFY_CLIENT_SECRET: secret }, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((ok, fail) => {
    api.stdout.on("data", (d) => String(d).includes("listening") && ok());
    api.once("exit", (code) => fail(new Error(`the API exited ${code}`)));
  });
  const whoami = async (token) =>
    (await fetch(`http://127.0.0.1:${port}/whoami`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    }));

  const ms = [];
  let refused = 0;
  for (let i = 1; i <= changes; i++) {
    const token = await login("app", "alice", alicePw);
    if ((await whoami(token)) !== 200) throw new Error(`change ${i}: a fresh token was refused`);
    const start = performance.now();
    const res = await fetch(`${t.issuer}/admin/users/${aliceId}/roles`, {
      method: "PUT",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ roles: [`r${i}`] }),
    });
    if (res.status !== 200) throw new Error(`admin answered ${res.status}: ${await res.text()}`);
    for (;;) {
      if ((await whoami(token)) === 401) break;
      if (performance.now() - start > 5000) break;
    }
    const elapsed = performance.now() - start;
    if (elapsed <= 5000) refused += 1;
    ms.push(elapsed);
  }
  ms.sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)].toFixed(2);
  console.log(`tessera: ${process.env.TESSERA_BIN ?? "target/debug"}`);
  console.log(`${changes} changes, ${refused} refused: p50 ${q(50)} ms, p99 ${q(99)} ms, max ${ms.at(-1).toFixed(2)} ms`);
} finally {
  api?.kill();
  await t.close();
}
