//! The quick scan: decides the commonest message of all, one plain `SELECT`, in a single pass
//! over its bytes without producing tokens.
//!
//! It answers only when the answer cannot differ from the token path's: the text starts with
//! the keyword SELECT, holds nothing whose lexing needs the full rules (comments, quoted or
//! prefixed literals, dollar quotes, quoted identifiers, backslashes, non-ASCII outside
//! string literals), calls nothing (no parenthesis at all), names none of the words that send
//! a query to the full parse (WITH, INTO, FOR), and has at most a trailing `;`. Standard
//! `'...'` literals are stepped over whole, so a literal may hold anything. Whenever in
//! doubt it returns `None` and the token path decides; a property test holds the two paths to
//! the same verdict on every text the scan accepts.

use super::classify::{ClassifyPath, StatementClass, StatementInfo};
use super::lexer::{IDENT_CONT, SPACE};
use memchr::memchr;

/// What a byte outside a string literal means to the scan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    /// Letters other than the three below, digits, `_`, spaces, most punctuation and
    /// operators: nothing to do.
    Plain,
    /// `f`, `i`, `w` in either case: may start FOR, INTO or WITH.
    Keyword,
    /// `'`: a string literal starts (or, after a word or number, a prefixed one).
    Quote,
    /// `$`: a parameter if a digit follows, else possibly a dollar quote.
    Dollar,
    /// `-`: a comment if another `-` follows.
    Dash,
    /// `/`: a comment if `*` follows.
    Slash,
    /// `;`: the end of the statement.
    Semicolon,
    /// Anything the scan leaves to the token path.
    Give,
}

static BYTES: [Byte; 256] = {
    let mut t = [Byte::Give; 256];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() || b == b'_' {
            t[i] = Byte::Plain;
        }
        i += 1;
    }
    let plain = b" \t\n\r\x0b\x0c,.=<>*+%^&|!~@#:?[]";
    let mut i = 0;
    while i < plain.len() {
        t[plain[i] as usize] = Byte::Plain;
        i += 1;
    }
    let keyword = b"fiwFIW";
    let mut i = 0;
    while i < keyword.len() {
        t[keyword[i] as usize] = Byte::Keyword;
        i += 1;
    }
    t[b'\'' as usize] = Byte::Quote;
    t[b'$' as usize] = Byte::Dollar;
    t[b'-' as usize] = Byte::Dash;
    t[b'/' as usize] = Byte::Slash;
    t[b';' as usize] = Byte::Semicolon;
    t
};

/// 1 for the [`Byte::Plain`] bytes, 0 for the others: the skipping loop's table.
static PLAIN: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = matches!(BYTES[i], Byte::Plain) as u8;
        i += 1;
    }
    t
};

/// Bytes that continue a word when they come before a letter: a letter there is inside a
/// word, not at the start of one. Digits are left out on purpose: a word may start right
/// after a number (`1for`), so a letter after a digit is looked at too.
static WORD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80;
        i += 1;
    }
    t
};

/// The verdict on `sql` if it is one plain SELECT the scan can decide, else `None`.
/// `standard_conforming_strings` must be on (the caller checks): with it off a backslash
/// escapes a quote inside `'...'`.
pub(crate) fn plain_select(sql: &str) -> Option<StatementInfo> {
    let b = sql.as_bytes();
    if b.len() > u32::MAX as usize {
        return None;
    }
    let mut i = 0;
    while i < b.len() && SPACE[usize::from(b[i])] {
        i += 1;
    }
    let head = b.get(i..i + 6)?;
    if !head.eq_ignore_ascii_case(b"select") || b.get(i + 6).is_some_and(|&c| is_cont(c)) {
        return None;
    }
    i += 6;
    let mut end = b.len();
    loop {
        // Most bytes are plain: skip them eight at a time (eight lookups and one branch),
        // then one at a time, so that the dispatch below sees only the others.
        while let Some(chunk) = b.get(i..i + 8) {
            let plain = chunk
                .iter()
                .fold(1u8, |acc, &c| acc & PLAIN[usize::from(c)]);
            if plain == 0 {
                break;
            }
            i += 8;
        }
        while i < b.len() && PLAIN[usize::from(b[i])] == 1 {
            i += 1;
        }
        let Some(&c) = b.get(i) else { break };
        match BYTES[usize::from(c)] {
            Byte::Plain => {}
            // `i > 0` here: the text starts with SELECT.
            Byte::Keyword => {
                if !WORD_BYTE[usize::from(b[i - 1])] && needs_full_parse(&b[i..]) {
                    return None;
                }
            }
            Byte::Quote => {
                // After a word or number the quote belongs to a prefixed literal (`E'..'`,
                // `x'..'`) or is an error: the token path knows which.
                if is_cont(b[i - 1]) {
                    return None;
                }
                i = string_end(b, i + 1)?;
                continue;
            }
            Byte::Dollar => {
                // `$n` is a parameter; anything else may open a dollar quote.
                if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
            }
            Byte::Dash if b.get(i + 1) == Some(&b'-') => return None,
            Byte::Slash if b.get(i + 1) == Some(&b'*') => return None,
            Byte::Dash | Byte::Slash => {}
            Byte::Semicolon => {
                // Only a final `;`: the empty piece after it is no statement.
                if !b[i + 1..].iter().all(|&c| SPACE[usize::from(c)]) {
                    return None;
                }
                end = i;
                break;
            }
            Byte::Give => return None,
        }
        i += 1;
    }
    Some(StatementInfo {
        class: StatementClass::Read,
        command: "SELECT",
        has_where: None,
        functions: Vec::new(),
        setting: None,
        path: ClassifyPath::FastPath,
        reason: None,
        span: 0..end,
    })
}

fn is_cont(c: u8) -> bool {
    IDENT_CONT[usize::from(c)]
}

/// Whether the word starting at `w[0]` is WITH, INTO or FOR.
fn needs_full_parse(w: &[u8]) -> bool {
    let len = w.iter().take(5).take_while(|&&c| is_cont(c)).count();
    let word = &w[..len];
    match len {
        3 => word.eq_ignore_ascii_case(b"for"),
        4 => word.eq_ignore_ascii_case(b"into") || word.eq_ignore_ascii_case(b"with"),
        _ => false,
    }
}

/// The offset just past the `'` that closes the standard literal whose body starts at
/// `body` (`''` is a quote inside it); `None` if it never closes.
fn string_end(b: &[u8], body: usize) -> Option<usize> {
    let mut p = body;
    loop {
        p += memchr(b'\'', &b[p..])? + 1;
        if b.get(p) != Some(&b'\'') {
            return Some(p);
        }
        p += 1;
    }
}
