// A stand-in issuer for the checks that need a genuine signature on a wrong token (a wrong
// `typ`, `iss`, `aud`, time): it publishes the RFC 8414 metadata, one ES256 key (with the
// `Cache-Control: max-age` asked for) and an empty feed, counts JWKS fetches, and signs
// whatever header and claims a test gives it (ES256 unless told; the benchmarks use it too). Everything else is tested against tessera.
import { createServer } from "node:http";
import { generateKeyPair, exportJWK, SignJWT } from "jose";

export const STUB_AUD = "https://api.stub";

export async function stubIssuer({ maxAge = 600, alg = "ES256" } = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "stub-1", alg, use: "sig" };
  const streams = new Set();
  const stub = { jwk, jwksFetches: 0 };
  const server = createServer((req, res) => {
    const url = new URL(req.url, stub.issuer);
    const json = (body, headers = {}) => {
      res.writeHead(200, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    switch (url.pathname) {
      case "/.well-known/oauth-authorization-server":
        return json({
          issuer: stub.issuer,
          token_endpoint: `${stub.issuer}/token`,
          jwks_uri: `${stub.issuer}/jwks`,
          tessera_events_endpoint: `${stub.issuer}/events`,
          tessera_access_token_max_ttl: 300,
        });
      case "/jwks":
        stub.jwksFetches += 1;
        return json({ keys: [jwk] }, { "cache-control": `public, max-age=${maxAge}` });
      case "/token":
        return json({ access_token: "stub-token", token_type: "Bearer", expires_in: 300 });
      case "/events":
        if (req.headers.accept === "application/json") return json({ events: [], next_after: 0 });
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(": connected\n\n");
        streams.add(res);
        res.on("close", () => streams.delete(res));
        return undefined;
      default:
        res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  stub.issuer = `http://127.0.0.1:${server.address().port}`;
  const now = () => Math.floor(Date.now() / 1000);
  /** Claims tessera would mint for a user, with `overrides` (undefined removes one). */
  stub.claims = (overrides = {}) => {
    const c = {
      iss: stub.issuer, sub: "u1", aud: STUB_AUD, client_id: "app", scope: "profile", roles: ["reader"],
      iat: now(), exp: now() + 300, jti: "j1", sid: "s1", ver: 1, ...overrides,
    };
    for (const [k, v] of Object.entries(c)) if (v === undefined) delete c[k];
    return c;
  };
  stub.header = (overrides = {}) => {
    const h = { alg, typ: "at+jwt", kid: jwk.kid, ...overrides };
    for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
    return h;
  };
  stub.publicKey = publicKey;
  stub.sign = (header, claims) => new SignJWT(claims).setProtectedHeader(header).sign(privateKey);
  stub.close = async () => {
    for (const s of streams) s.destroy();
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  };
  return stub;
}
