// NestJS (10, 11): a guard that verifies the bearer token and checks the roles and scopes
// that `@Roles()` / `@Scopes()` ask for on the handler or its controller. Decorator-free in
// its own source (SetMetadata and Reflector), so it needs no compiler flags.

import { HttpException, SetMetadata, type CanActivate, type ExecutionContext } from "@nestjs/common";
import { Reflector } from "@nestjs/core";

import { requireRole as checkRole, requireScope as checkScope, type Claims } from "./claims.js";
import { bearer, Rejection } from "./rejection.js";
import type { Verifier } from "./verifier.js";

export const ROLES_KEY = "tessera:roles";
export const SCOPES_KEY = "tessera:scopes";

/** The token must carry every one of these roles (403 `insufficient_scope` otherwise). */
export const Roles = (...roles: string[]) => SetMetadata(ROLES_KEY, roles);
/** The token's scope must include every one of these (403 `insufficient_scope` otherwise). */
export const Scopes = (...scopes: string[]) => SetMetadata(SCOPES_KEY, scopes);

interface HttpRequest {
  headers: Record<string, string | string[] | undefined>;
  auth?: Claims;
}

/** Express's `setHeader` or Fastify's `header`. */
interface HttpResponse {
  setHeader?: (name: string, value: string) => unknown;
  header?: (name: string, value: string) => unknown;
}

/**
 *     app.useGlobalGuards(new TesseraGuard(verifier));            // or @UseGuards(guard)
 *     @Roles("admin") @Get("admin") admin(@Req() req) { return req.auth.sub; }
 *     @UseGuards(guard.requireRole("editor")) @Get("publish") ...
 */
export class TesseraGuard implements CanActivate {
  constructor(
    readonly verifier: Verifier,
    private readonly reflector: Reflector = new Reflector(),
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    const roles = this.reflector.getAllAndMerge<string[]>(ROLES_KEY, targets) ?? [];
    const scopes = this.reflector.getAllAndMerge<string[]>(SCOPES_KEY, targets) ?? [];
    return await this.#check(context, (c) => {
      for (const r of roles) checkRole(c, r);
      for (const s of scopes) checkScope(c, s);
    });
  }

  /** A guard for one route: verifies (unless done already) and requires `role`. */
  requireRole(role: string): CanActivate {
    return { canActivate: (context) => this.#check(context, (c) => checkRole(c, role)) };
  }

  /** A guard for one route: verifies (unless done already) and requires `scope`. */
  requireScope(scope: string): CanActivate {
    return { canActivate: (context) => this.#check(context, (c) => checkScope(c, scope)) };
  }

  async #check(context: ExecutionContext, check: (c: Claims) => void): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<HttpRequest>();
    try {
      const header = request.headers.authorization;
      const claims = request.auth ?? (await this.verifier.verify(bearer(header)));
      request.auth = claims;
      check(claims);
      return true;
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      const response = http.getResponse<HttpResponse>();
      const { status, headers } = e.response(this.verifier.options.realm);
      for (const [name, value] of Object.entries(headers)) {
        if (name === "content-type") continue; // Nest writes the body and its type
        if (response.setHeader) response.setHeader(name, value);
        else response.header?.(name, value);
      }
      throw new HttpException(e.body() ?? "Unauthorized", status);
    }
  }
}
