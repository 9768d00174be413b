// What the verify tests share: a real tessera (../../test/tessera.mjs) with a service client
// `rs` (capabilities events and introspect), a public app `app` (password grant for AUD), a
// user alice (role reader), and a poll that measures how long a change takes to be refused.
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { startTessera } from "../../test/tessera.mjs";
import { createVerifier } from "../dist/index.js";

export const AUD = "https://api.test";
/** "Within a second": the deadline every freshness case is held to. */
export const WITHIN_MS = 1000;

export async function rig(env = {}) {
  const t = await startTessera({ env });
  const secret = t.addClient("rs", ["--grant", "client_credentials", "--can", "events", "--can", "introspect"]);
  t.cli(["client", "add", "app", "--public", "--grant", "password", "--grant", "refresh_token", "--audience", AUD]);
  const password = t.addUser("alice", ["reader"]);
  return new Rig(t, secret, password);
}

export class Rig {
  constructor(t, secret, password) {
    this.t = t;
    this.secret = secret;
    this.password = password;
    this.verifiers = [];
  }

  options(extra = {}) {
    return { issuer: this.t.issuer, audience: AUD, clientId: "rs", clientSecret: this.secret, warn: () => {}, ...extra };
  }

  /** A verifier that has caught up (closed by `close()`). */
  async verifier(extra = {}) {
    const v = await createVerifier(this.options(extra));
    this.verifiers.push(v);
    assert.ok(await v.ready(10), `caught up: ${JSON.stringify(v.health())}`);
    return v;
  }

  /** alice signs in: `{ access, refresh, claims }`. */
  async login() {
    const { status, body } = await this.t.token({
      grant_type: "password",
      client_id: "app",
      username: "alice",
      password: this.password,
    });
    assert.equal(status, 200, JSON.stringify(body));
    return { access: body.access_token, refresh: body.refresh_token, claims: decode(body.access_token) };
  }

  /** POST /revoke of a refresh token (RFC 7009): ends its session. */
  async revoke(refresh) {
    const res = await fetch(`${this.t.issuer}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: refresh, client_id: "app" }),
    });
    assert.equal(res.status, 200);
  }

  async close() {
    for (const v of this.verifiers) v.close();
    await this.t.close();
  }
}

/** The payload of a JWT, unverified (to read `sid`, `exp`). */
export function decode(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
}

/**
 * Polls `verify(token)` from now until it rejects, at most `within` ms; returns the rejection
 * and the milliseconds it took. Fails when the token is still accepted at the deadline.
 */
export async function refusedWithin(verify, token, within = WITHIN_MS) {
  const start = performance.now();
  for (;;) {
    try {
      await verify(token);
    } catch (rejection) {
      return { rejection, ms: performance.now() - start };
    }
    const ms = performance.now() - start;
    assert.ok(ms < within, `still accepted after ${Math.round(ms)} ms`);
    await new Promise((ok) => setTimeout(ok, 5));
  }
}

/** Polls `condition()` until true, at most `within` ms; fails with `what()` otherwise. */
export async function eventually(condition, within = 5000, what = () => "") {
  const deadline = performance.now() + within;
  while (!(await condition())) {
    assert.ok(performance.now() < deadline, `not within ${within} ms ${what()}`);
    await new Promise((ok) => setTimeout(ok, 10));
  }
}
