//! TOTP (RFC 6238) with totp-rs: SHA-1, six digits, 30-second steps, the `otpauth://`
//! URI authenticator apps read, and its QR code as SVG.

use qrcodegen::{QrCode, QrCodeEcc};
use totp_rs::{Algorithm, TOTP};

use crate::crypto::ct_eq;

/// Seconds per time step.
pub const STEP: u64 = 30;
/// A code's digits.
pub const DIGITS: usize = 6;
/// Bytes of a new seed (160 bits, RFC 4226 §4's recommendation).
pub const SEED_LEN: usize = 20;

/// The TOTP of `seed` for `account` at `issuer` (their `:` replaced: the URI's label
/// separator).
pub fn totp(seed: Vec<u8>, issuer: &str, account: &str) -> Option<TOTP> {
    let clean = |s: &str| s.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP,
        seed,
        Some(clean(issuer)),
        clean(account),
    )
    .ok()
}

/// The time step of `now` (Unix seconds).
pub fn step_of(now: i64) -> i64 {
    now.max(0) / STEP as i64
}

/// The step (±1 around `now`'s, RFC 6238 §5.2) whose code is `code`, if any; every
/// candidate is compared in constant time.
pub fn matching_step(totp: &TOTP, code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = step_of(now);
    let mut found = None;
    for step in [now_step - 1, now_step, now_step + 1] {
        let expected = totp.generate(step.max(0) as u64 * STEP);
        if ct_eq(expected.as_bytes(), code.as_bytes()) {
            found = found.or(Some(step));
        }
    }
    found
}

/// The QR code of `text` as an SVG element (no script, no style: the page's CSP holds).
pub fn qr_svg(text: &str) -> Option<String> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let border = 4;
    let size = qr.size();
    let dim = size + 2 * border;
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Some(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="qr" viewBox="0 0 {dim} {dim}" width="220" height="220" role="img" aria-label="QR image of the authenticator link" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 seed and vectors (eight digits there; the last six here).
    #[test]
    fn codes_match_rfc_6238_within_one_step() {
        let seed = b"12345678901234567890".to_vec();
        let t = totp(seed, "tessera", "alice").unwrap();
        assert_eq!(t.generate(59), "287082");
        assert_eq!(t.generate(1_111_111_109), "081804");
        let now = 1_111_111_109;
        assert_eq!(matching_step(&t, "081804", now), Some(step_of(now)));
        assert_eq!(
            matching_step(&t, &t.generate(now as u64 + 30), now),
            Some(step_of(now) + 1)
        );
        assert_eq!(
            matching_step(&t, &t.generate(now as u64 - 30), now),
            Some(step_of(now) - 1)
        );
        assert_eq!(matching_step(&t, &t.generate(now as u64 + 60), now), None);
        assert_eq!(matching_step(&t, "08180", now), None);
        assert_eq!(matching_step(&t, "abcdef", now), None);
    }

    #[test]
    fn the_uri_names_issuer_and_account_and_the_qr_is_an_svg() {
        let t = totp(vec![7; SEED_LEN], "127.0.0.1:8080", "al:ice").unwrap();
        let uri = t.get_url();
        assert!(
            uri.starts_with("otpauth://totp/127.0.0.1_8080:al_ice?"),
            "{uri}"
        );
        assert!(uri.contains("secret=") && uri.contains("issuer=127.0.0.1_8080"));
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
    }
}
