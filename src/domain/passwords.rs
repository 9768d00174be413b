//! argon2id password hashing, on dedicated threads, never on the async ones.
//!
//! One worker per core, each reusing its own argon2 memory: a burst of sign-ins
//! queues instead of allocating 19 MiB per request on an unbounded blocking pool
//! (which once took a load test to 2.3 GiB of RSS).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::crypto::{self, ct_eq};

enum Job {
    Hash(SecretString, oneshot::Sender<Result<String, String>>),
    Verify(String, SecretString, oneshot::Sender<bool>),
}

#[derive(Clone)]
pub struct Passwords {
    jobs: mpsc::Sender<Job>,
    /// A real hash of a random password with the current parameters, so that an
    /// unknown username costs exactly what a wrong password does.
    dummy_hash: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid argon2 parameters: {0}")]
pub struct ParamsError(String);

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash(params: &Params, password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&crypto::random::<16>()).map_err(|e| e.to_string())?;
    argon2(params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies against a PHC string, using (and growing) `memory` instead of allocating.
fn verify(hash: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    memory.resize(params.block_count(), Block::default());
    let mut out = vec![0u8; expected.len()];
    argon2(params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
        .is_ok()
        && ct_eq(&out, expected.as_bytes())
}

fn worker(params: Params, jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut memory = Vec::new();
    loop {
        let job = match jobs.lock().expect("password jobs").recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        match job {
            Job::Hash(password, reply) => {
                let _ = reply.send(hash(&params, password.expose_secret()));
            }
            Job::Verify(hash, password, reply) => {
                let _ = reply.send(verify(&hash, password.expose_secret(), &mut memory));
            }
        }
    }
}

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, ParamsError> {
        let params =
            Params::new(memory_kib, iterations, 1, None).map_err(|e| ParamsError(e.to_string()))?;
        let dummy_hash: Arc<str> = hash(&params, &crypto::random_token())
            .map_err(ParamsError)?
            .into();
        let (tx, rx) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..workers {
            let (params, rx) = (params.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(params, rx))
                .map_err(|e| ParamsError(e.to_string()))?;
        }
        Ok(Self {
            jobs: tx,
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: SecretString) -> String {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Hash(password, tx))
            .expect("password workers run for the life of the process");
        rx.await
            .expect("password worker replied")
            .expect("argon2 hashing with validated parameters")
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is
    /// no user, so both paths cost the same. A malformed stored hash never matches.
    pub async fn verify(&self, hash: Option<String>, password: SecretString) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Verify(hash, password, tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false) && known
    }
}
