// Benchmark (never a test): the verifier state's heap per tracked entry. Fills N revoked
// sessions, N users with a newer `ver`, N disabled users (each kind in a fresh state, through
// the same event handling the feed uses, ids as tessera mints them: hyphenated UUIDs) and
// reads the V8 heap's growth after a full GC.
//
//   cd js && node --expose-gc verify/bench/memory.mjs [N [KIND]]      (default 100000, every kind)
import { Freshness } from "../dist/state.js";

if (typeof globalThis.gc !== "function") {
  console.error("run with node --expose-gc");
  process.exit(2);
}
const n = Number(process.argv[2] ?? 100_000);
const at = new Date().toISOString();
const heap = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
};

const kinds = {
  "revoked sid": (i) => ({ id: i, type: "session.revoked", sub: crypto.randomUUID(), sid: crypto.randomUUID(), at }),
  "user ver": (i) => ({ id: i, type: "user.roles_changed", sub: crypto.randomUUID(), ver: 2, roles: ["r"], at }),
  "disabled user": (i) => ({ id: i, type: "user.disabled", sub: crypto.randomUUID(), ver: 3, at }),
};
// One kind per run (a previous kind's freed maps would blur the next one's figure): with no
// KIND argument, each kind runs in a child process of its own.
const only = process.argv[3];
if (only === undefined) {
  const { execFileSync } = await import("node:child_process");
  for (const kind of Object.keys(kinds)) {
    const args = ["--expose-gc", process.argv[1], String(n), kind];
    process.stdout.write(execFileSync(process.execPath, args, { encoding: "utf8" }));
  }
  process.exit(0);
}
for (const [name, make] of Object.entries(kinds).filter(([k]) => k === only)) {
  // Each event is made, applied and dropped: what the state keeps (its maps, and the id
  // strings it holds on to) is what grows the heap.
  const before = heap();
  const state = new Freshness(300);
  // Through JSON.parse, as the feed reads them (flat strings, not crypto.randomUUID's ropes).
  for (let i = 1; i <= n; i++) state.apply(JSON.parse(JSON.stringify(make(i))));
  const after = heap();
  const held = state.sessions.size + state.users.size;
  console.log(`${name}: ${held} entries, ${((after - before) / held).toFixed(1)} bytes per entry`);
}
