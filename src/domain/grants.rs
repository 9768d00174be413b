//! The three grants of `POST /token` (RFC 6749 §4.3, §4.4, §6).

use secrecy::SecretString;

use super::clients::{Client, GrantType, dedup};
use super::factors::amr;
use super::signin::SignIn;
use super::tokens::{Subject, TokenResponse};
use crate::error::OAuthError;
use crate::store::sessions::FamilyRow;
use crate::store::users::UserRow;
use crate::store::{self, from_json};

/// Parses a `scope` parameter (RFC 6749 §3.3): space-delimited NQCHAR tokens.
pub fn parse_scope(raw: Option<&str>) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let mut list: Vec<String> = raw
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let nqchar = |c: char| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c);
    if list.is_empty() || list.iter().any(|s| !s.chars().all(nqchar)) {
        return Err(OAuthError::InvalidScope("malformed scope".into()));
    }
    dedup(&mut list);
    Ok(Some(list))
}

/// The scope granted: the request if it is within `allowed`, else all of `allowed`.
pub fn grant_scope(
    requested: Option<Vec<String>>,
    allowed: &[String],
) -> Result<Vec<String>, OAuthError> {
    match requested {
        None => Ok(allowed.to_vec()),
        Some(list) => match list.iter().find(|s| !allowed.contains(s)) {
            Some(s) => Err(OAuthError::InvalidScope(format!(
                "scope `{s}` is not allowed"
            ))),
            None => Ok(list),
        },
    }
}

/// The audience: the RFC 8707 `resource` if the client may target it, else the
/// client's audiences, else the issuer itself.
pub(super) fn grant_audience(
    issuer: &str,
    resource: Option<&str>,
    allowed: &[String],
) -> Result<Vec<String>, OAuthError> {
    match resource {
        Some(r) if allowed.iter().any(|a| a == r) => Ok(vec![r.to_string()]),
        Some(_) => Err(OAuthError::InvalidTarget),
        None if allowed.is_empty() => Ok(vec![issuer.to_string()]),
        None => Ok(allowed.to_vec()),
    }
}

/// The user's roles as a token of `client` granted `scope` carries them: none for a
/// third-party client without scope `roles`.
pub(super) fn token_roles(client: &Client, scope: &str, roles: Vec<String>) -> Vec<String> {
    if client.receives(scope, super::scopes::ROLES) {
        roles
    } else {
        Vec::new()
    }
}

/// The scope and audience a refresh grants: narrowing is allowed, widening is
/// not; the refresh token keeps the family's original scope (RFC 6749 §6).
fn narrow_to_family(
    issuer: &str,
    client: &Client,
    family: &FamilyRow,
    requested: &Option<Vec<String>>,
    resource: Option<&str>,
) -> Result<(String, Vec<String>), OAuthError> {
    // A third-party session without `offline_access` (one from before it was required)
    // refreshes no more.
    if !client.receives(&family.scope, super::scopes::OFFLINE_ACCESS) {
        return Err(OAuthError::InvalidGrant(
            "this session was not granted offline_access",
        ));
    }
    let family_scope: Vec<String> = family
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let scope = grant_scope(requested.clone(), &family_scope)?.join(" ");
    let audience = grant_audience(issuer, resource, &from_json(&family.audience)?)?;
    Ok((scope, audience))
}

impl SignIn {
    /// The enabled user with this username and password. Unknown and disabled users
    /// cost a full argon2 verification too, and every failure is the same error.
    pub async fn check_password(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<UserRow, OAuthError> {
        let user = store::users::by_username(&self.db.read, username).await?;
        let valid = self
            .passwords
            .verify(user.as_ref().map(|u| u.password_hash.clone()), password)
            .await?;
        match user {
            Some(u) if valid && !u.disabled => Ok(u),
            _ => Err(OAuthError::InvalidGrant("invalid username or password")),
        }
    }

    /// `grant_type=password`: verifies the user's password on the argon2 workers, throttled per
    /// username and address, and opens a refresh family.
    pub async fn password_grant(
        &self,
        client: &Client,
        username: &str,
        password: SecretString,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        if !client.allows(GrantType::Password) {
            return Err(OAuthError::UnauthorizedClient(
                "this client may not use the password grant",
            ));
        }
        // A password alone never satisfies a client that requires a second factor.
        if client.require_mfa {
            return Err(OAuthError::InvalidGrant(
                "this client requires a second factor: sign in through /authorize",
            ));
        }
        let scope = grant_scope(parse_scope(scope)?, &client.scopes)?;
        let audience = grant_audience(&self.cfg.issuer, resource, &client.audiences)?;
        let user = self.check_password(username, password).await?;
        self.pauses.before_session.reached().await;
        let scope = scope.join(" ");
        // The user as read above, before argon2 ran, must still be the user now.
        let (sid, refresh_token) = if client.allows(GrantType::RefreshToken) {
            let started = self
                .start_session(
                    &user.id,
                    user.authz_version,
                    &client.id,
                    &scope,
                    &audience,
                    amr::PWD,
                )
                .await?;
            let (sid, rt) = started.ok_or(OAuthError::AccountChanged)?;
            (Some(sid), Some(rt))
        } else {
            let now = store::users::by_id(&self.db.read, &user.id).await?;
            if !now.is_some_and(|u| u.authz_version == user.authz_version && !u.disabled) {
                return Err(OAuthError::AccountChanged);
            }
            (None, None)
        };
        let subject = Subject {
            sub: &user.id,
            roles: token_roles(client, &scope, user.roles()?),
            sid: sid.as_deref(),
            ver: Some(user.authz_version),
            amr: Some(vec![amr::PWD.into()]),
        };
        self.tokens
            .issue(&client.id, subject, &scope, audience, refresh_token)
    }

    /// `grant_type=client_credentials`: an access token for the authenticated client itself, no
    /// refresh token.
    pub async fn client_credentials_grant(
        &self,
        client: &Client,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::InvalidClient);
        }
        if !client.allows(GrantType::ClientCredentials) {
            return Err(OAuthError::UnauthorizedClient(
                "this client may not use the client_credentials grant",
            ));
        }
        let scope = grant_scope(parse_scope(scope)?, &client.scopes)?.join(" ");
        let audience = grant_audience(&self.cfg.issuer, resource, &client.audiences)?;
        let subject = Subject {
            sub: &client.id,
            roles: client.roles.clone(),
            sid: None,
            ver: None,
            amr: None,
        };
        self.tokens
            .issue(&client.id, subject, &scope, audience, None)
    }

    /// `grant_type=refresh_token`: rotates the token by the rule in [`crate::domain::rotation`].
    pub async fn refresh_grant(
        &self,
        client: &Client,
        refresh_token: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        if !client.allows(GrantType::RefreshToken) {
            return Err(OAuthError::UnauthorizedClient(
                "this client may not use the refresh_token grant",
            ));
        }
        let requested = parse_scope(scope)?;
        // Checked before the token is consumed: a refused request must not cost the client its session.
        let issuer = &self.cfg.issuer;
        let narrow =
            |family: &FamilyRow| narrow_to_family(issuer, client, family, &requested, resource);
        let rotated = self.rotate(client, refresh_token, narrow).await?;
        let family = &rotated.family;
        let (scope, audience) = rotated.granted;
        let user = &rotated.user;
        let subject = Subject {
            sub: &family.user_id,
            roles: token_roles(client, &scope, user.roles()?),
            sid: Some(&family.id),
            ver: Some(user.authz_version),
            amr: Some(amr::methods(&family.amr)),
        };
        self.tokens.issue(
            &client.id,
            subject,
            &scope,
            audience,
            Some(rotated.refresh_token),
        )
    }
}
