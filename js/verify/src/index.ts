// @tessera/verify: verify tessera access tokens offline in a Node service, and refuse a stale
// one within a second (the Node half of the Rust crate tessera-verify).
export { createVerifier, Verifier, StartError } from "./verifier.js";
export type { VerifierOptions, StalePolicy, Health } from "./verifier.js";
export { Rejection, bearer } from "./rejection.js";
export type { RejectionKind } from "./rejection.js";
export { LEEWAY, hasAmr, hasRole, hasScope, requireAmr, requireRole, requireScope } from "./claims.js";
export type { Claims } from "./claims.js";
export type { SecurityEvent } from "./state.js";
