//! argon2id password hashing, always off the async threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::crypto;

#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A real hash of a random password with the current parameters, so that an
    /// unknown username costs exactly what a wrong password does.
    dummy_hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid argon2 parameters: {0}")]
pub struct ParamsError(String);

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, ParamsError> {
        let params =
            Params::new(memory_kib, iterations, 1, None).map_err(|e| ParamsError(e.to_string()))?;
        let mut me = Self {
            params,
            dummy_hash: String::new(),
        };
        me.dummy_hash = me
            .hash_blocking(&crypto::random_token())
            .map_err(ParamsError)?;
        Ok(me)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_blocking(&self, password: &str) -> Result<String, String> {
        let salt = SaltString::encode_b64(&crypto::random::<16>()).map_err(|e| e.to_string())?;
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    }

    pub async fn hash(&self, password: SecretString) -> String {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.hash_blocking(password.expose_secret()))
            .await
            .expect("hashing task")
            .expect("argon2 hashing with validated parameters")
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is
    /// no user, so both paths cost the same. A malformed stored hash never matches.
    pub async fn verify(&self, hash: Option<String>, password: SecretString) -> bool {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| me.dummy_hash.clone());
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            let ok = me
                .argon2()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            ok && known
        })
        .await
        .unwrap_or(false)
    }
}
