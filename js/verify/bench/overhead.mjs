// Benchmark (never a test): what @tessera/verify's verify() costs per token over a bare
// jose.jwtVerify with the key in hand (same token, same key, same checks jose makes), in one
// process, for each algorithm tessera signs with. The verifier follows a stand-in issuer's
// (quiet) feed and holds 10k revoked sessions and 10k changed users, so its lookups are real.
//
//   cd js && node verify/bench/overhead.mjs [ITERATIONS]     (default 20000, after as many to warm up)
//
// Each iteration runs both on the same token, in alternating order; figures are median ns/op.
// On a shared machine that pairing still drifts by several percent either way, more than the
// goal, so the additions are also timed alone (synchronous, stable to a few ns): what verify()
// does besides jose's work — the resolver's header checks and key lookup, the typed claims,
// the freshness lookups, the staleness check — plus the one extra await it adds.
import { jwtVerify } from "jose";
import { createVerifier } from "../dist/index.js";
import { toClaims } from "../dist/claims.js";
import { stubIssuer, STUB_AUD } from "../test/stub.mjs";

const iterations = Number(process.argv[2] ?? 20000);

/** Calls bare and ours in turn on every iteration (order alternating), so that both meet the
 * same machine load; returns the median ns of each call (the mean follows the thread pool's
 * heavy-tailed scheduling delays, the median does not). */
async function paired(bare, ours, token) {
  const tb = new Float64Array(iterations);
  const to = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const [first, second, a, b] = i % 2 === 0 ? [bare, ours, tb, to] : [ours, bare, to, tb];
    const t0 = process.hrtime.bigint();
    await first(token);
    const t1 = process.hrtime.bigint();
    await second(token);
    const t2 = process.hrtime.bigint();
    a[i] = Number(t1 - t0);
    b[i] = Number(t2 - t1);
  }
  const median = (xs) => xs.sort()[Math.floor(xs.length / 2)];
  return [median(tb), median(to)];
}

/** verify()'s steps besides jwtVerify, on the same token, in a tight loop; ns/op. */
async function additionsAlone(v, token) {
  const header = JSON.parse(Buffer.from(token.split(".")[0], "base64url"));
  const payload = JSON.parse(Buffer.from(token.split(".")[1], "base64url"));
  const n = iterations * 50;
  let sink = 0;
  const step = () => {
    if (typeof header.alg !== "string" || header.alg.toLowerCase() === "none") throw new Error("alg");
    const typ = header.typ.toLowerCase();
    if (typ !== "at+jwt" && typ !== "application/at+jwt") throw new Error("typ");
    const key = v.jwks.get(header.kid);
    if (key.alg !== header.alg) throw new Error("alg");
    const claims = toClaims(payload, Math.floor(Date.now() / 1000));
    v.state.check(claims, header.kid);
    if (v.stale) throw new Error("stale");
    sink += claims.iat;
  };
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) step();
  const sync = Number(process.hrtime.bigint() - start) / n;
  // The extra async layer: verify() awaits jose's promise inside its own async function.
  const inner = async () => sink;
  const outer = async () => await inner();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await inner();
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await outer();
  const t2 = process.hrtime.bigint();
  const hop = Math.max(0, Number(t2 - t1 - (t1 - t0)) / iterations);
  return sync + hop;
}

for (const alg of ["ES256", "EdDSA", "RS256"]) {
  const stub = await stubIssuer({ alg });
  const v = await createVerifier({ issuer: stub.issuer, audience: STUB_AUD, clientId: "rs", clientSecret: "x", warn: () => {} });
  await v.ready(5);
  const at = new Date().toISOString();
  for (let i = 0; i < 10_000; i++) {
    v.apply({ id: 2 * i + 1, type: "session.revoked", sub: crypto.randomUUID(), sid: crypto.randomUUID(), at });
    v.apply({ id: 2 * i + 2, type: "user.roles_changed", sub: crypto.randomUUID(), ver: 2, roles: [], at });
  }
  const token = await stub.sign(stub.header(), stub.claims({ sub: crypto.randomUUID(), sid: crypto.randomUUID() }));
  const options = { issuer: stub.issuer, audience: STUB_AUD, typ: "at+jwt", algorithms: [alg] };
  const bare = (t) => jwtVerify(t, stub.publicKey, options);
  const ours = (t) => v.verify(t);
  await paired(bare, ours, token); // warm-up
  const [mb, mo] = await paired(bare, ours, token);
  const additions = await additionsAlone(v, token);
  console.log(
    `${alg}: additions alone ${additions.toFixed(0)} ns/op = ${((additions / mb) * 100).toFixed(2)} % of the bare check; ` +
    `paired: bare jose.jwtVerify ${mb.toFixed(0)} ns/op, @tessera/verify ${mo.toFixed(0)} ns/op, ` +
      `overhead ${(mo - mb).toFixed(0)} ns (${(((mo - mb) / mb) * 100).toFixed(1)} %); ` +
      `tracked ${JSON.stringify(v.health().tracked)}`,
  );
  v.close();
  await stub.close();
}
