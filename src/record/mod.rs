//! Session recordings: every session's protocol messages, as the client sent them and as it
//! received them (after masking), with the policy's decisions, written off the shard cores to
//! checksummed segment files that `sluice replay` turns back into a transcript.
//!
//! A shard hands a [`Batch`] of [`Item`]s to [`Recorder::record`], which only queues it (the
//! byte payloads are `Bytes`, so a batch costs the shard no copy). The `sluice-recorder` thread
//! (not pinned to a shard core) encodes the items as records, appends them to the current
//! segment, appends an index line for every session start, fsyncs on every tick of
//! `flush_interval`, rotates segments at `segment_bytes` and deletes segments older than
//! `retention`. The on-disk format is in [`format`]; finding and reading a session back is
//! [`reader`]; rendering it is [`transcript`].
//!
//! When the queue is full (a slow or full disk), `recording.overflow` decides, and both
//! outcomes are counted: `block` makes the recording task wait on a monoio timer (1 ms backing
//! off to 10 ms) while its shard serves other sessions; `fail` refuses the batch at once with
//! [`Refused::Full`]. A batch the writer took is never dropped silently: a failed write is
//! retried in a fresh segment, and a batch that still cannot be written is counted in
//! [`RecordCounters::lost`] and logged as an error.

pub mod format;
mod index;
pub mod list;
pub mod prometheus;
pub mod reader;
mod segment;
#[cfg(test)]
mod tests;
pub mod transcript;
mod writer;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
#[cfg(test)]
use std::sync::mpsc::SyncSender;
use std::sync::mpsc::{sync_channel, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::audit::Identity;
use crate::config::{RecordingOverflow, RecordingSection};

use writer::{Msg, Shared, Writer};

pub use index::IndexEntry;

/// Why the recorder could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("recording: cannot prepare the directory {}: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error("recording: cannot start the writer thread: {0}")]
    Spawn(io::Error),
}

/// A batch the recorder would not take. The session should fail: the gateway could not show
/// what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The queue is full and `recording.overflow` is `fail`.
    #[error("the session recorder's queue is full")]
    Full,
    /// The recorder has stopped (gateway shutdown).
    #[error("the session recorder has stopped")]
    Closed,
}

/// What one session hands the recorder at a time: its id and items in order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub session: u64,
    pub items: Vec<Item>,
}

/// One thing that happened in a recorded session. `at` is the time since the session started.
#[derive(Debug, Clone)]
pub enum Item {
    /// First item of a session.
    Start {
        time: SystemTime,
        identity: Arc<Identity>,
        resource: Arc<str>,
        client: SocketAddr,
        tls: bool,
    },
    /// Whole frontend protocol messages (one or more, concatenated) exactly as the client
    /// sent them.
    FromClient {
        at: Duration,
        bytes: Bytes,
    },
    /// Whole backend messages (one or more) exactly as the client received them.
    ToClient {
        at: Duration,
        bytes: Bytes,
    },
    /// The policy's decision about the next statement text the client sent.
    Decision {
        at: Duration,
        fingerprint: String,
        decision: &'static str,
        rule: Option<String>,
    },
    /// Result bytes of the current statement beyond `max_statement_bytes` were not kept.
    Truncated {
        at: Duration,
        bytes: u64,
        rows: u64,
    },
    End {
        at: Duration,
        reason: &'static str,
    },
}

/// A copy of the recorder's counters. All are totals since start except `queued`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounters {
    /// Batches written to a segment.
    pub batches: u64,
    /// Record bytes written to segments (headers and checksums included).
    pub bytes: u64,
    /// Batches refused to their session (`overflow = "fail"`, or after shutdown).
    pub refused: u64,
    /// Batches that found the queue full and waited (`overflow = "block"`).
    pub blocked: u64,
    /// Failed writes, syncs, rotations, index updates and deletions.
    pub write_errors: u64,
    /// Batches taken from the queue that could not be written even after retrying.
    pub lost: u64,
    /// Batches in the queue now.
    pub queued: u64,
}

/// The recorder's sending end: cheap to clone (one `Arc`), shared by every shard.
/// [`Recorder::disabled`] records nothing.
#[derive(Clone)]
pub struct Recorder {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    lane: crate::offcore::Lane<Msg>,
    shared: Arc<Shared>,
    overflow: RecordingOverflow,
    max_statement_bytes: usize,
}

/// The shortest flush interval the writer honours: it must not spin.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl Recorder {
    /// Prepares the directory (creating it, deleting expired segments and their index
    /// lines) and starts the writer thread. The first record goes to a new segment: a
    /// restarted recorder never appends to a segment an earlier run may have left torn.
    pub fn start(section: &RecordingSection) -> Result<Recorder, RecordError> {
        let store = writer::Store::open(section).map_err(|source| RecordError::Dir {
            path: section.dir.clone(),
            source,
        })?;
        let (tx, rx) = sync_channel(section.queue_capacity.max(1));
        let shared = Arc::new(Shared::default());
        let writer = Writer::new(
            rx,
            store,
            shared.clone(),
            section.flush_interval.max(MIN_INTERVAL),
        );
        let thread = std::thread::Builder::new()
            .name("sluice-recorder".into())
            .spawn(move || writer.run())
            .map_err(RecordError::Spawn)?;
        Ok(Recorder {
            inner: Some(Arc::new(Inner {
                lane: crate::offcore::Lane::new(tx, thread),
                shared,
                overflow: section.overflow,
                max_statement_bytes: section.max_statement_bytes,
            })),
        })
    }

    /// A recorder that records nothing.
    pub fn disabled() -> Recorder {
        Recorder { inner: None }
    }

    /// Whether batches go anywhere.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether a full queue refuses (`overflow = "fail"`) rather than waits.
    pub fn fails_when_full(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.overflow == RecordingOverflow::Fail)
    }

    /// Result bytes to keep per statement (`usize::MAX` when disabled: nothing to cap).
    pub fn max_statement_bytes(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(usize::MAX, |i| i.max_statement_bytes)
    }

    /// Queues `batch` from an async task. On a full queue, `block` makes this task (never the
    /// shard thread) wait on a monoio timer, 1 ms backing off to 10 ms, and retry; `fail`
    /// refuses at once. Must run inside a monoio runtime with timers enabled.
    pub async fn record(&self, batch: Batch) -> Result<(), Refused> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let mut batch = batch;
        let mut wait = Duration::from_millis(1);
        let mut counted = false;
        loop {
            match inner.offer(batch) {
                Ok(()) => return Ok(()),
                Err(Some(back)) if inner.overflow == RecordingOverflow::Block => {
                    if !counted {
                        inner.shared.blocked.fetch_add(1, Ordering::Relaxed);
                        counted = true;
                    }
                    batch = back;
                    monoio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(10));
                }
                Err(full) => {
                    inner.shared.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(match full {
                        Some(_) => Refused::Full,
                        None => Refused::Closed,
                    });
                }
            }
        }
    }

    /// The counters now; all zero when disabled.
    pub fn counters(&self) -> RecordCounters {
        let Some(inner) = &self.inner else {
            return RecordCounters::default();
        };
        inner.shared.snapshot()
    }

    /// Stops taking batches, writes everything queued, syncs, and joins the writer. Blocks
    /// the calling thread until then; later calls return at once.
    pub fn shutdown(&self) {
        if let Some(inner) = &self.inner {
            inner.lane.shutdown(Msg::Shutdown, "recording");
        }
    }

    /// Tests: stops the writer from taking batches until the returned sender is dropped.
    #[cfg(test)]
    pub(crate) fn pause_writer(&self) -> SyncSender<()> {
        let inner = self.inner.as_ref().expect("an enabled writer");
        inner.lane.pause(|ack, gate| Msg::Pause { ack, gate })
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl Inner {
    /// Puts `batch` in the queue; on failure, `Some(batch)` back when the queue is full,
    /// `None` when the writer has stopped.
    fn offer(&self, batch: Batch) -> Result<(), Option<Batch>> {
        if self.lane.closed() {
            return Err(None);
        }
        // Raised before the send so that the writer's decrement never comes first.
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        let result = self.lane.try_send(Msg::Batch(batch));
        if result.is_err() {
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
        }
        match result {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Msg::Batch(b))) => Err(Some(b)),
            Err(_) => Err(None),
        }
    }
}
