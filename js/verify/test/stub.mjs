// A stand-in issuer for what tessera cannot be made to do from a test: sign a wrong token
// with a genuine key (a wrong `typ`, `iss`, `aud`, time), or rewind its log. It publishes the
// RFC 8414 metadata, one key (ES256 unless told; `Cache-Control: max-age` as asked) and a feed
// of the events a test publishes, counts JWKS fetches, and signs whatever header and claims a
// test gives it. The benchmarks use it too. Everything else is tested against tessera.
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
        return events(req, res, url, json);
      default:
        res.writeHead(404).end();
    }
  });
  // The feed: a log of events, served as tessera serves it (long-poll pages with `since` or
  // `after`, SSE resumed after `Last-Event-ID`, 410 for a position past the newest event).
  stub.log = [];
  const newest = () => stub.log.at(-1)?.id ?? 0;
  const frame = (e) => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
  function events(req, res, url, json) {
    const gone = () => res.writeHead(410, { "content-type": "application/json" }).end('{"error":"resync_required"}');
    if (req.headers.accept === "application/json") {
      const after = url.searchParams.get("after");
      const since = url.searchParams.get("since");
      if (after !== null && Number(after) > newest()) return gone();
      const page = stub.log.filter((e) =>
        after !== null ? e.id > Number(after) : Date.parse(e.at) / 1000 >= Number(since ?? 0),
      );
      return json({ events: page, next_after: page.at(-1)?.id ?? (after !== null ? Number(after) : newest()) });
    }
    const last = Number(req.headers["last-event-id"] ?? newest());
    if (last > newest()) return gone();
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(": connected\n\n");
    if (stub.endStreamsAtOnce) return res.end();
    for (const e of stub.log) if (e.id > last) res.write(frame(e));
    streams.add(res);
    res.on("close", () => streams.delete(res));
    return undefined;
  }
  /** Appends an event (`id` and `at` filled in) and pushes it to the open streams. */
  stub.publish = (event) => {
    const e = { sub: null, sid: null, ver: null, roles: null, reason: null, kid: null, ...event, id: newest() + 1, at: new Date().toISOString() };
    stub.log.push(e);
    for (const s of streams) s.write(frame(e));
    return e;
  };
  /** As a restore from an older backup: the log back to `last`, the next ids reused. */
  stub.restore = (last) => {
    stub.log = stub.log.filter((e) => e.id <= last);
  };
  /** Ends every open stream (as a restart of the issuer does). */
  stub.dropStreams = () => {
    for (const s of streams) s.destroy();
  };
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
