//! The refresher thread of a provider whose keys come from a URL: fetches every
//! `jwks_refresh`, retries sooner after a failure, wakes early when a token names a key it
//! does not know, and stops when asked.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Shortest wait after a failed fetch, and the least time between two early refreshes.
pub(crate) const RETRY: Duration = Duration::from_secs(30);

/// Why a refresher woke.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    Stop,
    Early,
    Timeout,
}

#[derive(Default)]
struct State {
    stop: bool,
    early: bool,
    /// When the last early refresh was granted.
    last_early: Option<Instant>,
}

/// The refresher's doorbell.
#[derive(Default)]
pub(crate) struct Signal {
    state: Mutex<State>,
    cv: Condvar,
}

impl Signal {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding this lock leaves plain flags behind: still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout` for a stop or an early refresh.
    pub(crate) fn wait(&self, timeout: Duration) -> Wake {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if s.stop {
                return Wake::Stop;
            }
            if s.early {
                s.early = false;
                return Wake::Early;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wake::Timeout;
            }
            s = self
                .cv
                .wait_timeout(s, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Asks for an early refresh unless one was granted less than [`RETRY`] ago. Returns
    /// whether it was granted.
    pub(crate) fn request_early(&self, now: Instant) -> bool {
        let mut s = self.lock();
        if s.last_early
            .is_some_and(|t| now.saturating_duration_since(t) < RETRY)
        {
            return false;
        }
        s.last_early = Some(now);
        s.early = true;
        self.cv.notify_all();
        true
    }

    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_refreshes_are_granted_at_most_once_per_retry_interval() {
        let s = Signal::default();
        let t0 = Instant::now();
        assert!(s.request_early(t0));
        assert!(!s.request_early(t0 + Duration::from_secs(29)));
        assert_eq!(s.wait(Duration::from_secs(60)), Wake::Early);
        assert!(s.request_early(t0 + RETRY));
    }

    #[test]
    fn stop_wins_over_everything() {
        let s = Signal::default();
        s.request_early(Instant::now());
        s.stop();
        assert_eq!(s.wait(Duration::from_secs(60)), Wake::Stop);
        assert_eq!(s.wait(Duration::ZERO), Wake::Stop);
    }

    #[test]
    fn an_idle_signal_times_out() {
        let s = Signal::default();
        assert_eq!(s.wait(Duration::from_millis(1)), Wake::Timeout);
    }
}
