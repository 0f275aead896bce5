//! Statement boundaries: `;` outside every literal, comment and quoted identifier, and outside
//! the `BEGIN ATOMIC ... END` body of `CREATE FUNCTION`/`CREATE PROCEDURE`, whose inner `;`
//! the server's grammar keeps inside the one statement.

use super::lexer::{LexError, LexOptions, Lexer, Token, TokenKind};

/// One statement found by [`Splitter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementSpan {
    /// Byte offset where the statement's text starts (just after the previous `;`).
    pub start: usize,
    /// Byte offset where it ends: its `;` separator, or the end of the input.
    pub end: usize,
    /// Whether a `;` separator follows at `end`.
    pub has_separator: bool,
    /// The lexical error that ended lexing inside this statement, if any; the statement then
    /// runs to the end of the input.
    pub error: Option<LexError>,
}

/// Walks a text statement by statement, collecting each statement's tokens.
pub struct Splitter<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    start: usize,
    done: bool,
}

impl<'a> Splitter<'a> {
    /// A splitter over `src`.
    pub fn new(src: &'a str, opts: LexOptions) -> Self {
        Splitter {
            src,
            lexer: Lexer::new(src, opts),
            start: 0,
            done: false,
        }
    }

    /// The next statement; its significant tokens (without the `;`) replace `tokens`.
    /// Returns `None` after the last piece. Text after the final `;` is a last piece (maybe
    /// empty), so the pieces always cover the whole input.
    pub fn next_into(&mut self, tokens: &mut Vec<Token>) -> Option<StatementSpan> {
        if self.done {
            return None;
        }
        tokens.clear();
        let mut routine = RoutineTracker::default();
        loop {
            // Once the statement is known not to be a routine definition, nothing but a `;`
            // matters: lex the rest of it in the lexer's bulk loop.
            let item = if routine.watching() {
                self.lexer.next_token()
            } else {
                self.lexer.lex_statement(tokens)
            };
            match item {
                None => {
                    self.done = true;
                    return Some(self.finish(self.src.len(), false, None));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(self.finish(self.src.len(), false, Some(e)));
                }
                Some(Ok(t)) if t.kind == TokenKind::Semicolon && !routine.in_body() => {
                    let span = self.finish(t.start(), true, None);
                    self.start = t.end();
                    return Some(span);
                }
                Some(Ok(t)) => {
                    if t.kind == TokenKind::Word && routine.watching() {
                        routine.word(t.text(self.src));
                    }
                    tokens.push(t);
                }
            }
        }
    }

    fn finish(&self, end: usize, has_separator: bool, error: Option<LexError>) -> StatementSpan {
        StatementSpan {
            start: self.start,
            end,
            has_separator,
            error,
        }
    }
}

/// Tracks `CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ATOMIC ... END`, the one place a
/// `;` does not end a statement. `CASE ... END` inside the body nests.
#[derive(Default)]
struct RoutineTracker {
    words: u8,
    routine: bool,
    prev_begin: bool,
    depth: u32,
    head: [Head; 4],
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Head {
    #[default]
    Other,
    Create,
    Or,
    Replace,
    Routine,
}

impl RoutineTracker {
    /// Whether words still matter: the statement's head is being read or it is a routine.
    fn watching(&self) -> bool {
        (self.words as usize) < self.head.len() || self.routine
    }

    fn in_body(&self) -> bool {
        self.depth > 0
    }

    fn word(&mut self, w: &str) {
        let is = |kw: &str| w.eq_ignore_ascii_case(kw);
        if self.words == 0 && !is("create") {
            // Not a CREATE: nothing to track for this statement.
            self.words = self.head.len() as u8;
            return;
        }
        if (self.words as usize) < self.head.len() {
            self.head[self.words as usize] = if is("create") {
                Head::Create
            } else if is("or") {
                Head::Or
            } else if is("replace") {
                Head::Replace
            } else if is("function") || is("procedure") {
                Head::Routine
            } else {
                Head::Other
            };
            self.words += 1;
            let h = self.head;
            self.routine = h[0] == Head::Create
                && (h[1] == Head::Routine
                    || (h[1] == Head::Or && h[2] == Head::Replace && h[3] == Head::Routine));
        }
        if self.routine {
            if (self.prev_begin && is("atomic")) || (self.depth > 0 && is("case")) {
                self.depth += 1;
            } else if self.depth > 0 && is("end") {
                self.depth -= 1;
            }
            self.prev_begin = is("begin");
        }
    }
}

/// Splits `sql` into statements at top-level `;` using default lexing options.
///
/// Contract: `split_statements(s).join(";") == s` for every input. With `n` separating `;`
/// there are `n + 1` pieces, each the exact text between separators (comments and whitespace
/// included, possibly empty). A `;` inside a literal, comment, quoted identifier, dollar quote
/// or a `BEGIN ATOMIC` routine body is not a separator. After a lexical error (an unterminated
/// literal, identifier or comment) the rest of the input is one last piece.
pub fn split_statements(sql: &str) -> Vec<&str> {
    split_statements_with(sql, LexOptions::default())
}

/// [`split_statements`] with explicit lexing options (`standard_conforming_strings`).
pub fn split_statements_with(sql: &str, opts: LexOptions) -> Vec<&str> {
    let mut splitter = Splitter::new(sql, opts);
    let mut tokens = Vec::new();
    let mut out = Vec::new();
    while let Some(span) = splitter.next_into(&mut tokens) {
        out.push(&sql[span.start..span.end]);
    }
    out
}
