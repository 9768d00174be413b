// Interop: tessera's tokens as a plain jose.jwtVerify against the published JWKS sees them,
// and @tessera/verify agrees with it on every token (the same claims when both accept, a
// refusal from both otherwise), for each signing algorithm tessera offers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { rig, AUD } from "./rig.mjs";

for (const alg of ["ES256", "EdDSA", "RS256"]) {
  test(`${alg}: @tessera/verify and a bare jose.jwtVerify agree`, async () => {
    const r = await rig({ TESSERA_SIGNING_ALG: alg });
    try {
      const v = await r.verifier();
      const other = await r.verifier({ audience: "https://other.test" });
      const jwks = createRemoteJWKSet(new URL(`${r.t.issuer}/.well-known/jwks.json`));
      const bare = (token, audience = AUD) =>
        jwtVerify(token, jwks, { issuer: r.t.issuer, audience, typ: "at+jwt" }).then((x) => x.payload);
      const { access } = await r.login();
      const [h, p, s] = access.split(".");
      assert.equal(JSON.parse(Buffer.from(h, "base64url")).alg, alg);
      assert.deepEqual(await v.verify(access), await bare(access));
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url")), roles: ["admin"] })).toString("base64url")}.${s}`;
      await assert.rejects(bare(tampered));
      await assert.rejects(v.verify(tampered), (e) => e.detail === "bad signature");
      await assert.rejects(bare(access, "https://other.test"));
      await assert.rejects(other.verify(access), (e) => e.detail === "wrong audience");
    } finally {
      await r.close();
    }
  });
}
