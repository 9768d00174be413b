//! What the event feed has said: revoked sessions, each user's current `ver`,
//! disabled users and revoked keys. Bounded: an entry is dropped once every token
//! that could carry the old state has expired (its `until`, in the issuer's clock,
//! the same clock as the tokens' `exp`).

use std::collections::HashMap;

use serde::Deserialize;

use crate::Rejection;
use crate::claims::{Claims, LEEWAY};

/// A security event as served on `/events` (the fields the verifier needs).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Event {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub ver: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    /// RFC 3339, in the issuer's clock.
    pub at: String,
}

impl Event {
    /// `at` as UNIX seconds.
    pub(crate) fn at(&self) -> Option<i64> {
        time::OffsetDateTime::parse(&self.at, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct User {
    ver: i64,
    disabled: bool,
    until: i64,
}

/// What applying an event asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    /// The key set changed: refetch the JWKS now.
    RefetchKeys,
}

#[derive(Debug, Default)]
pub(crate) struct Freshness {
    sessions: HashMap<String, i64>,
    users: HashMap<String, User>,
    keys: HashMap<String, i64>,
    /// The longest access-token lifetime, in seconds: how long an entry matters.
    ttl: i64,
    /// Tokens issued before this (issuer clock) predate what the feed has told us.
    pub horizon: i64,
}

impl Freshness {
    pub(crate) fn new(ttl: i64, horizon: i64) -> Self {
        Self {
            ttl,
            horizon,
            ..Self::default()
        }
    }

    pub(crate) fn apply(&mut self, e: &Event) -> Effect {
        let Some(at) = e.at() else {
            return Effect::None;
        };
        // Every token minted before the event expires by `at + ttl`.
        let until = at + self.ttl;
        match (e.kind.as_str(), &e.sub, &e.sid, &e.kid) {
            ("session.revoked", _, Some(sid), _) => {
                self.sessions.insert(sid.clone(), until);
            }
            ("user.roles_changed" | "user.password_changed" | "user.disabled", Some(sub), _, _) => {
                let disabled = e.kind == "user.disabled";
                let entry = self.users.entry(sub.clone()).or_insert(User {
                    ver: i64::MIN,
                    disabled: false,
                    until,
                });
                entry.ver = entry.ver.max(e.ver.unwrap_or(i64::MIN));
                // Sticky: tessera has no way back from disabled but a new account.
                entry.disabled |= disabled;
                entry.until = entry.until.max(until);
            }
            ("keys.rotated", _, _, Some(kid)) => {
                if e.reason.as_deref() == Some("revoked") {
                    self.keys.insert(kid.clone(), until);
                }
                return Effect::RefetchKeys;
            }
            _ => {}
        }
        Effect::None
    }

    /// Refuses a key the feed said was revoked.
    pub(crate) fn check_key(&self, kid: &str) -> Result<(), Rejection> {
        if self.keys.contains_key(kid) {
            return Err(Rejection::KeyRevoked);
        }
        Ok(())
    }

    /// Whether what the feed said refuses this token (signed by `kid`).
    pub(crate) fn check(&self, claims: &Claims, kid: &str) -> Result<(), Rejection> {
        self.check_key(kid)?;
        if claims.iat < self.horizon {
            return Err(Rejection::StateUnknown);
        }
        let user = self.users.get(&claims.sub);
        if user.is_some_and(|u| u.disabled) {
            return Err(Rejection::UserDisabled);
        }
        if claims
            .sid
            .as_ref()
            .is_some_and(|sid| self.sessions.contains_key(sid))
        {
            return Err(Rejection::SessionRevoked);
        }
        if let (Some(u), Some(ver)) = (user, claims.ver)
            && ver < u.ver
        {
            return Err(Rejection::RolesChanged);
        }
        Ok(())
    }

    /// Drops entries no token this verifier still accepts could carry.
    pub(crate) fn prune(&mut self, now: i64) {
        let live = |until: i64| now <= until + LEEWAY;
        self.sessions.retain(|_, until| live(*until));
        self.users.retain(|_, u| live(u.until));
        self.keys.retain(|_, until| live(*until));
    }

    /// Entries held: sessions, users, keys.
    pub(crate) fn len(&self) -> (usize, usize, usize) {
        (self.sessions.len(), self.users.len(), self.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        id: i64,
        kind: &str,
        sub: &str,
        sid: Option<&str>,
        ver: Option<i64>,
        at: &str,
    ) -> Event {
        Event {
            id,
            kind: kind.into(),
            sub: Some(sub.into()),
            sid: sid.map(Into::into),
            ver,
            reason: None,
            kid: None,
            at: at.into(),
        }
    }

    fn token(sub: &str, sid: &str, ver: i64, iat: i64) -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": sub, "aud": "a", "client_id": "c", "roles": [],
            "iat": iat, "exp": iat + 300, "jti": "j", "sid": sid, "ver": ver
        }))
        .unwrap()
    }

    // 2026-01-01T00:00:00Z
    const T0: i64 = 1_767_225_600;

    #[test]
    fn stale_ver_revoked_sid_and_disabled_user_are_refused() {
        let mut s = Freshness::new(300, 0);
        let t = token("u", "s1", 1, T0);
        assert_eq!(s.check(&t, "k"), Ok(()));
        s.apply(&event(
            1,
            "user.roles_changed",
            "u",
            None,
            Some(2),
            "2026-01-01T00:00:00Z",
        ));
        assert_eq!(s.check(&t, "k"), Err(Rejection::RolesChanged));
        assert_eq!(s.check(&token("u", "s2", 2, T0), "k"), Ok(()));
        s.apply(&event(
            2,
            "session.revoked",
            "u",
            Some("s2"),
            None,
            "2026-01-01T00:00:00Z",
        ));
        assert_eq!(
            s.check(&token("u", "s2", 2, T0), "k"),
            Err(Rejection::SessionRevoked)
        );
        s.apply(&event(
            3,
            "user.disabled",
            "u",
            None,
            Some(3),
            "2026-01-01T00:00:00Z",
        ));
        assert_eq!(
            s.check(&token("u", "s3", 3, T0), "k"),
            Err(Rejection::UserDisabled)
        );
        // An older event replayed never lowers the version or re-enables.
        s.apply(&event(
            1,
            "user.roles_changed",
            "u",
            None,
            Some(2),
            "2026-01-01T00:00:00Z",
        ));
        assert_eq!(
            s.check(&token("u", "s3", 3, T0), "k"),
            Err(Rejection::UserDisabled)
        );
    }

    #[test]
    fn a_revoked_key_is_refused_and_asks_for_a_refetch() {
        let mut s = Freshness::new(300, 0);
        let mut e = event(1, "keys.rotated", "", None, None, "2026-01-01T00:00:00Z");
        e.kid = Some("k1".into());
        e.reason = Some("rotated".into());
        assert_eq!(s.apply(&e), Effect::RefetchKeys);
        assert_eq!(s.check(&token("u", "s", 1, T0), "k1"), Ok(()));
        e.reason = Some("revoked".into());
        assert_eq!(s.apply(&e), Effect::RefetchKeys);
        assert_eq!(
            s.check(&token("u", "s", 1, T0), "k1"),
            Err(Rejection::KeyRevoked)
        );
    }

    #[test]
    fn entries_are_dropped_once_no_unexpired_token_can_carry_them() {
        let mut s = Freshness::new(300, 0);
        s.apply(&event(
            1,
            "session.revoked",
            "u",
            Some("s"),
            None,
            "2026-01-01T00:00:00Z",
        ));
        s.apply(&event(
            2,
            "user.roles_changed",
            "u",
            None,
            Some(2),
            "2026-01-01T00:00:00Z",
        ));
        s.prune(T0 + 300 + LEEWAY);
        assert_eq!(s.len(), (1, 1, 0));
        // A token minted before the change expires at T0 + 300 at the latest; it is
        // refused by `exp` from T0 + 300 + LEEWAY + 1 on, so the entries may go.
        s.prune(T0 + 301 + LEEWAY);
        assert_eq!(s.len(), (0, 0, 0));
    }

    #[test]
    fn tokens_older_than_the_horizon_are_not_vouched_for() {
        let s = Freshness::new(300, T0);
        assert_eq!(
            s.check(&token("u", "s", 1, T0 - 1), "k"),
            Err(Rejection::StateUnknown)
        );
        assert_eq!(s.check(&token("u", "s", 1, T0), "k"), Ok(()));
    }
}
