//! The admin API's response bodies. Members are declared in alphabetical order: the
//! bytes on the wire stay those of the `json!` maps they replace (serde_json sorts a
//! map's keys).

use serde::Serialize;

use crate::domain::clock::rfc3339;
use crate::domain::queries::{KeyRecord, ListedUser, Session, User};

/// A user: `ver` is the authorization version its tokens carry.
#[derive(Serialize)]
pub(super) struct EncodableUser<'a> {
    disabled: bool,
    id: &'a str,
    roles: &'a [String],
    username: &'a str,
    ver: i64,
}

impl<'a> From<&'a User> for EncodableUser<'a> {
    fn from(u: &'a User) -> Self {
        Self {
            disabled: u.disabled,
            id: &u.id,
            roles: &u.roles,
            username: &u.username,
            ver: u.authz_version,
        }
    }
}

/// A user in the list: as [`EncodableUser`], with when it was created (RFC 3339).
#[derive(Serialize)]
pub(super) struct EncodableListedUser<'a> {
    created_at: String,
    #[serde(flatten)]
    user: EncodableUser<'a>,
}

impl<'a> From<&'a ListedUser> for EncodableListedUser<'a> {
    fn from(u: &'a ListedUser) -> Self {
        Self {
            created_at: rfc3339(Some(u.created_at)),
            user: EncodableUser::from(&u.user),
        }
    }
}

/// A page of users; `next_cursor` is `null` on the last page.
#[derive(Serialize)]
pub(super) struct EncodableUsers<'a> {
    pub(super) next_cursor: Option<&'a str>,
    pub(super) users: Vec<EncodableListedUser<'a>>,
}

/// A live session; times in RFC 3339.
#[derive(Serialize)]
pub(super) struct EncodableSession<'a> {
    client_id: &'a str,
    created_at: String,
    expires_at: String,
    last_used_at: String,
    sid: &'a str,
}

impl<'a> From<&'a Session> for EncodableSession<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            client_id: &s.client_id,
            created_at: rfc3339(Some(s.created_at)),
            expires_at: rfc3339(Some(s.expires_at)),
            last_used_at: rfc3339(Some(s.last_used_at)),
            sid: &s.id,
        }
    }
}

/// A registered client: the domain's view, so that the CLI's `--json` prints the same.
pub(super) use crate::domain::clients::ClientView as EncodableClient;

/// Every signing key, oldest first.
#[derive(Serialize)]
pub(super) struct EncodableKeys<'a> {
    pub(super) keys: Vec<EncodableKey<'a>>,
}

/// A signing key's record; times in RFC 3339, `null` until they happen.
#[derive(Serialize)]
pub(super) struct EncodableKey<'a> {
    activated_at: Option<String>,
    alg: &'a str,
    created_at: String,
    kid: &'a str,
    purpose: &'a str,
    retired_at: Option<String>,
    revoked_at: Option<String>,
    state: &'a str,
}

impl<'a> From<&'a KeyRecord> for EncodableKey<'a> {
    fn from(k: &'a KeyRecord) -> Self {
        let time = |t: Option<i64>| t.map(|t| rfc3339(Some(t)));
        Self {
            activated_at: time(k.activated_at),
            alg: &k.alg,
            created_at: rfc3339(Some(k.created_at)),
            kid: &k.kid,
            purpose: &k.purpose,
            retired_at: time(k.retired_at),
            revoked_at: time(k.revoked_at),
            state: &k.state,
        }
    }
}

/// A rotation done: what happened, and the key that signs now.
#[derive(Serialize)]
pub(super) struct Rotated {
    pub(super) active_kid: String,
    pub(super) message: String,
    pub(super) rotated: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Each body has the bytes of the `json!` map it replaced.
    #[test]
    fn bodies_keep_the_bytes_of_their_json_maps() {
        let u = User {
            id: "u1".into(),
            username: "alice".into(),
            roles: vec!["editor".into()],
            authz_version: 3,
            disabled: false,
        };
        assert_eq!(
            serde_json::to_string(&EncodableUser::from(&u)).unwrap(),
            json!({"id": u.id, "username": u.username, "roles": u.roles, "ver": 3, "disabled": false})
                .to_string()
        );
        let s = Session {
            id: "s1".into(),
            client_id: "web".into(),
            created_at: 0,
            last_used_at: 60,
            expires_at: 3600,
        };
        assert_eq!(
            serde_json::to_string(&EncodableSession::from(&s)).unwrap(),
            json!({
                "sid": "s1", "client_id": "web", "created_at": "1970-01-01T00:00:00Z",
                "last_used_at": "1970-01-01T00:01:00Z", "expires_at": "1970-01-01T01:00:00Z",
            })
            .to_string()
        );
        let k = KeyRecord {
            kid: "k1".into(),
            alg: "ES256".into(),
            state: "active".into(),
            purpose: "main".into(),
            created_at: 0,
            activated_at: Some(60),
            retired_at: None,
            revoked_at: None,
        };
        let keys = EncodableKeys {
            keys: vec![EncodableKey::from(&k)],
        };
        assert_eq!(
            serde_json::to_string(&keys).unwrap(),
            json!({"keys": [{
                "kid": "k1", "alg": "ES256", "state": "active", "purpose": "main",
                "created_at": "1970-01-01T00:00:00Z", "activated_at": "1970-01-01T00:01:00Z",
                "retired_at": null, "revoked_at": null,
            }]})
            .to_string()
        );
        let rotated = Rotated {
            active_kid: "k2".into(),
            message: "rotated".into(),
            rotated: true,
        };
        assert_eq!(
            serde_json::to_string(&rotated).unwrap(),
            json!({"rotated": true, "message": "rotated", "active_kid": "k2"}).to_string()
        );
    }
}
