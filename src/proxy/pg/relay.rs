//! The relay loops of an established session, one per direction, sharing a little state.
//!
//! Each loop reads into its own buffer, walks the complete frames in it (so the policy hooks of
//! later layers see whole messages and the gateway can always inject an error at a message
//! boundary), and writes all complete frames in one call, handing the read buffer's bytes to the
//! kernel without a copy. A partial frame stays in the buffer; a writer that stops reading stops
//! the reads that would feed it, so memory per session is bounded by one read chunk plus the
//! largest message in flight.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::audit::SessionAudit;
use super::error::SessionError;
use super::meter::SessionMeter;
use super::recording::SessionRecording;
use super::upstream::MAX_BACKEND_MESSAGE;
use crate::codec::pg::{self, tag};
use crate::metrics::{ShardMetrics, UNCLASSIFIED};
use crate::proxy::io::{ReadHalf, WriteHalf};

/// Why a session is being ended by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The session token's lifetime is over.
    Expired,
    /// The gateway is shutting down.
    Shutdown,
    /// The session token, or a token it was delegated from, was revoked.
    Revoked,
}

impl EndReason {
    /// SQLSTATE and message of the FATAL the client receives.
    pub fn client_error(self) -> (&'static str, &'static str) {
        match self {
            EndReason::Expired => (
                "28000",
                "sluice: session token expired; reconnect with a new token",
            ),
            EndReason::Shutdown => ("57P01", "sluice: the gateway is shutting down"),
            EndReason::Revoked => (
                "28000",
                "sluice: session token was revoked; this session is over",
            ),
        }
    }
}

/// How the relay stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The client sent Terminate or closed its connection.
    ClientClosed { mid_statement: bool },
    /// The gateway ends the session.
    End(EndReason),
}

/// State both directions of one session see.
pub struct SessionState {
    /// Requests sent upstream that will each be answered by a ReadyForQuery.
    pending: Cell<u32>,
    /// Set when the session must end once the running statement is done.
    ending: Cell<Option<EndReason>>,
    /// Statements (Query or Sync) relayed so far; shared with the session listing, written only
    /// by this session.
    pub statements: Arc<AtomicU64>,
    /// Timing and counting for the shard's statistics.
    pub meter: SessionMeter,
    /// The session's audit events; `None` when the trail is off.
    pub audit: Option<SessionAudit>,
    /// The session's recording; `None` when recording is off.
    pub recording: Option<SessionRecording>,
}

impl SessionState {
    /// The state of a new session recording into its shard's `metrics`.
    pub fn new(metrics: Rc<ShardMetrics>) -> SessionState {
        SessionState {
            pending: Cell::new(0),
            ending: Cell::new(None),
            statements: Default::default(),
            meter: SessionMeter::new(metrics),
            audit: None,
            recording: None,
        }
    }

    /// Whether no statement is running.
    pub fn idle(&self) -> bool {
        self.pending.get() == 0
    }

    /// Asks the relay to end the session after the running statement.
    pub fn end_after_statement(&self, reason: EndReason) {
        self.ending.set(Some(reason));
    }
}

/// What the accounting of one client message says the relay must do.
pub(super) enum Step {
    /// Relay it.
    Go,
    /// End the session before it.
    End(EndReason),
    /// The client said goodbye (the message is relayed, then the loop stops).
    Terminate,
}

/// Counts the requests a client message starts, so the session knows when it is idle, and
/// refuses new work once the session is ending.
///
/// `syncs_since_work` counts Syncs since the last request that starts work: PostgreSQL ignores
/// a Sync sent while it is in COPY mode (tokio-postgres sends one after Execute and another
/// after CopyDone), so those are taken back from `pending` when the COPY ends; otherwise the
/// session would look busy forever and outlive its token.
///
/// `read_at` is when the read that completed the message ended (for the statistics).
pub(super) fn account(
    t: u8,
    state: &SessionState,
    syncs_since_work: &mut u32,
    read_at: Instant,
) -> Step {
    match t {
        tag::frontend::QUERY | tag::frontend::SYNC | tag::frontend::FUNCTION_CALL => {
            if let Some(reason) = state.ending.get() {
                // Once the session is ending, nothing new starts: only the Sync that closes an
                // extended-protocol batch already under way is let through.
                let closes_batch = t == tag::frontend::SYNC && *syncs_since_work == 0;
                if state.idle() || !closes_batch {
                    return Step::End(reason);
                }
            }
            if t == tag::frontend::SYNC {
                *syncs_since_work += 1;
            } else {
                *syncs_since_work = 0;
            }
            state.pending.set(state.pending.get() + 1);
            let n = state.statements.load(Ordering::Relaxed);
            state.statements.store(n + 1, Ordering::Relaxed);
            state.meter.request(read_at);
        }
        tag::frontend::PARSE | tag::frontend::BIND | tag::frontend::EXECUTE => {
            // New extended-protocol work never starts once the session is ending, even while
            // an earlier statement is still running (a pipelining client is never idle and
            // would otherwise outlive its token).
            if let Some(reason) = state.ending.get() {
                return Step::End(reason);
            }
            *syncs_since_work = 0;
        }
        tag::frontend::COPY_DONE | tag::frontend::COPY_FAIL => {
            state
                .pending
                .set(state.pending.get().saturating_sub(*syncs_since_work));
            state.meter.unanswered(*syncs_since_work);
            *syncs_since_work = 0;
        }
        tag::frontend::TERMINATE => return Step::Terminate,
        _ => {}
    }
    Step::Go
}

/// Whether the upstream's message ends the session: the last ReadyForQuery owed before an
/// ending session may stop.
pub(super) fn account_upstream(t: u8, state: &SessionState) -> Option<EndReason> {
    if t != tag::backend::READY_FOR_QUERY {
        return None;
    }
    state.pending.set(state.pending.get().saturating_sub(1));
    state.meter.answered();
    if state.idle() {
        state.ending.get()
    } else {
        None
    }
}

/// Client to upstream. Returns when the client closes or the session must end.
pub async fn client_to_upstream(
    client: &mut ReadHalf,
    upstream: &mut WriteHalf,
    buf: &mut BytesMut,
    state: &SessionState,
    max_message: usize,
) -> Result<Exit, SessionError> {
    let mut syncs_since_work: u32 = 0;
    let mut read_at = Instant::now();
    loop {
        let mut cut = 0;
        let mut terminate = false;
        // Unrestricted sessions are not classified: each Query, Execute or FunctionCall
        // counts as one statement of class `unclassified`.
        let mut statements = 0;
        while let Some((t, len)) = pg::peek_header(&buf[cut..], max_message)
            .map_err(|e| SessionError::ClientProtocol(e.to_string()))?
        {
            if buf.len() - cut < len {
                buf.reserve(len - (buf.len() - cut));
                break;
            }
            if matches!(
                t,
                tag::frontend::QUERY | tag::frontend::EXECUTE | tag::frontend::FUNCTION_CALL
            ) {
                statements += 1;
            }
            if let Some(audit) = &state.audit {
                if matches!(
                    t,
                    tag::frontend::QUERY
                        | tag::frontend::PARSE
                        | tag::frontend::BIND
                        | tag::frontend::EXECUTE
                ) {
                    audit.relayed(&buf[cut..cut + len], read_at);
                }
            }
            match account(t, state, &mut syncs_since_work, read_at) {
                Step::Go => {}
                Step::End(reason) => return Ok(Exit::End(reason)),
                Step::Terminate => {
                    terminate = true;
                    cut += len;
                    break;
                }
            }
            cut += len;
        }
        if statements > 0 {
            state.meter.shard().statements(UNCLASSIFIED, 0, statements);
        }
        if let Some(audit) = &state.audit {
            audit.flush().await?;
        }
        if cut > 0 {
            let chunk = buf.split_to(cut).freeze();
            if let Some(rec) = &state.recording {
                rec.from_client(chunk.clone());
                rec.flush_before_forward().await?;
            }
            let issued_at = Instant::now();
            upstream
                .write_all(chunk)
                .await
                .map_err(SessionError::UpstreamIo)?;
            state.meter.forwarded(read_at, issued_at, cut);
        }
        if terminate {
            return Ok(Exit::ClientClosed {
                mid_statement: !state.idle(),
            });
        }
        if !read_more(client, buf).await {
            return Ok(Exit::ClientClosed {
                mid_statement: !state.idle(),
            });
        }
        read_at = Instant::now();
    }
}

/// Reads more client bytes; false once the client is gone.
pub(super) async fn read_more(client: &mut ReadHalf, buf: &mut BytesMut) -> bool {
    matches!(client.read_into(buf).await, Ok(n) if n > 0)
}

/// Upstream to client. Returns when the session must end; an upstream failure is an error.
pub async fn upstream_to_client(
    upstream: &mut ReadHalf,
    client: &mut WriteHalf,
    buf: &mut BytesMut,
    state: &SessionState,
) -> Result<Exit, SessionError> {
    let mut read_at = Instant::now();
    loop {
        let mut cut = 0;
        let mut end = None;
        while let Some((t, len)) = pg::peek_header(&buf[cut..], MAX_BACKEND_MESSAGE)
            .map_err(|e| SessionError::Upstream(format!("bad message from upstream: {e}")))?
        {
            if buf.len() - cut < len {
                buf.reserve(len - (buf.len() - cut));
                break;
            }
            cut += len;
            if let Some(reason) = account_upstream(t, state) {
                end = Some(reason);
                break;
            }
        }
        if cut > 0 {
            let chunk = buf.split_to(cut).freeze();
            if let Some(rec) = &state.recording {
                rec.to_client(&chunk);
            }
            let issued_at = Instant::now();
            client
                .write_all(chunk)
                .await
                .map_err(SessionError::ClientIo)?;
            state.meter.delivered(read_at, issued_at, cut);
            if let Some(rec) = &state.recording {
                rec.flush().await?;
            }
        }
        if let Some(reason) = end {
            return Ok(Exit::End(reason));
        }
        read_upstream(upstream, buf).await?;
        read_at = Instant::now();
    }
}

/// Reads more upstream bytes; the upstream closing is an error (it owes the session answers).
pub(super) async fn read_upstream(
    upstream: &mut ReadHalf,
    buf: &mut BytesMut,
) -> Result<(), SessionError> {
    match upstream.read_into(buf).await {
        Ok(0) => Err(SessionError::Upstream(
            "upstream closed the connection".into(),
        )),
        Err(e) => Err(SessionError::UpstreamIo(e)),
        Ok(_) => Ok(()),
    }
}
