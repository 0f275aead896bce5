//! Function calls found on the token stream: a name (plain, quoted, `U&`-escaped, possibly
//! schema-qualified) directly followed by `(`, unless the grammar makes that `(` something
//! else (a keyword's parenthesis, a column list after a table name, a type modifier).
//! Working on tokens rather than on a parse tree means a call is found even in a statement
//! the full parser cannot read, and can never hide behind a parser's different idea of the
//! text.

use super::ident::chain_before;
use super::lexer::{StrKind, Token, TokenKind};

/// The lower-cased text of an unquoted word token, or `""` for anything else (including
/// words too long to be a keyword).
pub(crate) fn lower<'b>(src: &str, t: Option<&Token>, buf: &'b mut [u8; 24]) -> &'b str {
    let Some(t) = t else { return "" };
    let text = t.text(src).as_bytes();
    if t.kind != TokenKind::Word || text.len() > buf.len() {
        return "";
    }
    let out = &mut buf[..text.len()];
    out.copy_from_slice(text);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).unwrap_or("")
}

/// Keywords whose `(` opens a subquery, list or clause rather than a call.
fn is_grammar_word(w: &str) -> bool {
    matches!(
        w,
        "all"
            | "analyse"
            | "analyze"
            | "and"
            | "any"
            | "array"
            | "as"
            | "asc"
            | "at"
            | "between"
            | "by"
            | "case"
            | "cast"
            | "check"
            | "collate"
            | "conflict"
            | "copy"
            | "cube"
            | "default"
            | "desc"
            | "distinct"
            | "do"
            | "else"
            | "end"
            | "escape"
            | "except"
            | "exists"
            | "explain"
            | "fetch"
            | "filter"
            | "for"
            | "from"
            | "groups"
            | "hash"
            | "having"
            | "if"
            | "ilike"
            | "in"
            | "include"
            | "inherits"
            | "intersect"
            | "into"
            | "is"
            | "join"
            | "key"
            | "lateral"
            | "like"
            | "limit"
            | "list"
            | "not"
            | "nulls"
            | "offset"
            | "on"
            | "only"
            | "options"
            | "or"
            | "over"
            | "partition"
            | "primary"
            | "range"
            | "references"
            | "returning"
            | "rollup"
            | "row"
            | "rows"
            | "select"
            | "set"
            | "sets"
            | "similar"
            | "some"
            | "table"
            | "then"
            | "to"
            | "union"
            | "unique"
            | "using"
            | "vacuum"
            | "values"
            | "verbose"
            | "when"
            | "where"
            | "window"
            | "with"
            | "within"
            | "zone"
    )
}

/// Words after which a name followed by `(` is being defined or given a column list, not
/// called: `INSERT INTO t (a)`, `CREATE TABLE t (...)`, `AS alias (a, b)`, `CREATE FUNCTION
/// f (...)`, `REFERENCES t (id)`, `COPY t (a)`, `WITH cte (a) AS`.
fn defines_name(w: &str) -> bool {
    matches!(
        w,
        "aggregate"
            | "as"
            | "copy"
            | "exists"
            | "function"
            | "into"
            | "procedure"
            | "references"
            | "routine"
            | "table"
            | "view"
            | "with"
    )
}

/// Every function call in `tokens`, in order, by normalized name.
pub(crate) fn scan_calls(src: &str, tokens: &[Token]) -> Vec<String> {
    let mut calls = Vec::new();
    let mut buf = [0u8; 24];
    for i in 1..tokens.len() {
        if tokens[i].kind != TokenKind::LParen {
            continue;
        }
        let mut j = i - 1;
        // `U&"..." UESCAPE 'c' (`: the name is before the clause.
        if tokens[j].kind == TokenKind::Str(StrKind::Standard)
            && j >= 2
            && tokens[j - 1].is_word(src, "uescape")
            && tokens[j - 2].kind == TokenKind::UnicodeIdent
        {
            j -= 2;
        }
        if !matches!(
            tokens[j].kind,
            TokenKind::Word | TokenKind::QuotedIdent | TokenKind::UnicodeIdent
        ) {
            continue;
        }
        let Some((start, name)) = chain_before(src, tokens, j) else {
            // An undecodable U& name: the server rejects it, but report it anyway so that
            // the statement cannot look call-free.
            calls.push(tokens[j].text(src).to_string());
            continue;
        };
        if start == j && is_grammar_word(lower(src, tokens.get(j), &mut buf)) {
            continue;
        }
        if start > 0 {
            let prev = &tokens[start - 1];
            if defines_name(lower(src, Some(prev), &mut buf))
                || (prev.kind == TokenKind::Operator && prev.text(src) == "::")
            {
                continue;
            }
        }
        calls.push(name);
    }
    calls
}
