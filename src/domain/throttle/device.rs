//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device
//! Cookies"): a browser that signed in as a user gets a signed cookie naming that
//! user; presented with a sign-in for the same user, it makes the attempt count
//! on the device's own counter instead of the username's, so a guesser who has
//! pushed the username into its delay does not keep its owner out.
//!
//! The value is `ISSUED.NONCE.MAC`: MAC = HMAC-SHA256(key, username ‖ ISSUED.NONCE),
//! the key derived from the KEK (so every instance sharing the database accepts
//! it). The username is in the MAC, not in the cookie: a cookie for one user is
//! no cookie for another.

use super::Throttle;
use crate::crypto;

/// How long a device stays trusted after its last sign-in (the cookie's Max-Age).
pub const DEVICE_TTL_SECS: i64 = 180 * 86_400;

impl Throttle {
    fn device_mac(&self, name: &str, body: &str) -> String {
        let mut input = Vec::with_capacity(name.len() + 1 + body.len());
        input.extend_from_slice(name.as_bytes());
        input.push(0);
        input.extend_from_slice(body.as_bytes());
        crypto::b64(&crypto::hmac_sha256(&self.device_key, &input))
    }

    /// A new device cookie value for normalised username `name`, issued at `now`.
    pub(crate) fn new_device(&self, name: &str, now: i64) -> String {
        let body = format!("{now}.{}", crypto::b64(&crypto::random::<16>()));
        let mac = self.device_mac(name, &body);
        format!("{body}.{mac}")
    }

    /// The device's id (its nonce) when `cookie` is a live device cookie for `name`.
    pub(super) fn trusted_device<'a>(
        &self,
        cookie: &'a str,
        name: &str,
        now: i64,
    ) -> Option<&'a str> {
        let (body, mac) = cookie.rsplit_once('.')?;
        let (issued, nonce) = body.split_once('.')?;
        let issued: i64 = issued.parse().ok()?;
        let fresh = issued <= now && now - issued < DEVICE_TTL_SECS;
        let valid = crypto::ct_eq(self.device_mac(name, body).as_bytes(), mac.as_bytes());
        (fresh && valid).then_some(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_cookie_names_one_user_and_expires() {
        let cfg = crate::config::Layers::default().build().unwrap();
        let t = Throttle::new(&cfg, [7; 32]);
        let cookie = t.new_device("alice", 1_000);
        let nonce = t.trusted_device(&cookie, "alice", 1_001).expect("trusted");
        assert!(cookie.contains(nonce));
        assert_eq!(
            t.trusted_device(&cookie, "bob", 1_001),
            None,
            "another user"
        );
        assert_eq!(
            t.trusted_device(&cookie, "alice", 1_000 + DEVICE_TTL_SECS),
            None
        );
        let forged = cookie.replacen("1000.", "1001.", 1);
        assert_eq!(t.trusted_device(&forged, "alice", 1_002), None, "tampered");
        let other_key = Throttle::new(&cfg, [8; 32]);
        assert_eq!(other_key.trusted_device(&cookie, "alice", 1_001), None);
    }
}
