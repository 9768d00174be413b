// Hostile tokens: each differs from an accepted one in exactly the property under test and is
// refused with the reason the Rust crate gives; an unknown-kid flood costs the issuer at most
// one JWKS fetch per interval; the JWKS is refetched when its max-age runs out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, exportJWK, SignJWT } from "jose";
import { rig, eventually } from "./rig.mjs";
import { stubIssuer, STUB_AUD } from "./stub.mjs";
import { createVerifier } from "../dist/index.js";

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const refusedAs = async (v, token, kind, detail) => {
  await assert.rejects(v.verify(token), (e) => {
    assert.equal(e.kind, kind, `${e.message} (wanted ${kind} ${detail ?? ""})`);
    if (detail !== undefined) assert.equal(e.detail, detail);
    return true;
  });
};

test("against tessera: alg none, HS256 keyed with the public key, an attacker's key and a tampered payload", async () => {
  const r = await rig();
  try {
    const v = await r.verifier();
    const { access } = await r.login();
    await v.verify(access);
    const [h, payload] = access.split(".");
    const header = JSON.parse(Buffer.from(h, "base64url"));
    for (const alg of ["none", "None"]) {
      await refusedAs(v, `${b64({ ...header, alg })}.${payload}.`, "invalid", "malformed");
    }
    const jwks = await (await fetch(`${r.t.issuer}/.well-known/jwks.json`)).json();
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    const claims = JSON.parse(Buffer.from(payload, "base64url"));
    const hs = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: header.kid })
      .sign(new TextEncoder().encode(JSON.stringify(jwk)));
    await refusedAs(v, hs, "invalid", "alg does not match the key");
    // jku, x5u and jwk headers are never followed: the attacker's key does not verify.
    const attacker = await generateKeyPair("ES256");
    const forged = await new SignJWT({ ...claims, roles: ["admin"] })
      .setProtectedHeader({
        ...header,
        jwk: await exportJWK(attacker.publicKey),
        jku: "http://127.0.0.1:1/jwks.json",
        x5u: "http://127.0.0.1:1/cert.pem",
      })
      .sign(attacker.privateKey);
    await refusedAs(v, forged, "invalid", "bad signature");
    const tampered = `${h}.${b64({ ...claims, roles: ["admin"] })}.${access.split(".")[2]}`;
    await refusedAs(v, tampered, "invalid", "bad signature");
    await refusedAs(v, "garbage", "invalid", "malformed");
  } finally {
    await r.close();
  }
});

test("against tessera: 220 tokens with unknown kids, at once and in turn, cost at most one JWKS fetch", async () => {
  const r = await rig();
  try {
    let jwksFetches = 0;
    const counting = (url, init) => {
      if (String(url).endsWith("/.well-known/jwks.json")) jwksFetches += 1;
      return fetch(url, init);
    };
    const v = await r.verifier({ fetch: counting });
    const { access, claims } = await r.login();
    const before = jwksFetches;
    assert.equal(v.health().jwksFetches, before);
    const attacker = await generateKeyPair("ES256");
    const tokens = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        new SignJWT(claims).setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: `random-${i}` }).sign(attacker.privateKey),
      ),
    );
    const results = await Promise.allSettled(tokens.map((t) => v.verify(t)));
    for (const res of results) {
      assert.equal(res.status, "rejected");
      assert.equal(res.reason.description, "invalid token: unknown key");
    }
    // And one after another (no fetch in flight to share): still within the one per interval.
    for (const t of tokens.slice(0, 20)) await assert.rejects(v.verify(t));
    assert.ok(jwksFetches - before <= 1, `${jwksFetches - before} JWKS fetches for 220 unknown kids`);
    assert.equal(v.health().jwksFetches, jwksFetches);
    await v.verify(access);
  } finally {
    await r.close();
  }
});

test("genuine signature, wrong claims or typ: each refused with its reason", async () => {
  const stub = await stubIssuer();
  const v = await createVerifier({ issuer: stub.issuer, audience: STUB_AUD, clientId: "rs", clientSecret: "x", warn: () => {} });
  try {
    assert.ok(await v.ready(5));
    const sign = (h, c) => stub.sign(stub.header(h), stub.claims(c));
    const ok = async (h, c) => assert.equal((await v.verify(await sign(h, c))).sub, "u1");
    const now = Math.floor(Date.now() / 1000);
    await ok({}, {});
    for (const typ of [undefined, "JWT", "jwt"]) await refusedAs(v, await sign({ typ }, {}), "invalid", "typ must be at+jwt");
    for (const typ of ["AT+JWT", "application/at+jwt", "Application/AT+JWT"]) await ok({ typ }, {});
    await refusedAs(v, await sign({ kid: undefined }, {}), "invalid", "no kid");
    await refusedAs(v, await sign({}, { iss: `${stub.issuer}/` }), "invalid", "wrong issuer");
    await refusedAs(v, await sign({}, { aud: ["https://other.example"] }), "invalid", "wrong audience");
    await ok({}, { aud: ["https://other.example", STUB_AUD] });
    await refusedAs(v, await sign({}, { exp: now - 10 }), "expired");
    await ok({}, { exp: now - 3 }); // within the 5 s leeway
    await refusedAs(v, await sign({}, { iat: now + 60 }), "invalid", "issued in the future");
    await refusedAs(v, await sign({}, { nbf: now + 60 }), "invalid", "not yet valid");
    for (const missing of ["jti", "sub", "client_id", "exp"]) {
      await refusedAs(v, await sign({}, { [missing]: undefined }), "invalid", "claims missing or malformed");
    }
    await refusedAs(v, await sign({}, { roles: "admin" }), "invalid", "claims missing or malformed");
  } finally {
    v.close();
    await stub.close();
  }
});

test("the JWKS is refetched when its Cache-Control max-age runs out, not before", async () => {
  const stub = await stubIssuer({ maxAge: 1 });
  const v = await createVerifier({ issuer: stub.issuer, audience: STUB_AUD, clientId: "rs", clientSecret: "x", warn: () => {} });
  try {
    assert.equal(stub.jwksFetches, 1);
    const start = Date.now();
    await eventually(() => stub.jwksFetches >= 2, 5000);
    assert.ok(Date.now() - start >= 900, `refetched after ${Date.now() - start} ms, before max-age=1`);
  } finally {
    v.close();
    await stub.close();
  }
});
