// The three adapters on one verifier, each a real server on a loopback port: a valid token
// gets 200, no token the bare 401, a missing role 403 insufficient_scope, and after a role
// change from the command line the old token is refused within a second with "roles
// changed: refresh" (the same answers through Express, Fastify and a real Nest application).
import { test } from "node:test";
import assert from "node:assert/strict";
import "reflect-metadata";
import express from "express";
import Fastify from "fastify";
import { Controller, Get, Module, Req } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { tessera } from "../dist/express.js";
import { fastifyTessera } from "../dist/fastify.js";
import { TesseraGuard, Roles, Scopes } from "../dist/nest.js";
import { rig, refusedWithin, AUD } from "./rig.mjs";
import { freePort } from "../../test/tessera.mjs";

async function expressApp(v) {
  const app = express();
  const auth = tessera(v);
  app.get("/whoami", auth, (req, res) => res.json({ sub: req.auth.sub, roles: req.auth.roles }));
  app.get("/admin", auth.requireRole("admin"), (req, res) => res.json({ ok: true }));
  app.get("/scoped", auth.requireScope("reports:read"), (req, res) => res.json({ ok: true }));
  const port = await freePort();
  const server = await new Promise((ok) => {
    const s = app.listen(port, "127.0.0.1", () => ok(s));
  });
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

async function fastifyApp(v) {
  const app = Fastify();
  await app.register(fastifyTessera, { verifier: v });
  app.get("/whoami", { preHandler: app.tessera.authenticate }, async (req) => ({ sub: req.auth.sub, roles: req.auth.roles }));
  app.get("/admin", { preHandler: app.tessera.requireRole("admin") }, async () => ({ ok: true }));
  app.get("/scoped", { preHandler: app.tessera.requireScope("reports:read") }, async () => ({ ok: true }));
  const port = await freePort();
  await app.listen({ port, host: "127.0.0.1" });
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

// A Nest application written without decorator syntax (plain .mjs): each decorator applied
// by hand, as TypeScript's compiled output would.
async function nestApp(v) {
  class Api {
    whoami(req) {
      return { sub: req.auth.sub, roles: req.auth.roles };
    }
    admin() {
      return { ok: true };
    }
    scoped() {
      return { ok: true };
    }
  }
  const method = (name, ...decorators) => {
    const descriptor = Object.getOwnPropertyDescriptor(Api.prototype, name);
    for (const d of decorators) d(Api.prototype, name, descriptor);
  };
  method("whoami", Get("whoami"));
  Req()(Api.prototype, "whoami", 0);
  method("admin", Get("admin"), Roles("admin"));
  method("scoped", Get("scoped"), Scopes("reports:read"));
  Controller()(Api);
  class AppModule {}
  Module({ controllers: [Api] })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  app.useGlobalGuards(new TesseraGuard(v));
  const port = await freePort();
  await app.listen(port, "127.0.0.1");
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

const get = async (url, token) => {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, www: res.headers.get("www-authenticate"), body: await res.text() };
};

test("Express, Fastify and Nest: 200, 401, 403 insufficient_scope, and a role change refused within a second", async () => {
  const r = await rig({ TESSERA_PERMISSION_CHANGE_POLICY: "reissue" });
  const servers = [];
  try {
    const v = await r.verifier();
    for (const [name, make] of [["express", expressApp], ["fastify", fastifyApp], ["nest", nestApp]]) {
      servers.push({ name, ...(await make(v)) });
    }
    const { access, claims } = await r.login();
    for (const s of servers) {
      const ok = await get(`${s.url}/whoami`, access);
      assert.equal(ok.status, 200, `${s.name}: ${ok.body}`);
      assert.deepEqual(JSON.parse(ok.body), { sub: claims.sub, roles: ["reader"] }, s.name);

      const none = await get(`${s.url}/whoami`);
      assert.equal(none.status, 401, s.name);
      assert.equal(none.www, `Bearer realm="${AUD}"`, s.name);

      const bad = await get(`${s.url}/whoami`, "not.a.token");
      assert.equal(bad.status, 401, s.name);
      assert.match(bad.www, /error="invalid_token", error_description="invalid token: /, s.name);

      const admin = await get(`${s.url}/admin`, access);
      assert.equal(admin.status, 403, s.name);
      assert.equal(admin.www, `Bearer realm="${AUD}", error="insufficient_scope", error_description="requires role admin"`, s.name);
      assert.deepEqual(JSON.parse(admin.body), { error: "insufficient_scope", error_description: "requires role admin" }, s.name);

      const scoped = await get(`${s.url}/scoped`, access);
      assert.equal(scoped.status, 403, s.name);
      assert.match(scoped.www, /error_description="requires scope reports:read", scope="reports:read"$/, s.name);
    }
    r.t.setRoles("alice", ["admin"]);
    const refusals = await Promise.all(
      servers.map(async (s) => {
        const { rejection, ms } = await refusedWithin(async (token) => {
          const res = await get(`${s.url}/whoami`, token);
          if (res.status !== 200) throw res;
        }, access);
        return { name: s.name, rejection, ms };
      }),
    );
    for (const { name, rejection, ms } of refusals) {
      assert.equal(rejection.status, 401, name);
      assert.equal(rejection.www, `Bearer realm="${AUD}", error="invalid_token", error_description="roles changed: refresh"`, name);
      console.log(`${name}: role change refused after ${ms.toFixed(0)} ms`);
    }
    // The new token, with the new role, passes the role check on each.
    const fresh = await r.login();
    for (const s of servers) assert.equal((await get(`${s.url}/admin`, fresh.access)).status, 200, s.name);
  } finally {
    for (const s of servers) await s.close();
    await r.close();
  }
});
