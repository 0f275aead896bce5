//! The relay loops of a session under a restricted or masking policy: the same loops as
//! [`super::relay`], with every complete message handed to the [`Inspector`] first.
//!
//! Complete messages are cut from the read buffer as one shared chunk; each message is a
//! zero-copy slice of it. Messages relayed unchanged stay slices of the chunk and leave in one
//! write; only when the inspector replaces or adds a message is the outgoing batch assembled
//! into a fresh buffer.

use std::cell::RefCell;
use std::future::Future;
use std::ops::Range;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::error::SessionError;
use super::inspect::{Action, Inspector};
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

/// Client to upstream, judging every statement.
pub async fn client_to_upstream<T: TableNames>(
    client: &mut ReadHalf,
    upstream: &mut WriteHalf,
    buf: &mut BytesMut,
    state: &SessionState,
    max_message: usize,
    inspector: &RefCell<Inspector>,
    tables: &T,
) -> Result<Exit, SessionError> {
    let mut syncs_since_work: u32 = 0;
    let mut read_at = Instant::now();
    loop {
        let end = complete_prefix(buf, max_message, |e| {
            SessionError::ClientProtocol(e.to_string())
        })?;
        let mut terminate = false;
        if end > 0 {
            let chunk = buf.split_to(end).freeze();
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
                let action = inspect(inspector, tables, &frame, Side::Client).await;
                out.apply(range, action)?;
            }
            state.meter.absorb(&mut inspector.borrow_mut().tally);
            if let Some(audit) = &state.audit {
                let judged = std::mem::take(&mut inspector.borrow_mut().judged);
                for j in judged {
                    audit.statement(j);
                }
                audit.flush().await?;
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
        }
        if terminate || !read_more(client, buf).await {
            return Ok(Exit::ClientClosed {
                mid_statement: !state.idle(),
            });
        }
        read_at = Instant::now();
    }
}

/// Upstream to client, masking every value that leaves.
pub async fn upstream_to_client<T: TableNames>(
    upstream: &mut ReadHalf,
    client: &mut WriteHalf,
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
                    let issued_at = Instant::now();
                    client
                        .write_all(bytes)
                        .await
                        .map_err(SessionError::ClientIo)?;
                    state.meter.delivered(read_at, issued_at, len);
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
