//! Identifier normalization exactly as PostgreSQL resolves names: unquoted words fold ASCII
//! letters to lower case, quoted identifiers keep their case, `U&"..."` escapes are decoded
//! (with an optional `UESCAPE 'c'`), and every name is truncated to 63 bytes.

use super::lexer::{StrKind, Token, TokenKind};
use std::borrow::Cow;

/// PostgreSQL's `NAMEDATALEN - 1`: longer identifiers are truncated.
pub const MAX_IDENT_BYTES: usize = 63;

/// If `tokens[i]` is followed by `UESCAPE '<c>'`, the escape character and the number of
/// tokens that clause uses.
pub fn uescape_clause(src: &str, tokens: &[Token], i: usize) -> Option<(char, usize)> {
    let kw = tokens.get(i + 1)?;
    let lit = tokens.get(i + 2)?;
    if !kw.is_word(src, "uescape") || !matches!(lit.kind, TokenKind::Str(StrKind::Standard)) {
        return None;
    }
    let text = lit.text(src);
    let body = &text[1..text.len() - 1];
    let mut chars = body.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some((c, 2)),
        _ => None,
    }
}

/// The name a word or quoted identifier token denotes; `None` for other tokens or for a
/// `U&` identifier with invalid escapes (which the server rejects).
pub fn ident_name<'a>(src: &'a str, tokens: &[Token], i: usize) -> Option<Cow<'a, str>> {
    let t = tokens.get(i)?;
    let text = t.text(src);
    let name: Cow<'a, str> = match t.kind {
        TokenKind::Word => {
            if text.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(text.to_ascii_lowercase())
            } else {
                Cow::Borrowed(text)
            }
        }
        TokenKind::QuotedIdent => undouble(&text[1..text.len() - 1], '"'),
        TokenKind::UnicodeIdent => {
            let esc = uescape_clause(src, tokens, i).map_or('\\', |(c, _)| c);
            let body = undouble(&text[3..text.len() - 1], '"');
            Cow::Owned(decode_unicode_escapes(&body, esc)?)
        }
        _ => return None,
    };
    Some(truncate(name))
}

/// Replaces doubled quote characters with one.
pub fn undouble(body: &str, quote: char) -> Cow<'_, str> {
    let pair: &[char] = &[quote, quote];
    let pair: String = pair.iter().collect();
    if body.contains(&pair) {
        Cow::Owned(body.replace(&pair, &quote.to_string()))
    } else {
        Cow::Borrowed(body)
    }
}

fn truncate(name: Cow<'_, str>) -> Cow<'_, str> {
    if name.len() <= MAX_IDENT_BYTES {
        return name;
    }
    let mut end = MAX_IDENT_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(name[..end].to_string())
}

/// Decodes `U&` escapes: `<esc>XXXX`, `<esc>+XXXXXX`, `<esc><esc>`, with UTF-16 surrogate
/// pairs combined. `None` when the server would reject the escapes.
pub fn decode_unicode_escapes(body: &str, esc: char) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    let mut high: Option<u32> = None;
    while let Some(c) = chars.next() {
        if c != esc {
            if high.is_some() {
                return None;
            }
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&esc) {
            if high.is_some() {
                return None;
            }
            chars.next();
            out.push(esc);
            continue;
        }
        let n = if chars.peek() == Some(&'+') {
            chars.next();
            6
        } else {
            4
        };
        let mut v = 0u32;
        for _ in 0..n {
            v = v * 16 + chars.next()?.to_digit(16)?;
        }
        match (high.take(), v) {
            (None, 0xD800..=0xDBFF) => high = Some(v),
            (Some(h), 0xDC00..=0xDFFF) => out.push(char::from_u32(
                0x10000 + ((h - 0xD800) << 10) + (v - 0xDC00),
            )?),
            (Some(_), _) => return None,
            (None, 0) => return None,
            (None, _) => out.push(char::from_u32(v)?),
        }
    }
    if high.is_some() {
        return None;
    }
    Some(out)
}

/// The dotted name chain ending at `tokens[end]` (`a . b . c`): its start index and
/// normalized text joined with `.`. `None` if `tokens[end]` is not a name.
pub fn chain_before(src: &str, tokens: &[Token], end: usize) -> Option<(usize, String)> {
    let mut start = end;
    ident_name(src, tokens, end)?;
    while start >= 2
        && tokens[start - 1].kind == TokenKind::Dot
        && ident_name(src, tokens, start - 2).is_some()
    {
        start -= 2;
    }
    let mut name = String::new();
    let mut i = start;
    while i <= end {
        if i > start {
            name.push('.');
        }
        name.push_str(&ident_name(src, tokens, i)?);
        i += 2;
    }
    Some((start, name))
}

/// The dotted name chain starting at `tokens[start]`: the index after it and its normalized
/// text.
pub fn chain_after(src: &str, tokens: &[Token], start: usize) -> Option<(usize, String)> {
    let mut name = ident_name(src, tokens, start)?.into_owned();
    let mut i = start + 1;
    if tokens.get(start).map(|t| t.kind) == Some(TokenKind::UnicodeIdent) {
        i += uescape_clause(src, tokens, start).map_or(0, |(_, n)| n);
    }
    while tokens.get(i).map(|t| t.kind) == Some(TokenKind::Dot) {
        let Some(part) = ident_name(src, tokens, i + 1) else {
            break;
        };
        name.push('.');
        name.push_str(&part);
        i += 2;
    }
    Some((i, name))
}
