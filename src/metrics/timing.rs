//! One latency distribution: an HDR histogram plus the exact sum of what it recorded.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Statement latency is recorded in microseconds, from 1 us to 1 hour (longer is saturated).
pub const LATENCY: Scale = Scale {
    nanos_per_unit: 1_000,
    highest: 3_600_000_000,
};
/// Time added by the gateway is recorded in nanoseconds, from 1 ns to 60 s (longer is
/// saturated): it is usually a few microseconds, which microsecond buckets would blur.
pub const ADDED: Scale = Scale {
    nanos_per_unit: 1,
    highest: 60_000_000_000,
};
/// Three significant digits: every recorded value is within 0.1% of its bucket.
const SIGNIFICANT_DIGITS: u8 = 3;

/// The unit and range of a distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Nanoseconds in one recorded unit.
    pub nanos_per_unit: u64,
    /// The largest value tracked, in units.
    pub highest: u64,
}

impl Scale {
    /// `d` in this scale's units (at least 1: hdrhistogram's lowest trackable value).
    pub fn units(self, d: Duration) -> u64 {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        (nanos / self.nanos_per_unit).max(1)
    }

    /// A value of this scale in seconds.
    pub fn seconds(self, units: u64) -> f64 {
        units as f64 * self.nanos_per_unit as f64 / 1e9
    }

    /// A value of this scale in microseconds.
    pub fn micros(self, units: u64) -> f64 {
        units as f64 * self.nanos_per_unit as f64 / 1e3
    }
}

/// A histogram and the sum of its values, in its scale's units.
#[derive(Clone, Debug)]
pub struct Timing {
    pub scale: Scale,
    pub hist: Histogram<u64>,
    /// Exact sum of every recorded value (saturating), in units.
    pub sum: u64,
}

impl Timing {
    /// An empty distribution.
    pub fn new(scale: Scale) -> Timing {
        // The bounds are constants that hdrhistogram accepts (see the unit test below).
        let hist = Histogram::new_with_bounds(1, scale.highest, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Timing {
            scale,
            hist,
            sum: 0,
        }
    }

    /// Records `n` samples of `d`.
    pub fn record(&mut self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let v = self.scale.units(d);
        self.hist.saturating_record_n(v, n);
        self.sum = self.sum.saturating_add(v.saturating_mul(n));
    }

    /// Adds every sample of `other` (same scale).
    pub fn merge(&mut self, other: &Timing) {
        // Both have the same bounds, so adding cannot fail; a failure would only lose samples.
        let _ = self.hist.add(&other.hist);
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The value at quantile `q` (0..=1), in units; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.value_at_quantile(q)
        }
    }

    /// Samples no greater than `bound` units (within the histogram's precision).
    pub fn count_at_most(&self, bound: u64) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.count_between(0, bound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_scales_build_and_record_across_their_range() {
        for scale in [LATENCY, ADDED] {
            let mut t = Timing::new(scale);
            t.record(Duration::from_nanos(1), 1);
            t.record(Duration::from_micros(250), 3);
            t.record(Duration::from_secs(7200), 1);
            assert_eq!(t.count(), 5);
            let q50 = scale.micros(t.quantile(0.5));
            assert!((249.0..=251.0).contains(&q50), "{q50}");
            // The two-hour sample is saturated at the highest trackable value.
            assert!(t.quantile(1.0) >= scale.highest / 2);
        }
    }

    #[test]
    fn merge_adds_counts_and_sums() {
        let mut a = Timing::new(ADDED);
        let mut b = Timing::new(ADDED);
        a.record(Duration::from_micros(2), 2);
        b.record(Duration::from_micros(4), 1);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.sum, 8_000);
        assert_eq!(a.count_at_most(3_000), 2);
        assert_eq!(a.count_at_most(1_000_000), 3);
    }
}
