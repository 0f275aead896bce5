//! Per-caller rate limits on the token endpoints: a token bucket per caller key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Callers remembered at most; the idlest are forgotten first (a forgotten caller starts with
/// a full bucket, which is what it would have by now anyway).
const MAX_CALLERS: usize = 10_000;

/// Token buckets keyed by caller.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_minute` requests per minute after a burst of `burst`.
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes one request from `caller`'s bucket at `now`: `Ok`, or how long until one is there.
    pub fn take(&mut self, caller: &str, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() >= MAX_CALLERS && !self.buckets.contains_key(caller) {
            self.forget_full(now);
        }
        let (burst, rate) = (self.burst, self.per_second);
        let bucket = self.buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        if rate <= 0.0 {
            return Err(Duration::from_secs(60));
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
    }

    /// Drops callers whose buckets have refilled, or the idlest half when none has.
    fn forget_full(&mut self, now: Instant) {
        let (burst, rate) = (self.burst, self.per_second);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
        if self.buckets.len() >= MAX_CALLERS {
            let mut ages: Vec<Instant> = self.buckets.values().map(|b| b.at).collect();
            ages.sort();
            let cut = ages[ages.len() / 2];
            self.buckets.retain(|_, b| b.at > cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut l = RateLimiter::new(60, 3);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.take("a", t).is_ok());
        }
        let wait = l.take("a", t).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // Another caller has its own bucket.
        assert!(l.take("b", t).is_ok());
        // One request per second comes back.
        assert!(l.take("a", t + Duration::from_millis(1001)).is_ok());
        assert!(l.take("a", t + Duration::from_millis(1002)).is_err());
    }

    #[test]
    fn the_caller_table_stays_bounded() {
        let mut l = RateLimiter::new(1, 1);
        let t = Instant::now();
        for i in 0..(MAX_CALLERS + 10) {
            let _ = l.take(&format!("c{i}"), t + Duration::from_micros(i as u64));
        }
        assert!(l.buckets.len() <= MAX_CALLERS);
    }
}
