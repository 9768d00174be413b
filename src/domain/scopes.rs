//! What a user's access token lets its client have beyond `sub`: a first-party client
//! receives roles, the user's events and a refresh token, as it always did; a
//! third-party client receives only what the user consented to, by scope.

/// OpenID Connect: an ID token.
pub const OPENID: &str = "openid";
/// The user's username at `/userinfo` (OpenID Connect Core §5.4).
pub const PROFILE: &str = "profile";
/// The `roles` claim, and the roles (and `ver`) at `/userinfo`.
pub const ROLES: &str = "roles";
/// The user's own `/events` feed.
pub const EVENTS: &str = "events";
/// A refresh token (OpenID Connect Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The scopes tessera defines, published as `scopes_supported` (RFC 8414 §2); scopes
/// clients register for their own APIs are theirs to document.
pub const SUPPORTED: &[&str] = &[OPENID, PROFILE, OFFLINE_ACCESS, ROLES, EVENTS];

/// Whether a client granted `scope` (space-separated) receives what `needed` stands for.
pub fn receives(third_party: bool, scope: &str, needed: &str) -> bool {
    !third_party || scope.split(' ').any(|s| s == needed)
}

/// The scope a third-party authorization request may be granted: `offline_access` is
/// dropped unless the request has `prompt=consent` (OpenID Connect Core §11: the OP must
/// ignore it otherwise; a remembered consent is not enough for a refresh token).
pub fn authorizable(third_party: bool, scope: &str, prompt_consent: bool) -> String {
    if !third_party || prompt_consent {
        return scope.to_string();
    }
    scope
        .split(' ')
        .filter(|s| *s != OFFLINE_ACCESS)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_third_party_client_receives_by_scope_a_first_party_one_everything() {
        assert!(receives(false, "", ROLES));
        assert!(!receives(true, "openid", ROLES));
        assert!(!receives(true, "openid rolesx", ROLES));
        assert!(receives(true, "openid roles", ROLES));
        assert_eq!(authorizable(true, "openid offline_access", false), "openid");
        assert_eq!(
            authorizable(true, "openid offline_access", true),
            "openid offline_access"
        );
        assert_eq!(
            authorizable(false, "openid offline_access", false),
            "openid offline_access"
        );
    }
}
