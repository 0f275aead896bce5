//! Pieces shared by the threads that work off the shard cores (the audit writer and the session
//! recorder).

use std::time::{Duration, Instant};

/// How often a failing output is warned about.
const PERIOD: Duration = Duration::from_secs(10);

/// Rate-limits warnings about a failing output: at most one per period, with the number of
/// failures in between.
#[derive(Debug, Default)]
pub struct Complaint {
    last: Option<Instant>,
    unreported: u64,
}

impl Complaint {
    /// Notes a failure at `now`: `Some(failures since the last warning)` when it is time to
    /// warn again, `None` while the last warning is recent.
    pub fn failed(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now.duration_since(t) < PERIOD) {
            self.unreported += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_per_period_and_counts_the_rest() {
        let mut c = Complaint::default();
        let t = Instant::now();
        assert_eq!(c.failed(t), Some(0));
        assert_eq!(c.failed(t + Duration::from_secs(1)), None);
        assert_eq!(c.failed(t + Duration::from_secs(2)), None);
        assert_eq!(c.failed(t + PERIOD + Duration::from_secs(1)), Some(2));
    }
}
