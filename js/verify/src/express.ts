// Express (4 and 5): a middleware that verifies the bearer token of every request it sees
// and puts the claims on `req.auth`, plus `requireRole`/`requireScope` for single routes.

import type { NextFunction, Request, RequestHandler, Response } from "express";

import {
  requireAmr as checkAmr,
  requireRole as checkRole,
  requireScope as checkScope,
  type Claims,
} from "./claims.js";
import { bearer, Rejection } from "./rejection.js";
import type { Verifier } from "./verifier.js";

declare module "express-serve-static-core" {
  interface Request {
    /** The verified claims, set by @tessera/verify's middleware. */
    auth?: Claims;
  }
}

/** The middleware, with per-route requirements. */
export interface TesseraMiddleware extends RequestHandler {
  /** Verifies (unless an outer middleware did) and answers 403 `insufficient_scope` without `role`. */
  requireRole(role: string): RequestHandler;
  /** Verifies (unless an outer middleware did) and answers 403 unless the token has `scope`. */
  requireScope(scope: string): RequestHandler;
  /** Verifies (unless done already) and answers 401 `insufficient_user_authentication` unless the user signed in with `method` (`amr`). */
  requireAmr(method: string): RequestHandler;
}

/** Sends the RFC 6750 answer of a rejection. */
export function sendRejection(res: Response, rejection: Rejection, realm: string): void {
  const { status, headers, body } = rejection.response(realm);
  res.status(status).set(headers).send(body);
}

/**
 *     const auth = tessera(verifier);
 *     app.get("/whoami", auth, (req, res) => res.json(req.auth));
 *     app.get("/admin", auth.requireRole("admin"), handler);
 */
export function tessera(verifier: Verifier): TesseraMiddleware {
  const realm = verifier.options.realm;
  const guard = (check?: (c: Claims) => void): RequestHandler =>
    (req: Request, res: Response, next: NextFunction) => {
      const verified = req.auth ? Promise.resolve(req.auth) : verifyRequest(verifier, req.headers.authorization);
      verified
        .then((claims) => {
          req.auth = claims;
          check?.(claims);
        })
        .then(
          () => next(),
          (e: unknown) => {
            if (e instanceof Rejection) sendRejection(res, e, realm);
            else next(e);
          },
        );
    };
  const middleware = guard() as TesseraMiddleware;
  middleware.requireRole = (role) => guard((c) => checkRole(c, role));
  middleware.requireScope = (scope) => guard((c) => checkScope(c, scope));
  middleware.requireAmr = (method) => guard((c) => checkAmr(c, method));
  return middleware;
}

async function verifyRequest(verifier: Verifier, header: string | undefined): Promise<Claims> {
  return await verifier.verify(bearer(header));
}
