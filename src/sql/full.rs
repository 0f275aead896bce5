//! The slow path: a full `sqlparser` parse (PostgreSQL dialect) of a statement the fast path
//! could not decide, walking the tree for data-modifying CTEs, `SELECT ... INTO` and locking
//! clauses.
//!
//! The parser never sees the client's text. It gets the canonical rendering of sluice's own
//! tokens (words folded, identifiers re-quoted, every literal blanked to `''` or `0`), so its
//! lexer cannot disagree with ours about where a literal, comment or statement ends. The same
//! rendering is the cache key, so statements differing only in literal values share an entry.
//! The cache is per thread (one per shard, no locks) and holds at most [`CACHE_CAP`] entries;
//! when full it is simply cleared, which keeps it bounded without bookkeeping on the hot path.

use super::classify::{Base, ClassifyPath, StatementClass};
use super::lexer::Token;
use super::normalize::{render, LiteralStyle};
use sqlparser::ast::{Query, Select, SetExpr, Statement, Visit, Visitor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::ControlFlow;

/// Most entries kept in a thread's parse cache.
pub const CACHE_CAP: usize = 1024;
/// Longer canonical texts are parsed but not cached.
const CACHE_MAX_KEY: usize = 4096;

thread_local! {
    static CACHE: RefCell<HashMap<String, Base>> = RefCell::new(HashMap::new());
}

/// Full-parse verdict on `tokens`.
pub(crate) fn full(src: &str, tokens: &[Token]) -> Base {
    let mut text = String::with_capacity(src.len().min(1 << 16));
    render(src, tokens, LiteralStyle::Blank, &mut text);
    if let Some(hit) = CACHE.with(|c| c.borrow().get(&text).cloned()) {
        return hit;
    }
    let verdict = parse(&lock_strength_as_update_or_share(&text));
    if text.len() <= CACHE_MAX_KEY {
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= CACHE_CAP {
                c.clear();
            }
            c.insert(text, verdict.clone());
        });
    }
    verdict
}

/// Number of entries in this thread's parse cache (for tests and metrics).
pub fn cache_len() -> usize {
    CACHE.with(|c| c.borrow().len())
}

/// The parser only knows `FOR UPDATE` and `FOR SHARE`; the weaker row locks PostgreSQL also
/// has write locks just the same, so they are parsed as those. The canonical text has single
/// spaces, folded words and no literal that could contain these words.
pub(crate) fn lock_strength_as_update_or_share(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(" for no key update") || text.contains(" for key share") {
        text.replace(" for no key update", " for update")
            .replace(" for key share", " for share")
            .into()
    } else {
        text.into()
    }
}

fn parse(text: &str) -> Base {
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, text) {
        Ok(s) => s,
        Err(e) => {
            return Base::unknown(
                "",
                ClassifyPath::ParseError,
                format!("full parse failed: {e}"),
            )
        }
    };
    let [stmt] = statements.as_slice() else {
        return Base::unknown(
            "",
            ClassifyPath::ParseError,
            format!(
                "full parse found {} statements where one was lexed",
                statements.len()
            ),
        );
    };
    // `WITH ... DELETE ...` parses as a query whose body is the data-modifying statement.
    let top = match stmt {
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => s,
            _ => stmt,
        },
        _ => stmt,
    };
    let (class, command, has_where) = match top {
        Statement::Query(_) => (StatementClass::Read, "SELECT", None),
        Statement::Insert(_) => (StatementClass::Write, "INSERT", None),
        Statement::Update(u) => (StatementClass::Write, "UPDATE", Some(u.selection.is_some())),
        Statement::Delete(d) => (StatementClass::Write, "DELETE", Some(d.selection.is_some())),
        Statement::Merge(_) => (StatementClass::Write, "MERGE", None),
        _ => {
            return Base::unknown(
                "",
                ClassifyPath::ParseError,
                "full parse gave a statement kind the fast path should have decided",
            )
        }
    };
    let mut walk = Walk::default();
    let _ = stmt.visit(&mut walk);
    let mut b = Base {
        class,
        command,
        has_where,
        setting: None,
        path: ClassifyPath::FullParse,
        reason: None,
    };
    if walk.other_statement {
        b.class = StatementClass::Unknown;
        b.reason = Some("unexpected statement nested in a query".into());
    }
    if walk.writes || walk.locks {
        b.class = b.class.stronger(StatementClass::Write);
    }
    if walk.select_into {
        b.class = b.class.stronger(StatementClass::Ddl);
        b.command = "SELECT INTO";
    }
    b
}

/// What the tree walk found anywhere in the statement.
#[derive(Default)]
struct Walk {
    writes: bool,
    locks: bool,
    select_into: bool,
    other_statement: bool,
}

impl Visitor for Walk {
    type Break = ();

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        match s {
            Statement::Query(_) => {}
            Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Merge(_) => self.writes = true,
            _ => self.other_statement = true,
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        // FOR UPDATE/SHARE writes row locks; the server refuses it in read-only transactions.
        if !q.locks.is_empty() {
            self.locks = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        if s.into.is_some() {
            self.select_into = true;
        }
        ControlFlow::Continue(())
    }
}
