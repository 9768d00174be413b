//! KEK rotation: every private key re-encrypted under a new key-encryption key, and
//! what else is sealed under it (TOTP seeds, push streams' authorization headers).

use super::kek::{KEK_CHECK, Kek};
use super::{KeyError, KeyState, in_state};
use crate::domain::audit::Actor;
use crate::domain::ssf::config as ssf;
use crate::store::{self, StoreError};

impl super::Keys {
    /// KEK rotation: re-encrypts every private key (and the check value) under
    /// `new_kek` (base64 of 32 bytes) in one transaction. Afterwards every process
    /// must be started with the new KEK. Returns the number of keys re-encrypted.
    pub async fn rewrap_keys(&self, by: &Actor, new_kek: &str) -> Result<usize, KeyError> {
        let new = Kek::decode(new_kek).map_err(|problem| KeyError::BadKekFile {
            path: "new KEK".into(),
            problem,
        })?;
        let mut tx = self.db.begin().await?;
        let rows = store::keys::list(&mut tx).await?;
        let mut rewrapped = 0;
        for r in &rows {
            let plain = match self.keys.kek.open(&r.kid, &r.private_sealed) {
                Ok(plain) => plain,
                // As at start: a retired key that does not open never signs again.
                Err(e) if in_state(r, KeyState::Retired) => {
                    tracing::warn!(kid = %r.kid, "retired signing key not re-encrypted: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            store::keys::set_private(&mut tx, &r.kid, &new.seal(&r.kid, &plain)).await?;
            rewrapped += 1;
        }
        // Second factors' secrets (TOTP seeds) are sealed under the KEK too.
        let mut factors = 0;
        for (id, sealed) in store::factors::secrets(&mut tx).await? {
            let label = crate::domain::factors::seal_label(&id);
            let plain = self.keys.kek.open(&label, &sealed)?;
            store::factors::set_secret(&mut tx, &id, &new.seal(&label, &plain)).await?;
            factors += 1;
        }
        // Push streams' authorization headers are sealed under a key derived from it.
        let (old_key, new_key) = (
            self.keys.kek.derive(ssf::SEAL_PURPOSE),
            new.derive(ssf::SEAL_PURPOSE),
        );
        let mut push_authorizations = 0;
        for (id, config) in store::ssf::configs(&mut tx).await? {
            match ssf::reseal(&id, &config, &old_key, &new_key) {
                Ok(Some(config)) => {
                    store::ssf::set_config(&mut tx, &id, &config).await?;
                    push_authorizations += 1;
                }
                Ok(None) => {}
                // Already unreadable: its deliveries fail and say so; replacing the
                // stream's delivery is the way out, as before the rotation.
                Err(e) => tracing::warn!(stream_id = %id, "push authorization not re-sealed: {e}"),
            }
        }
        let details = serde_json::json!({
            "signing_keys": rewrapped,
            "second_factors": factors,
            "ssf_push_authorizations": push_authorizations,
        });
        by.record(
            &mut tx,
            "rewrap_keys",
            None,
            Some(details),
            self.clock.now(),
        )
        .await?;
        store::keys::set_meta(&mut tx, KEK_CHECK, &new.sealed_check()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(rewrapped)
    }
}
