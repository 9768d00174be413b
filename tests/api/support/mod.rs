//! The suite's support: one place for the server under test, its fixtures, the
//! shared assertions and the one way to wait for a condition.
//!
//! - [`app`]: `TestApp`, the real server in-process on port 0 with a fresh database.
//! - [`served`]: `Served`, the real `tessera` binary as a child process; `run_cli`.
//! - [`fixtures`]: named set-ups several test files share (no tuples).
//! - [`assert`]: the wire shapes of errors (RFC 6749 §5.2, RFC 6750 §3).
//! - [`eventually`]: bounded polling for a state another task or process reaches.

pub mod app;
pub mod assert;
pub mod fixtures;
pub mod served;

use std::time::{Duration, Instant};

pub use app::*;
pub use assert::*;
pub use fixtures::*;
pub use served::*;

/// The password of the suite's users unless a test says otherwise.
pub const PASSWORD: &str = "correct horse battery";

/// The suite's usual user name.
pub const USER: &str = "alice";

/// Polls `check` every 10 ms until it holds or `within` has passed; returns whether
/// it held. For a state another task or process reaches (a reload, a connection
/// seen, a child listening), never for time to pass.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Says, on stderr and so in nextest's output, that a test did not run here and why;
/// returns `true` so a caller can write `if skip_unless(...) { return; }`.
pub fn skip_unless(condition: bool, why: &str) -> bool {
    if !condition {
        eprintln!("skipped: {why}");
    }
    !condition
}

/// A cross-process lock: whoever creates the file holds it. A lock older than ten
/// minutes was left by a process that died while holding it.
pub(crate) struct LockFile(std::path::PathBuf);

impl LockFile {
    pub(crate) fn acquire(path: std::path::PathBuf) -> Self {
        let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(900);
        loop {
            match std::fs::File::create_new(&path) {
                Ok(_) => return Self(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if age.is_some_and(|a| a > std::time::Duration::from_secs(600)) {
                        let _ = std::fs::remove_file(&path);
                    }
                    assert!(
                        std::time::SystemTime::now() < deadline,
                        "timed out waiting for {}",
                        path.display()
                    );
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
