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

/// The sending end of a writer thread: its bounded queue, whether it still takes messages, and
/// the thread to join on shutdown.
pub struct Lane<M> {
    tx: std::sync::mpsc::SyncSender<M>,
    closed: std::sync::atomic::AtomicBool,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl<M> Lane<M> {
    /// A lane to the writer `thread` that reads what `tx` sends.
    pub fn new(tx: std::sync::mpsc::SyncSender<M>, thread: std::thread::JoinHandle<()>) -> Self {
        Lane {
            tx,
            closed: Default::default(),
            thread: std::sync::Mutex::new(Some(thread)),
        }
    }

    /// Whether the writer stopped taking messages (shutdown).
    pub fn closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Queues `m` without blocking.
    pub fn try_send(&self, m: M) -> Result<(), std::sync::mpsc::TrySendError<M>> {
        self.tx.try_send(m)
    }

    /// Stops taking messages, sends `stop` (waiting for room: the writer is emptying the
    /// queue) and joins the writer. Later calls return at once; `what` names the writer in a
    /// warning if it panicked.
    pub fn shutdown(&self, stop: M, what: &str) {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(thread) = thread else {
            return;
        };
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        let _ = self.tx.send(stop);
        if thread.join().is_err() {
            tracing::warn!("{what}: the writer thread panicked; what was queued may be lost");
        }
    }

    /// Tests: queues `m`, waiting for room.
    #[cfg(test)]
    pub fn send(&self, m: M) -> Result<(), std::sync::mpsc::SendError<M>> {
        self.tx.send(m)
    }

    /// Tests: stops the writer until the returned sender is dropped. `pause` builds the
    /// writer's pause message from an acknowledgement sender and a gate.
    #[cfg(test)]
    pub fn pause(
        &self,
        pause: impl FnOnce(std::sync::mpsc::SyncSender<()>, std::sync::mpsc::Receiver<()>) -> M,
    ) -> std::sync::mpsc::SyncSender<()> {
        let (ack, acked) = std::sync::mpsc::sync_channel(1);
        let (gate_tx, gate) = std::sync::mpsc::sync_channel(1);
        if self.tx.send(pause(ack, gate)).is_ok() {
            let _ = acked.recv();
        }
        gate_tx
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
