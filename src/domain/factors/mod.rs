//! Credentials beyond the password: TOTP authenticators and recovery codes, what a
//! sign-in's second step checks, and the account page's changes. Adding or removing one
//! is a credential change ([`lifecycle`]).
//!
//! - [`amr`]: the `amr`/`acr` words and the MFA policy (pure).
//! - [`totp`]: RFC 6238 codes, the `otpauth://` URI and its QR code.
//! - [`recovery`]: the single-use recovery codes.
//! - [`passkeys`]: WebAuthn registration and sign-in.

pub mod amr;
pub mod lifecycle;
pub mod passkeys;
pub mod recovery;
pub mod totp;

use std::sync::Arc;

use super::keys::KeyRing;
use super::users::Users;
use crate::config::Config;
use crate::crypto::{self, sha256};
use crate::store::factors::FactorRow;
use crate::store::{self, StoreError};

/// The kind of a TOTP authenticator in the `factors` table.
pub const TOTP: &str = "totp";
/// The kind of a passkey as the account page lists it (the `passkeys` table).
pub const PASSKEY: &str = "passkey";
/// The longest name a user may give a factor.
pub const MAX_NAME: usize = 64;

/// The AAD a factor's secret is sealed with under the KEK.
pub fn seal_label(factor_id: &str) -> String {
    format!("factor:{factor_id}")
}

/// Why a factor operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    /// No such factor (or enrollment) for this user.
    #[error("no such factor")]
    NotFound,
    /// A sealed secret does not open (a KEK mismatch or a corrupt row).
    #[error("a factor's secret does not open")]
    Sealed,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A TOTP enrollment awaiting its first code: what the account page shows.
pub struct Enrollment {
    /// The unconfirmed factor's id, carried by the confirmation form.
    pub factor_id: String,
    /// The `otpauth://` URI authenticator apps read.
    pub uri: String,
    /// The seed in base32, for typing in by hand.
    pub secret: String,
    /// The URI's QR code, an SVG element.
    pub qr_svg: String,
}

/// A confirmed factor as the account page lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    /// Its id, named by the removal form.
    pub id: String,
    /// `totp` or `passkey`.
    pub kind: String,
    /// The name the user gave it.
    pub name: String,
    /// Unix seconds, as is the last use.
    pub created_at: i64,
    /// The last sign-in it confirmed.
    pub last_used_at: Option<i64>,
}

/// A user's factors as the account page lists them.
pub struct Listed {
    /// Confirmed authenticator apps, oldest first.
    pub factors: Vec<Factor>,
    /// Passkeys, oldest first.
    pub passkeys: Vec<Factor>,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
}

/// Second factors: enrollment, verification, removal. Holds the key ring (TOTP seeds are
/// sealed under the KEK) and users (a change is a credential change). Cheap to clone.
#[derive(Clone)]
pub struct Factors {
    /// The settings (the issuer names the authenticator entry).
    pub cfg: Arc<Config>,
    /// The KEK that seals TOTP seeds.
    pub keys: Arc<KeyRing>,
    /// Users: the database, clock, events and the credential-change rules.
    pub users: Users,
}

impl Factors {
    /// The user's confirmed factors and unused recovery codes.
    pub async fn list(&self, user_id: &str) -> Result<Listed, StoreError> {
        let db = &self.users.db.read;
        let factors = store::factors::of_user(db, user_id).await?;
        Ok(Listed {
            factors: factors
                .into_iter()
                .filter(|f| f.confirmed_at.is_some())
                .map(|f| Factor {
                    id: f.id,
                    kind: f.kind,
                    name: f.name,
                    created_at: f.created_at,
                    last_used_at: f.last_used_at,
                })
                .collect(),
            passkeys: self.passkeys(user_id).await?,
            recovery_codes_left: store::factors::recovery_codes_left(db, user_id).await?,
        })
    }

    /// Whether the user has a second factor to sign in with.
    pub async fn has_second_factor(&self, user_id: &str) -> Result<bool, StoreError> {
        let listed = self.list(user_id).await?;
        Ok(!listed.factors.is_empty()
            || !listed.passkeys.is_empty()
            || listed.recovery_codes_left > 0)
    }

    /// Starts a TOTP enrollment: a new seed, sealed, stored unconfirmed (replacing an
    /// earlier unconfirmed one).
    pub async fn begin_totp(
        &self,
        user_id: &str,
        username: &str,
    ) -> Result<Enrollment, FactorError> {
        let now = self.users.clock.now();
        let row = FactorRow {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.into(),
            kind: TOTP.into(),
            name: "Authenticator app".into(),
            secret: Vec::new(),
            last_step: 0,
            created_at: now,
            confirmed_at: None,
            last_used_at: None,
        };
        let seed = crypto::random::<{ totp::SEED_LEN }>();
        let row = FactorRow {
            secret: self.keys.seal_secret(&seal_label(&row.id), &seed),
            ..row
        };
        let mut tx = self.users.db.begin_plain().await?;
        for old in store::factors::of_user(&mut tx, user_id).await? {
            if old.confirmed_at.is_none() {
                store::factors::delete(&mut tx, user_id, &old.id).await?;
            }
        }
        store::factors::insert(&mut tx, &row).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.enrollment(user_id, username, &row.id).await
    }

    /// An unconfirmed enrollment, shown again (after a wrong first code).
    pub async fn enrollment(
        &self,
        user_id: &str,
        username: &str,
        factor_id: &str,
    ) -> Result<Enrollment, FactorError> {
        let row = store::factors::get(&self.users.db.read, user_id, factor_id)
            .await?
            .filter(|f| f.confirmed_at.is_none())
            .ok_or(FactorError::NotFound)?;
        let t = self.totp_of(&row, username)?;
        let uri = t.get_url();
        Ok(Enrollment {
            factor_id: row.id,
            qr_svg: totp::qr_svg(&uri).ok_or(FactorError::Sealed)?,
            secret: t.get_secret_base32(),
            uri,
        })
    }

    fn totp_of(&self, row: &FactorRow, username: &str) -> Result<totp_rs::TOTP, FactorError> {
        let seed = self
            .keys
            .open_secret(&seal_label(&row.id), &row.secret)
            .map_err(|_| FactorError::Sealed)?;
        let issuer = url::Url::parse(&self.cfg.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "tessera".into());
        totp::totp(seed, &issuer, username).ok_or(FactorError::Sealed)
    }

    /// Confirms an enrollment with its first code and names it; `Ok(false)` for a wrong
    /// code. A credential change: the user's other sessions end (the browser session
    /// `keep`, the one confirming, stays).
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        username: &str,
        factor_id: &str,
        code: &str,
        name: &str,
        keep: Option<&str>,
    ) -> Result<bool, FactorError> {
        let row = store::factors::get(&self.users.db.read, user_id, factor_id)
            .await?
            .filter(|f| f.confirmed_at.is_none())
            .ok_or(FactorError::NotFound)?;
        let now = self.users.clock.now();
        let Some(step) = totp::matching_step(&self.totp_of(&row, username)?, code, now) else {
            return Ok(false);
        };
        let mut tx = self.users.db.begin().await?;
        if !store::factors::confirm(&mut tx, factor_id, step, now).await? {
            return Ok(false);
        }
        store::factors::rename(&mut tx, factor_id, &clean_name(name)).await?;
        self.users
            .credential_changed(tx, user_id, "totp_added", keep)
            .await?;
        Ok(true)
    }

    /// Checks a second-factor code (a TOTP code of any confirmed authenticator, or an
    /// unused recovery code) and spends it; the `amr` method it proves, or `None`. A TOTP
    /// code at a step no later than the last one accepted is refused (a replay).
    pub async fn verify(
        &self,
        user_id: &str,
        username: &str,
        code: &str,
    ) -> Result<Option<&'static str>, FactorError> {
        let now = self.users.clock.now();
        if recovery::looks_like(code) {
            let spent = store::factors::use_recovery_code(
                self.users.db.writer(),
                user_id,
                &recovery::digest(code),
                now,
            )
            .await?;
            return Ok(spent.then_some(amr::OTP));
        }
        for row in store::factors::of_user(&self.users.db.read, user_id).await? {
            if row.kind != TOTP || row.confirmed_at.is_none() {
                continue;
            }
            if let Some(step) = totp::matching_step(&self.totp_of(&row, username)?, code, now) {
                let fresh =
                    store::factors::use_step(self.users.db.writer(), &row.id, step, now).await?;
                return Ok(fresh.then_some(amr::OTP));
            }
        }
        Ok(None)
    }

    /// New recovery codes, replacing any the user had; shown once, stored hashed. A
    /// credential change.
    pub async fn new_recovery_codes(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<Vec<String>, FactorError> {
        let codes: Vec<String> = (0..recovery::COUNT).map(|_| recovery::new_code()).collect();
        let hashes: Vec<[u8; 32]> = codes.iter().map(|c| recovery::digest(c)).collect();
        let now = self.users.clock.now();
        let mut tx = self.users.db.begin().await?;
        store::factors::replace_recovery_codes(&mut tx, user_id, &hashes, now).await?;
        self.users
            .credential_changed(tx, user_id, "recovery_codes_created", keep)
            .await?;
        Ok(codes)
    }

    /// Removes one of the user's factors (an authenticator app or a passkey): a
    /// credential change.
    pub async fn remove(
        &self,
        user_id: &str,
        factor_id: &str,
        keep: Option<&str>,
    ) -> Result<(), FactorError> {
        let mut tx = self.users.db.begin().await?;
        let reason = if store::factors::delete(&mut tx, user_id, factor_id).await? {
            "totp_removed"
        } else if store::passkeys::delete(&mut tx, user_id, factor_id).await? {
            "passkey_removed"
        } else {
            return Err(FactorError::NotFound);
        };
        self.users
            .credential_changed(tx, user_id, reason, keep)
            .await?;
        Ok(())
    }
}

/// A factor's name as shown: trimmed, control characters dropped, at most [`MAX_NAME`]
/// characters; empty: "Authenticator app".
pub fn clean_name(name: &str) -> String {
    clean_name_or(name, "Authenticator app")
}

/// [`clean_name`] with another name for an empty one.
pub fn clean_name_or(name: &str, empty: &str) -> String {
    let name: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    if name.is_empty() { empty.into() } else { name }
}

/// The browser session a cookie names, as stored (its SHA-256).
pub(crate) fn session_hash(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}
