//! The fast path: classifies a statement from its leading keywords when PostgreSQL's grammar
//! leaves no doubt. Returns `None` when it cannot be certain; the full parse decides then.

use super::calls::lower;
use super::classify::StatementClass::*;
use super::classify::{base, Base, ClassifyPath, Cx};
use super::ident::chain_after;
use super::lexer::{key_of, Token, TokenKind};

/// Fast-path verdict on `tokens` (non-empty), or `None` if a full parse is needed.
pub(crate) fn fast(cx: &Cx<'_>, tokens: &[Token], depth: u8) -> Option<Base> {
    let src = cx.src;
    if tokens[0].kind == TokenKind::LParen {
        return query(cx, tokens);
    }
    // Queries are most statements: decided before the general keyword match below.
    if matches!(tokens[0].key(src), K_SELECT | K_VALUES | K_TABLE) {
        return query(cx, tokens);
    }
    let mut b0 = [0u8; 24];
    let mut b1 = [0u8; 24];
    let w0 = lower(src, tokens.first(), &mut b0);
    let w1 = lower(src, tokens.get(1), &mut b1);
    let f = Base::fast;
    Some(match w0 {
        "select" | "values" | "table" => return query(cx, tokens),
        "with" => return None,
        "insert" => write(src, tokens, "INSERT", false),
        "update" => write(src, tokens, "UPDATE", true),
        "delete" => write(src, tokens, "DELETE", true),
        "merge" => write(src, tokens, "MERGE", false),
        "begin" | "start" => {
            let mut b = f(
                Transaction,
                if w0 == "begin" {
                    "BEGIN"
                } else {
                    "START TRANSACTION"
                },
            );
            // Transaction modes (`READ WRITE`, isolation) can undo a read-only default.
            let rest = tokens
                .iter()
                .skip(1)
                .filter(|t| !(t.is_word(src, "transaction") || t.is_word(src, "work")));
            if rest.count() > 0 {
                b.setting = Some("transaction".into());
            }
            b
        }
        "commit" | "end" | "rollback" | "abort" if w1 == "prepared" => f(
            Admin,
            if w0 == "commit" {
                "COMMIT PREPARED"
            } else {
                "ROLLBACK PREPARED"
            },
        ),
        "commit" | "end" => f(Transaction, "COMMIT"),
        "rollback" | "abort" => f(Transaction, "ROLLBACK"),
        "savepoint" => f(Transaction, "SAVEPOINT"),
        "release" => f(Transaction, "RELEASE"),
        "prepare"
            if w1 == "transaction"
                && matches!(tokens.get(2).map(|t| t.kind), Some(TokenKind::Str(_))) =>
        {
            // Two-phase state outlives the session and holds locks until resolved.
            f(Admin, "PREPARE TRANSACTION")
        }
        "prepare" => wrapped(cx, tokens, "as", "PREPARE", depth),
        "execute" => Base::unknown(
            "EXECUTE",
            ClassifyPath::FastPath,
            "EXECUTE runs a statement prepared earlier, whose text is not in this message",
        ),
        "deallocate" => f(Session, "DEALLOCATE"),
        "set" => set(src, tokens),
        "reset" => {
            let mut b = f(Session, "RESET");
            b.setting = setting_name(src, tokens, 1);
            b
        }
        "show" => f(Read, "SHOW"),
        "discard" => {
            let mut b = f(Session, "DISCARD");
            if w1 == "all" {
                // DISCARD ALL includes RESET ALL and SET SESSION AUTHORIZATION DEFAULT.
                b.setting = Some("all".into());
            }
            b
        }
        "listen" => f(Session, "LISTEN"),
        "unlisten" => f(Session, "UNLISTEN"),
        "close" => f(Session, "CLOSE"),
        // NOTIFY reaches other sessions: a side effect outside this one.
        "notify" => f(Write, "NOTIFY"),
        "explain" => explain(cx, tokens, depth),
        "copy" => copy(cx, tokens, depth),
        "declare" => wrapped(cx, tokens, "for", "DECLARE CURSOR", depth),
        "fetch" | "move" => f(Read, if w0 == "fetch" { "FETCH" } else { "MOVE" }),
        "do" => f(Procedural, "DO"),
        "call" => f(Procedural, "CALL"),
        "create" => create(src, tokens),
        "alter" => alter(src, tokens),
        "drop" => drop(src, tokens),
        "grant" => f(Admin, "GRANT"),
        "revoke" => f(Admin, "REVOKE"),
        "reassign" => f(Admin, "REASSIGN OWNED"),
        "security" => f(Admin, "SECURITY LABEL"),
        "import" => f(Admin, "IMPORT FOREIGN SCHEMA"),
        "vacuum" => f(Admin, "VACUUM"),
        "analyze" | "analyse" => f(Admin, "ANALYZE"),
        "checkpoint" => f(Admin, "CHECKPOINT"),
        "cluster" => f(Admin, "CLUSTER"),
        "reindex" => f(Admin, "REINDEX"),
        "load" => f(Admin, "LOAD"),
        // TRUNCATE skips row-level triggers and cannot be limited by a WHERE: DDL severity.
        "truncate" => f(Ddl, "TRUNCATE"),
        "comment" => f(Ddl, "COMMENT"),
        // LOCK needs a transaction and blocks other writers; it is refused in read-only ones.
        "lock" => f(Write, "LOCK"),
        "refresh" => f(Write, "REFRESH MATERIALIZED VIEW"),
        _ => Base::unknown("", ClassifyPath::FastPath, "unrecognized command"),
    })
}

/// SELECT, VALUES, TABLE and parenthesized queries: certain only when no word can change
/// what the query does (`WITH` may hold data-modifying CTEs, `INTO` creates a table, `FOR`
/// may lock rows) and every call is known side-effect free.
fn query(cx: &Cx<'_>, tokens: &[Token]) -> Option<Base> {
    if !cx.calls_safe {
        return None;
    }
    // WITH may hide a data-modifying CTE, INTO makes a table, FOR locks rows: the full
    // parse tells what they do. Only words of 3 or 4 bytes starting with w, i or f can be
    // one, so most words are passed over without reading their text.
    let needs_parse = tokens.iter().any(|t| {
        t.kind == TokenKind::Word
            && (3..=4).contains(&t.len())
            && QUERY_WORD_FIRST[usize::from(cx.src.as_bytes()[t.start()])]
            && matches!(t.key(cx.src), K_WITH | K_INTO | K_FOR)
    });
    (!needs_parse).then(|| Base::fast(Read, "SELECT"))
}

/// INSERT, UPDATE, DELETE, MERGE: always writes whatever they contain (calls are judged
/// separately); UPDATE and DELETE report a top-level WHERE.
fn write(src: &str, tokens: &[Token], command: &'static str, wants_where: bool) -> Base {
    let mut b = Base::fast(Write, command);
    if wants_where {
        let mut depth = 0i32;
        let mut found = false;
        for t in tokens {
            match t.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => depth -= 1,
                TokenKind::Word if depth == 0 && t.is_word(src, "where") => {
                    found = true;
                    break;
                }
                _ => {}
            }
        }
        b.has_where = Some(found);
    }
    b
}

/// Best-effort relation names: the names after FROM, JOIN, UPDATE, INTO and TABLE (and
/// further comma-separated FROM items), outside function-call parentheses, that are not
/// themselves calls; and the table of `COPY t`.
pub(crate) fn relations(src: &str, tokens: &[Token]) -> Vec<String> {
    let mut out = Vec::new();
    if tokens.first().is_some_and(|t| t.is_word(src, "copy")) {
        let at = if tokens.get(1).is_some_and(|t| t.is_word(src, "binary")) {
            2
        } else {
            1
        };
        if let Some(name) = relation_at(src, tokens, at).map(|(_, name)| name) {
            out.push(name);
        }
    }
    // Bit d set: the parenthesis at depth d belongs to a function call (FROM inside
    // `extract(year FROM x)` is not a table).
    let mut call_parens: u64 = 0;
    let mut depth = 0u32;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match t.kind {
            TokenKind::LParen => {
                depth += 1;
                let is_call = i > 0
                    && matches!(tokens[i - 1].kind, TokenKind::Word | TokenKind::QuotedIdent)
                    && !SUBQUERY_WORDS.contains(&tokens[i - 1].key(src));
                if depth < 64 {
                    call_parens = (call_parens & !(1 << depth)) | (u64::from(is_call) << depth);
                }
            }
            TokenKind::RParen => depth = depth.saturating_sub(1),
            // Every word that matters here has 3 to 6 letters: most words are ruled out
            // without reading their text.
            TokenKind::Word
                if (3..=6).contains(&t.len())
                    && KEY_FIRST[usize::from(src.as_bytes()[t.start()])] =>
            {
                let k = t.key(src);
                let is_from = k == K_FROM;
                let is_intro = matches!(k, K_FROM | K_JOIN | K_INTO | K_TABLE | K_UPDATE)
                    && (depth >= 64 || call_parens & (1 << depth) == 0);
                if is_intro {
                    let mut j = i + 1;
                    loop {
                        if tokens.get(j).is_some_and(|t| t.is_word(src, "only")) {
                            j += 1;
                        }
                        let Some((next, name)) = relation_at(src, tokens, j) else {
                            break;
                        };
                        out.push(name);
                        j = next;
                        if !is_from {
                            break;
                        }
                        // Skip an alias, then continue after a comma.
                        if tokens.get(j).is_some_and(|t| t.is_word(src, "as")) {
                            j += 1;
                        }
                        if tokens.get(j).is_some_and(|t| {
                            matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent)
                                && !is_clause_word(src, t)
                        }) {
                            j += 1;
                        }
                        if tokens.get(j).map(|t| t.kind) != Some(TokenKind::Comma) {
                            break;
                        }
                        j += 1;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn is_clause_word(src: &str, t: &Token) -> bool {
    match t.key(src) {
        0 => {
            t.is_word(src, "intersect")
                || t.is_word(src, "returning")
                || t.is_word(src, "overriding")
                || t.is_word(src, "tablesample")
        }
        k => CLAUSE_WORDS.contains(&k),
    }
}

/// Keys of the words whose `(` opens a subquery or list, not a call.
const SUBQUERY_WORDS: [u64; 16] = keys([
    "from", "join", "in", "exists", "any", "all", "some", "lateral", "as", "select", "where",
    "and", "or", "not", "on", "values",
]);

/// Keys of the clause words of at most 8 letters (see [`is_clause_word`]).
const CLAUSE_WORDS: [u64; 25] = keys([
    "where", "join", "left", "right", "inner", "full", "cross", "natural", "on", "group", "order",
    "limit", "offset", "having", "window", "union", "except", "set", "using", "for", "fetch",
    "values", "select", "default", "lateral",
]);

const K_SELECT: u64 = key_of("select");
const K_VALUES: u64 = key_of("values");
const K_TABLE: u64 = key_of("table");
const K_WITH: u64 = key_of("with");
const K_INTO: u64 = key_of("into");
const K_FOR: u64 = key_of("for");
const K_FROM: u64 = key_of("from");
const K_JOIN: u64 = key_of("join");
const K_UPDATE: u64 = key_of("update");

/// First letters (either case) of the words [`relations`] looks for: into, from, join,
/// table, update. Any other word is passed over without computing its key.
static KEY_FIRST: [bool; 256] = first_letters(b"ifjtu");

/// First letters (either case) of WITH, INTO and FOR.
static QUERY_WORD_FIRST: [bool; 256] = first_letters(b"wif");

const fn first_letters(letters: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < letters.len() {
        t[letters[i] as usize] = true;
        t[letters[i].to_ascii_uppercase() as usize] = true;
        i += 1;
    }
    t
}

const fn keys<const N: usize>(words: [&str; N]) -> [u64; N] {
    let mut out = [0u64; N];
    let mut i = 0;
    while i < N {
        out[i] = key_of(words[i]);
        i += 1;
    }
    out
}

/// A relation name at `tokens[j]` that is not a call or a keyword-introduced subquery.
fn relation_at(src: &str, tokens: &[Token], j: usize) -> Option<(usize, String)> {
    let t = tokens.get(j)?;
    if t.kind == TokenKind::Word && (is_clause_word(src, t) || t.is_word(src, "only")) {
        return None;
    }
    let (next, name) = chain_after(src, tokens, j)?;
    // `FROM f(...)` is a call (reported as a function); `INTO t (a, b)` is a column list.
    if tokens.get(next).map(|t| t.kind) == Some(TokenKind::LParen) {
        let column_list =
            j > 0 && (tokens[j - 1].is_word(src, "into") || tokens[j - 1].is_word(src, "table"));
        if !column_list {
            return None;
        }
    }
    Some((next, name))
}

/// A statement wrapping another after a keyword: `PREPARE p AS <stmt>`,
/// `DECLARE c CURSOR FOR <query>`. The wrapper has the inner statement's class.
fn wrapped(cx: &Cx<'_>, tokens: &[Token], kw: &str, command: &'static str, depth: u8) -> Base {
    let mut level = 0i32;
    let at = tokens.iter().enumerate().skip(2).find_map(|(i, t)| {
        match t.kind {
            TokenKind::LParen => level += 1,
            TokenKind::RParen => level -= 1,
            _ if level == 0 && t.is_word(cx.src, kw) => return Some(i),
            _ => {}
        }
        None
    });
    let Some(at) = at else {
        return Base::unknown(
            command,
            ClassifyPath::FastPath,
            "wrapped statement not found",
        );
    };
    let mut b = base(cx, &tokens[at + 1..], depth + 1);
    b.command = command;
    b
}

/// SET: session state, except SET TRANSACTION and SET CONSTRAINTS (transaction scope).
fn set(src: &str, tokens: &[Token]) -> Base {
    let mut buf = [0u8; 24];
    let mut i = 1;
    let scope = lower(src, tokens.get(1), &mut buf).to_string();
    if scope == "session" || scope == "local" {
        let mut b2 = [0u8; 24];
        match lower(src, tokens.get(2), &mut b2) {
            "authorization" if scope == "session" => {
                return session_setting("session_authorization");
            }
            "characteristics" if scope == "session" => {
                return session_setting("session_characteristics");
            }
            _ => i = 2,
        }
    }
    match lower(src, tokens.get(i), &mut buf) {
        "transaction" => {
            let mut b = Base::fast(Transaction, "SET TRANSACTION");
            b.setting = Some("transaction".into());
            b
        }
        "constraints" => Base::fast(Transaction, "SET CONSTRAINTS"),
        _ => {
            let mut b = Base::fast(Session, "SET");
            b.setting = setting_name(src, tokens, i);
            b
        }
    }
}

fn session_setting(name: &str) -> Base {
    let mut b = Base::fast(Session, "SET");
    b.setting = Some(name.into());
    b
}

/// The parameter named at `tokens[i]`, mapping SET/RESET's special forms to the parameter
/// they change.
fn setting_name(src: &str, tokens: &[Token], i: usize) -> Option<String> {
    let mut buf = [0u8; 24];
    let mut b2 = [0u8; 24];
    let next = lower(src, tokens.get(i + 1), &mut b2);
    let special = match lower(src, tokens.get(i), &mut buf) {
        "time" if next == "zone" => "timezone",
        "names" => "client_encoding",
        "schema" => "search_path",
        "xml" if next == "option" => "xmloption",
        "session" if next == "authorization" => "session_authorization",
        "transaction" => "transaction",
        _ => return chain_after(src, tokens, i).map(|(_, n)| n),
    };
    Some(special.into())
}

/// EXPLAIN: plans without running unless ANALYZE is on, in which case it runs the statement
/// and has that statement's class.
fn explain(cx: &Cx<'_>, tokens: &[Token], depth: u8) -> Base {
    let src = cx.src;
    let mut analyze = false;
    let mut i = 1;
    while let Some(t) = tokens.get(i) {
        if t.kind == TokenKind::LParen && !opens_query(src, tokens, i) {
            let (on, close) = explain_options(src, tokens, i);
            analyze |= on;
            i = close + 1;
            break;
        } else if t.is_word(src, "analyze") || t.is_word(src, "analyse") {
            analyze = true;
            i += 1;
        } else if t.is_word(src, "verbose") {
            i += 1;
        } else {
            break;
        }
    }
    let inner = base(cx, &tokens[i.min(tokens.len())..], depth + 1);
    let class = if analyze {
        inner.class
    } else {
        match inner.class {
            // Planning only: nothing is written, nothing is sent.
            Write | Ddl | CopyOut => Read,
            c => c,
        }
    };
    Base {
        class,
        command: "EXPLAIN",
        ..inner
    }
}

/// Whether the `(` at `i` starts a parenthesized query rather than an option list.
fn opens_query(src: &str, tokens: &[Token], i: usize) -> bool {
    let mut buf = [0u8; 24];
    match tokens.get(i + 1) {
        Some(t) if t.kind == TokenKind::LParen => true,
        t => matches!(
            lower(src, t, &mut buf),
            "select" | "values" | "table" | "with"
        ),
    }
}

/// Reads `( option [value], ... )` starting at `open`; returns whether ANALYZE is on and the
/// index of the closing `)`. ANALYZE counts as on unless its value is plainly false.
fn explain_options(src: &str, tokens: &[Token], open: usize) -> (bool, usize) {
    let mut analyze = false;
    let mut depth = 0i32;
    let mut i = open;
    let mut item_start = open + 1;
    while i < tokens.len() {
        match tokens[i].kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen | TokenKind::Comma if depth == 1 => {
                let item = &tokens[item_start..i];
                if let Some(name) = item.first() {
                    if name.is_word(src, "analyze") || name.is_word(src, "analyse") {
                        let off = item.get(1).is_some_and(|v| {
                            let text = v.text(src);
                            ["false", "off", "0", "no"]
                                .iter()
                                .any(|f| text.eq_ignore_ascii_case(f))
                        });
                        analyze |= !off;
                    }
                }
                item_start = i + 1;
                if tokens[i].kind == TokenKind::RParen {
                    return (analyze, i);
                }
            }
            TokenKind::RParen => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    (analyze, tokens.len())
}

/// COPY: to/from STDOUT/STDIN is copy-out/write; a server file or PROGRAM is admin. The
/// query form `COPY (query) TO` has its query's class when stronger than a read
/// (`COPY (DELETE ... RETURNING *) TO STDOUT` deletes).
fn copy(cx: &Cx<'_>, tokens: &[Token], depth: u8) -> Base {
    let src = cx.src;
    let mut i = 1;
    if tokens.get(i).is_some_and(|t| t.is_word(src, "binary")) {
        i += 1;
    }
    let mut inner: Option<Base> = None;
    if tokens.get(i).map(|t| t.kind) == Some(TokenKind::LParen) {
        let Some(close) = matching_paren(tokens, i) else {
            return Base::unknown("COPY", ClassifyPath::FastPath, "unbalanced parentheses");
        };
        inner = Some(base(cx, &tokens[i + 1..close], depth + 1));
        i = close + 1;
    } else {
        let Some((next, _)) = chain_after(src, tokens, i) else {
            return Base::unknown("COPY", ClassifyPath::FastPath, "COPY of what?");
        };
        i = next;
        if tokens.get(i).map(|t| t.kind) == Some(TokenKind::LParen) {
            match matching_paren(tokens, i) {
                Some(close) => i = close + 1,
                None => {
                    return Base::unknown("COPY", ClassifyPath::FastPath, "unbalanced parentheses")
                }
            }
        }
    }
    let mut buf = [0u8; 24];
    let dir = lower(src, tokens.get(i), &mut buf).to_string();
    let mut b2 = [0u8; 24];
    let target = tokens.get(i + 1);
    let std_stream = lower(src, target, &mut b2);
    let class = match (dir.as_str(), std_stream) {
        (_, "program") => Admin,
        (_, _) if matches!(target.map(|t| t.kind), Some(TokenKind::Str(_))) => Admin,
        ("from", "stdin") if inner.is_none() => Write,
        ("to", "stdout") => CopyOut,
        _ => {
            return Base::unknown("COPY", ClassifyPath::FastPath, "unrecognized COPY form");
        }
    };
    match inner {
        Some(inner) => {
            let class = if inner.class == Read {
                class
            } else {
                inner.class.stronger(class)
            };
            Base {
                class,
                command: "COPY",
                ..inner
            }
        }
        None => Base::fast(class, "COPY"),
    }
}

/// Index of the `)` matching the `(` at `open`.
fn matching_paren(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Objects whose CREATE/ALTER/DROP is server or role administration rather than schema.
fn admin_object(w: &str, next: &str) -> bool {
    match w {
        "role" | "user" | "group" | "extension" | "database" | "tablespace" | "subscription"
        | "publication" | "server" | "language" | "transform" | "cast" | "system" | "owned"
        | "event" | "access" => true,
        "foreign" => next == "data",
        "default" => next == "privileges",
        "large" => next == "object",
        "procedural" | "trusted" => true,
        _ => false,
    }
}

/// Skips CREATE's modifiers to the object keyword.
fn object_index(src: &str, tokens: &[Token]) -> usize {
    let mut buf = [0u8; 24];
    let mut i = 1;
    while let w @ ("or" | "replace" | "temp" | "temporary" | "local" | "global" | "unlogged"
    | "unique" | "recursive" | "constraint") = lower(src, tokens.get(i), &mut buf)
    {
        let _ = w;
        i += 1;
    }
    i
}

fn create(src: &str, tokens: &[Token]) -> Base {
    let i = object_index(src, tokens);
    let mut buf = [0u8; 24];
    let mut b2 = [0u8; 24];
    let w = lower(src, tokens.get(i), &mut buf);
    let next = lower(src, tokens.get(i + 1), &mut b2);
    if admin_object(w, next) {
        return Base::fast(Admin, admin_command("CREATE", w));
    }
    let command = match w {
        "table" if has_top_level_as(src, tokens) => "CREATE TABLE AS",
        "table" => "CREATE TABLE",
        "materialized" => "CREATE MATERIALIZED VIEW",
        "view" => "CREATE VIEW",
        "index" => "CREATE INDEX",
        "function" => "CREATE FUNCTION",
        "procedure" => "CREATE PROCEDURE",
        "trigger" => "CREATE TRIGGER",
        "schema" => "CREATE SCHEMA",
        "sequence" => "CREATE SEQUENCE",
        "type" => "CREATE TYPE",
        "domain" => "CREATE DOMAIN",
        "rule" => "CREATE RULE",
        "policy" => "CREATE POLICY",
        "foreign" => "CREATE FOREIGN TABLE",
        _ => "CREATE",
    };
    Base::fast(Ddl, command)
}

fn has_top_level_as(src: &str, tokens: &[Token]) -> bool {
    let mut depth = 0i32;
    tokens.iter().any(|t| {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth -= 1,
            _ => return depth == 0 && t.is_word(src, "as"),
        }
        false
    })
}

fn alter(src: &str, tokens: &[Token]) -> Base {
    let mut buf = [0u8; 24];
    let mut b2 = [0u8; 24];
    let w = lower(src, tokens.get(1), &mut buf);
    let next = lower(src, tokens.get(2), &mut b2);
    if admin_object(w, next) {
        return Base::fast(Admin, admin_command("ALTER", w));
    }
    let command = match w {
        "table" => "ALTER TABLE",
        "view" => "ALTER VIEW",
        "index" => "ALTER INDEX",
        "function" => "ALTER FUNCTION",
        "schema" => "ALTER SCHEMA",
        "sequence" => "ALTER SEQUENCE",
        "type" => "ALTER TYPE",
        _ => "ALTER",
    };
    Base::fast(Ddl, command)
}

fn drop(src: &str, tokens: &[Token]) -> Base {
    let mut buf = [0u8; 24];
    let mut b2 = [0u8; 24];
    let w = lower(src, tokens.get(1), &mut buf);
    let next = lower(src, tokens.get(2), &mut b2);
    if admin_object(w, next) {
        return Base::fast(Admin, admin_command("DROP", w));
    }
    let command = match w {
        "table" => "DROP TABLE",
        "view" => "DROP VIEW",
        "index" => "DROP INDEX",
        "function" => "DROP FUNCTION",
        "schema" => "DROP SCHEMA",
        "sequence" => "DROP SEQUENCE",
        "type" => "DROP TYPE",
        _ => "DROP",
    };
    Base::fast(Ddl, command)
}

fn admin_command(verb: &str, w: &str) -> &'static str {
    match (verb, w) {
        ("ALTER", "system") => "ALTER SYSTEM",
        ("CREATE", "role" | "user" | "group") => "CREATE ROLE",
        ("ALTER", "role" | "user" | "group") => "ALTER ROLE",
        ("DROP", "role" | "user" | "group") => "DROP ROLE",
        ("DROP", "owned") => "DROP OWNED",
        ("CREATE", "extension") => "CREATE EXTENSION",
        ("ALTER", "extension") => "ALTER EXTENSION",
        ("DROP", "extension") => "DROP EXTENSION",
        ("CREATE", "database") => "CREATE DATABASE",
        ("ALTER", "database") => "ALTER DATABASE",
        ("DROP", "database") => "DROP DATABASE",
        ("ALTER", "default") => "ALTER DEFAULT PRIVILEGES",
        ("CREATE", _) => "CREATE",
        ("ALTER", _) => "ALTER",
        _ => "DROP",
    }
}
