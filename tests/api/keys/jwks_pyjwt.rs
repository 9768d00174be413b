//! Independent verification of access tokens with PyJWT (`pyjwt_verify.py`), through a
//! Python venv at `target/test-venv` created on first use and shared by test processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::keys::jwks::{Signed, app_and_token, fetch_jwks, with_claims};
use crate::support::*;

/// `target/test-venv/bin/python` with PyJWT (and pyotp, the TOTP tests' independent
/// implementation) installed; created once, shared by test processes.
pub(crate) fn pyjwt_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install_pyjwt).clone()
}

fn install_pyjwt() -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_tessera"))
        .parent()
        .unwrap()
        .parent()
        .unwrap();
    let venv = target.join("test-venv");
    let python = venv.join("bin").join("python");
    let ready = venv.join(".ready-pyjwt-2.15.1-pyotp-2.9.0");
    if ready.exists() {
        return python;
    }
    let _lock = LockFile::acquire(target.join("test-venv.lock"));
    if ready.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "PyJWT[crypto]==2.15.1",
        "pyotp==2.9.0",
    ]));
    std::fs::write(&ready, b"").unwrap();
    python
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `pyjwt_verify.py`; returns its exit code and output.
pub(crate) async fn pyjwt_verify(token: &str, jwks: &Value, issuer: &str) -> (i32, String) {
    pyjwt_run(token, jwks, issuer, None).await
}

/// Runs `pyjwt_verify.py` on an ID token for client `audience`.
pub(crate) async fn pyjwt_verify_id_token(
    token: &str,
    jwks: &Value,
    issuer: &str,
    audience: &str,
) -> (i32, String) {
    pyjwt_run(token, jwks, issuer, Some(audience)).await
}

async fn pyjwt_run(
    token: &str,
    jwks: &Value,
    issuer: &str,
    audience: Option<&str>,
) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let (token, issuer) = (token.to_string(), issuer.to_string());
    let audience = audience.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api/keys/pyjwt_verify.py"
        );
        let out = Command::new(pyjwt_python())
            .arg(script)
            .arg(&token)
            .arg(&jwks_path)
            .arg(&issuer)
            .args(audience)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .unwrap()
}

async fn check_with_pyjwt(alg: &str) {
    let Signed { app, token } = app_and_token(alg).await;
    let jwks = fetch_jwks(&app).await;
    let (code, out) = pyjwt_verify(&token, &jwks, &app.addr).await;
    assert_eq!(code, 0, "PyJWT rejects a genuine {alg} token: {out}");
    assert!(out.contains(&format!("verified {alg}")), "{out}");
    let mut forged = jwt_parts(&token).1;
    forged["sub"] = json!("someone-else");
    let (code, out) = pyjwt_verify(&with_claims(&token, &forged), &jwks, &app.addr).await;
    assert_eq!(code, 1, "PyJWT must reject an altered {alg} token: {out}");
    let (code, out) = pyjwt_verify(&token, &jwks, "https://other.example").await;
    assert_eq!(code, 1, "PyJWT must reject a wrong issuer: {out}");
}

#[tokio::test]
async fn pyjwt_verifies_es256() {
    check_with_pyjwt("ES256").await;
}

#[tokio::test]
async fn pyjwt_verifies_eddsa() {
    check_with_pyjwt("EdDSA").await;
}

#[tokio::test]
async fn pyjwt_verifies_rs256() {
    check_with_pyjwt("RS256").await;
}
