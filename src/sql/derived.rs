//! Derived uses of masked columns: decides whether a statement could return the clear value of
//! a masked column in a form that result-column masking cannot catch, so that the policy blocks
//! it before it reaches the upstream.
//!
//! Column masking works on `RowDescription`: a result column is masked when its table OID and
//! attribute number (or, for one-part rules, its label) name a masked column. That only holds
//! for a column that reaches the client unchanged from the top-level `SELECT`. Everything else
//! (an expression, a cast, a condition that acts as an oracle, a set operation, a whole-row
//! reference, a renaming alias list, `COPY`, SQL run from a string) is refused here. The rules
//! are conservative: a false block is acceptable, a leak is not.
//!
//! Most statements never mention a masked column, so a cheap pass over the lexer's tokens
//! (`scan`) decides first; only statements it cannot clear are parsed (`tree`), from the
//! same canonical rendering the classifier parses (never the client's text), with verdicts
//! cached per thread by that rendering. A second, smaller-grained cache in front of it maps a
//! statement's own text to the verdict, so a repeated statement skips the rendering too.

mod copy;
mod scan;
mod tree;
mod words;

#[cfg(test)]
mod tests;

use super::lexer::{LexOptions, Token};
use super::normalize::{render, LiteralStyle};
use super::split::Splitter;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use words::Masked;
pub use words::{QUERY_TEXT_FUNCTIONS, ROW_FUNCTIONS, STATISTICS_RELATIONS};

/// Why a statement is blocked: fixed text naming the construct, never client text.
type Reason = Cow<'static, str>;

/// Most entries kept in a thread's verdict cache; when full it is cleared.
pub const DERIVED_CACHE_CAP: usize = 1024;
/// Longer canonical texts are parsed but not cached.
const CACHE_MAX_KEY: usize = 4096;

thread_local! {
    static CACHE: RefCell<HashMap<String, Result<(), &'static str>>> =
        RefCell::new(HashMap::new());
    /// Verdicts by the statement's own text (see [`text_key`]): the same verdicts as `CACHE`,
    /// found without rendering the statement first.
    static TEXT_CACHE: RefCell<HashMap<String, Result<(), &'static str>>> =
        RefCell::new(HashMap::new());
    /// Buffers reused across calls, so the fast path does not allocate per message.
    static SCRATCH: RefCell<(Vec<Token>, scan::Scratch, String)> = RefCell::new(Default::default());
}

/// Ok(()) when every use of a masked column is a plain output column the RowDescription-based
/// masking will catch; Err(reason) (fixed, client-safe text naming the construct) otherwise.
///
/// `masked_columns` are the lower-case column names of the masking rules (the last part of
/// each rule; `*` and `?` globs allowed). Every statement of `sql` is checked; text that does
/// not lex or a statement that does not parse is refused (fail closed).
pub fn check_masked_uses(
    sql: &str,
    masked_columns: &[String],
    opts: LexOptions,
) -> Result<(), String> {
    let masked = Masked::new(masked_columns);
    SCRATCH
        .with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => {
                let (tokens, scratch, key) = &mut *s;
                check_all(sql, &masked, opts, tokens, scratch, key)
            }
            Err(_) => check_all(
                sql,
                &masked,
                opts,
                &mut Vec::new(),
                &mut Default::default(),
                &mut String::new(),
            ),
        })
        .map_err(Cow::into_owned)
}

/// Number of entries in this thread's verdict cache (for tests and metrics).
pub fn derived_cache_len() -> usize {
    CACHE.with(|c| c.borrow().len())
}

fn check_all(
    sql: &str,
    masked: &Masked<'_>,
    opts: LexOptions,
    tokens: &mut Vec<Token>,
    scratch: &mut scan::Scratch,
    key: &mut String,
) -> Result<(), Reason> {
    let mut splitter = Splitter::new(sql, opts);
    while let Some(span) = splitter.next_into(tokens) {
        if span.error.is_some() {
            return Err("statement text that does not lex".into());
        }
        if !tokens.is_empty() {
            check_statement(sql, tokens, masked, opts, scratch, key)?;
        }
    }
    Ok(())
}

fn check_statement(
    src: &str,
    tokens: &[Token],
    masked: &Masked<'_>,
    opts: LexOptions,
    scratch: &mut scan::Scratch,
    key: &mut String,
) -> Result<(), Reason> {
    let facts = scan::scan(src, tokens, masked, scratch)?;
    if facts.copy {
        copy::check(src, tokens)?;
    }
    if facts.masked > 0 && !facts.query {
        // Only a top-level query can have a plain output column; anywhere else (RETURNING,
        // INSERT ... SELECT, EXPLAIN, PREPARE, DECLARE, COPY, DDL) a masked column is refused.
        return Err(facts.not_query.into());
    }
    if facts.masked == 0 && !facts.needs_parse {
        return Ok(());
    }
    text_cached(src, tokens, masked.names(), opts, facts.masked, key).map_err(Cow::Borrowed)
}

/// Builds in `key` the text-cache key of a statement: the masked set, the lexing option and
/// the statement's text from its first token to its last. That text lexes to the same tokens
/// wherever it stands (a statement starts in the lexer's initial state), so it determines the
/// canonical rendering and with it the verdict.
fn text_key(key: &mut String, src: &str, tokens: &[Token], masked: &[String], opts: LexOptions) {
    use std::fmt::Write as _;
    key.clear();
    // Counted and length-prefixed, so no masked set and text can run into each other.
    let _ = write!(key, "{}:", masked.len());
    for m in masked {
        let _ = write!(key, "{}:{m}", m.len());
    }
    key.push(if opts.standard_conforming_strings {
        '1'
    } else {
        '0'
    });
    let (first, last) = (tokens[0], tokens[tokens.len() - 1]);
    key.push_str(&src[first.start()..last.end()]);
}

/// [`parse_cached`] behind the text cache.
fn text_cached(
    src: &str,
    tokens: &[Token],
    masked: &[String],
    opts: LexOptions,
    masked_tokens: usize,
    key: &mut String,
) -> Result<(), &'static str> {
    text_key(key, src, tokens, masked, opts);
    if key.len() > CACHE_MAX_KEY {
        return parse_cached(src, tokens, masked, masked_tokens);
    }
    if let Some(hit) = TEXT_CACHE.with(|c| c.borrow().get(key.as_str()).copied()) {
        return hit;
    }
    let verdict = parse_cached(src, tokens, masked, masked_tokens);
    TEXT_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= DERIVED_CACHE_CAP {
            c.clear();
        }
        c.insert(key.clone(), verdict);
    });
    verdict
}

/// Full-parse verdict, cached by canonical text and masked set.
fn parse_cached(
    src: &str,
    tokens: &[Token],
    masked: &[String],
    masked_tokens: usize,
) -> Result<(), &'static str> {
    let mut key = String::with_capacity(src.len().min(1 << 16) + 64);
    for m in masked {
        key.push_str(m);
        key.push('\u{1}');
    }
    // The rendering never holds NUL (identifiers with one are rewritten), so the masked set
    // and the text cannot run into each other.
    key.push('\0');
    let text_start = key.len();
    render(src, tokens, LiteralStyle::Blank, &mut key);
    if let Some(hit) = CACHE.with(|c| c.borrow().get(&key).copied()) {
        return hit;
    }
    let verdict = parse_and_judge(&key[text_start..], masked, masked_tokens);
    if key.len() <= CACHE_MAX_KEY {
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= DERIVED_CACHE_CAP {
                c.clear();
            }
            c.insert(key, verdict);
        });
    }
    verdict
}

fn parse_and_judge(
    text: &str,
    masked: &[String],
    masked_tokens: usize,
) -> Result<(), &'static str> {
    let text = super::full::lock_strength_as_update_or_share(text);
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, &text)
        .map_err(|_| "statement the masking check cannot parse")?;
    let [stmt] = statements.as_slice() else {
        return Err("statement the masking check cannot parse");
    };
    tree::judge(stmt, masked, masked_tokens)
}
