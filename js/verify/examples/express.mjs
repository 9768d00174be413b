#!/usr/bin/env node
// An Express resource server on @tessera/verify, run exactly like the Rust example
// (verify/examples/resource_server.rs and live_roles_api.rs):
//
//   node js/verify/examples/express.mjs --issuer URL --audience AUD --port PORT \
//     --client-id ID --client-secret SECRET [--max-staleness SECONDS] [--cors-origin ORIGIN]
//
// The secret may come from TESSERA_VERIFY_CLIENT_SECRET instead. Prints `listening` on stdout
// once it serves. GET /whoami: 200 {"sub", "roles"} for a valid, fresh token, the RFC 6750
// 401 otherwise; GET /roles/{role}: 200, or 403 insufficient_scope without that role;
// GET /readyz: the feed's health (503 while stale).
import { parseArgs } from "node:util";
import express from "express";
import { createVerifier } from "@tessera/verify";
import { tessera } from "@tessera/verify/express";

const { values: args } = parseArgs({
  options: {
    issuer: { type: "string" },
    audience: { type: "string" },
    port: { type: "string", default: "8090" },
    host: { type: "string", default: "127.0.0.1" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    "max-staleness": { type: "string" },
    policy: { type: "string" },
    "cors-origin": { type: "string" },
  },
});
const secret = args["client-secret"] ?? process.env.TESSERA_VERIFY_CLIENT_SECRET;
for (const [name, value] of Object.entries({ issuer: args.issuer, audience: args.audience, "client-id": args["client-id"], "client-secret": secret })) {
  if (!value) {
    console.error(`--${name} is required (the secret may come from TESSERA_VERIFY_CLIENT_SECRET)`);
    process.exit(2);
  }
}

const verifier = await createVerifier({
  issuer: args.issuer,
  audience: args.audience,
  clientId: args["client-id"],
  clientSecret: secret,
  ...(args["max-staleness"] ? { maxStaleness: Number(args["max-staleness"]) } : {}),
  ...(args.policy ? { policy: args.policy } : {}),
});
if (!(await verifier.ready(10))) {
  console.error("the event feed has not caught up yet; tokens are refused until it does");
}

const app = express();
app.disable("x-powered-by");
const origin = args["cors-origin"];
// CORS for one origin only: preflights answer 204; answers expose WWW-Authenticate so a
// browser app can read why a token was refused.
app.use((req, res, next) => {
  res.vary("Origin");
  const allowed = origin !== undefined && req.headers.origin === origin;
  if (req.method === "OPTIONS") {
    if (!allowed) return res.sendStatus(403);
    return res
      .set({
        "access-control-allow-origin": origin,
        "access-control-allow-methods": "GET",
        "access-control-allow-headers": "authorization",
        "access-control-max-age": "600",
      })
      .sendStatus(204);
  }
  if (allowed) {
    res.set({ "access-control-allow-origin": origin, "access-control-expose-headers": "WWW-Authenticate" });
  }
  next();
});

const auth = tessera(verifier);
app.get("/whoami", auth, (req, res) => res.json({ sub: req.auth.sub, roles: req.auth.roles }));
app.get("/roles/:role", auth, (req, res, next) => auth.requireRole(req.params.role)(req, res, next), (req, res) =>
  res.json({ sub: req.auth.sub, role: req.params.role }),
);
app.get("/readyz", (req, res) => {
  const h = verifier.health();
  res.status(h.stale ? 503 : 200).json(h);
});

const server = app.listen(Number(args.port), args.host, () => {
  console.log("listening");
});
const stop = () => {
  verifier.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
