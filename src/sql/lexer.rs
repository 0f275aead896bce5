//! Zero-copy lexer that follows PostgreSQL's own lexical rules (`scan.l`), so that sluice's idea
//! of where a string, comment, identifier or statement ends is the server's idea too.
//!
//! Tokens are byte spans into the input; whitespace and comments are skipped but checked for
//! termination. The input is UTF-8 text: sessions must use a UTF-8 `client_encoding`, because in
//! some multi-byte encodings a trailing byte can look like a quote or a backslash.

use memchr::{memchr, memchr2, memmem};
use thiserror::Error;

/// Session state that changes how text is lexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexOptions {
    /// `standard_conforming_strings`: when off, backslash escapes quotes in plain `'...'`
    /// strings as it does in `E'...'`. PostgreSQL's default is on.
    pub standard_conforming_strings: bool,
}

impl Default for LexOptions {
    fn default() -> Self {
        LexOptions {
            standard_conforming_strings: true,
        }
    }
}

/// How a string literal's body is lexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrKind {
    /// `'...'` with `''` for a quote; backslash is an ordinary character (also `N'...'`).
    Standard,
    /// `E'...'` (or a plain string with `standard_conforming_strings` off): backslash escapes.
    Escape,
    /// `U&'...'`: Unicode escapes, decoded later; lexed like a standard string.
    Unicode,
    /// `B'...'` bit string: no doubled quotes.
    Bit,
    /// `X'...'` hexadecimal bit string: no doubled quotes.
    Hex,
    /// `$tag$...$tag$`.
    Dollar,
}

/// What a token is. Keywords and identifiers are both [`TokenKind::Word`]; PostgreSQL's
/// grammar, not its lexer, tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Unquoted identifier or keyword, compared case-insensitively.
    Word,
    /// `"..."` identifier, case preserved.
    QuotedIdent,
    /// `U&"..."` identifier, with escapes (and possibly a following `UESCAPE 'c'`).
    UnicodeIdent,
    /// A string literal of some kind.
    Str(StrKind),
    /// Numeric literal.
    Number,
    /// Positional parameter `$n`.
    Param,
    /// Operator, including `::`, `:=`, `=>`, `..`, `:`.
    Operator,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `;`
    Semicolon,
    /// Any other character (`\`, `{`, a lone `$`, control characters): a syntax error for the
    /// server, kept so that nothing is silently dropped.
    Other,
}

/// One token: its kind and its byte span in the input (offsets kept as `u32` so a token is
/// 12 bytes; PostgreSQL messages are far below 4 GiB and longer texts are refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    start: u32,
    end: u32,
}

impl Token {
    fn new(kind: TokenKind, start: usize, end: usize) -> Token {
        // Lexer::new refuses texts whose offsets do not fit.
        Token {
            kind,
            start: start as u32,
            end: end as u32,
        }
    }

    /// Byte offset of the first byte.
    pub fn start(&self) -> usize {
        self.start as usize
    }

    /// Byte offset one past the last byte.
    pub fn end(&self) -> usize {
        self.end as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the token is empty (never, for a lexed token).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The token's text, sliced from the input it was lexed from.
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        &src[self.start()..self.end()]
    }

    /// A case-folded key of an unquoted word of at most 8 bytes, for comparing it with many
    /// keywords at once; 0 for any other token. Equal to [`key_of`]`(kw)` exactly when the
    /// token [`is_word`](Token::is_word) `kw`, for any keyword `kw` of 1 to 8 letters.
    #[inline]
    pub(crate) fn key(&self, src: &str) -> u64 {
        let len = self.len();
        if self.kind != TokenKind::Word || len > 8 {
            return 0;
        }
        let b = src.as_bytes();
        let start = self.start();
        // Setting bit 5 of every byte folds ASCII upper case to lower case; it cannot turn
        // any byte other than an upper-case letter into a lower-case one, so the fold is
        // exact for keywords made of letters. The bytes past the word are masked off.
        let mask = u64::MAX >> (8 * (8 - len));
        let raw = match b.get(start..start + 8) {
            Some(w) => u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
            None => {
                let mut w = [0u8; 8];
                w[..len].copy_from_slice(&b[start..start + len]);
                u64::from_le_bytes(w)
            }
        };
        (raw | 0x2020_2020_2020_2020) & mask
    }

    /// Whether the token is a literal (string or number) whose value must not be matched or
    /// logged.
    pub fn is_literal(&self) -> bool {
        matches!(self.kind, TokenKind::Str(_) | TokenKind::Number)
    }

    /// Whether this is an unquoted word equal to `kw` (ASCII case-insensitive).
    #[inline]
    pub fn is_word(&self, src: &str, kw: &str) -> bool {
        self.kind == TokenKind::Word
            && self.len() == kw.len()
            && src.as_bytes()[self.start()..self.end()].eq_ignore_ascii_case(kw.as_bytes())
    }
}

/// The [`Token::key`] of the keyword `kw` (1 to 8 lower-case ASCII letters).
pub(crate) const fn key_of(kw: &str) -> u64 {
    let b = kw.as_bytes();
    assert!(!b.is_empty() && b.len() <= 8);
    let mut k = 0u64;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_lowercase());
        k |= (b[i] as u64) << (8 * i);
        i += 1;
    }
    k
}

/// Text the server would reject at the lexical level; a statement containing it is judged
/// "unknown" (fail closed).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LexError {
    /// A string literal with no closing quote.
    #[error("unterminated string literal starting at byte {0}")]
    UnterminatedString(usize),
    /// A dollar-quoted string with no closing delimiter.
    #[error("unterminated dollar-quoted string starting at byte {0}")]
    UnterminatedDollar(usize),
    /// A quoted identifier with no closing quote.
    #[error("unterminated quoted identifier starting at byte {0}")]
    UnterminatedIdent(usize),
    /// A block comment whose nesting never returns to zero.
    #[error("unterminated block comment starting at byte {0}")]
    UnterminatedComment(usize),
    /// Text longer than 4 GiB (PostgreSQL's own limit is 1 GiB).
    #[error("text too long to lex")]
    TooLong,
    /// `""`: PostgreSQL rejects zero-length delimited identifiers.
    #[error("zero-length quoted identifier at byte {0}")]
    EmptyIdent(usize),
}

impl LexError {
    /// Byte offset where the offending construct starts.
    pub fn offset(&self) -> usize {
        match *self {
            LexError::UnterminatedString(o)
            | LexError::UnterminatedDollar(o)
            | LexError::UnterminatedIdent(o)
            | LexError::UnterminatedComment(o)
            | LexError::EmptyIdent(o) => o,
            LexError::TooLong => 0,
        }
    }
}

/// `ident_start`: letters, `_`, and every byte of a non-ASCII character.
fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// `ident_cont`: `ident_start`, digits and `$` (so `a$b` and `a$$` are identifiers).
pub(crate) static IDENT_CONT: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        i += 1;
    }
    t
};

/// `op_chars` from `scan.l`.
const fn op_char(b: u8) -> bool {
    matches!(
        b,
        b'~' | b'!'
            | b'@'
            | b'#'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
            | b'+'
            | b'-'
            | b'*'
            | b'/'
            | b'%'
            | b'<'
            | b'>'
            | b'='
    )
}

/// `space`: the characters PostgreSQL skips between tokens.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `space` as a lookup table for the hot loop.
pub(crate) static SPACE: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[0x0b] = true;
    t[0x0c] = true;
    t
};

/// What a byte can start, for the bulk loop's one-lookup dispatch ([`Lexer::lex_statement`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Needs the general path: quotes, `$`, `:`, `;`, comments' first bytes, anything rare.
    Slow,
    /// `ident_start`.
    Ident,
    /// `0-9`.
    Digit,
    /// An `op_char`.
    Op,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `.`
    Dot,
}

/// [`Class`] of every byte.
static CLASS: [Class; 256] = {
    let mut t = [Class::Slow; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
            Class::Ident
        } else if b.is_ascii_digit() {
            Class::Digit
        } else if op_char(b) {
            Class::Op
        } else {
            match b {
                b'(' => Class::LParen,
                b')' => Class::RParen,
                b',' => Class::Comma,
                b'.' => Class::Dot,
                _ => Class::Slow,
            }
        };
        i += 1;
    }
    t
};

/// Horizontal whitespace (no newline).
fn is_horiz_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c)
}

/// Iterator over the significant tokens of a text.
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    opts: LexOptions,
    failed: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer over `src`.
    pub fn new(src: &'a str, opts: LexOptions) -> Self {
        Lexer {
            src,
            pos: 0,
            opts,
            failed: false,
        }
    }

    /// Byte offset where the next token (or trivia) starts.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn at(&self, i: usize) -> u8 {
        self.bytes().get(i).copied().unwrap_or(0)
    }

    /// Skips whitespace and comments. `--` comments end at LF or CR; block comments nest.
    #[inline(always)]
    fn skip_trivia(&mut self) -> Result<(), LexError> {
        let b = self.bytes();
        loop {
            // The common case first: a run of plain spaces, one table lookup per byte.
            while self.pos < b.len() && SPACE[b[self.pos] as usize] {
                self.pos += 1;
            }
            let Some(&c) = b.get(self.pos) else {
                return Ok(());
            };
            if c == b'-' && self.at(self.pos + 1) == b'-' {
                self.pos = match memchr2(b'\n', b'\r', &b[self.pos..]) {
                    Some(i) => self.pos + i,
                    None => b.len(),
                };
            } else if c == b'/' && self.at(self.pos + 1) == b'*' {
                self.pos = skip_block_comment(b, self.pos)?;
            } else {
                return Ok(());
            }
        }
    }

    /// The next significant token, `None` at the end, or the lexical error that stops lexing.
    #[inline]
    pub fn next_token(&mut self) -> Option<Result<Token, LexError>> {
        if self.failed {
            return None;
        }
        if self.src.len() > u32::MAX as usize {
            self.failed = true;
            return Some(Err(LexError::TooLong));
        }
        let r = self.lex_one();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }

    #[inline(always)]
    fn lex_one(&mut self) -> Option<Result<Token, LexError>> {
        if let Err(e) = self.skip_trivia() {
            return Some(Err(e));
        }
        let b = self.bytes();
        let start = self.pos;
        let c = *b.get(start)?;
        let next = self.at(start + 1);
        // Most tokens are plain words: take them without the dispatch below when no
        // literal prefix (`E'`, `U&`, ...) can follow.
        if ident_start(c) && next != b'\'' && next != b'&' {
            let mut p = start + 1;
            while p < b.len() && IDENT_CONT[b[p] as usize] {
                p += 1;
            }
            self.pos = p;
            return Some(Ok(Token::new(TokenKind::Word, start, p)));
        }
        let kind = match c {
            b'\'' => {
                let kind = if self.opts.standard_conforming_strings {
                    StrKind::Standard
                } else {
                    StrKind::Escape
                };
                return Some(self.string(start, start + 1, kind));
            }
            b'"' => return Some(self.quoted_ident(start, start + 1, TokenKind::QuotedIdent)),
            b'$' => return Some(self.dollar(start)),
            b'(' => self.single(TokenKind::LParen),
            b')' => self.single(TokenKind::RParen),
            b'[' => self.single(TokenKind::LBracket),
            b']' => self.single(TokenKind::RBracket),
            b',' => self.single(TokenKind::Comma),
            b';' => self.single(TokenKind::Semicolon),
            b'.' if next.is_ascii_digit() => self.number(start),
            b'.' if next == b'.' => {
                self.pos += 2;
                TokenKind::Operator
            }
            b'.' => self.single(TokenKind::Dot),
            b':' => {
                self.pos += if next == b':' || next == b'=' { 2 } else { 1 };
                TokenKind::Operator
            }
            b'0'..=b'9' => self.number(start),
            _ if ident_start(c) => return Some(self.word_or_prefixed(start)),
            _ if op_char(c) => self.operator(start),
            _ => {
                // A single character the grammar has no use for; step over a whole UTF-8
                // character so spans stay on character boundaries.
                self.pos += self.src[start..].chars().next().map_or(1, char::len_utf8);
                TokenKind::Other
            }
        };
        Some(Ok(Token::new(kind, start, self.pos)))
    }

    /// Lexes significant tokens into `out` up to the next `;`, which is returned (and not
    /// pushed); `None` at the end of the input; the error that stops lexing otherwise. Yields
    /// exactly what [`Lexer::next_token`] would, one lookup per token for the common tokens
    /// (words, punctuation, one-character operators, numbers) with the position kept in a
    /// local, and the general path for everything else.
    pub(crate) fn lex_statement(
        &mut self,
        out: &mut Vec<Token>,
    ) -> Option<Result<Token, LexError>> {
        if self.failed || self.src.len() > u32::MAX as usize {
            return self.next_token();
        }
        let b = self.bytes();
        let mut pos = self.pos;
        loop {
            while pos < b.len() && SPACE[b[pos] as usize] {
                pos += 1;
            }
            let Some(&c) = b.get(pos) else {
                self.pos = pos;
                return None;
            };
            let start = pos;
            let next = b.get(pos + 1).copied().unwrap_or(0);
            let kind = match CLASS[c as usize] {
                // A literal prefix (`E'`, `U&'`, ...) takes the general path.
                Class::Ident if next != b'\'' && next != b'&' => {
                    pos += 1;
                    while pos < b.len() && IDENT_CONT[b[pos] as usize] {
                        pos += 1;
                    }
                    TokenKind::Word
                }
                // A one-character operator; longer runs (and `--`, `/*`) need the rules.
                Class::Op if CLASS[next as usize] != Class::Op => {
                    pos += 1;
                    TokenKind::Operator
                }
                Class::LParen => {
                    pos += 1;
                    TokenKind::LParen
                }
                Class::RParen => {
                    pos += 1;
                    TokenKind::RParen
                }
                Class::Comma => {
                    pos += 1;
                    TokenKind::Comma
                }
                Class::Dot if next != b'.' && !next.is_ascii_digit() => {
                    pos += 1;
                    TokenKind::Dot
                }
                Class::Digit => {
                    let kind = self.number(start);
                    pos = self.pos;
                    kind
                }
                _ => {
                    self.pos = pos;
                    match self.next_token() {
                        Some(Ok(t)) if t.kind == TokenKind::Semicolon => return Some(Ok(t)),
                        Some(Ok(t)) => {
                            out.push(t);
                            pos = self.pos;
                            continue;
                        }
                        end => return end,
                    }
                }
            };
            out.push(Token::new(kind, start, pos));
        }
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    /// Identifiers, keywords, and the prefixed literals `B'`, `X'`, `E'`, `N'`, `U&'`, `U&"`.
    fn word_or_prefixed(&mut self, start: usize) -> Result<Token, LexError> {
        let c = self.at(start);
        let n1 = self.at(start + 1);
        if n1 == b'\'' {
            let kind = match c {
                b'b' | b'B' => Some(StrKind::Bit),
                b'x' | b'X' => Some(StrKind::Hex),
                b'e' | b'E' => Some(StrKind::Escape),
                // N'...' is a national character string: lexed as a plain string.
                b'n' | b'N' if self.opts.standard_conforming_strings => Some(StrKind::Standard),
                b'n' | b'N' => Some(StrKind::Escape),
                _ => None,
            };
            if let Some(kind) = kind {
                return self.string(start, start + 2, kind);
            }
        }
        if (c == b'u' || c == b'U') && n1 == b'&' {
            match self.at(start + 2) {
                b'\'' => return self.string(start, start + 3, StrKind::Unicode),
                b'"' => return self.quoted_ident(start, start + 3, TokenKind::UnicodeIdent),
                _ => {}
            }
        }
        let b = self.bytes();
        let mut p = start + 1;
        while p < b.len() && IDENT_CONT[b[p] as usize] {
            p += 1;
        }
        self.pos = p;
        Ok(Token::new(TokenKind::Word, start, p))
    }

    /// A string body starting at `body`; handles doubled quotes, backslash escapes and
    /// PostgreSQL's continuation of a literal across a newline (`'a'\n'b'` is one literal,
    /// lexed in the same mode as its first part).
    fn string(&mut self, start: usize, body: usize, kind: StrKind) -> Result<Token, LexError> {
        let b = self.bytes();
        let mut p = body;
        loop {
            let hit = if kind == StrKind::Escape {
                memchr2(b'\'', b'\\', &b[p..])
            } else {
                memchr(b'\'', &b[p..])
            };
            let Some(i) = hit else {
                return Err(LexError::UnterminatedString(start));
            };
            let q = p + i;
            if b[q] == b'\\' {
                if q + 1 >= b.len() {
                    return Err(LexError::UnterminatedString(start));
                }
                p = q + 2;
                continue;
            }
            let doubles = !matches!(kind, StrKind::Bit | StrKind::Hex);
            if doubles && self.at(q + 1) == b'\'' {
                p = q + 2;
                continue;
            }
            match quote_continuation(b, q + 1) {
                Some(resume) => p = resume,
                None => {
                    self.pos = q + 1;
                    return Ok(Token::new(TokenKind::Str(kind), start, q + 1));
                }
            }
        }
    }

    /// `"..."` or `U&"..."` with `""` for a quote; empty identifiers are an error.
    fn quoted_ident(
        &mut self,
        start: usize,
        body: usize,
        kind: TokenKind,
    ) -> Result<Token, LexError> {
        let b = self.bytes();
        let mut p = body;
        loop {
            let Some(i) = memchr(b'"', &b[p..]) else {
                return Err(LexError::UnterminatedIdent(start));
            };
            let q = p + i;
            if self.at(q + 1) == b'"' {
                p = q + 2;
                continue;
            }
            if q == body {
                return Err(LexError::EmptyIdent(start));
            }
            self.pos = q + 1;
            return Ok(Token::new(kind, start, q + 1));
        }
    }

    /// `$n` parameter, `$tag$` dollar quote, or a lone `$`.
    fn dollar(&mut self, start: usize) -> Result<Token, LexError> {
        let b = self.bytes();
        let n1 = self.at(start + 1);
        if n1.is_ascii_digit() {
            let mut p = start + 1;
            while p < b.len() && b[p].is_ascii_digit() {
                p += 1;
            }
            self.pos = p;
            return Ok(Token::new(TokenKind::Param, start, p));
        }
        // A tag starts with a non-digit identifier character and has no `$` inside.
        let mut p = start + 1;
        if ident_start(n1) {
            p += 1;
            while p < b.len() && IDENT_CONT[b[p] as usize] && b[p] != b'$' {
                p += 1;
            }
        }
        if self.at(p) != b'$' {
            // `$abc` without a closing `$` is a lone `$` (PostgreSQL backs up to it).
            self.pos = start + 1;
            return Ok(Token::new(TokenKind::Other, start, start + 1));
        }
        let delim = &b[start..=p];
        let body = p + 1;
        match memmem::find(&b[body..], delim) {
            Some(i) => {
                self.pos = body + i + delim.len();
                Ok(Token::new(TokenKind::Str(StrKind::Dollar), start, self.pos))
            }
            None => Err(LexError::UnterminatedDollar(start)),
        }
    }

    /// Numbers: decimal with `_` separators, fractions, exponents, and `0x`/`0o`/`0b` integers.
    /// Trailing letters are left for the next token (servers before 15 lex them that way;
    /// later ones reject the text).
    fn number(&mut self, start: usize) -> TokenKind {
        let b = self.bytes();
        let mut p = start;
        let radix_digit = |c: u8, r: u8| match r {
            b'x' | b'X' => c.is_ascii_hexdigit(),
            b'o' | b'O' => (b'0'..=b'7').contains(&c),
            _ => c == b'0' || c == b'1',
        };
        if b[p] == b'0' && matches!(self.at(p + 1), b'x' | b'X' | b'o' | b'O' | b'b' | b'B') {
            let r = b[p + 1];
            let mut q = p + 2;
            if self.at(q) == b'_' {
                q += 1;
            }
            if radix_digit(self.at(q), r) {
                while q < b.len() && (radix_digit(b[q], r) || b[q] == b'_') {
                    q += 1;
                }
                self.pos = q;
                return TokenKind::Number;
            }
        }
        let digits = |mut q: usize| {
            while q < b.len() && (b[q].is_ascii_digit() || (b[q] == b'_' && q > start)) {
                q += 1;
            }
            q
        };
        p = digits(p);
        // `1..5`: the number stops before `..`.
        if self.at(p) == b'.' && self.at(p + 1) != b'.' {
            p = digits(p + 1);
        }
        if matches!(self.at(p), b'e' | b'E') {
            let mut q = p + 1;
            if matches!(self.at(q), b'+' | b'-') {
                q += 1;
            }
            if self.at(q).is_ascii_digit() {
                p = digits(q);
            }
        }
        self.pos = p;
        TokenKind::Number
    }

    /// Operators: a run of `op_chars` that stops before `--` or `/*`; a trailing `+`/`-` is
    /// split off unless the operator holds one of `~!@#^&|`?%` (PostgreSQL's rule, so that
    /// `a<-1` is `a < -1`).
    fn operator(&mut self, start: usize) -> TokenKind {
        let b = self.bytes();
        let mut p = start;
        while p < b.len() && op_char(b[p]) {
            if p > start
                && ((b[p] == b'-' && self.at(p + 1) == b'-')
                    || (b[p] == b'/' && self.at(p + 1) == b'*'))
            {
                break;
            }
            p += 1;
        }
        let op = &b[start..p];
        if op.len() > 1 && !op.iter().any(|c| b"~!@#^&|`?%".contains(c)) {
            while p > start + 1 && matches!(b[p - 1], b'+' | b'-') {
                p -= 1;
            }
        }
        self.pos = p;
        TokenKind::Operator
    }
}

impl Iterator for Lexer<'_> {
    type Item = Result<Token, LexError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_token()
    }
}

/// Skips a nested block comment starting at `start` (`/*`); returns the offset after it.
fn skip_block_comment(b: &[u8], start: usize) -> Result<usize, LexError> {
    let mut depth = 1usize;
    let mut p = start + 2;
    while depth > 0 {
        let Some(i) = memchr2(b'*', b'/', &b[p..]) else {
            return Err(LexError::UnterminatedComment(start));
        };
        let q = p + i;
        let n = b.get(q + 1).copied();
        if b[q] == b'/' && n == Some(b'*') {
            depth += 1;
            p = q + 2;
        } else if b[q] == b'*' && n == Some(b'/') {
            depth -= 1;
            p = q + 2;
        } else {
            p = q + 1;
        }
    }
    Ok(p)
}

/// After a closing quote at `p - 1`: if whitespace containing a newline (comments allowed)
/// and then a quote follow, the literal continues; returns the offset after that quote.
fn quote_continuation(b: &[u8], mut p: usize) -> Option<usize> {
    // horiz_whitespace*: spaces, tabs and `--` comments before the newline.
    loop {
        match b.get(p) {
            Some(&c) if is_horiz_space(c) => p += 1,
            Some(b'-') if b.get(p + 1) == Some(&b'-') => {
                p += memchr2(b'\n', b'\r', &b[p..])?;
            }
            _ => break,
        }
    }
    match b.get(p) {
        Some(b'\n' | b'\r') => p += 1,
        _ => return None,
    }
    // special_whitespace*: any spaces, or a `--` comment that ends with a newline.
    loop {
        match b.get(p) {
            Some(&c) if is_space(c) => p += 1,
            Some(b'-') if b.get(p + 1) == Some(&b'-') => match memchr2(b'\n', b'\r', &b[p..]) {
                Some(i) => p += i + 1,
                None => return None,
            },
            _ => break,
        }
    }
    (b.get(p) == Some(&b'\'')).then_some(p + 1)
}
