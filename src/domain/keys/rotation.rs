//! Signing-key rotation policy: when the next key may sign, scheduled rotation,
//! and how long a retired key stays published.

use super::kek::KEK_CHECK;
use super::signing::{Generated, generate};
use super::{KeyError, KeyPurpose, KeyState, in_state, keyset::sealed_row, of_chain, transition};
use crate::config::SigningAlg;
use crate::domain::audit::Actor;
use crate::domain::clock::rfc3339;
use crate::store::keys::KeyRow;
use crate::store::{self, StoreError};

/// Seconds a retired key outlives its last token in the JWKS, beyond `jwks_max_age`.
const RETIRED_LEEWAY: i64 = 60;

impl super::Keys {
    /// Runs every second on every instance: scheduled rotation, removal of retired
    /// keys whose tokens have all expired, and pick-up of changes made elsewhere.
    pub async fn maintain_keys(&self) -> Result<(), KeyError> {
        let now = self.clock.now();
        let rows = store::keys::list(&self.db.read).await?;
        let interval = self.cfg.key_rotation_interval.as_secs() as i64;
        // The main chain's schedule; the RS256 chain rotates with it.
        if rows.iter().any(|r| {
            in_state(r, KeyState::Active)
                && of_chain(r, KeyPurpose::Main)
                && r.activated_at.unwrap_or(r.created_at) + interval <= now
        }) {
            match self.rotate_keys(&Actor::server(), None, false).await {
                Ok(msg) => tracing::info!("scheduled rotation: {msg}"),
                // Another instance rotated first, or the next key is still too young.
                Err(KeyError::TooEarly { .. } | KeyError::NoActiveKey) => {}
                Err(e) => return Err(e),
            }
        }
        // A retired key stays published until the last token it signed has expired,
        // plus the JWKS cache lifetime and a leeway.
        let keep =
            (self.cfg.access_token_ttl + self.cfg.jwks_max_age).as_secs() as i64 + RETIRED_LEEWAY;
        if rows
            .iter()
            .any(|r| in_state(r, KeyState::Retired) && r.retired_at.unwrap_or(0) < now - keep)
        {
            let mut tx = self.db.begin().await?;
            store::keys::delete_retired_before(&mut tx, KeyState::Retired.as_str(), now - keep)
                .await?;
            tx.commit().await.map_err(StoreError::from)?;
        }
        self.reload_keys().await?;
        Ok(())
    }

    /// Re-reads the key rows (another process may have rotated) and logs a change.
    pub async fn reload_keys(&self) -> Result<bool, KeyError> {
        let changed = self.keys.reload(&self.db).await?;
        if changed {
            tracing::info!(kid = %self.keys.current().active.kid, "signing keys reloaded");
        }
        Ok(changed)
    }

    /// Rotates: the `next` key (already published) starts signing, the active key is
    /// retired (or revoked at once with `revoke_current`), and a new `next` key of
    /// `alg` (default: the configured one) is published. The RS256 ID-token chain, when
    /// there is one, rotates with it by the same rules. Safe across instances: the
    /// state transitions are conditional updates inside one write transaction.
    pub async fn rotate_keys(
        &self,
        by: &Actor,
        alg: Option<SigningAlg>,
        revoke_current: bool,
    ) -> Result<String, KeyError> {
        let alg = alg.unwrap_or(self.cfg.signing_alg);
        let now = self.clock.now();
        let rs256_chain = store::keys::list(&self.db.read)
            .await?
            .iter()
            .any(|r| of_chain(r, KeyPurpose::IdRs256) && in_state(r, KeyState::Active));
        // RSA generation takes a while: off the async threads, before taking the write lock.
        let (main, rs256) = tokio::task::spawn_blocking(move || {
            let rs256 = rs256_chain
                .then(|| generate(SigningAlg::RS256))
                .transpose()?;
            Ok::<_, KeyError>((generate(alg)?, rs256))
        })
        .await
        .map_err(|_| KeyError::Generate(alg.as_str()))??;
        let mut tx = self.db.begin().await?;
        self.check_kek(&mut tx).await?;
        let rows = store::keys::list(&mut tx).await?;
        let chain = Chain {
            rows: &rows,
            revoke_current,
            now,
        };
        let mut message = self
            .rotate_chain(&mut tx, &chain, KeyPurpose::Main, alg, main)
            .await?;
        if let Some(generated) = rs256 {
            let rotated = self
                .rotate_chain(
                    &mut tx,
                    &chain,
                    KeyPurpose::IdRs256,
                    SigningAlg::RS256,
                    generated,
                )
                .await;
            match rotated {
                Ok(m) => message = format!("{message}; RS256 ID-token keys: {m}"),
                // Created after the main chain's next key: it rotates at the next rotation.
                Err(KeyError::TooEarly { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let details = serde_json::json!({ "alg": alg.as_str(), "revoke_current": revoke_current });
        by.record(&mut tx, "rotate_keys", None, Some(details), now)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.keys.reload(&self.db).await?;
        self.events.wake();
        Ok(message)
    }

    /// A rewrap by another process must not be undone key by key: a key sealed here
    /// under the old KEK would stop every instance that starts with the new one.
    async fn check_kek(&self, tx: &mut store::Tx) -> Result<(), KeyError> {
        let check = store::keys::meta(tx, KEK_CHECK).await?;
        if !check.is_some_and(|sealed| self.keys.kek.opens_check(&sealed)) {
            return Err(KeyError::KekReplaced);
        }
        Ok(())
    }

    /// One chain's step of a rotation, inside its transaction.
    async fn rotate_chain(
        &self,
        tx: &mut store::Tx,
        chain: &Chain<'_>,
        purpose: KeyPurpose,
        alg: SigningAlg,
        generated: Generated,
    ) -> Result<String, KeyError> {
        let now = chain.now;
        let fresh = sealed_row(&self.keys.kek, alg, generated, KeyState::Next, purpose, now);
        let find = |state| {
            chain
                .rows
                .iter()
                .find(|r| of_chain(r, purpose) && in_state(r, state))
        };
        let active = find(KeyState::Active).ok_or(KeyError::NoActiveKey)?;
        let next = find(KeyState::Next).ok_or(KeyError::NoNextKey)?;
        // Invariant: a key signs only after it has been published as `next` for at
        // least the JWKS cache lifetime, so a verifier honouring Cache-Control has it.
        // Only an emergency revocation may break it.
        // Times are whole seconds: a key created at 10.9 s carries 10, so it may sign
        // from 10 + lead + 1, never earlier than a full `lead` after it was published.
        let lead = self.cfg.jwks_max_age.as_secs() as i64;
        let signs_from = next.created_at + lead + 1;
        if !chain.revoke_current && now < signs_from {
            return Err(KeyError::TooEarly {
                kid: next.kid.clone(),
                since: rfc3339(Some(next.created_at)),
                from: rfc3339(Some(signs_from)),
            });
        }
        let (old_state, reason) = if chain.revoke_current {
            (KeyState::Revoked, "revoked")
        } else {
            (KeyState::Retired, "rotated")
        };
        if !transition(&mut *tx, &active.kid, KeyState::Active, old_state, now).await?
            || !transition(&mut *tx, &next.kid, KeyState::Next, KeyState::Active, now).await?
        {
            return Err(KeyError::NoActiveKey);
        }
        store::keys::insert(&mut *tx, &fresh).await?;
        let event = store::events::NewEvent {
            kind: crate::domain::events::EventKind::KeysRotated.as_str(),
            kid: Some(&active.kid),
            reason: Some(reason),
            ..Default::default()
        };
        store::events::append(&mut *tx, &event, now).await?;
        Ok(format!(
            "{} is now active; {} {}; {} ({}) published as next",
            next.kid,
            active.kid,
            old_state.as_str(),
            fresh.kid,
            fresh.alg
        ))
    }

    /// Makes sure a key signs RS256 ID tokens (for a client registered for RS256): when
    /// the main chain signs another alg, starts the RS256 chain, an active and a next key,
    /// rotated with the main chain from then on. Its first key signs at once, as the
    /// deployment's first key does: no RP can have been waiting for it.
    pub async fn ensure_rs256_keys(&self) -> Result<(), KeyError> {
        let current = self.keys.current();
        if current.id_token_signer(Some(SigningAlg::RS256)).is_some() {
            return Ok(());
        }
        let now = self.clock.now();
        let (first, next) = tokio::task::spawn_blocking(|| {
            Ok::<_, KeyError>((generate(SigningAlg::RS256)?, generate(SigningAlg::RS256)?))
        })
        .await
        .map_err(|_| KeyError::Generate("RS256"))??;
        let mut tx = self.db.begin().await?;
        self.check_kek(&mut tx).await?;
        let rows = store::keys::list(&mut tx).await?;
        let exists = rows.iter().any(|r| {
            in_state(r, KeyState::Active)
                && (of_chain(r, KeyPurpose::IdRs256) || r.alg == SigningAlg::RS256.as_str())
        });
        if !exists {
            let purpose = KeyPurpose::IdRs256;
            let rs = SigningAlg::RS256;
            let first = sealed_row(&self.keys.kek, rs, first, KeyState::Active, purpose, now);
            let next = sealed_row(&self.keys.kek, rs, next, KeyState::Next, purpose, now);
            for row in [&first, &next] {
                match store::keys::insert(&mut tx, row).await {
                    // Another instance started the chain first (one active key per chain).
                    Err(StoreError::Conflict(_)) => return self.reload_keys().await.map(drop),
                    other => other?,
                }
            }
            tx.commit().await.map_err(StoreError::from)?;
            tracing::info!(kid = %first.kid, "RS256 ID-token signing keys created");
        }
        self.keys.reload(&self.db).await?;
        Ok(())
    }
}

/// What every chain of one rotation shares.
struct Chain<'a> {
    rows: &'a [KeyRow],
    revoke_current: bool,
    now: i64,
}
