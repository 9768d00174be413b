//! The key-encryption key: where it comes from (`TESSERA_KEK` or `keys_dir/kek`),
//! the check value that ties it to one database, and sealing of private keys.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::KeyError;
use crate::config::Config;
use crate::crypto::{self, AEAD_KEY_LEN};
use crate::store::{self, Db, StoreError};

const KEK_FILE: &str = "kek";
/// The `meta` entry sealed under the KEK: opens only with the KEK of this database.
pub(super) const KEK_CHECK: &str = "kek_check";

/// The key-encryption key. Never printed.
pub struct Kek([u8; AEAD_KEY_LEN]);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

impl Kek {
    /// HMAC-SHA-256 of `purpose` under the KEK: a key for that purpose alone.
    pub(super) fn derive(&self, purpose: &str) -> [u8; 32] {
        crypto::hmac_sha256(&self.0, purpose.as_bytes())
    }

    /// A KEK from base64 (standard or URL-safe) of its 32 bytes.
    pub(super) fn decode(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| "not valid base64".to_string())?;
        let key = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "expected {AEAD_KEY_LEN} bytes (base64), got {} bytes",
                bytes.len()
            )
        })?;
        Ok(Kek(key))
    }

    /// Takes the KEK from `TESSERA_KEK` or `keys_dir/kek`; generates the file (mode 0600)
    /// only when the database holds nothing encrypted yet. Checks it against the database.
    pub async fn load(cfg: &Config, db: &Db) -> Result<Self, KeyError> {
        let check = store::keys::meta(&db.read, KEK_CHECK).await?;
        let path = cfg.keys_dir.join(KEK_FILE);
        let kek = if let Some(text) = &cfg.kek {
            Self::decode(text).map_err(KeyError::BadEnvKek)?
        } else if path.exists() {
            check_kek_file_mode(&path)?;
            let text = std::fs::read_to_string(&path).map_err(|e| KeyError::BadKekFile {
                path: path.display().to_string(),
                problem: e.to_string(),
            })?;
            Self::decode(&text).map_err(|problem| KeyError::BadKekFile {
                path: path.display().to_string(),
                problem,
            })?
        } else if check.is_some() {
            return Err(KeyError::MissingKek {
                path: path.display().to_string(),
            });
        } else {
            let kek = Kek(crypto::random());
            write_private_file(&path, STANDARD.encode(kek.0).as_bytes()).map_err(|e| {
                KeyError::BadKekFile {
                    path: path.display().to_string(),
                    problem: e.to_string(),
                }
            })?;
            tracing::info!(path = %path.display(), "generated a new key-encryption key; back it up");
            kek
        };
        match check {
            Some(sealed) => {
                if !kek.opens_check(&sealed) {
                    return Err(KeyError::WrongKek);
                }
            }
            None => {
                let mut tx = db.begin().await?;
                store::keys::set_meta(&mut tx, KEK_CHECK, &kek.sealed_check()).await?;
                tx.commit().await.map_err(StoreError::from)?;
            }
        }
        Ok(kek)
    }

    /// Whether the database's check value was sealed with this KEK.
    pub(super) fn opens_check(&self, sealed: &[u8]) -> bool {
        crypto::open(&self.0, KEK_CHECK.as_bytes(), sealed).is_ok()
    }

    /// The check value sealed under this KEK, to store in `meta`.
    pub(super) fn sealed_check(&self) -> Vec<u8> {
        crypto::seal(&self.0, KEK_CHECK.as_bytes(), b"tessera")
    }

    pub(super) fn seal(&self, kid: &str, plaintext: &[u8]) -> Vec<u8> {
        crypto::seal(&self.0, kid.as_bytes(), plaintext)
    }

    pub(super) fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        crypto::open(&self.0, kid.as_bytes(), sealed).map_err(|_| KeyError::CorruptKey {
            kid: kid.into(),
            problem: "private key does not decrypt".into(),
        })
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// The KEK opens every private key: a file others may read stops the start (with
/// the command that fixes it); group access, as secret mounts often grant, is warned of.
fn check_kek_file_mode(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(KeyError::KekFileOpen {
            path: path.display().to_string(),
            mode: mode & 0o777,
        });
    }
    if mode & 0o070 != 0 {
        tracing::warn!(path = %path.display(), "the key-encryption key is accessible to its group; chmod 600 it");
    }
    Ok(())
}
