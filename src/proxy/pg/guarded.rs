//! The relay loops of a session under a restricted or masking policy: the same loops as
//! [`super::relay`], with every complete message handed to the [`Inspector`] first.
//!
//! Complete messages are cut from the read buffer as one shared chunk; each message is a
//! zero-copy slice of it. Messages relayed unchanged stay slices of the chunk and leave in one
//! write; only when the inspector replaces or adds a message is the outgoing batch assembled
//! into a fresh buffer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::audit::JudgedKind;
use super::error::SessionError;
use super::inspect::{Action, Held, Inspector, Refusal};
use super::relay::{account, account_upstream, read_more, read_upstream, Exit, SessionState, Step};
use super::upstream::MAX_BACKEND_MESSAGE;
use crate::codec::pg::{self, Frame};
use crate::mask::ColumnResolver;
use crate::proxy::io::{ReadHalf, WriteHalf};

/// Where result columns' table names come from (the shard's catalog cache).
pub trait TableNames {
    /// Makes sure the names of these tables are cached; failures leave them unresolved, and
    /// masking then refuses the columns rather than guess.
    fn ensure(&self, oids: &[u32]) -> impl Future<Output = ()>;
    /// Answers from the cache.
    fn resolver(&self) -> &dyn ColumnResolver;
}

/// The next read from the client, started while a statement is held so that a hang-up is
/// noticed; it resolves to whether the client is still there. It is never dropped unfinished
/// (that could lose bytes): the relay awaits it as its next read.
pub type ClientRead<'r> = Pin<&'r mut dyn Future<Output = bool>>;

/// How a hold ended.
pub struct Waited {
    /// The decision (`Ok`: run it), or `None` when the client went away (withdrawn).
    pub outcome: Option<Result<(), Refusal>>,
    /// Set when the client read finished during the wait: whether the client is still there.
    pub read: Option<bool>,
}

/// Where a held statement waits for its decision (see [`super::hold`]).
pub trait Holds {
    /// Waits for a human's decision on `held`, watching `read` (when given) for the client
    /// going away.
    fn wait(&self, held: &Held, read: Option<ClientRead<'_>>) -> impl Future<Output = Waited>;
}

/// The client's sending side, shared by both directions of a guarded session: the relay of
/// results and the notices of held statements. Whoever finds it free writes, and also writes
/// what others queued meanwhile, so messages never interleave.
pub struct ClientWriter<'a> {
    slot: RefCell<Option<&'a mut WriteHalf>>,
    queued: RefCell<VecDeque<Bytes>>,
}

impl<'a> ClientWriter<'a> {
    pub fn new(writer: &'a mut WriteHalf) -> Self {
        Self {
            slot: RefCell::new(Some(writer)),
            queued: RefCell::new(VecDeque::new()),
        }
    }

    /// Sends whole messages: now, or right after the write in progress.
    pub async fn send(&self, bytes: Bytes) -> std::io::Result<()> {
        let Some(writer) = self.slot.borrow_mut().take() else {
            self.queued.borrow_mut().push_back(bytes);
            return Ok(());
        };
        let mut next = Some(bytes);
        let result = loop {
            let Some(b) = next.take().or_else(|| self.queued.borrow_mut().pop_front()) else {
                break Ok(());
            };
            if let Err(e) = writer.write_all(b).await {
                break Err(e);
            }
        };
        *self.slot.borrow_mut() = Some(writer);
        result
    }
}

/// The outgoing messages of one batch.
struct Outgoing {
    chunk: Bytes,
    /// Messages relayed unchanged since the last inserted one: a range of `chunk`.
    run: Option<Range<usize>>,
    /// Everything before `run`, assembled, once something was replaced or inserted.
    assembled: Option<BytesMut>,
}

impl Outgoing {
    fn new(chunk: Bytes) -> Self {
        Self {
            chunk,
            run: None,
            assembled: None,
        }
    }

    fn forward(&mut self, range: Range<usize>) {
        self.run = Some(match self.run.take() {
            Some(run) if run.end == range.start => run.start..range.end,
            Some(run) => {
                self.flush_run(run);
                range
            }
            None => range,
        });
    }

    fn insert(&mut self, bytes: &[u8]) {
        if let Some(run) = self.run.take() {
            self.flush_run(run);
        }
        self.assembled
            .get_or_insert_with(BytesMut::new)
            .extend_from_slice(bytes);
    }

    fn flush_run(&mut self, run: Range<usize>) {
        let bytes = self.chunk.get(run).unwrap_or_default();
        self.assembled
            .get_or_insert_with(|| BytesMut::with_capacity(self.chunk.len() + 256))
            .extend_from_slice(bytes);
    }

    /// The bytes to write: a slice of the chunk when nothing changed.
    fn finish(mut self) -> Option<Bytes> {
        match (self.assembled.take(), self.run.take()) {
            (None, Some(run)) => Some(self.chunk.slice(run)),
            (None, None) => None,
            (Some(mut out), run) => {
                if let Some(run) = run {
                    out.extend_from_slice(self.chunk.get(run).unwrap_or_default());
                }
                Some(out.freeze())
            }
        }
    }

    /// Applies the inspector's decision on the message at `range`.
    fn apply(&mut self, range: Range<usize>, action: Action) -> Result<(), SessionError> {
        match action {
            Action::Forward => self.forward(range),
            Action::Replace(bytes) => self.insert(&bytes),
            Action::Prefix(bytes) => {
                self.insert(&bytes);
                self.forward(range);
            }
            Action::Drop => {}
            Action::Fatal(code, message) => return Err(SessionError::Policy(code, message)),
            // Held statements are taken care of before their action is applied.
            Action::Hold(_) => {
                return Err(SessionError::Policy(
                    "XX000",
                    "sluice: internal error: a held statement was not released".into(),
                ))
            }
        }
        Ok(())
    }
}

/// Length of the complete messages at the start of `buf` (reserving room for a partial one).
fn complete_prefix(
    buf: &mut BytesMut,
    max: usize,
    bad: impl Fn(pg::CodecError) -> SessionError,
) -> Result<usize, SessionError> {
    let mut end = 0;
    while let Some((_, len)) = pg::peek_header(&buf[end..], max).map_err(&bad)? {
        if buf.len() - end < len {
            buf.reserve(len - (buf.len() - end));
            break;
        }
        end += len;
    }
    Ok(end)
}

/// The messages of a chunk of complete messages, each a zero-copy slice of it.
fn frames(chunk: &Bytes) -> impl Iterator<Item = (Range<usize>, Frame)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (tag, len) = pg::peek_header(chunk.get(at..)?, usize::MAX)
            .ok()
            .flatten()?;
        let range = at..at.checked_add(len).filter(|&end| end <= chunk.len())?;
        at = range.end;
        let bytes = chunk.slice(range.clone());
        Some((range, Frame { tag, bytes }))
    })
}

/// Which way a message travels.
#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

/// Hands one message to the inspector, first fetching the table names its masking plan
/// needs (the only await: no borrow of the inspector is held across it).
async fn inspect<T: TableNames>(
    inspector: &RefCell<Inspector>,
    tables: &T,
    frame: &Frame,
    side: Side,
) -> Action {
    let oids = match side {
        Side::Client => inspector.borrow().tables_for_bind(frame),
        Side::Server => inspector.borrow().tables_to_resolve(frame),
    };
    if !oids.is_empty() {
        tables.ensure(&oids).await;
    }
    let mut inspector = inspector.borrow_mut();
    match side {
        Side::Client => inspector.on_client(frame, tables.resolver()),
        Side::Server => inspector.on_server(frame, tables.resolver()),
    }
}

/// Client to upstream, judging every statement; a statement held for approval waits in
/// `holds` (what came before it is sent first, what comes after waits with it).
#[allow(clippy::too_many_arguments)]
pub async fn client_to_upstream<T: TableNames, H: Holds>(
    client: &mut ReadHalf,
    upstream: &mut WriteHalf,
    buf: &mut BytesMut,
    state: &SessionState,
    max_message: usize,
    inspector: &RefCell<Inspector>,
    tables: &T,
    holds: &H,
) -> Result<Exit, SessionError> {
    let mut syncs_since_work: u32 = 0;
    let mut read_at = Instant::now();
    loop {
        let end = complete_prefix(buf, max_message, |e| {
            SessionError::ClientProtocol(e.to_string())
        })?;
        let mut terminate = false;
        let chunk = (end > 0).then(|| buf.split_to(end).freeze());
        // The next read. Futures are lazy: it starts when first polled, by a hold that watches
        // for the client going away, or at the bottom of this loop.
        let mut next_read = std::pin::pin!(read_more(client, buf));
        let mut read_result = None;
        if let Some(chunk) = chunk {
            if let Some(rec) = &state.recording {
                rec.from_client(chunk.clone());
            }
            let mut out = Outgoing::new(chunk.clone());
            for (range, frame) in frames(&chunk) {
                match account(frame.tag, state, &mut syncs_since_work, read_at) {
                    Step::Go => {}
                    Step::End(reason) => return Ok(Exit::End(reason)),
                    Step::Terminate => {
                        out.forward(range);
                        terminate = true;
                        break;
                    }
                }
                let mut action = inspect(inspector, tables, &frame, Side::Client).await;
                if let Action::Hold(held) = action {
                    // What came before the held statement goes now.
                    let before = std::mem::replace(&mut out, Outgoing::new(chunk.clone()));
                    forward(upstream, before, state, inspector, read_at).await?;
                    let watch = match read_result {
                        None => Some(next_read.as_mut() as ClientRead<'_>),
                        Some(_) => None,
                    };
                    let waited = holds.wait(&held, watch).await;
                    read_result = read_result.or(waited.read);
                    let Some(outcome) = waited.outcome else {
                        return Ok(Exit::ClientClosed {
                            mid_statement: !state.idle(),
                        });
                    };
                    action = inspector.borrow_mut().release(outcome);
                }
                out.apply(range, action)?;
            }
            forward(upstream, out, state, inspector, read_at).await?;
        }
        let alive = match read_result {
            _ if terminate => false,
            Some(alive) => alive,
            None => next_read.await,
        };
        if !alive {
            return Ok(Exit::ClientClosed {
                mid_statement: !state.idle(),
            });
        }
        read_at = Instant::now();
    }
}

/// Sends a batch upstream once the audit trail has its events.
async fn forward(
    upstream: &mut WriteHalf,
    out: Outgoing,
    state: &SessionState,
    inspector: &RefCell<Inspector>,
    read_at: Instant,
) -> Result<(), SessionError> {
    state.meter.absorb(&mut inspector.borrow_mut().tally);
    let judged = std::mem::take(&mut inspector.borrow_mut().judged);
    for j in judged {
        if let (Some(rec), true) = (&state.recording, j.kind != JudgedKind::Execution) {
            rec.decision(&j);
        }
        if let (Some(audit), true) = (&state.audit, j.kind != JudgedKind::Decision) {
            audit.statement(j);
        }
    }
    if let Some(audit) = &state.audit {
        audit.flush().await?;
    }
    if let Some(rec) = &state.recording {
        rec.flush_before_forward().await?;
    }
    if let Some(bytes) = out.finish() {
        let len = bytes.len();
        let issued_at = Instant::now();
        upstream
            .write_all(bytes)
            .await
            .map_err(SessionError::UpstreamIo)?;
        state.meter.forwarded(read_at, issued_at, len);
    }
    Ok(())
}

/// Upstream to client, masking every value that leaves.
pub async fn upstream_to_client<T: TableNames>(
    upstream: &mut ReadHalf,
    client: &ClientWriter<'_>,
    buf: &mut BytesMut,
    state: &SessionState,
    inspector: &RefCell<Inspector>,
    tables: &T,
) -> Result<Exit, SessionError> {
    let mut read_at = Instant::now();
    loop {
        let end = complete_prefix(buf, MAX_BACKEND_MESSAGE, |e| {
            SessionError::Upstream(format!("bad message from upstream: {e}"))
        })?;
        let mut ended = None;
        if end > 0 {
            let chunk = buf.split_to(end).freeze();
            let mut out = Outgoing::new(chunk.clone());
            for (range, frame) in frames(&chunk) {
                let action = inspect(inspector, tables, &frame, Side::Server).await;
                out.apply(range, action)?;
                if let Some(reason) = account_upstream(frame.tag, state) {
                    ended = Some(reason);
                    break;
                }
            }
            state.meter.absorb(&mut inspector.borrow_mut().tally);
            match out.finish() {
                Some(bytes) => {
                    let len = bytes.len();
                    if let Some(rec) = &state.recording {
                        rec.to_client(&bytes);
                    }
                    let issued_at = Instant::now();
                    client.send(bytes).await.map_err(SessionError::ClientIo)?;
                    state.meter.delivered(read_at, issued_at, len);
                    if let Some(rec) = &state.recording {
                        rec.flush().await?;
                    }
                }
                // Everything was swallowed; answered round trips are still recorded.
                None => state.meter.delivered(read_at, Instant::now(), 0),
            }
        }
        if let Some(reason) = ended {
            return Ok(Exit::End(reason));
        }
        read_upstream(upstream, buf).await?;
        read_at = Instant::now();
    }
}
