//! The npm packages in js/ (`@tessera/verify`, `@tessera/browser`): their Node test files run
//! against the `tessera` binary this build made (`TESSERA_BIN`), one Rust test per file, so
//! the README's one test command runs them too. `npm ci` runs in js/ when its lock file
//! changed, `npm run build` when a source changed (stamps in target/; one process at a time).

pub(crate) mod verify;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub(crate) mod browser;

use crate::browser::sign_in::target_dir;

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Every source file under js/ but what npm and tsc write, in a stable order.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy();
        if matches!(name.as_ref(), "node_modules" | "dist" | ".work") || name.ends_with(".tgz") {
            continue;
        }
        if path.is_dir() {
            sources(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn stamp(label: &str, bytes: &[u8]) -> PathBuf {
    target_dir().join(format!(
        "js-{label}-{}",
        tessera::crypto::b64(&tessera::crypto::sha256(bytes)[..9])
    ))
}

fn npm(args: &[&str]) {
    let out = Command::new("npm")
        .args(args)
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(js_dir())
        .output()
        .expect("npm");
    assert!(
        out.status.success(),
        "npm {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `npm ci` (when the lock file changed) and `npm run build` (when a source changed), once.
/// The live-roles demo's test calls it too (its run.sh then leaves js/ alone).
pub(crate) fn built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let lock = std::fs::read(js_dir().join("package-lock.json")).unwrap();
        let installed = stamp("installed", &lock);
        let mut files = Vec::new();
        sources(&js_dir(), &mut files);
        let mut all = Vec::new();
        for f in &files {
            all.extend_from_slice(f.to_string_lossy().as_bytes());
            all.extend_from_slice(&std::fs::read(f).unwrap());
        }
        let built = stamp("built", &all);
        if installed.exists() && built.exists() {
            return;
        }
        std::fs::create_dir_all(target_dir()).unwrap();
        let _lock = crate::support::LockFile::acquire(target_dir().join("js.lock"));
        if !installed.exists() || !js_dir().join("node_modules").exists() {
            npm(&["ci"]);
            std::fs::write(&installed, b"").unwrap();
        }
        if !built.exists() {
            npm(&["run", "build"]);
            std::fs::write(&built, b"").unwrap();
        }
    });
}

/// Runs `node --test js/{file}` against this build's `tessera`; fails with its output.
pub(crate) fn node_test(file: &str) {
    built();
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=spec", file])
        .current_dir(js_dir())
        .env("TESSERA_BIN", env!("CARGO_BIN_EXE_tessera"));
    let out = cmd.output().expect("node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "node --test {file}:\n{text}");
    // Printed on success too, so skips ("# SKIP") show in `--success-output`.
    println!("{text}");
}

#[test]
fn the_js_harness_starts_restarts_and_drives_tessera() {
    node_test("test/tessera.test.mjs");
}
