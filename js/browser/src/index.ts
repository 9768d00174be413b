// @tessera/browser: a single-page app's session that follows the signed-in user's roles on
// tessera's event feed (docs/browser.md).
export { Session, type SessionOptions, type SessionState, type TesseraEvent } from "./session.js";
export { CodeFlow, TokenError, type CodeFlowOptions } from "./code-flow.js";
export { fromUserManager, type UserManagerLike } from "./oidc-client-ts.js";
export { decodeClaims, type AccessClaims } from "./claims.js";
export type { TokenSource } from "./tokens.js";
