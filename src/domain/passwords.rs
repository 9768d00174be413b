//! argon2id password hashing, on dedicated threads, never on the async ones.
//!
//! Hand-written rather than `spawn_blocking` or a pool crate: none reuses argon2's
//! memory per thread, bounds the queue and drops abandoned jobs (the RSS figure below).
//!
//! One worker per core, each reusing its own argon2 memory: a burst of sign-ins
//! queues instead of allocating 19 MiB per request on an unbounded blocking pool
//! (which once took a load test to 2.3 GiB of RSS). The queue of sign-ins is
//! bounded (`argon2_queue`; beyond it, 503 at once), and a job whose requester
//! has gone (timed out, disconnected) is dropped unevaluated, so a burst of
//! abandoned logins does not delay the next real one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::crypto::{self, ct_eq};

enum Job {
    Hash(SecretString, oneshot::Sender<Result<String, String>>),
    Verify(String, SecretString, oneshot::Sender<bool>),
}

impl Job {
    /// The requester has gone (its request timed out or the client left).
    fn abandoned(&self) -> bool {
        match self {
            Job::Hash(_, reply) => reply.is_closed(),
            Job::Verify(_, _, reply) => reply.is_closed(),
        }
    }
}

/// The queue the workers take jobs from.
struct Queue {
    jobs: Mutex<State>,
    ready: Condvar,
    /// Sign-ins waiting beyond this many are refused at once.
    bound: usize,
    computed: AtomicU64,
    skipped: AtomicU64,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Verifications among `jobs`: what the bound applies to.
    verifies: usize,
    /// Test pause point: while non-zero, workers take no job (see [`Passwords::hold`]).
    holds: usize,
}

impl Queue {
    /// Queues a job; a verification is refused when `bound` of them wait already.
    fn push(&self, job: Job) -> Result<(), Busy> {
        let mut state = self.jobs.lock().expect("password queue");
        if matches!(job, Job::Verify(..)) {
            if state.verifies >= self.bound {
                // The queue drains in about a second at its default size.
                return Err(Busy { retry_after: 1 });
            }
            state.verifies += 1;
        }
        state.jobs.push_back(job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job whose requester is still waiting; abandoned ones are
    /// dropped here, under the lock, so they are counted before any later job runs.
    fn next(&self) -> Job {
        let mut state = self.jobs.lock().expect("password queue");
        loop {
            if state.holds == 0 {
                while let Some(job) = state.jobs.pop_front() {
                    if matches!(job, Job::Verify(..)) {
                        state.verifies -= 1;
                    }
                    if job.abandoned() {
                        self.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    return job;
                }
            }
            state = self.ready.wait(state).expect("password queue");
        }
    }
}

/// The argon2 queue is full: answer 503 with this `Retry-After`.
#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins waiting for password verification")]
pub struct Busy {
    /// Seconds, for `Retry-After`.
    pub retry_after: u64,
}

/// Counters of the workers, for tests and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Jobs hashed or verified.
    pub computed: u64,
    /// Jobs dropped unevaluated because their requester had gone.
    pub skipped: u64,
    /// Verifications waiting now.
    pub queued: usize,
}

/// While alive, the workers take no new job (a test pause point; inert unless used).
pub struct Hold(Arc<Queue>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.jobs.lock().expect("password queue").holds -= 1;
        self.0.ready.notify_all();
    }
}

/// The argon2 workers and their bounded queue; cheap to clone (one shared queue).
#[derive(Clone)]
pub struct Passwords {
    queue: Arc<Queue>,
    /// A real hash of a random password with the current parameters, so that an
    /// unknown username costs exactly what a wrong password does.
    dummy_hash: Arc<str>,
}

/// The configured argon2 cost is not one argon2 accepts.
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

fn worker(params: Params, queue: Arc<Queue>) {
    let mut memory = Vec::new();
    loop {
        match queue.next() {
            Job::Hash(password, reply) => {
                let _ = reply.send(hash(&params, password.expose_secret()));
            }
            Job::Verify(hash, password, reply) => {
                let _ = reply.send(verify(&hash, password.expose_secret(), &mut memory));
            }
        }
        queue.computed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Passwords {
    /// Starts one worker per core; at most `queue` sign-ins wait for them.
    pub fn new(memory_kib: u32, iterations: u32, queue: usize) -> Result<Self, ParamsError> {
        let params =
            Params::new(memory_kib, iterations, 1, None).map_err(|e| ParamsError(e.to_string()))?;
        let dummy_hash: Arc<str> = hash(&params, &crypto::random_token())
            .map_err(ParamsError)?
            .into();
        let queue = Arc::new(Queue {
            jobs: Mutex::new(State::default()),
            ready: Condvar::new(),
            bound: queue,
            computed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        });
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..workers {
            let (params, queue) = (params.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(params, queue))
                .map_err(|e| ParamsError(e.to_string()))?;
        }
        Ok(Self { queue, dummy_hash })
    }

    /// Hashes a new password (an operator's request: never refused by the bound).
    pub async fn hash(&self, password: SecretString) -> String {
        let (tx, rx) = oneshot::channel();
        let queued = self.queue.push(Job::Hash(password, tx));
        debug_assert!(queued.is_ok(), "hashing is not bounded");
        rx.await
            .expect("password workers run for the life of the process")
            .expect("argon2 hashing with validated parameters")
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is
    /// no user, so both paths cost the same. A malformed stored hash never matches.
    /// `Busy` at once when the queue is full; dropping the future abandons the job.
    pub async fn verify(&self, hash: Option<String>, password: SecretString) -> Result<bool, Busy> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let (tx, rx) = oneshot::channel();
        self.queue.push(Job::Verify(hash, password, tx))?;
        Ok(rx.await.unwrap_or(false) && known)
    }

    /// The workers' counters now.
    pub fn stats(&self) -> Stats {
        Stats {
            computed: self.queue.computed.load(Ordering::Relaxed),
            skipped: self.queue.skipped.load(Ordering::Relaxed),
            queued: self.queue.jobs.lock().expect("password queue").verifies,
        }
    }

    /// Pauses the workers until the returned guard is dropped: a test pause point
    /// that makes queueing races certain. Nothing calls it in the server.
    pub fn hold(&self) -> Hold {
        self.queue.jobs.lock().expect("password queue").holds += 1;
        Hold(self.queue.clone())
    }
}
