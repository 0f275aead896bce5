//! Statement classification: what each statement of a message IS, for the policy engine.
//!
//! Every statement is lexed once. The fast path decides from the lexer's keywords whenever the
//! grammar leaves no doubt; anything else (CTEs, `SELECT ... INTO`, locking clauses, calls of
//! functions not known to be side-effect free) goes to a full `sqlparser` parse of the
//! statement's canonical text. Function calls are found on the lexer's tokens for every
//! statement, whichever path decides its class, and can only make a class stronger. Before
//! any of that, the quick scan (`quick.rs`) decides a message that is one plain SELECT
//! straight from its bytes.

use super::calls::scan_calls;
use super::fast::fast;
use super::full::full;
use super::functions::{find_match, is_safe, DEFAULT_ADMIN_FUNCTIONS, DEFAULT_WRITE_FUNCTIONS};
use super::lexer::{LexOptions, Lexer, Token};
use super::quick::plain_select;
use super::split::Splitter;
use std::cell::Cell;
use std::ops::Range;

/// What a statement does, from the policy engine's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementClass {
    /// Reads data: SELECT, VALUES, TABLE, SHOW, FETCH/MOVE, EXPLAIN (without ANALYZE), cursor
    /// declarations and prepared statements of reads.
    Read,
    /// Changes data: INSERT, UPDATE, DELETE, MERGE, COPY FROM STDIN, NOTIFY, LOCK,
    /// REFRESH MATERIALIZED VIEW, `SELECT ... FOR UPDATE/SHARE`, data-modifying CTEs,
    /// sequence and large-object writers, advisory locks.
    Write,
    /// Changes schema: CREATE/ALTER/DROP of ordinary objects, COMMENT, TRUNCATE,
    /// `SELECT ... INTO`, `CREATE TABLE AS`.
    Ddl,
    /// Changes the server, roles or privileges, or reaches outside the database: ALTER SYSTEM,
    /// roles, GRANT/REVOKE, VACUUM, ANALYZE, CHECKPOINT, CLUSTER, REINDEX, LOAD, extensions,
    /// databases, tablespaces, COPY to/from a server file or PROGRAM, two-phase commit, and any
    /// statement calling an admin function.
    Admin,
    /// Changes session state: SET, RESET, DISCARD, LISTEN, UNLISTEN, CLOSE, DEALLOCATE.
    Session,
    /// Transaction control: BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, RELEASE,
    /// SET TRANSACTION, SET CONSTRAINTS.
    Transaction,
    /// `COPY ... TO STDOUT` of a table or of a read query.
    CopyOut,
    /// Runs code the classifier cannot see: DO, CALL.
    Procedural,
    /// Could not be classified with certainty (lexical error, parse failure, unrecognized or
    /// context-dependent command). Fail closed.
    Unknown,
}

impl StatementClass {
    /// Rank used by [`Classification::strongest`]: Read < CopyOut < Transaction < Session <
    /// Write < Procedural < Ddl < Admin < Unknown.
    pub fn severity(self) -> u8 {
        match self {
            StatementClass::Read => 0,
            StatementClass::CopyOut => 1,
            StatementClass::Transaction => 2,
            StatementClass::Session => 3,
            StatementClass::Write => 4,
            StatementClass::Procedural => 5,
            StatementClass::Ddl => 6,
            StatementClass::Admin => 7,
            StatementClass::Unknown => 8,
        }
    }

    /// The stronger of two classes.
    pub fn stronger(self, other: StatementClass) -> StatementClass {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// Lower-case name as used in configuration (`read`, `copy-out`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StatementClass::Read => "read",
            StatementClass::Write => "write",
            StatementClass::Ddl => "ddl",
            StatementClass::Admin => "admin",
            StatementClass::Session => "session",
            StatementClass::Transaction => "transaction",
            StatementClass::CopyOut => "copy-out",
            StatementClass::Procedural => "procedural",
            StatementClass::Unknown => "unknown",
        }
    }
}

/// Which path decided a statement's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassifyPath {
    /// Decided from the lexer's keywords.
    FastPath,
    /// Decided by a full parse (possibly served from the cache).
    FullParse,
    /// The statement did not lex; class is Unknown.
    LexError,
    /// The full parse failed or was inconclusive; class is Unknown.
    ParseError,
}

/// The verdict on one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementInfo {
    /// What the statement does.
    pub class: StatementClass,
    /// The command, upper case: `SELECT`, `DELETE`, `CREATE TABLE`, `ALTER SYSTEM`, ...
    pub command: &'static str,
    /// For UPDATE and DELETE: whether a top-level WHERE clause is present.
    pub has_where: Option<bool>,
    /// Names of functions called, normalized (case folded unless quoted, escapes decoded),
    /// schema-qualified as written: `pg_catalog.pg_read_file`.
    pub functions: Vec<String>,
    /// For SET, RESET, DISCARD ALL and transaction-mode statements: the setting changed
    /// (`search_path`, `role`, `session_authorization`, `standard_conforming_strings`,
    /// `transaction`, `session_characteristics`, `all`, ...), so that a policy can refuse
    /// changes that would defeat it or change how later text is lexed.
    pub setting: Option<String>,
    /// Which path decided.
    pub path: ClassifyPath,
    /// Why the class is Unknown (or a note on an inconclusive part), for logs.
    pub reason: Option<String>,
    /// Byte range of the statement in the classified text (without its `;`).
    pub span: Range<usize>,
}

/// The verdicts on every statement of a message, in order. Empty statements (only
/// whitespace or comments) are left out: the server executes nothing for them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Classification {
    /// One entry per non-empty statement.
    pub statements: Vec<StatementInfo>,
}

impl Classification {
    /// The strongest class of the message (see [`StatementClass::severity`]); `Read` for a
    /// message with no statements. A policy should still judge each statement: one blocked
    /// statement blocks the message.
    pub fn strongest(&self) -> StatementClass {
        self.statements
            .iter()
            .fold(StatementClass::Read, |acc, s| acc.stronger(s.class))
    }
}

/// Classifier configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassifyOptions {
    /// Function name patterns that make any statement calling them Admin. Matched ASCII
    /// case-insensitively against the normalized name; `name*` is a prefix pattern; a pattern
    /// without a schema matches the function in any schema. Calls of the built-in
    /// side-effect-free functions (`count`, `lower`, ...) are never promoted.
    pub admin_functions: Vec<String>,
    /// Patterns (same syntax) that make a statement at least a Write (`nextval`, `setval`, ...).
    pub write_functions: Vec<String>,
    /// The session's `standard_conforming_strings`; track it from `ParameterStatus`.
    pub standard_conforming_strings: bool,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        ClassifyOptions {
            admin_functions: DEFAULT_ADMIN_FUNCTIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            write_functions: DEFAULT_WRITE_FUNCTIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            standard_conforming_strings: true,
        }
    }
}

impl ClassifyOptions {
    /// The lexing options these settings imply.
    pub fn lex_options(&self) -> LexOptions {
        LexOptions {
            standard_conforming_strings: self.standard_conforming_strings,
        }
    }
}

/// What the fast or the full path decided about a statement, before function promotion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Base {
    pub class: StatementClass,
    pub command: &'static str,
    pub has_where: Option<bool>,
    pub setting: Option<String>,
    pub path: ClassifyPath,
    pub reason: Option<String>,
}

impl Base {
    /// A fast-path verdict with nothing else to say.
    pub fn fast(class: StatementClass, command: &'static str) -> Base {
        Base {
            class,
            command,
            has_where: None,
            setting: None,
            path: ClassifyPath::FastPath,
            reason: None,
        }
    }

    /// An Unknown verdict with its reason.
    pub fn unknown(command: &'static str, path: ClassifyPath, reason: impl Into<String>) -> Base {
        Base {
            reason: Some(reason.into()),
            path,
            ..Base::fast(StatementClass::Unknown, command)
        }
    }
}

/// What the paths need to know besides the tokens.
pub(crate) struct Cx<'a> {
    pub src: &'a str,
    /// Whether every function call in the whole statement is known side-effect free.
    pub calls_safe: bool,
}

/// Deepest nesting of EXPLAIN/COPY/DECLARE/PREPARE wrappers followed.
const MAX_WRAP_DEPTH: u8 = 4;

/// Class of a statement (or of the statement inside a wrapper): fast path, else full parse.
pub(crate) fn base(cx: &Cx<'_>, tokens: &[Token], depth: u8) -> Base {
    if tokens.is_empty() {
        return Base::unknown("", ClassifyPath::ParseError, "missing statement");
    }
    if depth > MAX_WRAP_DEPTH {
        return Base::unknown("", ClassifyPath::ParseError, "statements nested too deeply");
    }
    fast(cx, tokens, depth).unwrap_or_else(|| full(cx.src, tokens))
}

thread_local! {
    /// Token buffer reused across calls (one per shard thread), so classification does not
    /// allocate a token vector per message. Taken out for the call and put back after it:
    /// no borrow flag to check, and a nested call simply finds an empty vector.
    static TOKENS: Cell<Vec<Token>> = const { Cell::new(Vec::new()) };
}

/// Classifies every statement of `sql`.
pub fn classify(sql: &str, opts: &ClassifyOptions) -> Classification {
    let mut tokens = TOKENS.take();
    let out = classify_with(sql, opts, &mut tokens);
    TOKENS.set(tokens);
    out
}

fn classify_with(sql: &str, opts: &ClassifyOptions, tokens: &mut Vec<Token>) -> Classification {
    if opts.standard_conforming_strings {
        if let Some(info) = plain_select(sql) {
            return Classification {
                statements: vec![info],
            };
        }
    }
    classify_by_tokens(sql, opts, tokens)
}

/// The token path alone, without the quick scan: what the quick scan must agree with.
#[cfg(test)]
pub(crate) fn classify_without_quick_scan(sql: &str, opts: &ClassifyOptions) -> Classification {
    classify_by_tokens(sql, opts, &mut Vec::new())
}

fn classify_by_tokens(
    sql: &str,
    opts: &ClassifyOptions,
    tokens: &mut Vec<Token>,
) -> Classification {
    // Nearly every message is one statement: room for it up front skips the growth path.
    let mut out = Classification {
        statements: Vec::with_capacity(1),
    };
    let mut splitter = Splitter::new(sql, opts.lex_options());
    while let Some(span) = splitter.next_into(tokens) {
        if let Some(err) = span.error {
            out.statements.push(StatementInfo {
                class: StatementClass::Unknown,
                command: "",
                has_where: None,
                functions: Vec::new(),
                setting: None,
                path: ClassifyPath::LexError,
                reason: Some(format!("lexical error: {err}")),
                span: span.start..span.end,
            });
            break;
        }
        if tokens.is_empty() {
            continue;
        }
        out.statements
            .push(classify_tokens(sql, tokens, opts, span.start..span.end));
    }
    out
}

/// The relations a statement names, best effort, for logs and audit: the names after FROM,
/// JOIN, UPDATE, INTO and TABLE and the table of `COPY t`, normalized (case folded unless
/// quoted) and schema-qualified as written. Kept off the classification path: judging a
/// statement never needs them, so they are found only when asked for.
pub fn relations(sql: &str, statement: &StatementInfo, opts: LexOptions) -> Vec<String> {
    let Some(text) = sql.get(statement.span.clone()) else {
        return Vec::new();
    };
    let mut tokens = Vec::new();
    for t in Lexer::new(text, opts) {
        match t {
            Ok(t) => tokens.push(t),
            Err(_) => break,
        }
    }
    super::fast::relations(text, &tokens)
}

fn classify_tokens(
    src: &str,
    tokens: &[Token],
    opts: &ClassifyOptions,
    span: Range<usize>,
) -> StatementInfo {
    // A call needs a `(`: most statements have none, and one byte search over the text is
    // cheaper than a pass over its tokens.
    let functions = if memchr::memchr(b'(', &src.as_bytes()[span.clone()]).is_some() {
        scan_calls(src, tokens)
    } else {
        Vec::new()
    };
    let calls_safe = functions.iter().all(|f| is_safe(f));
    let cx = Cx { src, calls_safe };
    let b = base(&cx, tokens, 0);
    let mut class = b.class;
    for f in functions.iter().filter(|f| !is_safe(f)) {
        if find_match(&opts.admin_functions, f).is_some() {
            class = class.stronger(StatementClass::Admin);
        } else if find_match(&opts.write_functions, f).is_some() {
            class = class.stronger(StatementClass::Write);
        }
    }
    StatementInfo {
        class,
        command: b.command,
        has_where: b.has_where,
        functions,
        setting: b.setting,
        path: b.path,
        reason: b.reason,
        span,
    }
}
