//! What the event feed has said: revoked sessions, each user's current `ver`,
//! disabled users and revoked keys. Bounded: an entry is dropped once every token
//! that could carry the old state has expired (its `until`, in the issuer's clock,
//! the same clock as the tokens' `exp`).

use std::collections::HashMap;

use tessera_proto::{EventKind, SecurityEvent};

use crate::Rejection;
use crate::claims::{Claims, LEEWAY};

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

/// A map keyed by a tessera id (`sid`, `sub`). tessera mints them as hyphenated
/// lowercase UUIDs, which are kept as their 16 bytes: a revoked session then costs about
/// 33 bytes instead of 79 (a 36-byte string on the heap and its 24-byte handle;
/// `cargo bench --bench verify_memory`). Any other id is kept as it is. Only the
/// canonical form is converted, so two different ids never share a key.
#[derive(Debug)]
struct Ids<V> {
    uuids: HashMap<[u8; 16], V>,
    other: HashMap<Box<str>, V>,
}

impl<V> Default for Ids<V> {
    fn default() -> Self {
        Self {
            uuids: HashMap::new(),
            other: HashMap::new(),
        }
    }
}

/// The 16 bytes of a hyphenated lowercase UUID (8-4-4-4-12 hex digits), else None.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let b = id.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    const HYPHENS: [usize; 4] = [8, 13, 18, 23];
    if !HYPHENS.iter().all(|&i| b[i] == b'-') {
        return None;
    }
    let mut digits = (0..36)
        .filter(|i| !HYPHENS.contains(i))
        .map(|i| nibble(b[i]));
    let mut out = [0u8; 16];
    for byte in &mut out {
        *byte = (digits.next()?? << 4) | digits.next()??;
    }
    Some(out)
}

impl<V> Ids<V> {
    fn get(&self, id: &str) -> Option<&V> {
        match uuid_bytes(id) {
            Some(k) => self.uuids.get(&k),
            None => self.other.get(id),
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    fn insert(&mut self, id: &str, v: V) {
        match uuid_bytes(id) {
            Some(k) => self.uuids.insert(k, v),
            None => self.other.insert(id.into(), v),
        };
    }

    fn entry_or(&mut self, id: &str, v: V) -> &mut V {
        match uuid_bytes(id) {
            Some(k) => self.uuids.entry(k).or_insert(v),
            None => self.other.entry(id.into()).or_insert(v),
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.uuids.retain(|_, v| keep(v));
        self.other.retain(|_, v| keep(v));
    }

    fn len(&self) -> usize {
        self.uuids.len() + self.other.len()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Freshness {
    sessions: Ids<i64>,
    users: Ids<User>,
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

    pub(crate) fn apply(&mut self, e: &SecurityEvent) -> Effect {
        let Some(at) = e.at_unix() else {
            return Effect::None;
        };
        // Every token minted before the event expires by `at + ttl`.
        let until = at + self.ttl;
        match (&e.kind, &e.sub, &e.sid, &e.kid) {
            (EventKind::SessionRevoked, _, Some(sid), _) => {
                self.sessions.insert(sid, until);
            }
            (
                EventKind::RolesChanged
                | EventKind::PasswordChanged
                | EventKind::UserDisabled
                | EventKind::UserEnabled,
                Some(sub),
                _,
                _,
            ) => {
                let entry = self.users.entry_or(
                    sub,
                    User {
                        ver: i64::MIN,
                        disabled: false,
                        until,
                    },
                );
                // Ordered by `ver`, so that an older event replayed never re-enables or
                // disables again: a disable counts unless a newer version is known, an
                // enable only when it is newer than everything known (the disable's too).
                match (&e.kind, e.ver) {
                    (EventKind::UserDisabled, v) if v.is_none_or(|v| v >= entry.ver) => {
                        entry.disabled = true;
                    }
                    (EventKind::UserEnabled, Some(v)) if v > entry.ver => entry.disabled = false,
                    _ => {}
                }
                entry.ver = entry.ver.max(e.ver.unwrap_or(i64::MIN));
                entry.until = entry.until.max(until);
            }
            (EventKind::KeysRotated, _, _, Some(kid)) => {
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
            .is_some_and(|sid| self.sessions.contains(sid))
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
        self.sessions.retain(|until| live(*until));
        self.users.retain(|u| live(u.until));
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
    ) -> SecurityEvent {
        SecurityEvent {
            id,
            kind: EventKind::parse(kind),
            sub: Some(sub.into()),
            sid: sid.map(Into::into),
            ver,
            roles: None,
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
        // Re-enabled at ver 4: new tokens pass, older ones stay stale; the disable
        // replayed does not disable again, an enable older than a disable does not undo it.
        let user = |s: &mut Freshness, kind, ver| {
            s.apply(&event(
                ver,
                kind,
                "u",
                None,
                Some(ver),
                "2026-01-01T00:00:00Z",
            ));
        };
        let check = |s: &Freshness, ver| s.check(&token("u", "s", ver, T0), "k");
        user(&mut s, "user.enabled", 4);
        assert_eq!(check(&s, 4), Ok(()));
        assert_eq!(check(&s, 3), Err(Rejection::RolesChanged));
        user(&mut s, "user.disabled", 3);
        assert_eq!(check(&s, 4), Ok(()));
        user(&mut s, "user.disabled", 5);
        user(&mut s, "user.enabled", 4);
        assert_eq!(check(&s, 5), Err(Rejection::UserDisabled));
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
    fn uuid_ids_are_matched_exactly_like_any_other_id() {
        let sid = "0b9f3c1e-5d2a-4f6b-9c8d-7e1f2a3b4c5d";
        let sub = "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
        assert_eq!(
            uuid_bytes(sid).map(|b| b[..2].to_vec()),
            Some(vec![0x0b, 0x9f])
        );
        for not_canonical in [
            &sid.to_uppercase(),
            "0b9f3c1e5d2a4f6b9c8d7e1f2a3b4c5d",
            "0b9f3c1e-5d2a-4f6b-9c8d-7e1f2a3b4c5g",
            "0b9f3c1e-5d2a-4f6b-9c8d+7e1f2a3b4c5d",
        ] {
            assert_eq!(uuid_bytes(not_canonical), None, "{not_canonical}");
        }
        let mut s = Freshness::new(300, 0);
        let at = "2026-01-01T00:00:00Z";
        s.apply(&event(1, "session.revoked", sub, Some(sid), None, at));
        s.apply(&event(
            2,
            "session.revoked",
            sub,
            Some("plain-sid"),
            None,
            at,
        ));
        s.apply(&event(3, "user.roles_changed", sub, None, Some(2), at));
        assert_eq!(s.len(), (2, 1, 0));
        assert_eq!(
            s.check(&token(sub, sid, 2, T0), "k"),
            Err(Rejection::SessionRevoked)
        );
        assert_eq!(
            s.check(&token(sub, "plain-sid", 2, T0), "k"),
            Err(Rejection::SessionRevoked)
        );
        assert_eq!(
            s.check(&token(sub, "other-sid", 1, T0), "k"),
            Err(Rejection::RolesChanged)
        );
        // Another spelling of the same UUID is another id, as it always was.
        assert_eq!(
            s.check(&token(&sub.to_uppercase(), &sid.to_uppercase(), 1, T0), "k"),
            Ok(())
        );
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
