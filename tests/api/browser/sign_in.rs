//! The code flow in a real browser (Debian's Chromium driven by playwright-core) and
//! with a real OpenID Connect library (openid-client): the Node scripts in
//! tests/browser/, installed with `npm ci` into `target/browser-node` on first use.
//! Without /usr/bin/chromium the browser test says "skipped" and passes, unless
//! TESSERA_REQUIRE_BROWSER=1 (CI sets it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use tessera::domain::clients::NewClient;

use crate::helpers::*;
use crate::oauth::code_flow::query_of;

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

pub(crate) fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `target/browser-node`: the scripts and `npm ci`'s node_modules; installed once.
fn node_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("browser-node");
        let lock = std::fs::read(source_dir().join("package-lock.json")).unwrap();
        let stamp = dir.join(format!(
            ".ready-{}",
            tessera::crypto::b64(&tessera::crypto::sha256(&lock)[..8])
        ));
        // Test processes start at once: one installs, the others wait for it.
        let _lock = (!stamp.exists()).then(|| {
            std::fs::create_dir_all(target_dir()).unwrap();
            crate::support::LockFile::acquire(target_dir().join("browser-node.lock"))
        });
        if !stamp.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(source_dir().join(f), dir.join(f)).unwrap();
            }
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .output()
                .expect("npm");
            assert!(
                out.status.success(),
                "npm ci: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&stamp, b"").unwrap();
        }
        dir
    })
    .clone()
}

/// Runs `tests/browser/{script}` with one JSON argument; returns its JSON output.
pub(crate) fn node(script: &str, args: &Value) -> Value {
    let dir = node_dir();
    // The script and the modules it may import (chromium.mjs).
    for entry in std::fs::read_dir(source_dir()).unwrap() {
        let path = entry.unwrap().path();
        let to = dir.join(path.file_name().unwrap());
        // Rewritten only when changed: tests running at once may be reading them.
        if path.extension().is_some_and(|e| e == "mjs")
            && std::fs::read(&path).ok() != std::fs::read(&to).ok()
        {
            std::fs::copy(&path, &to).unwrap();
        }
    }
    let out = Command::new("node")
        .arg(dir.join(script))
        .arg(args.to_string())
        .current_dir(&dir)
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script}: {e}: {stdout}"));
    assert!(v.get("error").is_none(), "{script}: {v:#}");
    v
}

pub(crate) fn chromium_present() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var("TESSERA_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "TESSERA_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install -y chromium chromium-driver)"
    );
    println!("skipped: {CHROMIUM} is missing (apt-get install -y chromium chromium-driver)");
    false
}

async fn browser_app(app: &TestApp, id: &str, redirect: &str) {
    app.client_with(NewClient {
        id: id.into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        redirect_uris: vec![redirect.into()],
        post_logout_redirect_uris: vec![
            url::Url::parse(redirect)
                .unwrap()
                .join("/bye")
                .unwrap()
                .into(),
        ],
        ..Default::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_through_the_login_page_then_single_sign_on() {
    if !chromium_present() {
        return;
    }
    let app = TestApp::spawn().await;
    // The apps live on another site than tessera (localhost vs 127.0.0.1), on ports
    // below the kernel's ephemeral range (32768-60999 here), which the tests' own
    // outgoing connections and port-0 listeners take from.
    let (one, two) = (
        "http://localhost:27001/callback",
        "http://localhost:27002/callback",
    );
    browser_app(&app, "photos", one).await;
    browser_app(&app, "notes", two).await;
    let sub = app
        .user("alice", "correct horse battery", &["reader"])
        .await;
    let profile = tempfile::tempdir().unwrap();
    let shot = target_dir().join("login-page.png");
    let args = json!({
        "base": app.addr,
        "chromium": CHROMIUM,
        "userDataDir": profile.path(),
        "screenshot": shot,
        "username": "alice",
        "password": "correct horse battery",
        "apps": [{"clientId": "photos", "redirectUri": one}, {"clientId": "notes", "redirectUri": two}],
    });
    let out = tokio::task::spawn_blocking(move || node("flow.mjs", &args))
        .await
        .unwrap();
    println!("screenshot: {}", shot.display());
    let page = &out["loginPage"];
    assert_eq!(page["status"], 200, "{out:#}");
    assert_eq!(page["usernameAutocomplete"], "username");
    assert_eq!(page["passwordAutocomplete"], "current-password");
    assert_eq!(page["buttons"], 1);
    assert_eq!(page["scripts"], 0);
    assert_eq!(
        page["stylesheetApplied"], "14px",
        "the stylesheet loaded under the CSP"
    );
    assert!(
        page["csp"]
            .as_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page["referrerPolicy"], "same-origin");
    assert_eq!(out["first"]["state"], "state-one");
    assert_eq!(out["first"]["iss"], app.addr.as_str());
    let ex = &out["exchange"];
    assert_eq!(ex["tokenStatus"], 200, "{ex:#}");
    assert!(ex["tokens"]["id_token"].is_string());
    assert_eq!(
        ex["userinfoStatus"], 200,
        "cross-origin /userinfo (preflighted): {ex:#}"
    );
    assert_eq!(ex["userinfo"]["sub"], sub.as_str());
    assert_eq!(
        ex["eventsStatus"], 200,
        "cross-origin long-poll of /events: {ex:#}"
    );
    assert!(ex["events"]["events"].is_array(), "{ex:#}");
    // The second app: signed in by the browser session, no form.
    let second = &out["second"];
    assert_eq!(second["state"], "state-two");
    assert_eq!(second["formShown"], false, "{out:#}");
    let resp = crate::oauth::code_flow::exchange(
        &app,
        "notes",
        second["code"].as_str().unwrap(),
        second["verifier"].as_str().unwrap(),
        two,
    )
    .await;
    assert_eq!(resp.status(), 200);
    // prompt=login: the form again.
    assert_eq!(out["promptLogin"]["status"], 200);
    assert_eq!(out["promptLogin"]["passwordFields"], 1);
    // The app's logout form, posted from its own site: signed out, back at the app.
    assert_eq!(
        out["logout"]["url"], "http://localhost:27001/bye?state=state-bye",
        "{out:#}"
    );
    assert_eq!(out["afterLogout"]["error"], "login_required", "{out:#}");
    assert_eq!(
        out["consoleErrors"],
        json!([]),
        "no CSP violations or errors in the console"
    );
    let _ = query_of;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_completes_the_code_flow_and_validates_the_id_token() {
    let app = TestApp::spawn().await;
    let alg = app.core.cfg.signing_alg.as_str();
    openid_client_signs_in(&app, NewClient::default(), alg).await;
}

/// An RP registered for RS256 on a deployment signing ES256: openid-client, told to expect
/// RS256, validates the ID token against the published RS256 key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_validates_an_rs256_id_token_from_an_es256_deployment() {
    let app = TestApp::spawn().await;
    assert_eq!(app.core.cfg.signing_alg.as_str(), "ES256");
    let rs256 = NewClient {
        id_token_signed_response_alg: Some("RS256".into()),
        ..Default::default()
    };
    openid_client_signs_in(&app, rs256, "RS256").await;
}

/// Registers public client `rp` (`registration`'s other fields), runs `oidc.mjs` expecting ID
/// tokens in `alg`, and checks what openid-client saw.
async fn openid_client_signs_in(app: &TestApp, registration: NewClient, alg: &str) {
    let redirect = "http://127.0.0.1:27003/cb";
    app.client_with(NewClient {
        id: "rp".into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        redirect_uris: vec![redirect.into()],
        ..registration
    })
    .await;
    let sub = app.user("alice", "correct horse battery", &[]).await;
    let args = json!({"base": app.addr, "clientId": "rp", "redirectUri": redirect,
        "username": "alice", "password": "correct horse battery", "alg": alg});
    let out = tokio::task::spawn_blocking(move || node("oidc.mjs", &args))
        .await
        .unwrap();
    assert_eq!(out["loginStatus"], 303, "{out:#}");
    assert_eq!(out["idTokenAlg"], alg, "{out:#}");
    assert_eq!(out["claims"]["sub"], sub.as_str(), "{out:#}");
    assert_eq!(out["claims"]["aud"], "rp");
    assert!(out["claims"]["at_hash"].is_string());
    assert_eq!(out["hasRefreshToken"], true);
    assert_eq!(out["userinfo"]["preferred_username"], "alice");
}
