//! What a token means right now (RFC 7662), and revoking one (RFC 7009).
//! Both answer from the live database: sessions, users and keys as they are now.

use serde_json::{Value, json};

use super::audit::Actor;
use super::clients::Client;
use super::liveness::{ClientRead, Liveness};
use super::rotation::Presented;
use super::sessions;
use super::signin::SignIn;
use super::tokens::AccessClaims;
use super::users::Users;
use crate::store::{self, StoreError, from_json};

/// A token is a JWT when it has the three dot-separated parts; anything else is
/// looked up as a refresh token.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

impl SignIn {
    /// The claims of an active token, or `None` for anything inactive: expired,
    /// unknown, signed by a revoked key, of a revoked session, of a disabled user,
    /// behind the user's `ver` (whatever the policy), or a consumed refresh token.
    /// Refresh tokens are visible only to the client they were issued to.
    pub async fn introspect(
        &self,
        caller: &Client,
        token: &str,
    ) -> Result<Option<Value>, StoreError> {
        if looks_like_jwt(token) {
            self.introspect_access(token).await
        } else {
            self.introspect_refresh(caller, token).await
        }
    }

    async fn introspect_access(&self, token: &str) -> Result<Option<Value>, StoreError> {
        let Ok(c) =
            self.keys
                .current()
                .verify::<AccessClaims>(token, &self.cfg.issuer, self.clock.now())
        else {
            return Ok(None);
        };
        let username = match self.live.liveness(&c, ClientRead::Cached).await? {
            // Stale under either policy: under `reissue` the session lives on, but
            // this token's roles are not the user's any more (DESIGN: inactive).
            Liveness::User(user) if c.ver.is_some_and(|v| v < user.authz_version) => {
                return Ok(None);
            }
            Liveness::User(user) => Some(user.username),
            Liveness::Client { .. } => None,
            Liveness::UserDisabled | Liveness::SessionRevoked { .. } | Liveness::ClientGone => {
                return Ok(None);
            }
        };
        let mut v = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": c.scope,
            "client_id": c.client_id,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "exp": c.exp,
            "iat": c.iat,
            "jti": c.jti,
            "roles": c.roles,
        });
        if let Some(username) = username {
            v["username"] = json!(username);
            v["sid"] = json!(c.sid);
            v["ver"] = json!(c.ver);
        }
        drop_nulls(&mut v);
        Ok(Some(v))
    }

    async fn introspect_refresh(
        &self,
        caller: &Client,
        token: &str,
    ) -> Result<Option<Value>, StoreError> {
        let now = self.clock.now();
        let Some(row) = store::sessions::token(&self.db.read, &Presented::parse(token).key).await?
        else {
            return Ok(None);
        };
        let f = &row.family;
        let idle_deadline = f.last_used_at + self.cfg.refresh_idle_ttl.as_secs() as i64;
        let exp = f.expires_at.min(idle_deadline);
        if row.consumed_at.is_some()
            || f.revoked_at.is_some()
            || now >= exp
            || f.client_id != caller.id
        {
            return Ok(None);
        }
        let Some(user) = store::users::by_id(&self.db.read, &f.user_id)
            .await?
            .filter(|u| !u.disabled)
        else {
            return Ok(None);
        };
        let scope = (!f.scope.is_empty()).then(|| f.scope.clone());
        let mut v = json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": scope,
            "client_id": f.client_id,
            "username": user.username,
            "sub": user.id,
            "aud": super::tokens::Audience::from_list(from_json(&f.audience)?),
            "iss": self.cfg.issuer,
            "exp": exp,
            "iat": row.issued_at,
            "sid": f.id,
        });
        drop_nulls(&mut v);
        Ok(Some(v))
    }

    /// RFC 7009: a refresh token revokes its family; an access token revokes the
    /// session it came from. Tokens of other clients, unknown or already revoked
    /// tokens are ignored (the caller still gets 200, §2.2).
    pub async fn revoke_token(&self, caller: &Client, token: &str) -> Result<(), StoreError> {
        let family = if looks_like_jwt(token) {
            let Ok(c) = self.keys.current().verify::<AccessClaims>(
                token,
                &self.cfg.issuer,
                self.clock.now(),
            ) else {
                return Ok(());
            };
            match (c.sid, c.client_id == caller.id) {
                (Some(sid), true) => store::sessions::family(&self.db.read, &sid).await?,
                _ => None,
            }
        } else {
            store::sessions::token(&self.db.read, &Presented::parse(token).key)
                .await?
                .map(|t| t.family)
        };
        let Some(family) = family.filter(|f| f.client_id == caller.id && f.revoked_at.is_none())
        else {
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        sessions::revoke_family(&self.clock, &mut tx, &family, "revoked_by_client").await?;
        tx.commit().await?;
        self.events.wake();
        self.metrics.session_revoked("revoked_by_client");
        Ok(())
    }
}

impl Users {
    /// Revokes one session by id (an operator's act); false when there is no such live
    /// session.
    pub async fn revoke_session(&self, by: &Actor, sid: &str) -> Result<bool, StoreError> {
        let reason = "revoked_by_admin";
        let mut tx = self.db.begin().await?;
        let Some(family) = store::sessions::family(&mut tx, sid).await? else {
            return Ok(false);
        };
        let done = sessions::revoke_family(&self.clock, &mut tx, &family, reason).await?;
        if !done {
            return Ok(false);
        }
        let details = serde_json::json!({ "user": family.user_id, "client": family.client_id });
        by.record(
            &mut tx,
            "revoke_session",
            Some(sid),
            Some(details),
            self.clock.now(),
        )
        .await?;
        tx.commit().await?;
        self.events.wake();
        if done {
            self.metrics.session_revoked(reason);
        }
        Ok(done)
    }
}

fn drop_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, v| !v.is_null());
    }
}
