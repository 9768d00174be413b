// A real tessera for the packages' tests: the built binary (`TESSERA_BIN`, else
// ../target/debug/tessera), a fresh SQLite database in a temporary folder, on a free loopback
// port that it keeps across restarts (so the issuer, and tokens already out, stay valid).
// The CLI runs against the same database while the server serves, as an operator's would.
//
//   const t = await startTessera({ env: { TESSERA_PERMISSION_CHANGE_POLICY: "reissue" } });
//   t.cli(["user", "add", "alice", "--role", "editor", "--password-stdin"], { stdin: "pw\n" });
//   ...
//   await t.stop();

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The tessera binary the tests run. */
export const TESSERA_BIN =
  process.env.TESSERA_BIN ?? resolve(here, "../../target/debug/tessera");

/** A free loopback port (bound, read, released). */
export async function freePort() {
  return await new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** Starts tessera; resolves once `/readyz` answers 200. */
export async function startTessera({ env = {} } = {}) {
  // A port freePort() found may be taken by another test process before tessera binds it:
  // then tessera exits at once, and a fresh pair of ports (and folder) is tried, a few times.
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), "tessera-js-"));
    const port = await freePort();
    const opsPort = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const fullEnv = {
      PATH: process.env.PATH ?? "",
      RUST_LOG: "info",
      DATABASE_URL: `sqlite:${join(dir, "tessera.db")}`,
      TESSERA_KEYS_DIR: join(dir, "keys"),
      TESSERA_ARGON2_MEMORY_KIB: "64",
      TESSERA_ARGON2_ITERATIONS: "1",
      TESSERA_BIND: `127.0.0.1:${port}`,
      TESSERA_OPS_BIND: `127.0.0.1:${opsPort}`,
      TESSERA_ISSUER: issuer,
      ...env,
    };
    const t = new Tessera(dir, issuer, `http://127.0.0.1:${opsPort}`, fullEnv);
    try {
      await t.start();
      return t;
    } catch (e) {
      if (attempt >= 3 || !/address already in use/i.test(e.message)) throw e;
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

export class Tessera {
  constructor(dir, issuer, opsUrl, env) {
    /** The temporary folder: database, keys, `tessera.log`. */
    this.dir = dir;
    /** `http://127.0.0.1:PORT`, the `iss` of every token. */
    this.issuer = issuer;
    /** The operator listener (`/metrics`, `/healthz`). */
    this.opsUrl = opsUrl;
    /** The server's whole environment; `cli` uses the same. */
    this.env = env;
    this.child = null;
    this.log = join(dir, "tessera.log");
  }

  /** Starts (or restarts) `tessera serve` on the same port and database. */
  async start() {
    if (this.child) throw new Error("tessera is already running");
    const fd = openSync(this.log, "a");
    this.child = spawn(TESSERA_BIN, ["serve"], {
      env: this.env,
      cwd: this.dir,
      stdio: ["ignore", "ignore", fd],
    });
    closeSync(fd);
    const exited = new Promise((ok) => this.child.once("exit", (code) => ok(code)));
    this.exited = exited;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const early = await Promise.race([exited, new Promise((ok) => setTimeout(() => ok(undefined), 50))]);
      if (early !== undefined) {
        this.child = null;
        throw new Error(`tessera exited with ${early}:\n${this.tail()}`);
      }
      try {
        // The operator listener too: another process may hold the public port (and answer
        // there) while this child exits, unable to bind it.
        const res = await fetch(`${this.issuer}/readyz`);
        if (res.ok && (await fetch(`${this.opsUrl}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`tessera not ready in 30 s:\n${this.tail()}`);
    }
  }

  /** SIGTERM, and waits for the exit (a graceful shutdown ends open streams). */
  async stop({ signal = "SIGTERM" } = {}) {
    if (!this.child) return;
    this.child.kill(signal);
    await this.exited;
    this.child = null;
  }

  /** Stops and starts again on the same port and database. */
  async restart() {
    await this.stop();
    await this.start();
  }

  /** Stops the server and removes its folder. */
  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines of the server's log (for failure messages). */
  tail(lines = 30) {
    try {
      return readFileSync(this.log, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /**
   * Runs `tessera ARGS` on the same database and keys; returns its trimmed stdout, or throws
   * with stderr when it exits non-zero (`{ check: false }` returns `{ status, stdout, stderr }`).
   */
  cli(args, { stdin, check = true } = {}) {
    const out = spawnSync(TESSERA_BIN, args, {
      env: { ...this.env, RUST_LOG: "warn" },
      cwd: this.dir,
      input: stdin ?? "",
      encoding: "utf8",
    });
    if (!check) return { status: out.status, stdout: out.stdout, stderr: out.stderr };
    if (out.status !== 0) {
      throw new Error(`tessera ${args.join(" ")} exited ${out.status}: ${out.stderr}`);
    }
    return out.stdout.trim();
  }

  /** Adds a user with roles; returns the password. */
  addUser(name, roles = [], password = `pw-${name}-${Math.random().toString(36).slice(2)}`) {
    this.cli(["user", "add", name, ...roles.flatMap((r) => ["--role", r]), "--password-stdin"], {
      stdin: `${password}\n`,
    });
    return password;
  }

  /** Sets a user's roles with the CLI (as an operator would): the change the feed carries. */
  setRoles(name, roles) {
    this.cli(["user", "roles", name, "--set", roles.join(",")]);
  }

  /** Adds a confidential client; returns its secret. `args` are extra `client add` flags. */
  addClient(id, args = []) {
    return this.cli(["client", "add", id, ...args]);
  }

  /** POST /token with a form; returns `{ status, body }`. */
  async token(form) {
    const res = await fetch(`${this.issuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
    return { status: res.status, body: await res.json() };
  }
}
