// How long a role change takes to show in a signed-in page: the React test app in Chromium,
// N changes made with `tessera user roles` (alternating roles), each timed from the command's
// exit (and from its start) to the page's DOM change. Prints p50, p90, p99 and max of each.
//
//   cd js && TESSERA_BIN=… node browser/bench/roles-latency.mjs [--changes 50] [--policy reissue]
import { parseArgs } from "node:util";
import { setUp, signIn, timeChange } from "../test/support/browser.mjs";

const { values } = parseArgs({ options: { changes: { type: "string", default: "50" }, policy: { type: "string", default: "reissue" } } });
if (values.policy !== "reissue") throw new Error("only reissue: under revoke the first change ends the session");
const s = await setUp("react-app.jsx", values.policy);
try {
  await signIn(s.page, s.app.origin, "alice", s.password);
  const sets = [["viewer"], ["viewer", "editor"]];
  const afterExit = [];
  const afterStart = [];
  for (let i = 0; i < Number(values.changes); i++) {
    const roles = sets[i % 2].join(",");
    const t = await timeChange(s.page, () => s.t.setRoles("alice", sets[i % 2]),
      (want) => document.querySelector("[data-testid=roles]").textContent === want, roles);
    afterExit.push(t.afterExit);
    afterStart.push(t.afterStart);
  }
  const summary = (ms) => {
    ms.sort((a, b) => a - b);
    const at = (q) => ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)];
    return { min: ms[0], p50: at(0.5), p90: at(0.9), p99: at(0.99), max: ms.at(-1) };
  };
  console.log(JSON.stringify({ changes: afterExit.length, afterExit: summary(afterExit), afterStart: summary(afterStart) }));
} finally {
  await s.close();
}
