// Benchmark (never a test): what @tessera/verify's verify() costs per token over a bare
// jose.jwtVerify with the key in hand (same token, same key, same checks jose makes), in one
// process, for each algorithm tessera signs with. The verifier follows a stand-in issuer's
// (quiet) feed and holds 10k revoked sessions and 10k changed users, so its lookups are real.
//
//   cd js && node verify/bench/overhead.mjs [ITERATIONS]     (default 20000, after as many to warm up)
//
// Each iteration runs both on the same token, in alternating order; figures are mean ns/op.
import { jwtVerify } from "jose";
import { createVerifier } from "../dist/index.js";
import { stubIssuer, STUB_AUD } from "../test/stub.mjs";

const iterations = Number(process.argv[2] ?? 20000);

/** Calls bare and ours in turn on every iteration (order alternating), so that both meet the
 * same machine load; returns the ns/op of each. The machine's other load moves both alike. */
async function paired(bare, ours, token) {
  let tb = 0n;
  let to = 0n;
  for (let i = 0; i < iterations; i++) {
    const first = i % 2 === 0 ? bare : ours;
    const second = i % 2 === 0 ? ours : bare;
    const t0 = process.hrtime.bigint();
    await first(token);
    const t1 = process.hrtime.bigint();
    await second(token);
    const t2 = process.hrtime.bigint();
    if (i % 2 === 0) {
      tb += t1 - t0;
      to += t2 - t1;
    } else {
      to += t1 - t0;
      tb += t2 - t1;
    }
  }
  return [Number(tb) / iterations, Number(to) / iterations];
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
  console.log(
    `${alg}: bare jose.jwtVerify ${mb.toFixed(0)} ns/op, @tessera/verify ${mo.toFixed(0)} ns/op, ` +
      `overhead ${(mo - mb).toFixed(0)} ns (${(((mo - mb) / mb) * 100).toFixed(1)} %); ` +
      `tracked ${JSON.stringify(v.health().tracked)}`,
  );
  v.close();
  await stub.close();
}
