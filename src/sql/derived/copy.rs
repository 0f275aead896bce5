//! `COPY ... TO`: its data travels as `CopyData`, never as result columns, so column masking
//! does not apply to it. A table copied out must name its columns (none of them masked; the
//! caller counts masked names), and binary format, which the value detectors cannot read, is
//! refused. Judged on tokens: the grammar of `COPY` is small and its options may be literals.

use super::Reason;
use crate::sql::calls::lower;
use crate::sql::lexer::{StrKind, Token, TokenKind};

/// Checks a statement whose first token is `COPY`.
pub(super) fn check(src: &str, tokens: &[Token]) -> Result<(), Reason> {
    let mut buf = [0u8; 24];
    let word = |i: usize, buf: &mut [u8; 24]| lower(src, tokens.get(i), buf).to_string();
    let mut i = 1;
    let mut binary = false;
    let mut table_without_columns = false;
    if tokens.get(i).map(|t| t.kind) == Some(TokenKind::LParen) {
        i = after_parens(tokens, i).ok_or(UNREADABLE)?;
    } else {
        if word(i, &mut buf) == "binary" {
            binary = true;
            i += 1;
        }
        // The table name: a dotted chain.
        i += 1;
        while tokens.get(i).map(|t| t.kind) == Some(TokenKind::Dot) {
            i += 2;
        }
        if tokens.get(i).map(|t| t.kind) == Some(TokenKind::LParen) {
            i = after_parens(tokens, i).ok_or(UNREADABLE)?;
        } else {
            table_without_columns = true;
        }
    }
    match word(i, &mut buf).as_str() {
        "from" => return Ok(()),
        "to" => {}
        _ => return Err(UNREADABLE.into()),
    }
    if table_without_columns {
        return Err("COPY of a whole table to the client (name the columns)".into());
    }
    let options = &tokens[i + 1..];
    for (k, t) in options.iter().enumerate() {
        let w = lower(src, Some(t), &mut buf);
        if w == "binary" {
            binary = true;
        }
        if w == "format" && !text_format(src, options.get(k + 1)) {
            binary = true;
        }
    }
    if binary {
        return Err("COPY to the client in binary or unknown format".into());
    }
    Ok(())
}

const UNREADABLE: &str = "COPY statement the masking check cannot read";

/// Whether a `FORMAT` option's value is `text` or `csv` (anything else is treated as binary).
fn text_format(src: &str, t: Option<&Token>) -> bool {
    let Some(t) = t else { return false };
    let text = t.text(src);
    match t.kind {
        TokenKind::Word => text.eq_ignore_ascii_case("text") || text.eq_ignore_ascii_case("csv"),
        TokenKind::Str(StrKind::Standard) => {
            text.eq_ignore_ascii_case("'text'") || text.eq_ignore_ascii_case("'csv'")
        }
        _ => false,
    }
}

/// The index after the `)` matching the `(` at `open`.
fn after_parens(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(k + 1);
                }
            }
            _ => {}
        }
    }
    None
}
