//! A session's share of the shard's statistics: when each request came in, how long each batch
//! spent inside the gateway, and the round trips recorded when their ReadyForQuery leaves.
//!
//! What is measured, per round trip (a Query, Sync or FunctionCall and the ReadyForQuery that
//! answers it):
//! - statement latency: from the end of the client read that completed the request to the
//!   moment the write carrying its ReadyForQuery is handed to the runtime;
//! - added time: the gateway's own time on the batches of the round trip, each batch timed from
//!   the end of the read that completed it to the moment its write is handed to the runtime
//!   (client to upstream, then upstream to client, including every batch of a long result
//!   set): parsing, judging, masking and time queued behind the shard's other sessions. The
//!   write's own completion is left out: with io_uring's cooperative task running it is only
//!   reported when the shard next enters the kernel, which says when the shard looked, not
//!   how long sluice held the bytes.
//!
//! The clock is read once after each read and once before each write, never per message. For a
//! client with one request in flight each sample is exactly its round trip's time; with
//! pipelining, the gateway time gathered since the previous ReadyForQuery is shared evenly by
//! the round trips answered in the same upstream batch, so totals stay exact and single
//! samples are approximate.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::inspect::Tally;
use crate::metrics::{Counter, ShardMetrics};

/// Distinct arrival times kept per session. A client pipelining requests from more reads than
/// this has the newest merged into the last run (their latency then counts from that run's
/// earlier time), so a session's memory stays bounded whatever it sends.
const MAX_WAITING_RUNS: usize = 1024;

/// Timing and counting state of one session.
pub struct SessionMeter {
    shard: Rc<ShardMetrics>,
    /// When each request still owed a ReadyForQuery arrived, oldest first, as runs of
    /// requests completed by the same read.
    waiting: RefCell<VecDeque<(Instant, u32)>>,
    /// Arrival times of the requests answered in the upstream batch being relayed.
    answered: RefCell<Vec<(Instant, u32)>>,
    /// Gateway time of client batches not yet part of a recorded round trip.
    inbound: Cell<Duration>,
    /// Gateway time of upstream batches since the last recorded round trip.
    outbound: Cell<Duration>,
}

impl SessionMeter {
    /// A meter recording into `shard`.
    pub fn new(shard: Rc<ShardMetrics>) -> SessionMeter {
        SessionMeter {
            shard,
            waiting: RefCell::default(),
            answered: RefCell::default(),
            inbound: Cell::default(),
            outbound: Cell::default(),
        }
    }

    /// The shard's counters.
    pub fn shard(&self) -> &ShardMetrics {
        &self.shard
    }

    /// A request completed by the read that ended at `at` now waits for its ReadyForQuery.
    pub fn request(&self, at: Instant) {
        self.shard.add(Counter::Requests, 1);
        let mut waiting = self.waiting.borrow_mut();
        let full = waiting.len() >= MAX_WAITING_RUNS;
        match waiting.back_mut() {
            Some((t, n)) if *t == at || full => *n += 1,
            _ => waiting.push_back((at, 1)),
        }
    }

    /// The `count` newest requests will never be answered (Syncs the server ignores in COPY).
    pub fn unanswered(&self, mut count: u32) {
        let mut waiting = self.waiting.borrow_mut();
        while count > 0 {
            let Some((_, n)) = waiting.back_mut() else {
                return;
            };
            let take = count.min(*n);
            *n -= take;
            count -= take;
            if *n == 0 {
                waiting.pop_back();
            }
        }
    }

    /// The oldest waiting request is answered by a ReadyForQuery in the batch being relayed.
    pub fn answered(&self) {
        let mut waiting = self.waiting.borrow_mut();
        let Some((at, n)) = waiting.front_mut() else {
            return;
        };
        let at = *at;
        *n -= 1;
        if *n == 0 {
            waiting.pop_front();
        }
        let mut answered = self.answered.borrow_mut();
        match answered.last_mut() {
            Some((t, k)) if *t == at => *k += 1,
            _ => answered.push((at, 1)),
        }
    }

    /// A client batch completed by the read that ended at `read_at` was written upstream.
    pub fn forwarded(&self, read_at: Instant, issued_at: Instant, bytes: usize) {
        let spent = issued_at.saturating_duration_since(read_at);
        self.inbound.set(self.inbound.get() + spent);
        self.shard.add(Counter::BytesToUpstream, bytes as u64);
    }

    /// An upstream batch completed by the read that ended at `read_at` was written to the
    /// client: the round trips it answered are recorded.
    pub fn delivered(&self, read_at: Instant, issued_at: Instant, bytes: usize) {
        self.outbound
            .set(self.outbound.get() + issued_at.saturating_duration_since(read_at));
        self.shard.add(Counter::BytesToClient, bytes as u64);
        let mut answered = self.answered.borrow_mut();
        if answered.is_empty() {
            return;
        }

        let trips: u64 = answered.iter().map(|&(_, k)| u64::from(k)).sum();
        let added =
            (self.inbound.take() + self.outbound.take()) / u32::try_from(trips).unwrap_or(u32::MAX);
        for (at, k) in answered.drain(..) {
            self.shard
                .round_trips(u64::from(k), issued_at.saturating_duration_since(at), added);
        }
    }

    /// Moves what the policy hooks counted into the shard's counters.
    pub fn absorb(&self, tally: &mut Tally) {
        if !std::mem::take(&mut tally.dirty) {
            return;
        }
        for (class, row) in tally.statements.iter_mut().enumerate() {
            for (action, n) in row.iter_mut().enumerate() {
                if *n > 0 {
                    self.shard.statements(class, action, std::mem::take(n));
                }
            }
        }
        self.shard
            .add(Counter::MaskedValues, std::mem::take(&mut tally.masked));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ShardMetrics;

    fn meter() -> (Rc<ShardMetrics>, SessionMeter) {
        let shard = Rc::new(ShardMetrics::default());
        (shard.clone(), SessionMeter::new(shard))
    }

    #[test]
    fn one_round_trip_records_latency_and_both_directions_of_gateway_time() {
        let (shard, m) = meter();
        let t0 = Instant::now();
        m.request(t0);
        m.forwarded(t0, Instant::now(), 10);
        m.answered();
        let back = Instant::now();
        m.delivered(back, Instant::now(), 20);
        let s = shard.snapshot(0, 0);
        assert_eq!(s.latency.count(), 1);
        assert_eq!(s.added.count(), 1);
        assert_eq!(s.counter(Counter::Requests), 1);
        assert_eq!(s.counter(Counter::BytesToUpstream), 10);
        assert_eq!(s.counter(Counter::BytesToClient), 20);
        // Gateway time is part of the round trip, never more than all of it.
        assert!(s.added.sum <= s.latency.sum * 1_000 + 1_000);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_and_ignored_syncs_are_dropped() {
        let (shard, m) = meter();
        let early = Instant::now();
        m.request(early);
        m.request(early);
        let late = early + Duration::from_millis(5);
        m.request(late);
        m.request(late);
        // Two Syncs sent during COPY are never answered.
        m.unanswered(2);
        m.answered();
        m.answered();
        // A third ReadyForQuery with nothing waiting (never expected) records nothing.
        m.answered();
        let back = Instant::now();
        m.delivered(back, back, 0);
        let s = shard.snapshot(0, 0);
        assert_eq!(s.latency.count(), 2);
        assert!(m.waiting.borrow().is_empty());
    }

    #[test]
    fn waiting_runs_stay_bounded() {
        let (_, m) = meter();
        let t0 = Instant::now();
        for i in 0..(MAX_WAITING_RUNS as u64 * 3) {
            m.request(t0 + Duration::from_nanos(i));
        }
        assert_eq!(m.waiting.borrow().len(), MAX_WAITING_RUNS);
        let total: u32 = m.waiting.borrow().iter().map(|r| r.1).sum();
        assert_eq!(total as usize, MAX_WAITING_RUNS * 3);
    }
}
