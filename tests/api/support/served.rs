//! `Served`: the real `tessera` binary as a child process, and `run_cli`.

use std::path::PathBuf;
use std::sync::Arc;

use tempfile::TempDir;

use super::fresh_database_url;

/// Runs the `tessera` binary with exactly `env` (and `PATH`) in `dir`; returns
/// (status, stdout, stderr). Blocking: from async code, call it in `spawn_blocking`.
pub fn run_cli(
    env: &[(String, String)],
    dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tessera");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `tessera` binary itself, serving on port 0 with its stderr in a file
/// (process-level hardening tests: logs, signals, crashes).
pub struct Served {
    pub child: std::process::Child,
    /// `http://127.0.0.1:port`
    pub addr: String,
    /// The operator listener, `http://127.0.0.1:port`.
    pub ops_addr: String,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
    pub dir: Arc<TempDir>,
}

/// The issuer of every `Served` instance, so a restarted server (new port) accepts old tokens.
pub const SERVED_ISSUER: &str = "http://tessera.test";

impl Served {
    /// Environment for a fresh database in `dir`; `extra` are `(VARIABLE, value)` overrides.
    pub fn env_for(dir: &TempDir, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", fresh_database_url(dir)),
            (
                "TESSERA_KEYS_DIR",
                dir.path().join("keys").display().to_string(),
            ),
            ("TESSERA_ARGON2_MEMORY_KIB", "64".into()),
            ("TESSERA_ARGON2_ITERATIONS", "1".into()),
            ("TESSERA_BIND", "127.0.0.1:0".into()),
            ("TESSERA_OPS_BIND", "127.0.0.1:0".into()),
            ("TESSERA_ISSUER", SERVED_ISSUER.into()),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    /// Starts `tessera serve`, its stderr going to `dir/log_name`; returns once it listens.
    pub async fn start(dir: Arc<TempDir>, env: Vec<(String, String)>, log_name: &str) -> Self {
        Self::start_under(&[], dir, env, log_name).await
    }

    /// Like [`Served::start`], run under `wrapper` (e.g. `["prlimit", "--nofile=64"]`).
    pub async fn start_under(
        wrapper: &[&str],
        dir: Arc<TempDir>,
        env: Vec<(String, String)>,
        log_name: &str,
    ) -> Self {
        use std::process::{Command, Stdio};
        let log = dir.path().join(log_name);
        let file = std::fs::File::create(&log).expect("log file");
        let bin = env!("CARGO_BIN_EXE_tessera");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn tessera serve");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (addr, ops_addr) = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let port = |marker: &str| {
                text.lines()
                    .find(|l| l.contains(marker))
                    .and_then(|l| l.split("127.0.0.1:").nth(1))
                    .map(|rest| {
                        rest.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                    })
                    .filter(|p| !p.is_empty())
            };
            if let Some(public) = port("tessera listening") {
                let ops = port("operator listener").unwrap_or_default();
                break (
                    format!("http://127.0.0.1:{public}"),
                    format!("http://127.0.0.1:{ops}"),
                );
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("tessera serve exited with {status} before listening:\n{text}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tessera serve did not listen within 30 s:\n{text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        Self {
            child,
            addr,
            ops_addr,
            log,
            env,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// `host:port`, for raw sockets.
    pub fn socket(&self) -> String {
        self.addr.trim_start_matches("http://").to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `KILL`, ...) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `within` for the process to exit.
    pub async fn wait_exit(
        &mut self,
        within: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs the `tessera` CLI against this server's database; returns (status, stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        run_cli(&self.env, self.dir.path(), args, stdin)
    }

    /// Like [`Served::cli`], asserting success; returns stdout trimmed.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (code, out, err) = self.cli(args, stdin);
        assert_eq!(code, 0, "tessera {args:?} failed: {err}");
        out.trim().to_string()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
