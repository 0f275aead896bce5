//! The audit trail: one JSON line for every connection, authentication, statement decision,
//! session end, token exchange, delegation and revocation, written off the shard cores.
//!
//! A shard builds an [`Event`] (cheap: the identity and resource are shared `Arc`s, the
//! statement is already a fingerprint) and hands it to [`Audit::record`] or
//! [`Audit::try_record`], which never block the thread: they put it in a bounded queue. The
//! `sluice-audit` thread (not pinned to a shard core) serializes it and writes it to the
//! rotating file, standard output and syslog, as configured, and flushes and syncs the file on
//! every tick of `flush_interval`, so a crash loses at most one interval of events.
//!
//! When the queue is full, `audit.overflow` decides, and every outcome is counted:
//! - `block`: the recording task waits (a monoio timer, 1 ms backing off to 10 ms) and
//!   retries; the shard keeps serving its other sessions ([`AuditCounters::blocked`]);
//! - `drop`: the event is dropped ([`AuditCounters::dropped`]);
//! - `fail`: the caller gets [`Refused::Full`] and fails the request ([`AuditCounters::refused`]).
//!
//! After [`Audit::shutdown`], `drop` mode drops events and the other modes refuse them with
//! [`Refused::Closed`]. Shutdown is meant for after the shards have stopped recording.

mod event;
mod file;
mod json;
pub mod prometheus;
mod syslog;
#[cfg(test)]
mod tests;
mod time;
mod writer;

use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
#[cfg(test)]
use std::sync::mpsc::SyncSender;
use std::sync::mpsc::{sync_channel, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::config::{AuditSection, Overflow};

pub use event::{Event, Identity, Kind};
pub use time::rfc3339_micros;

use file::AuditFile;
use writer::{Msg, Outputs, Shared, Writer};

/// Why the audit trail could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit: no output is configured: set audit.file, audit.stdout or audit.syslog")]
    NoOutput,
    #[error("audit: cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("audit: syslog is the only output and {path} is unavailable: {source}")]
    Syslog {
        path: &'static str,
        source: io::Error,
    },
    #[error("audit: cannot start the writer thread: {0}")]
    Spawn(io::Error),
}

/// An event the audit trail would not take. The request that produced it should fail: the
/// gateway cannot show that it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The queue is full and `audit.overflow` is `fail`.
    #[error("the audit queue is full")]
    Full,
    /// The writer has stopped (gateway shutdown).
    #[error("the audit writer has stopped")]
    Closed,
}

/// What [`Audit::try_record`] could not do.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The queue is full and `audit.overflow` is `block`: here is the event back, to retry
    /// later (or use [`Audit::record`], which does that).
    #[error("the audit queue is full; retry later")]
    WouldBlock(Box<Event>),
}

/// A copy of the audit counters. All are totals since start except `queued`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditCounters {
    /// Events the writer serialized and handed to its outputs (an output that failed counts
    /// in `write_errors` as well).
    pub written: u64,
    /// Events dropped because the queue was full (`overflow = "drop"`) or the writer stopped.
    pub dropped: u64,
    /// Events refused to their caller (`overflow = "fail"`, or after shutdown).
    pub refused: u64,
    /// Records that found the queue full and waited (`overflow = "block"`), once per record
    /// through `record`, once per `WouldBlock` through `try_record`.
    pub blocked: u64,
    /// Failed writes, syncs, rotations and syslog sends.
    pub write_errors: u64,
    /// Events in the queue now.
    pub queued: u64,
}

/// The audit trail's sending end: cheap to clone (one `Arc`), shared by every shard and the
/// control plane. [`Audit::disabled`] records nothing.
#[derive(Clone)]
pub struct Audit {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    lane: crate::offcore::Lane<Msg>,
    shared: Arc<Shared>,
    overflow: Overflow,
}

/// Why an event did not enter the queue.
enum Offer {
    Full(Event),
    Closed,
}

/// Buffer for standard output: written through on each tick.
const STDOUT_BUFFER: usize = 64 * 1024;
/// The shortest flush interval the writer honours: it must not spin.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl Audit {
    /// Opens the outputs and starts the writer thread. A missing `/dev/log` is a warning
    /// (syslog is then skipped), unless syslog is the only output.
    pub fn start(section: &AuditSection) -> Result<Audit, AuditError> {
        if section.file.is_none() && !section.stdout && !section.syslog {
            return Err(AuditError::NoOutput);
        }
        let file = match &section.file {
            Some(path) => Some(
                AuditFile::open(path, section.max_file_bytes, section.keep_files).map_err(
                    |source| AuditError::Open {
                        path: path.clone(),
                        source,
                    },
                )?,
            ),
            None => None,
        };
        let syslog = match section.syslog {
            false => None,
            true => match syslog::Syslog::connect(std::path::Path::new(syslog::DEV_LOG)) {
                Ok(s) => Some(s),
                Err(source) if file.is_none() && !section.stdout => {
                    return Err(AuditError::Syslog {
                        path: syslog::DEV_LOG,
                        source,
                    })
                }
                Err(e) => {
                    warn!(
                        path = syslog::DEV_LOG,
                        error = %e,
                        "audit: syslog is unavailable; events go to the other outputs only"
                    );
                    None
                }
            },
        };
        let stdout = section
            .stdout
            .then(|| BufWriter::with_capacity(STDOUT_BUFFER, io::stdout()));

        Audit::spawn(
            Outputs {
                file,
                stdout,
                syslog,
            },
            section.queue_capacity,
            section.overflow,
            section.flush_interval,
        )
    }

    /// Starts the writer thread over opened outputs.
    fn spawn(
        outputs: Outputs,
        capacity: usize,
        overflow: Overflow,
        interval: Duration,
    ) -> Result<Audit, AuditError> {
        let (tx, rx) = sync_channel(capacity.max(1));
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            rx,
            outputs,
            shared: shared.clone(),
            interval: interval.max(MIN_INTERVAL),
        };
        let thread = std::thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || writer.run())
            .map_err(AuditError::Spawn)?;
        Ok(Audit {
            inner: Some(Arc::new(Inner {
                lane: crate::offcore::Lane::new(tx, thread),
                shared,
                overflow,
            })),
        })
    }

    /// An audit trail that records nothing.
    pub fn disabled() -> Audit {
        Audit { inner: None }
    }

    /// Whether events go anywhere.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `e` without ever blocking the thread. On a full queue, `drop` counts and drops it
    /// (`Ok`), `fail` refuses it, `block` hands it back in [`RecordError::WouldBlock`].
    pub fn try_record(&self, e: Event) -> Result<(), RecordError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        match inner.offer(e) {
            Ok(()) => Ok(()),
            Err(Offer::Full(e)) if inner.overflow == Overflow::Block => {
                inner.shared.blocked.fetch_add(1, Ordering::Relaxed);
                Err(RecordError::WouldBlock(Box::new(e)))
            }
            Err(offer) => inner.overflow(offer).map_err(RecordError::from),
        }
    }

    /// Queues `e` from an async task. Like [`Audit::try_record`], except that in `block` mode
    /// a full queue makes this task wait on a monoio timer (1 ms, backing off to 10 ms) and
    /// retry: only the calling task waits, never the shard thread. Must run inside a monoio
    /// runtime with timers enabled.
    pub async fn record(&self, e: Event) -> Result<(), Refused> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let mut e = e;
        let mut wait = Duration::from_millis(1);
        let mut counted = false;
        loop {
            match inner.offer(e) {
                Ok(()) => return Ok(()),
                Err(Offer::Full(back)) if inner.overflow == Overflow::Block => {
                    if !counted {
                        inner.shared.blocked.fetch_add(1, Ordering::Relaxed);
                        counted = true;
                    }
                    e = back;
                    monoio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(10));
                }
                Err(offer) => return inner.overflow(offer),
            }
        }
    }

    /// The counters now; all zero when disabled.
    pub fn counters(&self) -> AuditCounters {
        let Some(inner) = &self.inner else {
            return AuditCounters::default();
        };
        let s = &inner.shared;
        AuditCounters {
            written: s.written.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            blocked: s.blocked.load(Ordering::Relaxed),
            write_errors: s.write_errors.load(Ordering::Relaxed),
            queued: s.queued.load(Ordering::Relaxed),
        }
    }

    /// Stops taking events, writes everything queued, flushes and syncs, and joins the
    /// writer. Blocks the calling thread until then; later calls return at once.
    pub fn shutdown(&self) {
        if let Some(inner) = &self.inner {
            inner.lane.shutdown(Msg::Shutdown, "audit");
        }
    }

    /// Tests: stops the writer from taking events until the returned sender is dropped.
    #[cfg(test)]
    pub(crate) fn pause_writer(&self) -> SyncSender<()> {
        let inner = self.inner.as_ref().expect("an enabled writer");
        inner.lane.pause(|ack, gate| Msg::Pause { ack, gate })
    }
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl Inner {
    // The event comes back by value only when the queue is full; boxing it would cost the
    // common path nothing but the waiting path an allocation per retry.
    #[allow(clippy::result_large_err)]
    fn offer(&self, e: Event) -> Result<(), Offer> {
        if self.lane.closed() {
            return Err(Offer::Closed);
        }
        // Raised before the send so that the writer's decrement never comes first.
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        let result = self.lane.try_send(Msg::Event(e));
        if result.is_err() {
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
        }
        match result {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Msg::Event(e))) => Err(Offer::Full(e)),
            Err(_) => Err(Offer::Closed),
        }
    }

    /// The overflow rule for an event that did not enter the queue (block mode's waiting is
    /// the caller's).
    fn overflow(&self, offer: Offer) -> Result<(), Refused> {
        let refusal = match offer {
            Offer::Full(_) => Refused::Full,
            Offer::Closed => Refused::Closed,
        };
        if self.overflow == Overflow::Drop {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else {
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            Err(refusal)
        }
    }
}
