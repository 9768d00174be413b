// Fastify 5: a plugin that puts `fastify.tessera` (preHandler hooks: `authenticate`,
// `requireRole`, `requireScope`) on the instance and the claims on `request.auth`.

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

import { requireRole as checkRole, requireScope as checkScope, type Claims } from "./claims.js";
import { bearer, Rejection } from "./rejection.js";
import type { Verifier } from "./verifier.js";

/** A preHandler (or onRequest) hook that verifies the request's token. */
export type TesseraHook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface TesseraFastify {
  verifier: Verifier;
  /** Verifies the bearer token; answers the RFC 6750 401 otherwise. */
  authenticate: TesseraHook;
  /** Verifies (unless done already) and answers 403 `insufficient_scope` without `role`. */
  requireRole(role: string): TesseraHook;
  /** Verifies (unless done already) and answers 403 unless the token has `scope`. */
  requireScope(scope: string): TesseraHook;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The verified claims, set by @tessera/verify's hooks. */
    auth: Claims | null;
  }
  interface FastifyInstance {
    tessera: TesseraFastify;
  }
}

export interface FastifyTesseraOptions {
  verifier: Verifier;
  /** Verify every request of the instance (an `onRequest` hook), not only the routes that ask. */
  all?: boolean;
}

/** Hooks for one verifier, without registering a plugin. */
export function tesseraHooks(verifier: Verifier): TesseraFastify {
  const realm = verifier.options.realm;
  const hook =
    (check?: (c: Claims) => void): TesseraHook =>
    async (request, reply) => {
      try {
        const claims = request.auth ?? (await verifier.verify(bearer(request.headers.authorization)));
        request.auth = claims;
        check?.(claims);
      } catch (e) {
        if (!(e instanceof Rejection)) throw e;
        const { status, headers, body } = e.response(realm);
        return reply.code(status).headers(headers).send(body);
      }
    };
  return {
    verifier,
    authenticate: hook(),
    requireRole: (role) => hook((c) => checkRole(c, role)),
    requireScope: (scope) => hook((c) => checkScope(c, scope)),
  };
}

/**
 *     await app.register(fastifyTessera, { verifier });
 *     app.get("/whoami", { preHandler: app.tessera.authenticate }, (req) => req.auth);
 *     app.get("/admin", { preHandler: app.tessera.requireRole("admin") }, handler);
 */
export async function fastifyTessera(fastify: FastifyInstance, options: FastifyTesseraOptions): Promise<void> {
  const hooks = tesseraHooks(options.verifier);
  fastify.decorateRequest("auth", null);
  fastify.decorate("tessera", hooks);
  if (options.all) fastify.addHook("onRequest", hooks.authenticate);
  return Promise.resolve();
}

// What fastify-plugin would set: the decorations and hooks belong to the registering scope.
Object.assign(fastifyTessera, {
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "@tessera/verify",
});
