//! What a stream delivers: tessera's security events mapped to CAEP, RISC and SSF
//! event types as Security Event Token claims (RFC 8417), one SET per event, in the
//! log's order. Nothing is invented: a kind with no standard counterpart is skipped.

use serde_json::{Value, json};

use crate::crypto::{b64, sha256};
use crate::store::events::EventRow;

/// CAEP 1.0 `session-revoked`.
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// CAEP 1.0 `token-claims-change`.
pub const TOKEN_CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
/// CAEP 1.0 `credential-change`.
pub const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
/// RISC 1.0 `account-disabled`.
pub const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
/// RISC 1.0 `account-enabled`.
pub const ACCOUNT_ENABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
/// SSF 1.0 `verification` (§8.1.4): always delivered, whatever was requested.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
/// SSF 1.0 `stream-updated` (§8.1.5): sent when tessera changes a stream's status on its
/// own; always delivered, whatever was requested.
pub const STREAM_UPDATED: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";

/// The event types a stream may request (`events_supported`).
pub const SUPPORTED: [&str; 5] = [
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
    CREDENTIAL_CHANGE,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
];

/// The standard event type of a log event's kind, if it has one.
fn event_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "session.revoked" => SESSION_REVOKED,
        "user.roles_changed" => TOKEN_CLAIMS_CHANGE,
        "user.password_changed" | "user.credential_changed" => CREDENTIAL_CHANGE,
        "user.disabled" => ACCOUNT_DISABLED,
        "user.enabled" => ACCOUNT_ENABLED,
        _ => return None,
    })
}

/// CAEP credential-change's `credential_type` and `change_type` for a log event: a
/// password change, or a second factor's (by the event's reason).
fn credential_change(event: &EventRow) -> (&'static str, &'static str) {
    if event.kind == "user.password_changed" {
        return ("password", "update");
    }
    match event.reason.as_deref() {
        Some("totp_added") | Some("recovery_codes_created") => ("app", "create"),
        Some("totp_removed") | Some("mfa_reset") => ("app", "delete"),
        // A passkey (WebAuthn): CAEP has no word for a synced one; most are platform keys.
        Some("passkey_added") => ("fido2-platform", "create"),
        Some("passkey_removed") => ("fido2-platform", "delete"),
        _ => ("app", "update"),
    }
}

/// A SET's `jti`: the same for a (stream, event) pair every time it is minted, so a
/// redelivery (after a restart, or to another instance) carries the same one.
pub fn jti(stream_id: &str, event_id: i64) -> String {
    b64(&sha256(format!("{stream_id}:{event_id}").as_bytes())[..16])
}

/// The SET claims for `event` on a stream with audience `aud` delivering `delivered`
/// event types; `None` when the event maps to none of them, or concerns no user.
pub fn claims(
    iss: &str,
    aud: &str,
    stream_id: &str,
    delivered: &[String],
    event: &EventRow,
) -> Option<Value> {
    let event_type = event_type(&event.kind).filter(|t| delivered.iter().any(|d| d == t))?;
    let sub = event.sub.as_deref()?;
    let user = json!({"format": "iss_sub", "iss": iss, "sub": sub});
    let (sub_id, body) = match event_type {
        SESSION_REVOKED => {
            let sid = event.sid.as_deref()?;
            let mut body = json!({"event_timestamp": event.at});
            if let Some(reason) = &event.reason {
                body["reason_admin"] = json!({"en": reason});
            }
            let subject = json!({
                "format": "complex",
                "user": user,
                "session": {"format": "opaque", "id": sid},
            });
            (subject, body)
        }
        TOKEN_CLAIMS_CHANGE => {
            let roles: Vec<String> = event
                .roles
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default();
            (
                user,
                json!({"event_timestamp": event.at, "claims": {"roles": roles}}),
            )
        }
        CREDENTIAL_CHANGE => {
            let (credential_type, change_type) = credential_change(event);
            (
                user,
                json!({"event_timestamp": event.at, "credential_type": credential_type, "change_type": change_type}),
            )
        }
        _ => (user, json!({})),
    };
    Some(json!({
        "iss": iss,
        "aud": aud,
        "jti": jti(stream_id, event.id),
        "iat": event.at,
        // The SETs of one change (a role change and the sessions it ended) share a
        // `txn` (RFC 8417 §2.2): they are written for one user, with one reason, at
        // one time.
        "txn": b64(&sha256(format!("{sub}:{}:{}", event.reason.as_deref().unwrap_or(""), event.at).as_bytes())[..12]),
        "sub_id": sub_id,
        "events": {event_type: body},
    }))
}

/// The claims of a verification SET (SSF §8.1.4.1): the stream is its subject.
pub fn verification(iss: &str, aud: &str, stream_id: &str, state: Option<&str>, now: i64) -> Value {
    let mut body = json!({});
    if let Some(state) = state {
        body["state"] = json!(state);
    }
    about_stream(iss, aud, stream_id, now, VERIFICATION, body)
}

/// The claims of a stream-updated SET (SSF §8.1.5): the stream's new `status` and why.
pub fn stream_updated(
    iss: &str,
    aud: &str,
    stream_id: &str,
    status: &str,
    reason: &str,
    now: i64,
) -> Value {
    let body = json!({"status": status, "reason": reason});
    about_stream(iss, aud, stream_id, now, STREAM_UPDATED, body)
}

/// A SET about the stream itself (its subject, `opaque`), with a fresh `jti`.
fn about_stream(iss: &str, aud: &str, stream_id: &str, now: i64, kind: &str, body: Value) -> Value {
    json!({
        "iss": iss,
        "aud": aud,
        "jti": b64(&crate::crypto::random::<16>()),
        "iat": now,
        "sub_id": {"format": "opaque", "id": stream_id},
        "events": {kind: body},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str) -> EventRow {
        EventRow {
            id: 7,
            kind: kind.into(),
            sub: Some("u1".into()),
            sid: Some("s1".into()),
            ver: Some(2),
            roles: Some(r#"["viewer"]"#.into()),
            reason: Some("roles_changed".into()),
            kid: None,
            at: 1_767_225_600,
        }
    }

    #[test]
    fn each_kind_maps_to_its_standard_event_and_others_to_nothing() {
        let all: Vec<String> = SUPPORTED.iter().map(|s| s.to_string()).collect();
        let set = claims("https://iss", "rx", "st", &all, &row("user.roles_changed")).unwrap();
        assert_eq!(
            set["events"][TOKEN_CLAIMS_CHANGE]["claims"]["roles"],
            json!(["viewer"])
        );
        assert_eq!(
            set["sub_id"],
            json!({"format": "iss_sub", "iss": "https://iss", "sub": "u1"})
        );
        assert_eq!(set["jti"], json!(jti("st", 7)));
        let set = claims("https://iss", "rx", "st", &all, &row("session.revoked")).unwrap();
        assert_eq!(
            set["sub_id"]["session"],
            json!({"format": "opaque", "id": "s1"})
        );
        assert!(set["events"][SESSION_REVOKED].is_object());
        let set = claims(
            "https://iss",
            "rx",
            "st",
            &all,
            &row("user.password_changed"),
        )
        .unwrap();
        assert_eq!(
            set["events"][CREDENTIAL_CHANGE]["credential_type"],
            "password"
        );
        let added = EventRow {
            reason: Some("totp_added".into()),
            ..row("user.credential_changed")
        };
        let set = claims("https://iss", "rx", "st", &all, &added).unwrap();
        let body = &set["events"][CREDENTIAL_CHANGE];
        assert_eq!(
            (&body["credential_type"], &body["change_type"]),
            (&json!("app"), &json!("create"))
        );
        let set = claims("https://iss", "rx", "st", &all, &row("user.disabled")).unwrap();
        assert_eq!(set["events"][ACCOUNT_DISABLED], json!({}));
        let set = claims("https://iss", "rx", "st", &all, &row("user.enabled")).unwrap();
        assert_eq!(set["events"][ACCOUNT_ENABLED], json!({}));
        assert!(claims("https://iss", "rx", "st", &all, &row("keys.rotated")).is_none());
        // Not requested: not delivered.
        let only = vec![SESSION_REVOKED.to_string()];
        assert!(claims("https://iss", "rx", "st", &only, &row("user.roles_changed")).is_none());
        // The same (stream, event) always has the same jti; another stream another.
        assert_eq!(jti("st", 7), jti("st", 7));
        assert_ne!(jti("st", 7), jti("other", 7));
    }

    #[test]
    fn stream_updated_names_the_stream_its_status_and_why() {
        let set = stream_updated("https://iss", "rx", "st", "disabled", "why", 5);
        assert_eq!(set["sub_id"], json!({"format": "opaque", "id": "st"}));
        assert_eq!(
            set["events"],
            json!({STREAM_UPDATED: {"status": "disabled", "reason": "why"}})
        );
        assert_eq!(
            (set["iss"].clone(), set["aud"].clone(), set["iat"].clone()),
            (json!("https://iss"), json!("rx"), json!(5))
        );
    }
}
