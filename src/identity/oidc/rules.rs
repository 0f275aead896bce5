//! The claim-rule language of `[[identity.provider.map]] when = "..."`.
//!
//! ```text
//! expr := or
//! or   := and ("or" and)*
//! and  := not ("and" not)*
//! not  := "not" not | "(" expr ")" | cmp
//! cmp  := path ("==" | "!=") value | path "in" "[" value ("," value)* "]" | path "contains" value
//! ```
//!
//! A path is a claim name, dotted for members of nested objects (`a.b`), of `A-Z a-z 0-9 _ : -`;
//! a value is a `"string"` (with `\"` and `\\` escapes), an integer, `true` or `false`.
//!
//! Evaluation fails closed: a comparison with a claim that is missing, or whose JSON type is not
//! the value's, is false — for `!=` too, so `ref != "refs/heads/main"` does not match a token
//! without `ref`. `contains` is true only for an array claim holding the value.

use std::fmt;

use serde_json::{Map, Value};

use super::json::lookup;

/// Deepest nesting of `not` and parentheses accepted.
const MAX_DEPTH: usize = 32;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    Eq(String, Literal),
    Ne(String, Literal),
    In(String, Vec<Literal>),
    Contains(String, Literal),
}

/// A constant in a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// Where and why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// 1-based character position.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for RuleError {}

impl Condition {
    /// Parses `text` into a condition.
    pub fn parse(text: &str) -> Result<Condition, RuleError> {
        let tokens = lex(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end: text.chars().count() + 1,
        };
        let cond = p.or(0)?;
        match p.peek() {
            None => Ok(cond),
            Some(t) => Err(p.error_at(t.column, format!("unexpected {}", t.kind))),
        }
    }

    /// Whether `claims` satisfy the condition.
    pub fn matches(&self, claims: &Map<String, Value>) -> bool {
        match self {
            Condition::Or(list) => list.iter().any(|c| c.matches(claims)),
            Condition::And(list) => list.iter().all(|c| c.matches(claims)),
            Condition::Not(c) => !c.matches(claims),
            Condition::Eq(path, lit) => {
                compare(lookup(claims, path), lit).is_some_and(|equal| equal)
            }
            Condition::Ne(path, lit) => {
                compare(lookup(claims, path), lit).is_some_and(|equal| !equal)
            }
            Condition::In(path, lits) => {
                let claim = lookup(claims, path);
                lits.iter().any(|l| compare(claim, l) == Some(true))
            }
            Condition::Contains(path, lit) => match lookup(claims, path) {
                Some(Value::Array(items)) => {
                    items.iter().any(|v| compare(Some(v), lit) == Some(true))
                }
                _ => false,
            },
        }
    }
}

/// `Some(equal)` when the claim exists and has the literal's type; `None` otherwise.
fn compare(claim: Option<&Value>, lit: &Literal) -> Option<bool> {
    match (claim?, lit) {
        (Value::String(s), Literal::Str(l)) => Some(s == l),
        (Value::Bool(b), Literal::Bool(l)) => Some(b == l),
        (Value::Number(n), Literal::Int(l)) => {
            if let Some(i) = n.as_i64() {
                Some(i == *l)
            } else if n.is_u64() {
                // Larger than any i64 literal.
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Word(String),
    Str(String),
    Int(i64),
    EqEq,
    NotEq,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Word(w) => write!(f, "`{w}`"),
            Kind::Str(_) => f.write_str("a string"),
            Kind::Int(i) => write!(f, "`{i}`"),
            Kind::EqEq => f.write_str("`==`"),
            Kind::NotEq => f.write_str("`!=`"),
            Kind::LParen => f.write_str("`(`"),
            Kind::RParen => f.write_str("`)`"),
            Kind::LBracket => f.write_str("`[`"),
            Kind::RBracket => f.write_str("`]`"),
            Kind::Comma => f.write_str("`,`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    column: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.')
}

fn lex(text: &str) -> Result<Vec<Token>, RuleError> {
    let err = |column: usize, message: String| RuleError { column, message };
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two = chars.get(i + 1).copied();
        let kind =
            match c {
                '(' => Kind::LParen,
                ')' => Kind::RParen,
                '[' => Kind::LBracket,
                ']' => Kind::RBracket,
                ',' => Kind::Comma,
                '=' if two == Some('=') => {
                    i += 1;
                    Kind::EqEq
                }
                '!' if two == Some('=') => {
                    i += 1;
                    Kind::NotEq
                }
                '"' => {
                    let mut s = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(err(column, "unterminated string".into())),
                            Some('"') => break,
                            Some('\\') => match chars.get(i + 1) {
                                Some(e @ ('"' | '\\')) => {
                                    s.push(*e);
                                    i += 2;
                                }
                                _ => {
                                    return Err(err(
                                        i + 1,
                                        "only \\\" and \\\\ escapes are allowed in strings".into(),
                                    ))
                                }
                            },
                            Some(ch) => {
                                s.push(*ch);
                                i += 1;
                            }
                        }
                    }
                    Kind::Str(s)
                }
                c if is_word_char(c) => {
                    let start = i;
                    while chars.get(i + 1).is_some_and(|&c| is_word_char(c)) {
                        i += 1;
                    }
                    let word: String = chars[start..=i].iter().collect();
                    let digits = word.strip_prefix('-').unwrap_or(&word);
                    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                        Kind::Int(word.parse().map_err(|_| {
                            err(column, format!("integer `{word}` is out of range"))
                        })?)
                    } else {
                        Kind::Word(word)
                    }
                }
                other => return Err(err(column, format!("unexpected character `{other}`"))),
            };
        out.push(Token { kind, column });
        i += 1;
    }
    Ok(out)
}

const KEYWORDS: &[&str] = &["and", "or", "not", "in", "contains", "true", "false"];

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Column just past the text, for "expected ... at the end".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn error_at(&self, column: usize, message: String) -> RuleError {
        RuleError { column, message }
    }

    /// An error at the next token (or the end) saying what was expected.
    fn expected(&self, what: &str) -> RuleError {
        match self.peek() {
            Some(t) => self.error_at(t.column, format!("expected {what}, found {}", t.kind)),
            None => self.error_at(self.end, format!("expected {what} at the end")),
        }
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w == word)
    }

    fn or(&mut self, depth: usize) -> Result<Condition, RuleError> {
        let mut list = vec![self.and(depth)?];
        while self.at_word("or") {
            self.pos += 1;
            list.push(self.and(depth)?);
        }
        Ok(if list.len() == 1 {
            list.remove(0)
        } else {
            Condition::Or(list)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Condition, RuleError> {
        let mut list = vec![self.not(depth)?];
        while self.at_word("and") {
            self.pos += 1;
            list.push(self.not(depth)?);
        }
        Ok(if list.len() == 1 {
            list.remove(0)
        } else {
            Condition::And(list)
        })
    }

    fn not(&mut self, depth: usize) -> Result<Condition, RuleError> {
        if depth >= MAX_DEPTH {
            return Err(self.expected("less nesting"));
        }
        if self.at_word("not") {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.not(depth + 1)?)));
        }
        if matches!(
            self.peek(),
            Some(Token {
                kind: Kind::LParen,
                ..
            })
        ) {
            self.pos += 1;
            let inner = self.or(depth + 1)?;
            return match self.next() {
                Some(Token {
                    kind: Kind::RParen, ..
                }) => Ok(inner),
                _ => {
                    self.pos -= 1;
                    Err(self.expected("`)`"))
                }
            };
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Condition, RuleError> {
        let path = match self.peek() {
            Some(Token {
                kind: Kind::Word(w),
                column,
            }) if !KEYWORDS.contains(&w.as_str()) => {
                let (w, column) = (w.clone(), *column);
                if w.split('.').any(str::is_empty) {
                    return Err(self.error_at(column, format!("`{w}` is not a claim path")));
                }
                w
            }
            _ => return Err(self.expected("a claim name")),
        };
        self.pos += 1;
        let op = self.next().map(|t| t.kind);
        match op {
            Some(Kind::EqEq) => Ok(Condition::Eq(path, self.literal()?)),
            Some(Kind::NotEq) => Ok(Condition::Ne(path, self.literal()?)),
            Some(Kind::Word(w)) if w == "contains" => {
                Ok(Condition::Contains(path, self.literal()?))
            }
            Some(Kind::Word(w)) if w == "in" => {
                if !matches!(self.next().map(|t| t.kind), Some(Kind::LBracket)) {
                    self.pos -= 1;
                    return Err(self.expected("`[`"));
                }
                let mut list = vec![self.literal()?];
                loop {
                    match self.next().map(|t| t.kind) {
                        Some(Kind::Comma) => list.push(self.literal()?),
                        Some(Kind::RBracket) => return Ok(Condition::In(path, list)),
                        _ => {
                            self.pos -= 1;
                            return Err(self.expected("`,` or `]`"));
                        }
                    }
                }
            }
            _ => {
                self.pos -= 1;
                Err(self.expected("`==`, `!=`, `in` or `contains`"))
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, RuleError> {
        let lit = match self.peek().map(|t| &t.kind) {
            Some(Kind::Str(s)) => Literal::Str(s.clone()),
            Some(Kind::Int(i)) => Literal::Int(*i),
            Some(Kind::Word(w)) if w == "true" => Literal::Bool(true),
            Some(Kind::Word(w)) if w == "false" => Literal::Bool(false),
            _ => return Err(self.expected("a string, integer, true or false")),
        };
        self.pos += 1;
        Ok(lit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn eval(rule: &str, json: &str) -> bool {
        Condition::parse(rule).unwrap().matches(&claims(json))
    }

    const GITHUB: &str = r#"{"repository":"acme/api","ref":"refs/heads/main","run_attempt":"1",
        "repository_id":"42","actor_id":7,"environment":"prod","fork":false,
        "groups":["ops","dev"],"ctx":{"env":{"name":"prod"}},"job_workflow_ref":"acme/ci/.github/workflows/deploy.yml@refs/heads/main"}"#;

    #[test]
    fn evaluates_comparisons() {
        assert!(eval(r#"repository == "acme/api""#, GITHUB));
        assert!(!eval(r#"repository == "acme/web""#, GITHUB));
        assert!(eval(r#"repository != "acme/web""#, GITHUB));
        assert!(eval(r#"environment in ["staging", "prod"]"#, GITHUB));
        assert!(!eval(r#"environment in ["staging"]"#, GITHUB));
        assert!(eval(r#"groups contains "ops""#, GITHUB));
        assert!(!eval(r#"groups contains "root""#, GITHUB));
        assert!(eval("actor_id == 7", GITHUB));
        assert!(eval("actor_id in [1, 7]", GITHUB));
        assert!(eval("fork == false", GITHUB));
        assert!(eval(r#"ctx.env.name == "prod""#, GITHUB));
        assert!(eval(
            r#"job_workflow_ref == "acme/ci/.github/workflows/deploy.yml@refs/heads/main""#,
            GITHUB
        ));
    }

    #[test]
    fn missing_claims_and_type_mismatches_never_match() {
        for rule in [
            r#"nope == "x""#,
            r#"nope != "x""#,
            r#"nope in ["x"]"#,
            r#"nope contains "x""#,
            r#"ctx.missing.name != "x""#,
            // Types must agree: "42" is a string, 7 a number, groups an array.
            "repository_id == 42",
            "repository_id != 42",
            r#"actor_id == "7""#,
            r#"actor_id != "7""#,
            r#"groups == "ops""#,
            r#"groups != "ops""#,
            r#"repository contains "acme""#,
            r#"fork != "false""#,
        ] {
            assert!(!eval(rule, GITHUB), "{rule}");
        }
        // `not` of a failed comparison is true: that is what `not` says.
        assert!(eval(r#"not nope == "x""#, GITHUB));
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        // a or b and c  ==  a or (b and c)
        assert!(eval(r#"fork == false or nope == 1 and nope == 2"#, GITHUB));
        assert!(!eval(
            r#"(fork == false or nope == 1) and nope == 2"#,
            GITHUB
        ));
        // not binds tighter than and
        assert!(eval(
            r#"not fork == true and environment == "prod""#,
            GITHUB
        ));
        assert!(!eval(
            r#"not (fork == false and environment == "prod")"#,
            GITHUB
        ));
        assert!(eval(r#"not not fork == false"#, GITHUB));
        let c = Condition::parse(r#"a == 1 or b == 2 and c == 3"#).unwrap();
        assert_eq!(
            c,
            Condition::Or(vec![
                Condition::Eq("a".into(), Literal::Int(1)),
                Condition::And(vec![
                    Condition::Eq("b".into(), Literal::Int(2)),
                    Condition::Eq("c".into(), Literal::Int(3)),
                ]),
            ])
        );
    }

    #[test]
    fn strings_take_only_quote_and_backslash_escapes() {
        let c = Condition::parse(r#"x == "a\"b\\c""#).unwrap();
        assert_eq!(
            c,
            Condition::Eq("x".into(), Literal::Str(r#"a"b\c"#.into()))
        );
        assert!(eval(r#"x == "a\"b\\c""#, r#"{"x":"a\"b\\c"}"#));
        assert!(Condition::parse(r#"x == "a\nb""#).is_err());
        assert_eq!(
            Condition::parse(r#"x == "é" and y == -3"#).unwrap(),
            Condition::And(vec![
                Condition::Eq("x".into(), Literal::Str("é".into())),
                Condition::Eq("y".into(), Literal::Int(-3)),
            ])
        );
    }

    #[test]
    fn errors_say_where() {
        for (rule, column, needle) in [
            ("", 1, "expected a claim name at the end"),
            (r#"repository = "x""#, 12, "unexpected character `=`"),
            (r#"repository == "#, 15, "expected a string"),
            (
                r#"repository == "x" and"#,
                22,
                "expected a claim name at the end",
            ),
            (
                r#"repository == "x" or or"#,
                22,
                "expected a claim name, found `or`",
            ),
            (r#"(a == 1"#, 8, "expected `)`"),
            (r#"a == 1)"#, 7, "unexpected `)`"),
            (r#"a in ["x" "y"]"#, 11, "expected `,` or `]`"),
            (r#"a in "x""#, 6, "expected `[`"),
            (r#"a in []"#, 7, "expected a string"),
            (r#"a == "open"#, 6, "unterminated string"),
            (
                r#"a == b"#,
                6,
                "expected a string, integer, true or false, found `b`",
            ),
            (r#"a.b. == 1"#, 1, "is not a claim path"),
            (r#"in == 1"#, 1, "expected a claim name"),
            (r#"a == 99999999999999999999"#, 6, "out of range"),
            (
                r#"a"#,
                2,
                "expected `==`, `!=`, `in` or `contains` at the end",
            ),
            (r#"a == 1 b == 2"#, 8, "unexpected `b`"),
        ] {
            let e = Condition::parse(rule).unwrap_err();
            assert_eq!(e.column, column, "{rule}: {e}");
            assert!(e.to_string().contains(needle), "{rule}: {e}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}a == 1", "not ".repeat(100));
        assert!(Condition::parse(&deep)
            .unwrap_err()
            .message
            .contains("nesting"));
        let parens = format!("{}a == 1{}", "(".repeat(100), ")".repeat(100));
        assert!(Condition::parse(&parens).is_err());
        assert!(Condition::parse(&format!("{}a == 1", "not ".repeat(10))).is_ok());
    }
}
