//! The live-roles demo end to end (examples/live-roles/run.sh, started as a newcomer would):
//! Chromium signs in through the login page, `tessera user roles` changes the user's roles
//! in the demo's database, and the page shows the new roles (policy `reissue`) or the
//! ended session (policy `revoke`); both APIs' role routes (Rust on tessera-verify, Express on
//! @tessera/verify) then answer 403. The script is
//! tests/browser/live_roles.mjs; skipped as tests/api/browser/sign_in.rs is without Chromium.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::browser::sign_in::{CHROMIUM, chromium_present, node, target_dir};

/// run.sh as a child process; SIGTERM on drop (its trap stops tessera and the API).
struct Demo {
    child: Child,
    line: Value,
}

impl Demo {
    fn start(policy: &str) -> Demo {
        // The page and the Express API come from js/: built here, under the lock the js
        // tests share, so run.sh never runs npm beside them.
        crate::js::built();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tessera = PathBuf::from(env!("CARGO_BIN_EXE_tessera"));
        let mut cmd = Command::new("bash");
        cmd.arg(root.join("examples/live-roles/run.sh"))
            .args(["--policy", policy])
            .env("LIVE_ROLES_JS_READY", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // `cargo test` builds the examples next to the binaries; else run.sh builds it.
        let api = tessera.with_file_name("examples").join("live_roles_api");
        if api.exists() {
            cmd.env("TESSERA_BIN", &tessera)
                .env("LIVE_ROLES_API_BIN", &api);
        }
        let mut child = cmd.spawn().expect("bash");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let mut demo = Demo {
            child,
            line: Value::Null,
        };
        assert!(
            read.is_ok_and(|n| n > 0),
            "run.sh printed nothing (see its stderr above)"
        );
        demo.line = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        demo
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn run(policy: &str, set_roles: &str) -> (Value, Value) {
    let demo = Demo::start(policy);
    for key in [
        "app",
        "issuer",
        "api",
        "express_api",
        "database_url",
        "keys_dir",
        "username",
        "password",
    ] {
        assert!(demo.line[key].is_string(), "{key} in {:#}", demo.line);
    }
    let profile = tempfile::tempdir().unwrap();
    let shots = target_dir().join("live-roles");
    std::fs::create_dir_all(&shots).unwrap();
    let args = json!({
        "chromium": CHROMIUM,
        "userDataDir": profile.path(),
        "demo": demo.line,
        "tessera": env!("CARGO_BIN_EXE_tessera"),
        "policy": policy,
        "setRoles": set_roles,
        "before": shots.join(format!("{policy}-before.png")),
        "after": shots.join(format!("{policy}-after.png")),
    });
    let out = node("live_roles.mjs", &args);
    println!("screenshots: {}", shots.display());
    println!(
        "{policy}: `tessera user roles` exited → page updated in {} ms ({} ms from the command's start); the page's own figures: {:#}",
        out["latencyMs"], out["fromCliStartMs"], out["change"]
    );
    (demo.line.clone(), out)
}

fn signed_in_with_both_roles(out: &Value) {
    assert_eq!(out["user"], "demo", "{out:#}");
    assert_eq!(out["rolesBefore"], "viewer,editor", "{out:#}");
    let before = out["roleCallBefore"].as_str().unwrap();
    assert!(before.starts_with("GET /publish → 200"), "{out:#}");
    let express = out["expressCallBefore"].as_str().unwrap();
    assert!(express.starts_with("GET /roles/editor → 200"), "{out:#}");
    // Failed requests (a refused refresh) are logged by the browser; exceptions are bugs.
    assert_eq!(
        out["errors"],
        json!([]),
        "no uncaught errors in the page: {out:#}"
    );
}

#[test]
fn live_roles_demo_shows_new_roles_at_once_and_the_api_refuses_the_removed_one() {
    if !chromium_present() {
        return;
    }
    let (_, out) = run("reissue", "viewer");
    signed_in_with_both_roles(&out);
    assert_eq!(out["rolesAfter"], "viewer", "{out:#}");
    assert_eq!(out["statusAfter"], "signed in");
    assert_eq!(out["change"]["cells"][0], "user.roles_changed");
    assert_eq!(out["change"]["cells"][2], "viewer");
    assert!(
        out["openCallAfter"]
            .as_str()
            .unwrap()
            .starts_with("GET /whoami → 200"),
        "{out:#}"
    );
    let after = out["roleCallAfter"].as_str().unwrap();
    assert!(
        after.starts_with("GET /publish → 403 insufficient_scope"),
        "{out:#}"
    );
    let express = out["expressCallAfter"].as_str().unwrap();
    assert!(
        express.starts_with("GET /roles/editor → 403 insufficient_scope"),
        "{out:#}"
    );
    // A change the page missed (its event polls held): the API answers 401 "roles
    // changed", the page refreshes once and the retry passes with the role given back.
    assert_eq!(out["rolesWhileHeld"], "viewer", "{out:#}");
    assert_eq!(
        out["retriedCall"], "GET /publish → 200 published (you hold editor) (after one refresh)",
        "{out:#}"
    );
    assert_eq!(out["rolesAfterRetry"], "viewer,editor");
}

#[test]
fn live_roles_demo_under_revoke_shows_the_session_ended_and_offers_sign_in() {
    if !chromium_present() {
        return;
    }
    let (_, out) = run("revoke", "viewer");
    signed_in_with_both_roles(&out);
    let status = out["statusAfter"].as_str().unwrap();
    assert!(status.starts_with("session ended"), "{out:#}");
    assert_eq!(out["rolesAfter"], "", "no roles once signed out");
    assert_eq!(out["signinVisible"], true);
    assert_eq!(out["change"]["cells"][2], "(session ended)", "{out:#}");
}
