//! How the control plane gets the shards' numbers without locking them.
//!
//! Each shard owns the receiving end of a request channel and looks at it from the timer loop
//! it already runs for shutdown (every 50 ms), never from the data path. When requests are
//! waiting, it copies its counters and histograms once into an immutable snapshot and sends
//! that same `Arc` to every requester, so a burst of scrapes costs a shard one copy per tick.
//! The control plane merges the copies on its own thread. Asking on demand, rather than having
//! every shard publish a copy each second, costs nothing while nobody is looking, and a scrape
//! sees numbers at most one tick old.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;

use super::shard::ShardSnapshot;

/// A request for one shard's snapshot.
struct Request {
    reply: Sender<Arc<ShardSnapshot>>,
}

/// The shard's end: answers waiting requests.
pub struct StatsInbox {
    requests: Receiver<Request>,
}

/// The control plane's end: asks every shard.
#[derive(Clone)]
pub struct Collector {
    shards: Vec<Sender<Request>>,
}

/// One request channel per shard.
pub fn channels(shards: usize) -> (Collector, Vec<StatsInbox>) {
    let (senders, inboxes) = (0..shards)
        .map(|_| {
            let (tx, rx) = mpsc::channel();
            (tx, StatsInbox { requests: rx })
        })
        .unzip();
    (Collector { shards: senders }, inboxes)
}

impl StatsInbox {
    /// Answers every waiting request with one snapshot made by `take`; does nothing (and never
    /// calls `take`) when none is waiting.
    pub fn answer(&self, take: impl FnOnce() -> ShardSnapshot) {
        let mut waiting = Vec::new();
        while let Ok(r) = self.requests.try_recv() {
            waiting.push(r);
        }
        if waiting.is_empty() {
            return;
        }
        let snapshot = Arc::new(take());
        for r in waiting {
            // A requester that gave up has dropped its receiver; nothing to do.
            let _ = r.reply.send(snapshot.clone());
        }
    }
}

impl Collector {
    /// Shards asked.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Sends a request to every shard; the answers arrive in the returned [`Answers`].
    pub fn ask(&self) -> Answers {
        let pending = self
            .shards
            .iter()
            .map(|shard| {
                let (reply, rx) = mpsc::channel();
                // A stopped shard has dropped its inbox; it will simply not answer.
                let _ = shard.send(Request { reply });
                Some(rx)
            })
            .collect();
        Answers {
            pending,
            got: vec![None; self.shards.len()],
        }
    }
}

/// Snapshots arriving from the shards, in shard order.
pub struct Answers {
    pending: Vec<Option<Receiver<Arc<ShardSnapshot>>>>,
    got: Vec<Option<Arc<ShardSnapshot>>>,
}

impl Answers {
    /// Takes whatever has arrived without waiting; true once every shard has answered or can
    /// no longer answer.
    pub fn poll(&mut self) -> bool {
        for (slot, rx) in self.got.iter_mut().zip(self.pending.iter_mut()) {
            if let Some(r) = rx {
                match r.try_recv() {
                    Ok(s) => {
                        *slot = Some(s);
                        *rx = None;
                    }
                    Err(TryRecvError::Disconnected) => *rx = None,
                    Err(TryRecvError::Empty) => {}
                }
            }
        }
        self.pending.iter().all(Option::is_none)
    }

    /// The snapshots so far: `None` for a shard that has not answered.
    pub fn finish(self) -> Vec<Option<Arc<ShardSnapshot>>> {
        self.got
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Counter;

    #[test]
    fn one_snapshot_answers_every_waiting_request() {
        let (collector, inboxes) = channels(2);
        let mut first = collector.ask();
        let mut second = collector.ask();
        assert!(!first.poll());
        let mut taken = 0;
        inboxes[0].answer(|| {
            taken += 1;
            let m = crate::metrics::ShardMetrics::default();
            m.add(Counter::Requests, 9);
            m.snapshot(0, 0)
        });
        assert_eq!(taken, 1);
        // Nothing waiting: no copy is made.
        inboxes[0].answer(|| unreachable!("no request is waiting"));
        assert!(!first.poll());
        drop(inboxes);
        // Shard 1 is gone: it counts as answered with nothing.
        assert!(first.poll() && second.poll());
        for answers in [first.finish(), second.finish()] {
            assert_eq!(
                answers[0].as_ref().map(|s| s.counter(Counter::Requests)),
                Some(9)
            );
            assert!(answers[1].is_none());
        }
    }
}
