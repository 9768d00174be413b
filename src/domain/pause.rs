//! Pause points: places where a test can hold a request to make a race certain
//! rather than probable. Unarmed (always, outside tests) a point costs one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};

/// The named points.
#[derive(Default)]
pub struct Pauses {
    /// In the password grant: after the password was verified against the user as
    /// read, before the session is created.
    pub before_session: PausePoint,
}

/// A place in a request where a test may hold it; inert (one atomic load) unless armed.
#[derive(Default)]
pub struct PausePoint {
    armed: AtomicBool,
    gate: Mutex<Option<Arc<Gate>>>,
}

/// A held point: the test waits for [`Gate::wait_reached`], does its part, then
/// [`Gate::release`]s every request held there.
pub struct Gate {
    reached: Notify,
    open: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            reached: Notify::new(),
            open: Semaphore::new(0),
        }
    }
}

impl Gate {
    /// Returns once a request has reached the held point.
    pub async fn wait_reached(&self) {
        self.reached.notified().await;
    }

    /// Lets every held request, and every later one, pass.
    pub fn release(&self) {
        self.open.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

impl PausePoint {
    /// Holds every request that reaches this point from now on.
    pub fn arm(&self) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *self.gate.lock().expect("pause gate") = Some(gate.clone());
        self.armed.store(true, Ordering::Release);
        gate
    }

    /// Where a request may be held.
    pub async fn reached(&self) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        let gate = self.gate.lock().expect("pause gate").clone();
        if let Some(gate) = gate {
            gate.reached.notify_one();
            if let Ok(permit) = gate.open.acquire().await {
                permit.forget();
            }
        }
    }
}
