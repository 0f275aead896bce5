//! What one shard records (thread-local cells, no atomics, no locks) and the plain snapshot it
//! hands to the control plane.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::kinds::{Counter, ErrorKind, ACTION_SLOTS, CLASS_SLOTS};
use super::timing::{Timing, ADDED, LATENCY};

/// Statements counted by class and action, `[class slot][action slot]`.
pub type StatementCounts = [[u64; ACTION_SLOTS]; CLASS_SLOTS];

/// A shard's counters and histograms. Lives on the shard's thread (`!Send`); every update is a
/// plain load and store on a cell the shard alone touches.
pub struct ShardMetrics {
    counters: [Cell<u64>; Counter::ALL.len()],
    statements: [[Cell<u64>; ACTION_SLOTS]; CLASS_SLOTS],
    errors: [Cell<u64>; ErrorKind::ALL.len()],
    latency: RefCell<Timing>,
    added: RefCell<Timing>,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            counters: Default::default(),
            statements: Default::default(),
            errors: Default::default(),
            latency: RefCell::new(Timing::new(LATENCY)),
            added: RefCell::new(Timing::new(ADDED)),
        }
    }
}

fn bump(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

impl ShardMetrics {
    /// Adds `n` to a counter.
    pub fn add(&self, counter: Counter, n: u64) {
        bump(&self.counters[counter.slot()], n);
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: ErrorKind) {
        bump(&self.errors[kind.slot()], 1);
    }

    /// Counts `n` statements of a class slot with an action slot.
    pub fn statements(&self, class: usize, action: usize, n: u64) {
        if let Some(cell) = self.statements.get(class).and_then(|row| row.get(action)) {
            bump(cell, n);
        }
    }

    /// Records `n` round trips that took `latency` from request in to ReadyForQuery out, and
    /// `added` of gateway time each.
    pub fn round_trips(&self, n: u64, latency: Duration, added: Duration) {
        self.latency.borrow_mut().record(latency, n);
        self.added.borrow_mut().record(added, n);
    }

    /// A copy of everything recorded so far; `connections_active` is the shard's live count.
    pub fn snapshot(&self, shard: usize, connections_active: u64) -> ShardSnapshot {
        ShardSnapshot {
            shard,
            connections_active,
            counters: self.counters.each_ref().map(Cell::get),
            statements: self
                .statements
                .each_ref()
                .map(|row| row.each_ref().map(Cell::get)),
            errors: self.errors.each_ref().map(Cell::get),
            latency: self.latency.borrow().clone(),
            added: self.added.borrow().clone(),
        }
    }
}

/// One shard's numbers at one moment (or several shards' merged).
#[derive(Clone, Debug)]
pub struct ShardSnapshot {
    /// The shard's index (meaningless in a merged snapshot).
    pub shard: usize,
    /// Connections open when the snapshot was taken.
    pub connections_active: u64,
    /// By [`Counter::slot`].
    pub counters: [u64; Counter::ALL.len()],
    pub statements: StatementCounts,
    /// By [`ErrorKind::slot`].
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Statement latency (microseconds).
    pub latency: Timing,
    /// Time added by the gateway (nanoseconds).
    pub added: Timing,
}

impl ShardSnapshot {
    /// An empty snapshot.
    pub fn empty(shard: usize) -> ShardSnapshot {
        ShardMetrics::default().snapshot(shard, 0)
    }

    /// A counter's value.
    pub fn counter(&self, c: Counter) -> u64 {
        self.counters[c.slot()]
    }

    /// Adds `other` into this one (counters summed, histograms merged).
    pub fn merge(&mut self, other: &ShardSnapshot) {
        self.connections_active += other.connections_active;
        for (a, b) in self.counters.iter_mut().zip(other.counters) {
            *a = a.wrapping_add(b);
        }
        for (row, other_row) in self.statements.iter_mut().zip(&other.statements) {
            for (a, b) in row.iter_mut().zip(other_row) {
                *a = a.wrapping_add(*b);
            }
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a = a.wrapping_add(b);
        }
        self.latency.merge(&other.latency);
        self.added.merge(&other.added);
    }

    /// Statements counted, every class and action.
    pub fn statements_total(&self) -> u64 {
        self.statements.iter().flatten().sum()
    }

    /// Statements refused (blocked, or held for a review that cannot happen yet).
    pub fn statements_refused(&self) -> u64 {
        self.statements.iter().map(|row| row[1] + row[2]).sum()
    }

    /// Errors of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::kinds::UNCLASSIFIED;

    #[test]
    fn snapshots_copy_and_merge() {
        let m = ShardMetrics::default();
        m.add(Counter::Requests, 3);
        m.error(ErrorKind::UpstreamLost);
        m.statements(0, 1, 2);
        m.statements(UNCLASSIFIED, 0, 5);
        m.round_trips(2, Duration::from_millis(1), Duration::from_micros(3));
        let a = m.snapshot(0, 4);
        m.add(Counter::Requests, 1);
        // The snapshot is a copy: later updates do not reach it.
        assert_eq!(a.counter(Counter::Requests), 3);
        let mut total = ShardSnapshot::empty(0);
        total.merge(&a);
        total.merge(&m.snapshot(1, 1));
        assert_eq!(total.counter(Counter::Requests), 7);
        assert_eq!(total.connections_active, 5);
        assert_eq!(total.statements_total(), 14);
        assert_eq!(total.statements_refused(), 4);
        assert_eq!(total.errors_total(), 2);
        assert_eq!(total.latency.count(), 4);
        assert_eq!(total.added.sum, 4 * 3_000);
    }
}
