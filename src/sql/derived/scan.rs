//! The cheap pass over one statement's tokens. It refuses outright what needs no grammar
//! (SQL-running functions, statistics views, `NATURAL` joins, row functions in attribute
//! notation), counts identifiers naming a masked column, and says whether anything could be a
//! derived use without naming one: a `*` outside the top-level select list, a `TABLE` query, a
//! column alias list, or a whole-row reference (a bare identifier that also names a relation
//! or alias of the statement).
//!
//! Every test here over-approximates: finding a construct that is not there only costs a
//! parse, missing one would be a leak.

use super::words::{flag, flags_any_case, key, name_of, same_name, token_key, word_flags, Masked};
use super::Reason;
use crate::sql::calls::lower;
use crate::sql::lexer::{Token, TokenKind};

/// What the pass found in a statement it did not refuse.
#[derive(Debug, Default)]
pub(super) struct Facts {
    /// Identifier tokens naming a masked column.
    pub masked: usize,
    /// Whether the statement is a query (`SELECT`, `WITH`, `TABLE`, `VALUES`, `(`): the only
    /// kind that can have plain output columns.
    pub query: bool,
    /// Whether the statement is a `COPY`.
    pub copy: bool,
    /// What a masked name in this statement means, when it is not a query.
    pub not_query: &'static str,
    /// Whether something other than a masked name needs the parser to decide.
    pub needs_parse: bool,
}

/// Keys of the words the pass looks for (see [`key`]).
mod k {
    use super::key;
    pub const ALTER: u128 = key("alter");
    pub const AS: u128 = key("as");
    pub const BY: u128 = key("by");
    pub const COPY: u128 = key("copy");
    pub const CREATE: u128 = key("create");
    pub const DECLARE: u128 = key("declare");
    pub const DELETE: u128 = key("delete");
    pub const DISTINCT: u128 = key("distinct");
    pub const DROP: u128 = key("drop");
    pub const EXCEPT: u128 = key("except");
    pub const EXPLAIN: u128 = key("explain");
    pub const FETCH: u128 = key("fetch");
    pub const FILTER: u128 = key("filter");
    pub const FOR: u128 = key("for");
    pub const FOREIGN: u128 = key("foreign");
    pub const FROM: u128 = key("from");
    pub const GLOBAL: u128 = key("global");
    pub const GROUP: u128 = key("group");
    pub const HAVING: u128 = key("having");
    pub const INSERT: u128 = key("insert");
    pub const INTERSECT: u128 = key("intersect");
    pub const INTO: u128 = key("into");
    pub const JOIN: u128 = key("join");
    pub const LATERAL: u128 = key("lateral");
    pub const LIMIT: u128 = key("limit");
    pub const LOCAL: u128 = key("local");
    pub const LOCK: u128 = key("lock");
    pub const MERGE: u128 = key("merge");
    pub const NATURAL: u128 = key("natural");
    pub const OFFSET: u128 = key("offset");
    pub const ON: u128 = key("on");
    pub const ORDER: u128 = key("order");
    pub const OVER: u128 = key("over");
    pub const PARTITION: u128 = key("partition");
    pub const PREPARE: u128 = key("prepare");
    pub const RECURSIVE: u128 = key("recursive");
    pub const RETURNING: u128 = key("returning");
    pub const SELECT: u128 = key("select");
    pub const TABLE: u128 = key("table");
    pub const TEMP: u128 = key("temp");
    pub const TEMPORARY: u128 = key("temporary");
    pub const TRUNCATE: u128 = key("truncate");
    pub const UNION: u128 = key("union");
    pub const UNLOGGED: u128 = key("unlogged");
    pub const UPDATE: u128 = key("update");
    pub const USING: u128 = key("using");
    pub const VALUES: u128 = key("values");
    pub const WHERE: u128 = key("where");
    pub const WINDOW: u128 = key("window");
    pub const WITH: u128 = key("with");
    pub const WITHIN: u128 = key("within");
}

/// The message for a masked name in a statement that is not a query, by its first word.
fn not_query(first: u128) -> &'static str {
    match first {
        k::INSERT | k::UPDATE | k::DELETE | k::MERGE => {
            "masked column in a data-modifying statement (RETURNING, INSERT ... SELECT, SET, WHERE)"
        }
        k::EXPLAIN => "masked column in EXPLAIN",
        k::PREPARE => "masked column in PREPARE",
        k::DECLARE => "masked column in a cursor declaration",
        k::COPY => "masked column in COPY",
        k::CREATE | k::ALTER => "masked column in a definition (CREATE ... AS, views, rules, DDL)",
        _ => "masked column outside a query",
    }
}

/// Index buffers reused across statements (one per thread), so the pass does not allocate.
#[derive(Default)]
pub(super) struct Scratch {
    decls: Vec<usize>,
    bares: Vec<usize>,
}

/// Which list a comma continues at one parenthesis depth: a comma in a `FROM` list or a
/// `WITH` list declares another relation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Other,
    From,
    With,
}

/// Depths tracked exactly; deeper, every comma is taken as declaring (over-approximation).
const MAX_DEPTH: usize = 32;

/// Words that can follow a call's `)` and open a parenthesis of their own, so `) w (` is not
/// an alias with a column list.
fn after_call_key(w: u128) -> bool {
    matches!(w, k::OVER | k::FILTER | k::WITHIN)
}

/// [`after_call_key`] for a quoted name.
fn after_call(w: &str) -> bool {
    ["over", "filter", "within"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(w))
}

/// Words that may precede `TABLE` in statements that do not read through it.
fn ddl_before_table(w: u128) -> bool {
    matches!(
        w,
        k::CREATE
            | k::TEMP
            | k::TEMPORARY
            | k::UNLOGGED
            | k::ALTER
            | k::DROP
            | k::LOCK
            | k::TRUNCATE
            | k::ON
            | k::FOREIGN
            | k::GLOBAL
            | k::LOCAL
    )
}

/// The token pass over one statement (non-empty `tokens`, without its `;`).
pub(super) fn scan(
    src: &str,
    tokens: &[Token],
    masked: &Masked<'_>,
    scratch: &mut Scratch,
) -> Result<Facts, Reason> {
    let first = token_key(src, &tokens[0]);
    let mut facts = Facts {
        query: matches!(first, k::SELECT | k::WITH | k::TABLE | k::VALUES)
            || matches!(tokens[0].kind, TokenKind::LParen),
        copy: first == k::COPY,
        not_query: not_query(first),
        ..Facts::default()
    };
    let mut st = State {
        select_first: first == k::SELECT,
        depth: 0,
        ctx: [Ctx::Other; MAX_DEPTH],
        // `TABLE t` alone is `SELECT * FROM t`.
        top_star: first == k::TABLE,
        top_modifier: false,
    };
    scratch.decls.clear();
    scratch.bares.clear();
    let mut p1 = Word::default();
    let mut p2 = Word::default();
    for i in 0..tokens.len() {
        let cur = Word::of(src, &tokens[i]);
        let words = [&cur, &p1, &p2];
        step(src, tokens, i, words, masked, &mut st, &mut facts, scratch)?;
        p2 = p1;
        p1 = cur;
    }
    if st.top_star && st.top_modifier {
        facts.needs_parse = true;
    }
    if !facts.needs_parse && whole_row_candidate(src, tokens, &scratch.decls, &scratch.bares) {
        facts.needs_parse = true;
    }
    Ok(facts)
}

/// Parenthesis tracking and top-level star state of the pass.
struct State {
    select_first: bool,
    depth: usize,
    ctx: [Ctx; MAX_DEPTH],
    /// A `*` in the top-level select list is fine unless the query around it is not a plain
    /// SELECT after all (set operation, INTO, DISTINCT, ORDER/GROUP BY that may be ordinal).
    top_star: bool,
    top_modifier: bool,
}

/// A token's [`key`] when it is a short unquoted word (0 otherwise), its flags, and whether it
/// can be a relation name.
#[derive(Default, Clone, Copy)]
struct Word {
    key: u128,
    /// [`flag`] bits of an unquoted word (0 for a quoted name, looked up by the caller).
    flags: u8,
    plain: bool,
}

impl Word {
    #[inline]
    fn of(src: &str, t: &Token) -> Word {
        match t.kind {
            TokenKind::QuotedIdent | TokenKind::UnicodeIdent => Word {
                plain: true,
                ..Word::default()
            },
            TokenKind::Word => {
                let key = token_key(src, t);
                let flags = word_flags(src, t, key);
                Word {
                    key,
                    flags,
                    plain: flags & (flag::RESERVED | flag::DECLARES) == 0,
                }
            }
            _ => Word::default(),
        }
    }
}

/// One token of the pass.
#[allow(clippy::too_many_arguments)]
fn step(
    src: &str,
    tokens: &[Token],
    i: usize,
    [cur, p1, p2]: [&Word; 3],
    masked: &Masked<'_>,
    st: &mut State,
    facts: &mut Facts,
    scratch: &mut Scratch,
) -> Result<(), Reason> {
    let t = &tokens[i];
    let prev = i.checked_sub(1).map(|p| &tokens[p]);
    let prev_kind = prev.map(|p| p.kind);
    let next_kind = tokens.get(i + 1).map(|n| n.kind);
    let pw = p1.key;
    match t.kind {
        TokenKind::LParen => {
            let here = ctx_at(&st.ctx, st.depth);
            let inner = if matches!(pw, k::FROM | k::JOIN | k::LATERAL)
                || (here == Ctx::From
                    && matches!(prev_kind, Some(TokenKind::Comma | TokenKind::LParen)))
            {
                Ctx::From
            } else {
                Ctx::Other
            };
            st.depth += 1;
            if st.depth < MAX_DEPTH {
                st.ctx[st.depth] = inner;
            }
        }
        // Brackets nest like parentheses: `ARRAY[c.*]` is no select-list star.
        TokenKind::LBracket => {
            st.depth += 1;
            if st.depth < MAX_DEPTH {
                st.ctx[st.depth] = Ctx::Other;
            }
        }
        TokenKind::RParen | TokenKind::RBracket => st.depth = st.depth.saturating_sub(1),
        TokenKind::Operator if t.text(src) == "*" => {
            // `count(*)`: no columns at all.
            let called = matches!(prev_kind, Some(TokenKind::LParen))
                && matches!(next_kind, Some(TokenKind::RParen))
                && i >= 2
                && is_name(&tokens[i - 2]);
            if st.select_first && st.depth == 0 && select_item_star(src, tokens, i) {
                st.top_star = true;
            } else if !called {
                facts.needs_parse = true;
            }
        }
        TokenKind::Word | TokenKind::QuotedIdent | TokenKind::UnicodeIdent => {
            let w = cur.key;
            if cur.flags & flag::RESERVED != 0 {
                keyword(w, pw, prev_kind, st, facts)?;
                return Ok(());
            }
            if st.depth == 0 && w == k::BY {
                st.top_modifier = true;
            }
            let Some(name) = name_of(src, tokens, i) else {
                return Ok(());
            };
            if masked.matches(&name) {
                facts.masked += 1;
            }
            // A quoted name was not looked up by `Word::of`.
            let special = if matches!(t.kind, TokenKind::Word) {
                cur.flags
            } else {
                flags_any_case(&name)
            };
            if special & flag::QUERY_TEXT != 0 {
                return Err("function that runs SQL from text or reads a table by name".into());
            }
            if special & flag::STATISTICS != 0 {
                return Err("statistics catalog holding column values".into());
            }
            if special & flag::ROW_FUNCTION != 0
                && matches!(prev_kind, Some(TokenKind::Dot))
                && !matches!(next_kind, Some(TokenKind::LParen))
            {
                return Err("whole-row function in attribute notation".into());
            }
            let list = ctx_at(&st.ctx, st.depth);
            // `t x`: an alias after a relation name (which follows a keyword or a dot,
            // never another plain name; `GROUP BY x` is no alias either).
            let after_relation = p1.plain
                && !p2.plain
                && !(pw == k::BY && matches!(p2.key, k::GROUP | k::ORDER | k::PARTITION));
            let after_paren = matches!(prev_kind, Some(TokenKind::RParen));
            let after_star = prev.is_some_and(|p| is_star(src, p));
            let cte = matches!(pw, k::WITH | k::RECURSIVE)
                || (matches!(prev_kind, Some(TokenKind::Comma)) && list == Ctx::With);
            let declared = p1.flags & flag::DECLARES != 0
                || after_relation
                || after_paren
                || after_star
                || cte
                || (matches!(prev_kind, Some(TokenKind::Comma)) && list != Ctx::Other)
                || (matches!(prev_kind, Some(TokenKind::LParen)) && list == Ctx::From)
                || (matches!(prev_kind, Some(TokenKind::Dot))
                    && i >= 2
                    && scratch.decls.last() == Some(&(i - 2)));
            if declared {
                scratch.decls.push(i);
            }
            // `alias (a, b)`: a column alias list renames columns (so does a CTE's).
            if matches!(next_kind, Some(TokenKind::LParen))
                && (pw == k::AS
                    || after_relation
                    || after_star
                    || cte
                    || (after_paren
                        && !(if matches!(t.kind, TokenKind::Word) {
                            after_call_key(w)
                        } else {
                            after_call(&name)
                        })))
            {
                facts.needs_parse = true;
            }
            let bare = !matches!(prev_kind, Some(TokenKind::Dot))
                && !matches!(next_kind, Some(TokenKind::Dot | TokenKind::LParen));
            if bare {
                if special & flag::IMPLICIT != 0 {
                    facts.needs_parse = true;
                }
                scratch.bares.push(i);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Handles a reserved word: list contexts, refusals and constructs needing a parse.
fn keyword(
    w: u128,
    prev_word: u128,
    prev_kind: Option<TokenKind>,
    st: &mut State,
    facts: &mut Facts,
) -> Result<(), Reason> {
    if st.depth == 0
        && matches!(
            w,
            k::UNION | k::INTERSECT | k::EXCEPT | k::INTO | k::DISTINCT
        )
    {
        st.top_modifier = true;
    }
    let depth = st.depth;
    let ctx = &mut st.ctx;
    let set = |ctx: &mut [Ctx; MAX_DEPTH], c: Ctx| {
        if depth < MAX_DEPTH {
            ctx[depth] = c;
        }
    };
    match w {
        k::NATURAL => return Err("NATURAL join, which compares columns it does not name".into()),
        k::FROM | k::JOIN | k::INTO | k::USING => set(ctx, Ctx::From),
        k::WITH => set(ctx, Ctx::With),
        k::SELECT
        | k::WHERE
        | k::GROUP
        | k::HAVING
        | k::ORDER
        | k::LIMIT
        | k::OFFSET
        | k::WINDOW
        | k::RETURNING
        | k::UNION
        | k::INTERSECT
        | k::EXCEPT
        | k::FETCH
        | k::FOR => set(ctx, Ctx::Other),
        // `TABLE t` as a query; `CREATE TABLE`, `LOCK TABLE` and the like read nothing. A
        // statement that is just `TABLE t` is `SELECT * FROM t` (see the caller).
        k::TABLE if prev_kind.is_some() && !ddl_before_table(prev_word) => facts.needs_parse = true,
        // `WITH x (a, b) AS (...)`: a CTE with a column list, `) AS (` or
        // `) AS [NOT] MATERIALIZED`.
        k::AS if matches!(prev_kind, Some(TokenKind::RParen)) => facts.needs_parse = true,
        _ => {}
    }
    Ok(())
}

/// Whether the `*` at `i` (a statement starting with SELECT, depth 0) is a whole select-list
/// item: `*` or `a.b.*` between `SELECT` or `,` and `,`, `FROM`, `INTO` or the end. Anything
/// else (`c.* || 'x'`, `'x' || c.*`, `*::text`) is an expression holding a whole row.
fn select_item_star(src: &str, tokens: &[Token], i: usize) -> bool {
    let mut buf = [0u8; 24];
    let mut start = i;
    while start >= 2
        && matches!(tokens[start - 1].kind, TokenKind::Dot)
        && is_name(&tokens[start - 2])
    {
        start -= 2;
    }
    let Some(before) = start.checked_sub(1).map(|p| &tokens[p]) else {
        return false;
    };
    let opens =
        matches!(before.kind, TokenKind::Comma) || lower(src, Some(before), &mut buf) == "select";
    let closes = match tokens.get(i + 1) {
        None => true,
        Some(t) if matches!(t.kind, TokenKind::Comma) => true,
        Some(t) => matches!(lower(src, Some(t), &mut buf), "from" | "into"),
    };
    opens && closes
}

fn ctx_at(ctx: &[Ctx; MAX_DEPTH], depth: usize) -> Ctx {
    if depth < MAX_DEPTH {
        ctx[depth]
    } else {
        Ctx::From
    }
}

fn is_name(t: &Token) -> bool {
    matches!(
        t.kind,
        TokenKind::Word | TokenKind::QuotedIdent | TokenKind::UnicodeIdent
    )
}

fn is_star(src: &str, t: &Token) -> bool {
    matches!(t.kind, TokenKind::Operator) && t.text(src) == "*"
}

/// Whether some bare name equals a name declared at another position: only then can the
/// statement hold a whole-row reference.
fn whole_row_candidate(src: &str, tokens: &[Token], decls: &[usize], bares: &[usize]) -> bool {
    decls.iter().any(|&d| {
        bares
            .iter()
            .any(|&b| b != d && same_name(src, tokens, d, b))
    })
}
