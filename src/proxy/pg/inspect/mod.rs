//! Policy hooks of a session whose role is restricted or masked: the client's statements are
//! judged before they reach the upstream, and the upstream's results are masked before they
//! reach the client.
//!
//! To do both, the inspector follows the protocol in both directions. Every client message that
//! the upstream will answer leaves an [`Expect`] in a queue, in order; the upstream's answers are
//! matched against the head of that queue. That is how DataRows of an extended-protocol Execute
//! (which carry no RowDescription of their own) find the masking plan of their portal, and how
//! the error provoked for a blocked statement is told apart from any other error.
//!
//! A blocked statement never reaches the upstream. In its place the inspector sends a message
//! that fails to parse, so the upstream itself moves to exactly the state PostgreSQL would be in
//! after the statement failed (an open transaction is marked failed; an extended-protocol batch
//! is skipped up to its Sync), and the upstream's syntax error is replaced by the gateway's own
//! `42501` error naming the rule. The session's transaction state therefore never differs
//! between client, gateway and server.

mod client;
mod server;

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::audit::Judged;
use crate::codec::pg::{self, Frame};
use crate::config::Action as PolicyAction;
use crate::mask::{ColumnResolver, CopyPlan, RowPlan};
use crate::metrics::{self, StatementCounts};
use crate::policy::SessionPolicy;

/// SQL the upstream is sent instead of a blocked statement: it fails in the parser, before
/// anything is looked up or executed.
const BLOCKED_SQL: &str = "sluice_blocked";
/// Statement name of injected failing Parses that stand for a Bind, Describe or Execute of a
/// blocked statement or portal; the Parse fails, so the name is never created.
const BLOCKED_NAME: &[u8] = b"sluice_blocked";
/// SQLSTATE of the upstream's answer to [`BLOCKED_SQL`].
const SYNTAX_ERROR: &str = "42601";
/// SQLSTATE of a statement refused by policy.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE of protocol use the gateway cannot follow.
const PROTOCOL_VIOLATION: &str = "08P01";

/// What the relay does with a message.
#[derive(Debug)]
pub enum Action {
    /// Relay it unchanged.
    Forward,
    /// Send these bytes instead.
    Replace(Bytes),
    /// Send these bytes, then the message itself.
    Prefix(Bytes),
    /// Send nothing.
    Drop,
    /// End the session with this FATAL (SQLSTATE, message).
    Fatal(&'static str, String),
    /// The statement needs a human's approval: nothing is sent until
    /// [`Inspector::release`] says what to send.
    Hold(Box<Held>),
}

/// A statement held for approval.
#[derive(Debug, Clone)]
pub struct Held {
    /// The statement text as the client sent it.
    pub sql: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// The rule that asked for review.
    pub rule: String,
}

/// Which message is held, so that [`Inspector::release`] can finish it.
#[derive(Debug)]
enum HeldMessage {
    Query,
    Parse {
        name: Vec<u8>,
        /// How its executions are audited once approved.
        fingerprint: String,
        rule: String,
    },
}

/// Why a blocked statement, portal or result was refused: the client's error message.
pub type Refusal = Rc<str>;

/// An answer the upstream owes for a message already sent, in order.
#[derive(Debug)]
enum Expect {
    /// A simple Query (or a FunctionCall replaced by one): any results, then ReadyForQuery.
    Simple { blocked: Option<Refusal> },
    /// ParseComplete; when `blocked`, the injected Parse's syntax error.
    Parse { blocked: Option<Refusal> },
    /// BindComplete.
    Bind,
    /// ParameterDescription (statements only), then RowDescription or NoData.
    Describe { of: Described, hidden: bool },
    /// DataRows, then CommandComplete, EmptyQueryResponse or PortalSuspended.
    Execute { portal: Vec<u8> },
    /// CloseComplete.
    Close,
    /// ReadyForQuery.
    Sync,
}

/// What a Describe asked about.
#[derive(Debug)]
enum Described {
    Statement(Vec<u8>),
    Portal(Vec<u8>),
}

/// A prepared statement as the gateway judged it.
#[derive(Debug, Default)]
struct Statement {
    /// Set when its Parse was blocked: the upstream does not have it.
    blocked: Option<Refusal>,
    /// Its RowDescription (text formats), once the upstream described it.
    columns: Option<Frame>,
    /// How it was judged, for the audit event of each execution (when auditing).
    audit: Option<Rc<Judged>>,
}

/// A portal as the gateway bound it.
#[derive(Debug, Default)]
struct Portal {
    /// Set when its Bind was refused: the upstream does not have it.
    blocked: Option<Refusal>,
    /// The masking plan of its rows, in the formats the Bind asked for.
    plan: Option<Rc<RowPlan>>,
    /// Rows sent so far, for the row cap.
    rows: u64,
    /// Whether a Describe of it is on its way, whose RowDescription will give the plan.
    described: bool,
    /// Its statement's judgement, for the audit event of each execution (when auditing).
    audit: Option<Rc<Judged>>,
}

/// What happens to the rows of the result set being received.
#[derive(Debug, Default)]
enum Rows {
    /// No result set is open.
    #[default]
    None,
    /// Rows are masked with this plan (and counted).
    Plan(Rc<RowPlan>),
    /// The result cannot be masked: rows and the completion are swallowed, an error was sent.
    Refused,
}

/// What happens to a `COPY TO STDOUT` being received.
#[derive(Debug, Default)]
enum Copy {
    #[default]
    None,
    Mask(Box<CopyPlan>),
    Refused,
}

/// Per-session policy state. Lives in the session task; both relay directions borrow it
/// between awaits.
pub struct Inspector {
    policy: Arc<SessionPolicy>,
    /// Whether results are masked at all.
    masking: bool,
    /// Whether column rules exist, so result columns must be resolved to table columns.
    resolve: bool,
    /// The session's `standard_conforming_strings`, which changes how SQL text is lexed.
    standard_strings: bool,
    expect: VecDeque<Expect>,
    statements: HashMap<Vec<u8>, Statement>,
    portals: Portals,
    /// The result set of the current simple Query.
    rows: Rows,
    /// Rows of the current simple-Query result set, for the row cap.
    simple_rows: u64,
    /// Whether rows were cut from the current result set.
    cut: bool,
    copy: Copy,
    /// Set when the gateway refused a result inside an extended batch: everything up to the
    /// batch's ReadyForQuery is swallowed, as the client expects after an error.
    skipping: bool,
    /// Plans of the last distinct row descriptions (and Bind formats), most recent last: a
    /// session repeating its queries builds each plan once.
    plans: Vec<CachedPlan>,
    /// Statements refused so far, for the session log.
    pub blocked: u64,
    /// Whether each judged message is kept in [`Inspector::judged`] (for the audit trail, the
    /// recording, or both).
    pub judging: bool,
    /// Whether judged statements are fingerprinted (the audit trail needs it).
    pub fingerprints: bool,
    /// Messages judged since the relay last collected them for the audit trail.
    pub judged: Vec<Judged>,
    /// The message held for approval, if any.
    held: Option<HeldMessage>,
    /// The judgement of an allowed Parse, kept with its statement: each execution is audited,
    /// not the Parse.
    deferred: Option<Judged>,
    /// What was counted since the relay last collected it for the shard's statistics.
    pub tally: Tally,
}

/// Counts the inspector keeps for the shard's statistics; the relay moves them into the
/// shard's counters after each batch, so the inspector itself stays free of shared state.
#[derive(Debug, Default)]
pub struct Tally {
    /// Statements judged, `[class slot][action slot]` (see [`crate::metrics`]).
    pub statements: StatementCounts,
    /// Values masked in rows, plus messages rewritten by the value detectors.
    pub masked: u64,
    /// Whether anything was counted since the last collection.
    pub dirty: bool,
}

impl Tally {
    /// Counts `n` statements of a class slot with `action`.
    fn statements(&mut self, class: usize, action: PolicyAction, n: u64) {
        if let Some(cell) = self.statements.get_mut(class) {
            cell[metrics::action_slot(action)] += n;
            self.dirty = true;
        }
    }

    /// Counts `n` masked values.
    fn masked(&mut self, n: u64) {
        if n > 0 {
            self.masked += n;
            self.dirty = true;
        }
    }
}

impl Inspector {
    /// An inspector for a session under `policy`; `standard_strings` is the upstream's
    /// `standard_conforming_strings` at connect.
    pub fn new(policy: Arc<SessionPolicy>, standard_strings: bool) -> Self {
        let mask = policy.mask();
        Self {
            masking: mask.is_active(),
            resolve: !mask.rules().is_empty(),
            policy,
            standard_strings,
            expect: VecDeque::new(),
            statements: HashMap::new(),
            portals: Portals::default(),
            rows: Rows::None,
            simple_rows: 0,
            cut: false,
            copy: Copy::None,
            skipping: false,
            plans: Vec::new(),
            blocked: 0,
            judging: false,
            fingerprints: false,
            judged: Vec::new(),
            held: None,
            deferred: None,
            tally: Tally::default(),
        }
    }

    /// Whether a session under `policy` needs an inspector at all: an unrestricted role
    /// without masking is relayed untouched.
    pub fn needed(policy: &SessionPolicy) -> bool {
        !policy.unrestricted() || policy.mask().is_active()
    }

    /// Table OIDs of a RowDescription that the catalog must resolve before the frame is
    /// handed to [`Inspector::on_server`] (empty when no column rule could apply).
    pub fn tables_to_resolve(&self, frame: &Frame) -> Vec<u32> {
        if !self.resolve || frame.tag != pg::tag::backend::ROW_DESCRIPTION {
            return Vec::new();
        }
        if self
            .plans
            .iter()
            .any(|c| c.columns == frame.bytes && c.formats.is_none())
        {
            // Planned before: nothing to look up.
            return Vec::new();
        }
        table_oids(frame)
    }

    /// Table OIDs a Bind's masking plan needs resolved (those of its statement's columns).
    pub fn tables_for_bind(&self, frame: &Frame) -> Vec<u32> {
        if !self.resolve || frame.tag != pg::tag::frontend::BIND {
            return Vec::new();
        }
        let Ok(bind) = pg::Bind::decode(frame) else {
            return Vec::new();
        };
        let Some(columns) = self
            .statements
            .get(bind.statement)
            .and_then(|s| s.columns.as_ref())
        else {
            return Vec::new();
        };
        if self.plans.iter().any(|c| {
            c.columns == columns.bytes && c.formats.as_deref() == Some(&bind.result_formats[..])
        }) {
            // Planned before: nothing to look up.
            return Vec::new();
        }
        table_oids(columns)
    }
}

/// Distinct plans a session keeps.
const PLAN_CACHE: usize = 8;

/// A plan and what it was built from.
struct CachedPlan {
    columns: Bytes,
    formats: Option<Vec<i16>>,
    plan: Rc<RowPlan>,
}

impl Inspector {
    /// The masking plan of a RowDescription; with `formats`, for a Bind's result formats (the
    /// description then is a statement's, in text). Served from the session's small cache
    /// when the same description was seen before; the catalog names it was resolved with
    /// stay those of its first use in the session.
    fn plan(
        &mut self,
        columns: &Frame,
        formats: Option<&[i16]>,
        resolver: &dyn ColumnResolver,
    ) -> Result<Rc<RowPlan>, pg::CodecError> {
        if let Some(hit) = self
            .plans
            .iter()
            .rev()
            .find(|c| c.columns == columns.bytes && c.formats.as_deref() == formats)
        {
            return Ok(hit.plan.clone());
        }
        let desc = pg::RowDescription::decode(columns)?;
        let mut plan = RowPlan::build(self.policy.mask(), &desc, resolver);
        if let Some(formats) = formats {
            plan.set_result_formats(formats);
        }
        let plan = Rc::new(plan);
        if self.plans.len() >= PLAN_CACHE {
            self.plans.remove(0);
        }
        self.plans.push(CachedPlan {
            columns: columns.bytes.clone(),
            formats: formats.map(<[i16]>::to_vec),
            plan: plan.clone(),
        });
        Ok(plan)
    }
}

fn table_oids(frame: &Frame) -> Vec<u32> {
    let Ok(desc) = pg::RowDescription::decode(frame) else {
        return Vec::new();
    };
    let mut oids: Vec<u32> = desc
        .fields()
        .map(|f| f.table_oid)
        .filter(|&o| o != 0)
        .collect();
    oids.sort_unstable();
    oids.dedup();
    oids
}

/// An ErrorResponse refusing a statement.
fn refusal_error(message: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(message.len() + 32);
    pg::encode_error(&mut out, "ERROR", INSUFFICIENT_PRIVILEGE, message);
    out.freeze()
}

#[cfg(test)]
mod tests;

/// The session's portals. Drivers bind almost every statement to the unnamed portal, and each
/// of its DataRows looks its portal up for the masking plan: the unnamed one is kept apart, so
/// that lookup hashes nothing. Named portals stay in a (DoS-resistant) hash map.
#[derive(Default)]
struct Portals {
    unnamed: Option<Portal>,
    named: HashMap<Vec<u8>, Portal>,
}

impl Portals {
    fn get(&self, name: &[u8]) -> Option<&Portal> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.named.get(name)
        }
    }

    fn get_mut(&mut self, name: &[u8]) -> Option<&mut Portal> {
        if name.is_empty() {
            self.unnamed.as_mut()
        } else {
            self.named.get_mut(name)
        }
    }

    /// The portal of that name, created empty if there is none.
    fn entry(&mut self, name: &[u8]) -> &mut Portal {
        if name.is_empty() {
            self.unnamed.get_or_insert_with(Portal::default)
        } else {
            self.named.entry(name.to_vec()).or_default()
        }
    }

    fn insert(&mut self, name: &[u8], portal: Portal) {
        if name.is_empty() {
            self.unnamed = Some(portal);
        } else {
            self.named.insert(name.to_vec(), portal);
        }
    }

    fn remove(&mut self, name: &[u8]) {
        if name.is_empty() {
            self.unnamed = None;
        } else {
            self.named.remove(name);
        }
    }
}
