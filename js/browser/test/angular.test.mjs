// An Angular app (JIT, zoneless, TesseraService's signals) signed in through tessera's login
// page follows a role change made on the command line: new roles under policy reissue, the
// session ended under revoke.
import { test } from "node:test";
import assert from "node:assert/strict";
import { roleChangeFollowed, skipWithoutBrowser } from "./support/browser.mjs";

for (const policy of ["reissue", "revoke"]) {
  test(`Angular: a role change shows in the page (policy ${policy})`, { skip: skipWithoutBrowser, timeout: 50_000 }, (tc) =>
    roleChangeFollowed(tc, "angular-app.ts", policy, assert, { rootTag: "<app-root></app-root>" }));
}
