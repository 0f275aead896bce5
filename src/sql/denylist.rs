//! Denylists: sequences of SQL words (`drop table`, `alter system`, `delete from users`)
//! matched with Aho-Corasick over the normalized token stream.
//!
//! Matching is on tokens, not text: case, comments and whitespace cannot hide a denied
//! command, and a literal (`SELECT 'drop table x'`) is an opaque mark that no pattern word
//! matches. A quoted identifier is matched as the name it denotes, exactly as the server
//! resolves it: `"users"` is `users`, but `"DROP"` is a different name from `drop` (and in a
//! keyword position the server would reject it anyway). Patterns are word sequences: a
//! pattern word can also match an identifier spelled the same (`SELECT id delete FROM users`
//! matches `delete from users`), which errs toward blocking.

use super::lexer::LexOptions;
use super::normalize::{normalize, NormalizedTokens, NUMBER_MARK, PARAM_MARK, SEP, STRING_MARK};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use thiserror::Error;

/// A pattern that cannot be used.
#[derive(Debug, Error)]
pub enum DenylistError {
    /// The pattern has no words.
    #[error("denylist pattern {0:?} is empty")]
    Empty(String),
    /// The pattern does not lex (an unterminated quote or comment).
    #[error("denylist pattern {0:?} is not valid SQL text: {1}")]
    Lex(String, super::lexer::LexError),
    /// The pattern contains a literal or parameter, which never matches.
    #[error("denylist pattern {0:?} contains a literal or parameter; literals are never matched")]
    Literal(String),
    /// The automaton could not be built.
    #[error("denylist could not be built: {0}")]
    Build(#[from] aho_corasick::BuildError),
}

/// A compiled set of denied word sequences.
#[derive(Clone, Debug)]
pub struct Denylist {
    patterns: Vec<String>,
    automaton: AhoCorasick,
}

impl Denylist {
    /// Compiles `patterns`; each is SQL text normalized like statements are.
    pub fn new(patterns: &[&str]) -> Result<Denylist, DenylistError> {
        let mut encoded = Vec::with_capacity(patterns.len());
        for p in patterns {
            let n = normalize(p, LexOptions::default());
            if let Some(e) = n.error() {
                return Err(DenylistError::Lex(p.to_string(), e.clone()));
            }
            let s = n.as_str();
            if s.len() <= SEP.len_utf8() {
                return Err(DenylistError::Empty(p.to_string()));
            }
            if s.contains([STRING_MARK, NUMBER_MARK, PARAM_MARK]) {
                return Err(DenylistError::Literal(p.to_string()));
            }
            encoded.push(s.to_string());
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            // Patterns are few and short: a DFA is small and the fastest to search.
            .kind(Some(AhoCorasickKind::DFA))
            // Every pattern starts with the token separator, which is everywhere in the
            // stream: a prefilter would stop at each token for nothing.
            .prefilter(false)
            .build(&encoded)?;
        Ok(Denylist {
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            automaton,
        })
    }

    /// The first pattern (as given to [`Denylist::new`]) found in `normalized`.
    pub fn find(&self, normalized: &NormalizedTokens) -> Option<&str> {
        self.automaton
            .find(normalized.as_str())
            .map(|m| self.patterns[m.pattern().as_usize()].as_str())
    }

    /// Normalizes `sql` and looks for a pattern in it.
    pub fn find_in(&self, sql: &str, opts: LexOptions) -> Option<&str> {
        self.find(&normalize(sql, opts))
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}
