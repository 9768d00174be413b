//! The security event as served on `/events`, and the kinds of event.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The kinds of security event (the `type` on `/events`, the `event:` of an SSE frame),
/// serialised as their wire names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `session.revoked`: a refresh family ended (logout, reuse, policy `revoke`, admin).
    SessionRevoked,
    /// `user.roles_changed`: the user's roles and `ver` changed.
    RolesChanged,
    /// `user.disabled`: the user may no longer sign in; their tokens are stale.
    UserDisabled,
    /// `user.password_changed`: the user's sessions were ended with it.
    PasswordChanged,
    /// `user.enabled`: a disabled user may sign in again; `ver` grew, so only tokens
    /// minted from now on carry a current one.
    UserEnabled,
    /// `user.login_throttled`: failed sign-ins pushed a username past its limit; its
    /// attempts from untrusted devices are delayed from now on.
    LoginThrottled,
    /// `keys.rotated`: the published key set changed (rotation, or revocation with
    /// reason `revoked`).
    KeysRotated,
    /// A kind this version does not know (a newer instance's or issuer's), by its wire
    /// name: a server passes it on as it is, a verifier skips it.
    Other(Box<str>),
}

impl EventKind {
    /// Every kind the server writes, for listings and contract tests.
    pub const ALL: [Self; 7] = [
        Self::SessionRevoked,
        Self::RolesChanged,
        Self::UserDisabled,
        Self::PasswordChanged,
        Self::UserEnabled,
        Self::LoginThrottled,
        Self::KeysRotated,
    ];

    /// The wire name, as stored in the log and served on `/events`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::SessionRevoked => "session.revoked",
            Self::RolesChanged => "user.roles_changed",
            Self::UserDisabled => "user.disabled",
            Self::PasswordChanged => "user.password_changed",
            Self::UserEnabled => "user.enabled",
            Self::LoginThrottled => "user.login_throttled",
            Self::KeysRotated => "keys.rotated",
            Self::Other(name) => name,
        }
    }

    /// The kind with wire name `name`; [`EventKind::Other`] for any other.
    pub fn parse(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .unwrap_or_else(|| Self::Other(name.into()))
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::parse(&name))
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as served on `/events` (docs/protocol.md "When roles change"; `SecurityEvent`
/// in openapi.yaml). Every member is written, `null` where it does not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// Position in the log: strictly increasing, the `id:` of the SSE frame.
    pub id: i64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The user concerned, if any (a user's own feed shows only theirs).
    #[serde(default)]
    pub sub: Option<String>,
    /// The session (refresh family) concerned, if any.
    #[serde(default)]
    pub sid: Option<String>,
    /// The user's authorization version after the change.
    #[serde(default)]
    pub ver: Option<i64>,
    /// The user's roles after the change.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Why it happened (`refresh_token_reuse`, `revoked_by_admin`, `password_changed`, ...).
    #[serde(default)]
    pub reason: Option<String>,
    /// The key concerned by a key event.
    #[serde(default)]
    pub kid: Option<String>,
    /// When it was committed, RFC 3339 in the issuer's clock ([`rfc3339`]).
    pub at: String,
}

impl SecurityEvent {
    /// `at` as Unix seconds; `None` when it is not RFC 3339.
    pub fn at_unix(&self) -> Option<i64> {
        parse_rfc3339(&self.at)
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-01-01T00:00:00Z`): the one format of times on
/// the wire. `None` when out of range.
pub fn rfc3339(unix: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// An RFC 3339 time as Unix seconds; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_has_the_exact_wire_shape_and_round_trips() {
        let e = SecurityEvent {
            id: 17,
            kind: EventKind::RolesChanged,
            sub: Some("u1".into()),
            sid: None,
            ver: Some(3),
            roles: Some(vec!["a".into(), "b".into()]),
            reason: Some("roles_changed".into()),
            kid: None,
            at: rfc3339(1_767_225_600).unwrap(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"id":17,"type":"user.roles_changed","sub":"u1","sid":null,"ver":3,"roles":["a","b"],"reason":"roles_changed","kid":null,"at":"2026-01-01T00:00:00Z"}"#
        );
        assert_eq!(serde_json::from_str::<SecurityEvent>(&json).unwrap(), e);
        assert_eq!(e.at_unix(), Some(1_767_225_600));
    }

    #[test]
    fn each_kind_has_its_wire_name_and_an_unknown_one_passes_through() {
        for kind in EventKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(EventKind::parse(kind.as_str()), kind);
            assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), kind);
        }
        let later = r#"{"id":1,"type":"risc.account_purged","at":"2026-01-01T00:00:00Z"}"#;
        let e: SecurityEvent = serde_json::from_str(later).unwrap();
        assert_eq!(e.kind, EventKind::Other("risc.account_purged".into()));
        assert_eq!(e.sub, None);
        assert_eq!(
            serde_json::to_string(&e.kind).unwrap(),
            r#""risc.account_purged""#
        );
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(i64::MAX), None);
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00+00:00"), Some(60));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
