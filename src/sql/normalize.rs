//! Normalized token streams: what a statement says once case, comments, whitespace, quoting
//! and literal values are taken away. Used for denylist matching, audit fingerprints and as
//! the canonical text handed to the full parser.

use super::ident::{ident_name, uescape_clause};
use super::lexer::{LexError, LexOptions, Lexer, StrKind, Token, TokenKind};

/// Separator around every token of a [`NormalizedTokens`] stream; no token can contain it
/// (PostgreSQL text cannot hold NUL, and a NUL in input is replaced).
pub(crate) const SEP: char = '\0';
/// Stands for any string literal in a normalized stream.
pub(crate) const STRING_MARK: char = '\u{1}';
/// Stands for any numeric literal.
pub(crate) const NUMBER_MARK: char = '\u{2}';
/// Stands for a `$n` parameter.
pub(crate) const PARAM_MARK: char = '\u{3}';

/// The normalized token stream of a text: unquoted words in lower case, quoted identifiers as
/// the names they denote, literals as opaque marks, comments and whitespace gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedTokens {
    stream: String,
    error: Option<LexError>,
}

impl NormalizedTokens {
    /// The encoded stream: each token wrapped in NUL separators (`\0select\0\u{1}\0`).
    pub fn as_str(&self) -> &str {
        &self.stream
    }

    /// The lexical error that stopped normalization early, if any; the stream then covers
    /// the text before it.
    pub fn error(&self) -> Option<&LexError> {
        self.error.as_ref()
    }

    /// The tokens as a readable list (marks shown as `'?'`, `?` and `$?`), for tests and logs.
    pub fn words(&self) -> Vec<String> {
        self.stream
            .split(SEP)
            .filter(|s| !s.is_empty())
            .map(|s| match s.chars().next() {
                Some(STRING_MARK) => "'?'".to_string(),
                Some(NUMBER_MARK) => "?".to_string(),
                Some(PARAM_MARK) => "$?".to_string(),
                _ => s.to_string(),
            })
            .collect()
    }
}

/// Normalizes the whole text (all statements; `;` stays a token).
pub fn normalize(sql: &str, opts: LexOptions) -> NormalizedTokens {
    let (tokens, error) = lex_all(sql, opts);
    let mut stream = String::with_capacity(sql.len() + 2);
    stream.push(SEP);
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        match t.kind {
            TokenKind::Word | TokenKind::QuotedIdent | TokenKind::UnicodeIdent => {
                match ident_name(sql, &tokens, i) {
                    Some(name) => {
                        stream.extend(name.chars().map(|c| if c == SEP { '\u{FFFD}' } else { c }))
                    }
                    // An undecodable U& identifier: the server rejects it; keep it opaque.
                    None => stream.push(STRING_MARK),
                }
            }
            TokenKind::Str(_) => stream.push(STRING_MARK),
            TokenKind::Number => stream.push(NUMBER_MARK),
            TokenKind::Param => stream.push(PARAM_MARK),
            _ => stream.push_str(t.text(sql)),
        }
        stream.push(SEP);
        i += 1 + skip_uescape(sql, &tokens, i);
    }
    NormalizedTokens { stream, error }
}

/// How literals are written by [`render`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LiteralStyle {
    /// `?` for every literal (audit fingerprints).
    Placeholder,
    /// `''` and `0`: neutral literals the full parser accepts; values never matter to a class.
    Blank,
}

/// Writes `tokens` as canonical SQL: words folded, identifiers double-quoted as the names they
/// denote, literals replaced, one space between tokens.
pub(crate) fn render(src: &str, tokens: &[Token], style: LiteralStyle, out: &mut String) {
    let mut i = 0;
    while i < tokens.len() {
        if i > 0 {
            out.push(' ');
        }
        let t = tokens[i];
        match t.kind {
            TokenKind::Word => {
                let name = ident_name(src, tokens, i).unwrap_or_default();
                // Keywords are plain ASCII; anything else (`a$b`, non-ASCII) is safest quoted.
                if name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    out.push_str(&name);
                } else {
                    push_quoted(&name, out);
                }
            }
            TokenKind::QuotedIdent | TokenKind::UnicodeIdent => match ident_name(src, tokens, i) {
                Some(name) => push_quoted(&name, out),
                None => out.push_str("\"?\""),
            },
            TokenKind::Str(_) => out.push_str(match style {
                LiteralStyle::Placeholder => "?",
                LiteralStyle::Blank => "''",
            }),
            TokenKind::Number => out.push(match style {
                LiteralStyle::Placeholder => '?',
                LiteralStyle::Blank => '0',
            }),
            _ => out.push_str(t.text(src)),
        }
        i += 1 + skip_uescape(src, tokens, i);
    }
}

fn push_quoted(name: &str, out: &mut String) {
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(if c == '\0' { '\u{FFFD}' } else { c });
    }
    out.push('"');
}

/// Tokens of a `UESCAPE 'c'` clause following a `U&` token at `i` (0 if none).
fn skip_uescape(src: &str, tokens: &[Token], i: usize) -> usize {
    match tokens[i].kind {
        TokenKind::UnicodeIdent | TokenKind::Str(StrKind::Unicode) => {
            uescape_clause(src, tokens, i).map_or(0, |(_, n)| n)
        }
        _ => 0,
    }
}

fn lex_all(sql: &str, opts: LexOptions) -> (Vec<Token>, Option<LexError>) {
    let mut tokens = Vec::new();
    for t in Lexer::new(sql, opts) {
        match t {
            Ok(t) => tokens.push(t),
            Err(e) => return (tokens, Some(e)),
        }
    }
    (tokens, None)
}

/// Audit fingerprint of `sql` (default lexing options): the normalized statement text with
/// every literal replaced by `?`, so it never carries a literal value. Words are lower case,
/// quoted identifiers keep their quotes, comments and extra whitespace are gone. Text after a
/// lexical error is shown as a single `?`.
pub fn fingerprint(sql: &str) -> String {
    fingerprint_with(sql, LexOptions::default())
}

/// [`fingerprint`] with explicit lexing options.
pub fn fingerprint_with(sql: &str, opts: LexOptions) -> String {
    let (tokens, error) = lex_all(sql, opts);
    let mut out = String::with_capacity(sql.len());
    render(sql, &tokens, LiteralStyle::Placeholder, &mut out);
    if error.is_some() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push('?');
    }
    out
}
