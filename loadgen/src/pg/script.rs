//! A workload script: SQL statements separated by `;`, with `{rand LO HI}` placeholders that
//! become a uniform random integer per execution. The simple protocol substitutes the number into
//! the text; the extended protocol prepares the statement with `$1`, `$2`, ... in their place and
//! binds the numbers as text parameters.
//!
//! Splitting and placeholder recognition follow PostgreSQL's lexical rules closely enough that a
//! `;` or `{rand ...}` inside a string, quoted identifier, dollar quote or comment is left alone.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::wire;
use crate::rng::Rng;

/// Why a script cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("line {line}: malformed placeholder `{text}`: expected {{rand LO HI}} with integers LO <= HI")]
    Placeholder { line: usize, text: String },
    #[error("line {line}: pgbench meta-commands (\\set, \\sleep, ...) are not supported; use {{rand LO HI}} in the SQL")]
    MetaCommand { line: usize },
    #[error("line {line}: unterminated {what}")]
    Unterminated { line: usize, what: &'static str },
    #[error("line {line}: the script contains a NUL byte")]
    Nul { line: usize },
    #[error("the script holds no SQL statement")]
    Empty,
}

/// One part of a statement's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Rand { lo: i64, hi: i64 },
}

/// One statement of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub pieces: Vec<Piece>,
    /// Query message, when the statement has no placeholder.
    fixed_query: Option<Vec<u8>>,
}

/// The statements run, in order, by one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub statements: Vec<Statement>,
}

impl Script {
    /// Parses script text.
    pub fn parse(text: &str) -> Result<Script, ScriptError> {
        let statements: Vec<Statement> = split(text)?.into_iter().map(Statement::new).collect();
        if statements.is_empty() {
            return Err(ScriptError::Empty);
        }
        Ok(Script { statements })
    }
}

impl Statement {
    fn new(pieces: Vec<Piece>) -> Statement {
        let mut s = Statement {
            pieces,
            fixed_query: None,
        };
        if s.params() == 0 {
            let mut out = BytesMut::new();
            s.encode_query(&mut out, &mut Rng::new(0));
            s.fixed_query = Some(out.to_vec());
        }
        s
    }

    /// Number of placeholders.
    pub fn params(&self) -> usize {
        self.pieces
            .iter()
            .filter(|p| matches!(p, Piece::Rand { .. }))
            .count()
    }

    /// The statement with numbers in place of the placeholders (for display and the simple
    /// protocol); negative numbers are parenthesised so that `x-{rand -5 5}` cannot become `x--5`,
    /// a comment.
    fn write_text(&self, out: &mut BytesMut, rng: &mut Rng) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                Piece::Rand { lo, hi } => {
                    let v = rng.range(*lo, *hi);
                    let _ = if v < 0 {
                        write!(out, "({v})")
                    } else {
                        write!(out, "{v}")
                    };
                }
            }
        }
    }

    /// Appends a Query message.
    pub fn encode_query(&self, out: &mut BytesMut, rng: &mut Rng) {
        if let Some(fixed) = &self.fixed_query {
            out.extend_from_slice(fixed);
            return;
        }
        let at = wire::begin(out, b'Q');
        self.write_text(out, rng);
        out.put_u8(0);
        wire::finish(out, at);
    }

    /// The text to prepare: `$1`, `$2`, ... in place of the placeholders.
    pub fn prepared_sql(&self) -> String {
        let mut sql = String::new();
        let mut n = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => sql.push_str(t),
                Piece::Rand { .. } => {
                    n += 1;
                    let _ = write!(sql, "${n}");
                }
            }
        }
        sql
    }

    /// Appends Bind (of prepared statement `name` to the unnamed portal, parameters and results
    /// in text), Execute and Sync.
    pub fn encode_bind_execute(&self, name: &str, out: &mut BytesMut, rng: &mut Rng) {
        let at = wire::begin(out, b'B');
        out.put_u8(0);
        out.extend_from_slice(name.as_bytes());
        out.put_u8(0);
        out.put_u16(0);
        out.put_u16(self.params() as u16);
        for piece in &self.pieces {
            if let Piece::Rand { lo, hi } = piece {
                let len_at = out.len();
                out.put_u32(0);
                let _ = write!(out, "{}", rng.range(*lo, *hi));
                let len = (out.len() - len_at - 4) as u32;
                out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        out.put_u16(0);
        wire::finish(out, at);
        wire::execute_sync(out);
    }
}

/// Lexer state between characters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    Single { backslash: bool },
    Double,
    Line,
    Block(u32),
}

/// Splits `text` into statements of pieces.
fn split(text: &str) -> Result<Vec<Vec<Piece>>, ScriptError> {
    let bytes = text.as_bytes();
    let mut statements = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut current = String::new();
    let mut has_sql = false;
    let mut mode = Mode::Normal;
    let mut line = 1;
    let mut line_start = true;
    let mut mode_line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == 0 {
            return Err(ScriptError::Nul { line });
        }
        let next = bytes.get(i + 1).copied();
        match mode {
            Mode::Normal => {
                if line_start && c == b'\\' {
                    return Err(ScriptError::MetaCommand { line });
                }
                match c {
                    b';' => {
                        flush(&mut current, &mut pieces);
                        if has_sql {
                            statements.push(std::mem::take(&mut pieces));
                        }
                        pieces.clear();
                        has_sql = false;
                        i += 1;
                        line_start = false;
                        continue;
                    }
                    b'\'' => {
                        let prev = i.checked_sub(1).map(|p| bytes[p]);
                        let before = i.checked_sub(2).map(|p| bytes[p]);
                        let escape = matches!(prev, Some(b'e' | b'E'))
                            && !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
                        mode = Mode::Single { backslash: escape };
                        mode_line = line;
                    }
                    b'"' => {
                        mode = Mode::Double;
                        mode_line = line;
                    }
                    b'-' if next == Some(b'-') => mode = Mode::Line,
                    b'/' if next == Some(b'*') => {
                        mode = Mode::Block(1);
                        mode_line = line;
                        current.push_str("/*");
                        i += 2;
                        continue;
                    }
                    b'$' => {
                        if let Some(tag_len) = dollar_tag(bytes, i) {
                            let tag = &text[i..i + tag_len];
                            let body_start = i + tag_len;
                            let Some(end) = text[body_start..].find(tag) else {
                                return Err(ScriptError::Unterminated {
                                    line,
                                    what: "dollar-quoted string",
                                });
                            };
                            let chunk = &text[i..body_start + end + tag_len];
                            line += chunk.matches('\n').count();
                            current.push_str(chunk);
                            has_sql = true;
                            line_start = false;
                            i = body_start + end + tag_len;
                            continue;
                        }
                    }
                    b'{' if text[i..].starts_with("{rand") => {
                        let close = text[i..].find('}').map(|e| i + e);
                        let inner = close.map(|e| &text[i + 1..e]);
                        let parsed = inner.and_then(parse_rand);
                        match (parsed, close) {
                            (Some((lo, hi)), Some(e)) => {
                                flush(&mut current, &mut pieces);
                                pieces.push(Piece::Rand { lo, hi });
                                has_sql = true;
                                line_start = false;
                                i = e + 1;
                                continue;
                            }
                            _ => {
                                let shown: String = text[i..]
                                    .chars()
                                    .take_while(|&ch| ch != '\n')
                                    .take(40)
                                    .collect();
                                return Err(ScriptError::Placeholder { line, text: shown });
                            }
                        }
                    }
                    _ => {}
                }
                if !c.is_ascii_whitespace() && mode != Mode::Line {
                    has_sql = true;
                }
            }
            Mode::Single { backslash } => {
                if backslash && c == b'\\' && next.is_some() {
                    current.push('\\');
                    i += 1;
                    push_char(text, &mut i, &mut current, &mut line);
                    continue;
                }
                if c == b'\'' {
                    if next == Some(b'\'') {
                        current.push_str("''");
                        i += 2;
                        continue;
                    }
                    mode = Mode::Normal;
                }
            }
            Mode::Double => {
                if c == b'"' {
                    mode = Mode::Normal;
                }
            }
            Mode::Line => {
                if c == b'\n' || c == b'\r' {
                    mode = Mode::Normal;
                }
            }
            Mode::Block(depth) => {
                if c == b'*' && next == Some(b'/') {
                    mode = if depth == 1 {
                        Mode::Normal
                    } else {
                        Mode::Block(depth - 1)
                    };
                    current.push_str("*/");
                    i += 2;
                    continue;
                }
                if c == b'/' && next == Some(b'*') {
                    mode = Mode::Block(depth + 1);
                    current.push_str("/*");
                    i += 2;
                    continue;
                }
            }
        }
        if c == b'\n' {
            line_start = true;
        } else if !c.is_ascii_whitespace() {
            line_start = false;
        }
        push_char(text, &mut i, &mut current, &mut line);
    }
    match mode {
        Mode::Single { .. } => {
            return Err(ScriptError::Unterminated {
                line: mode_line,
                what: "string literal",
            })
        }
        Mode::Double => {
            return Err(ScriptError::Unterminated {
                line: mode_line,
                what: "quoted identifier",
            })
        }
        Mode::Block(_) => {
            return Err(ScriptError::Unterminated {
                line: mode_line,
                what: "block comment",
            })
        }
        Mode::Normal | Mode::Line => {}
    }
    flush(&mut current, &mut pieces);
    if has_sql {
        statements.push(pieces);
    }
    // Trim the whitespace around each statement.
    for st in &mut statements {
        if let Some(Piece::Text(t)) = st.first_mut() {
            *t = t.trim_start().to_string();
        }
        if let Some(Piece::Text(t)) = st.last_mut() {
            *t = t.trim_end().to_string();
        }
        st.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    }
    Ok(statements)
}

/// Copies the character at `i` (which may be multi-byte) and advances.
fn push_char(text: &str, i: &mut usize, current: &mut String, line: &mut usize) {
    let ch = text[*i..].chars().next().unwrap_or('\u{fffd}');
    if ch == '\n' {
        *line += 1;
    }
    current.push(ch);
    *i += ch.len_utf8().max(1);
}

fn flush(current: &mut String, pieces: &mut Vec<Piece>) {
    if !current.is_empty() {
        pieces.push(Piece::Text(std::mem::take(current)));
    }
}

/// Length of a dollar-quote opening tag (`$$` or `$tag$`) at `i`, if one starts there. A `$`
/// that follows an identifier character is part of that identifier (or a `$1` parameter).
fn dollar_tag(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0
        && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'$')
    {
        return None;
    }
    let mut j = i + 1;
    if bytes.get(j).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    while let Some(&b) = bytes.get(j) {
        if b == b'$' {
            return Some(j - i + 1);
        }
        if !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80) {
            return None;
        }
        j += 1;
    }
    None
}

/// `rand LO HI` -> (LO, HI).
fn parse_rand(inner: &str) -> Option<(i64, i64)> {
    let mut words = inner.split_whitespace();
    if words.next()? != "rand" {
        return None;
    }
    let lo: i64 = words.next()?.parse().ok()?;
    let hi: i64 = words.next()?.parse().ok()?;
    (words.next().is_none() && lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &Script) -> Vec<String> {
        script.statements.iter().map(|s| s.prepared_sql()).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let s = Script::parse(
            "-- leading comment; not a statement\n\
             SELECT 'a;b', \"c;d\", E'\\';' FROM t;\n\
             /* block; /* nested; */ still */ SELECT $$x;y$$, $q$;$q$;\n\
             \n  ;  ;\nSELECT 3",
        )
        .unwrap();
        assert_eq!(
            texts(&s),
            vec![
                "-- leading comment; not a statement\nSELECT 'a;b', \"c;d\", E'\\';' FROM t",
                "/* block; /* nested; */ still */ SELECT $$x;y$$, $q$;$q$",
                "SELECT 3",
            ]
        );
    }

    #[test]
    fn comment_only_and_empty_scripts_are_refused() {
        assert_eq!(Script::parse("-- nothing\n ; ;"), Err(ScriptError::Empty));
        assert_eq!(Script::parse(""), Err(ScriptError::Empty));
    }

    #[test]
    fn placeholders_become_parameters_or_numbers() {
        let s = Script::parse(
            "SELECT abalance FROM a WHERE aid = {rand 7 7} AND x-{rand -2 -2} > '{rand 1 2}';",
        )
        .unwrap();
        let st = &s.statements[0];
        assert_eq!(st.params(), 2);
        assert_eq!(
            st.prepared_sql(),
            "SELECT abalance FROM a WHERE aid = $1 AND x-$2 > '{rand 1 2}'"
        );
        let mut out = BytesMut::new();
        st.encode_query(&mut out, &mut Rng::new(1));
        let mut expected = BytesMut::new();
        postgres_protocol::message::frontend::query(
            "SELECT abalance FROM a WHERE aid = 7 AND x-(-2) > '{rand 1 2}'",
            &mut expected,
        )
        .unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn bind_matches_postgres_protocol() {
        let s = Script::parse("SELECT {rand 42 42}, {rand -1 -1}").unwrap();
        let mut ours = BytesMut::new();
        s.statements[0].encode_bind_execute("lg0", &mut ours, &mut Rng::new(3));
        let mut theirs = BytesMut::new();
        postgres_protocol::message::frontend::bind(
            "",
            "lg0",
            std::iter::empty::<i16>(),
            [&b"42"[..], &b"-1"[..]],
            |v, buf| {
                buf.extend_from_slice(v);
                Ok::<_, Box<dyn std::error::Error + Sync + Send>>(postgres_protocol::IsNull::No)
            },
            std::iter::empty::<i16>(),
            &mut theirs,
        )
        .map_err(|_| "bind")
        .unwrap();
        postgres_protocol::message::frontend::execute("", 0, &mut theirs).unwrap();
        postgres_protocol::message::frontend::sync(&mut theirs);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn fixed_statements_are_encoded_once_and_reused() {
        let s = Script::parse("SELECT 1").unwrap();
        let mut out = BytesMut::new();
        s.statements[0].encode_query(&mut out, &mut Rng::new(1));
        assert_eq!(&out[..], b"Q\x00\x00\x00\x0dSELECT 1\x00");
    }

    #[test]
    fn bad_input_is_reported_with_its_line() {
        assert!(matches!(
            Script::parse("SELECT 1;\nSELECT {rand 5 1}"),
            Err(ScriptError::Placeholder { line: 2, .. })
        ));
        assert!(matches!(
            Script::parse("SELECT {rand 1}"),
            Err(ScriptError::Placeholder { line: 1, .. })
        ));
        assert_eq!(
            Script::parse("\\set aid random(1, 10)\nSELECT :aid"),
            Err(ScriptError::MetaCommand { line: 1 })
        );
        assert_eq!(
            Script::parse("SELECT 1;\nSELECT 'open"),
            Err(ScriptError::Unterminated {
                line: 2,
                what: "string literal"
            })
        );
        assert!(matches!(
            Script::parse("SELECT $x$ 1"),
            Err(ScriptError::Unterminated { .. })
        ));
        assert_eq!(
            Script::parse("SELECT 1\0"),
            Err(ScriptError::Nul { line: 1 })
        );
    }

    #[test]
    fn dollar_inside_identifiers_and_parameters_is_not_a_quote() {
        let s = Script::parse("SELECT a$b$c FROM t WHERE x = $1; SELECT 2").unwrap();
        assert_eq!(s.statements.len(), 2);
    }

    #[test]
    fn multibyte_text_survives() {
        let s = Script::parse("SELECT 'héllo ✓' -- ünïcode\n; SELECT '日本'").unwrap();
        assert_eq!(
            texts(&s),
            vec!["SELECT 'héllo ✓' -- ünïcode", "SELECT '日本'"]
        );
    }
}
