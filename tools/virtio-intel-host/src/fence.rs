// SPDX-License-Identifier: MIT
//! Host-side fences: what a sync_file out-fence of the host i915 is.

use std::sync::{Condvar, Mutex};

use crate::sync::lock;
use std::time::{Duration, Instant};

/// A one-shot fence, signalled once by the engine that runs the work, with an
/// optional error (negative errno, e.g. `-EIO` after a hang).
#[derive(Debug, Default)]
pub(crate) struct Fence {
    state: Mutex<Option<i32>>,
    cv: Condvar,
}

impl Fence {
    pub(crate) fn new() -> Fence {
        Fence::default()
    }

    /// Signals the fence (first call wins) with `error` (0 for success).
    pub(crate) fn signal(&self, error: i32) {
        let mut g = lock(&self.state);
        if g.is_none() {
            *g = Some(error);
            self.cv.notify_all();
        }
    }

    /// `Some(error)` once signalled.
    pub(crate) fn status(&self) -> Option<i32> {
        *lock(&self.state)
    }

    pub(crate) fn is_signalled(&self) -> bool {
        self.status().is_some()
    }

    /// Waits until signalled or until `timeout` has passed; returns the status.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        let mut g = lock(&self.state);
        while g.is_none() {
            let now = Instant::now();
            if now >= end {
                return None;
            }
            g = match self.cv.wait_timeout(g, end - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        *g
    }

    /// Waits until signalled.
    pub(crate) fn wait(&self) -> i32 {
        loop {
            if let Some(e) = self.wait_timeout(Duration::from_secs(3600)) {
                return e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn signal_once_and_wait() {
        let f = Arc::new(Fence::new());
        assert_eq!(f.wait_timeout(Duration::from_millis(1)), None);
        let g = f.clone();
        let t = std::thread::spawn(move || g.signal(-5));
        assert_eq!(f.wait(), -5);
        f.signal(0);
        assert_eq!(f.status(), Some(-5));
        t.join().expect("join");
    }
}
