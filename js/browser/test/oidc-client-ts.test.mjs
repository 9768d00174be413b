// Interop: oidc-client-ts (a library nobody here wrote) signs in with its own code flow and
/* global atob */
// holds the tokens; @tessera/browser follows the roles through fromUserManager() and
// refreshes through the UserManager (signinSilent: a refresh-token grant).
import { test } from "node:test";
import assert from "node:assert/strict";
import { roleChangeFollowed, skipWithoutBrowser } from "./support/browser.mjs";

for (const policy of ["reissue", "revoke"]) {
  test(`oidc-client-ts signs in, @tessera/browser follows the roles (policy ${policy})`,
    { skip: skipWithoutBrowser, timeout: 50_000 }, (tc) =>
      roleChangeFollowed(tc, "oidc-client-ts-app.js", policy, assert, {
        more: async ({ page }) => {
          if (policy !== "reissue") return;
          // The new roles came with tokens the UserManager itself now holds.
          const stored = await page.evaluate(() => {
            const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
            const at = JSON.parse(sessionStorage.getItem(key)).access_token;
            return JSON.parse(atob(at.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).roles;
          });
          assert.deepEqual(stored, ["viewer"]);
        },
      }));
}
