//! A session's share of the recorder: what the client sent, how the policy judged it, and what
//! the client received (after masking) up to `max_statement_bytes` of rows per request. Items
//! are queued on the shard as cheap `Bytes` clones of the relayed chunks and handed to the
//! recorder thread in one batch per relayed chunk; nothing is serialized here.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};

use super::audit::Judged;
use super::error::SessionError;
use crate::audit::Identity;
use crate::codec::pg::{self, tag};
use crate::record::{Batch, Item, Recorder};

/// SQLSTATE of a statement the recorder could not take (`recording.overflow = "fail"`).
const RECORDER_UNAVAILABLE: &str = "58000";

/// Chunks up to this size are copied for the recorder rather than shared: a shared chunk keeps
/// the relay's read buffer from being reused until the recorder thread has written it, so every
/// later read would allocate a new buffer.
const COPY_BELOW: usize = 16 << 10;

fn detached(bytes: Bytes) -> Bytes {
    if bytes.len() <= COPY_BELOW {
        Bytes::copy_from_slice(&bytes)
    } else {
        bytes
    }
}

/// The recording side of one session.
pub struct SessionRecording {
    recorder: Recorder,
    session: u64,
    started: Instant,
    items: RefCell<Vec<Item>>,
    /// Result bytes kept since the last ReadyForQuery, and what was left out.
    kept: Cell<usize>,
    dropped_bytes: Cell<u64>,
    dropped_rows: Cell<u64>,
    max: usize,
    /// Whether a full recorder refuses statements (they are then handed over before they run).
    strict: bool,
}

impl SessionRecording {
    /// Starts the recording of a session; `None` when recording is off.
    pub fn start(
        recorder: &Recorder,
        session: u64,
        identity: Arc<Identity>,
        resource: &str,
        client: SocketAddr,
        tls: bool,
    ) -> Option<SessionRecording> {
        if !recorder.enabled() {
            return None;
        }
        let start = Item::Start {
            time: SystemTime::now(),
            identity,
            resource: resource.into(),
            client,
            tls,
        };
        Some(SessionRecording {
            recorder: recorder.clone(),
            session,
            started: Instant::now(),
            items: RefCell::new(vec![start]),
            kept: Cell::new(0),
            dropped_bytes: Cell::new(0),
            dropped_rows: Cell::new(0),
            max: recorder.max_statement_bytes(),
            strict: recorder.fails_when_full(),
        })
    }

    /// Whole messages the client sent.
    pub fn from_client(&self, bytes: Bytes) {
        let at = self.started.elapsed();
        let bytes = detached(bytes);
        self.items.borrow_mut().push(Item::FromClient { at, bytes });
    }

    /// How the policy judged the statement text just sent.
    pub fn decision(&self, judged: &Judged) {
        let at = self.started.elapsed();
        self.items.borrow_mut().push(Item::Decision {
            at,
            fingerprint: judged.fingerprint.clone(),
            decision: judged.decision,
            rule: judged.rule.clone(),
        });
    }

    /// Whole messages as the client received them. Rows (DataRow, CopyData) beyond the budget
    /// of the current request are counted, not kept; the count is recorded at its
    /// ReadyForQuery.
    pub fn to_client(&self, bytes: &Bytes) {
        let at = self.started.elapsed();
        let mut kept_all = true;
        let mut filtered: Option<BytesMut> = None;
        let mut pos = 0;
        let mut items = self.items.borrow_mut();
        let mut trunc = (0u64, 0u64);
        while let Ok(Some((t, len))) = pg::peek_header(&bytes[pos..], usize::MAX) {
            let end = (pos + len).min(bytes.len());
            let row = t == tag::backend::DATA_ROW || t == tag::backend::COPY_DATA;
            let keep = !row || self.kept.get() + len <= self.max;
            if row && keep {
                self.kept.set(self.kept.get() + len);
            }
            if !keep {
                self.dropped_bytes
                    .set(self.dropped_bytes.get() + len as u64);
                self.dropped_rows.set(self.dropped_rows.get() + 1);
                if kept_all {
                    kept_all = false;
                    filtered = Some(BytesMut::from(&bytes[..pos]));
                }
            } else if let Some(f) = &mut filtered {
                f.extend_from_slice(&bytes[pos..end]);
            }
            if t == tag::backend::READY_FOR_QUERY {
                // The request is answered: what was left out of it is noted after this chunk.
                trunc.0 += self.dropped_bytes.replace(0);
                trunc.1 += self.dropped_rows.replace(0);
                self.kept.set(0);
            }
            pos = end;
            if pos >= bytes.len() {
                break;
            }
        }
        let out = match filtered {
            None => detached(bytes.clone()),
            Some(f) => f.freeze(),
        };
        if !out.is_empty() {
            items.push(Item::ToClient { at, bytes: out });
        }
        if trunc.1 > 0 {
            items.push(Item::Truncated {
                at,
                bytes: trunc.0,
                rows: trunc.1,
            });
        }
    }

    /// Hands the client's messages to the recorder before they are forwarded, when a full
    /// recorder must be able to refuse them (`overflow = "fail"`); otherwise they go with the
    /// answer, one batch per round trip.
    pub async fn flush_before_forward(&self) -> Result<(), SessionError> {
        if self.strict {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Hands the queued items to the recorder. With `overflow = "block"` this waits (only this
    /// session); with `fail`, a refusal ends the session.
    pub async fn flush(&self) -> Result<(), SessionError> {
        let items = std::mem::replace(&mut *self.items.borrow_mut(), Vec::with_capacity(4));
        if items.is_empty() {
            return Ok(());
        }
        let batch = Batch {
            session: self.session,
            items,
        };
        self.recorder.record(batch).await.map_err(|refused| {
            SessionError::Policy(
                RECORDER_UNAVAILABLE,
                format!(
                    "sluice: the session recorder cannot keep up ({refused}); the session ends"
                ),
            )
        })
    }

    /// The last item, sent at once.
    pub async fn end(&self, reason: &'static str) {
        let at = self.started.elapsed();
        self.items.borrow_mut().push(Item::End { at, reason });
        // Nothing is left to stop; the recorder counts what it refused.
        let _ = self.flush().await;
    }
}
