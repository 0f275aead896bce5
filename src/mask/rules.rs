//! Column rules: which columns are masked, and how.
//!
//! A rule is `column`, `table.column` or `schema.table.column`; every part may be a glob (`*`
//! any run, `?` one character) and matching ignores ASCII case, since PostgreSQL folds unquoted
//! names to lower case and masking a differently-cased twin is the safe mistake. A one-part rule
//! matches a column of any table and also a computed column's label. When several rules match,
//! the most specific wins: more parts first, then a rule without globs over one with them, then
//! the order given.

use super::{MaskError, MaskStyle};

/// One part of a rule, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Part {
    pattern: Vec<u8>,
    glob: bool,
}

impl Part {
    fn parse(s: &str) -> Self {
        let pattern = s.trim().to_ascii_lowercase().into_bytes();
        let glob = pattern.iter().any(|&b| b == b'*' || b == b'?');
        Self { pattern, glob }
    }

    fn matches(&self, name: &str) -> bool {
        if self.glob {
            glob_match(&self.pattern, name.as_bytes())
        } else {
            self.pattern.eq_ignore_ascii_case(name.as_bytes())
        }
    }
}

/// `*` and `?` over bytes, ASCII case-insensitive; linear backtracking on the last `*`.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || name.get(n).is_some_and(|b| b.eq_ignore_ascii_case(&c)) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|&b| b == b'*')
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    schema: Option<Part>,
    table: Option<Part>,
    column: Part,
    style: MaskStyle,
}

impl Rule {
    fn parse(pattern: &str, style: MaskStyle) -> Result<Self, MaskError> {
        if pattern.trim().is_empty() {
            return Err(MaskError::EmptyPattern);
        }
        let parts: Vec<&str> = pattern.split('.').collect();
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(MaskError::EmptyPart(pattern.to_string()));
        }
        let (schema, table, column) = match parts.as_slice() {
            [c] => (None, None, c),
            [t, c] => (None, Some(Part::parse(t)), c),
            [s, t, c] => (Some(Part::parse(s)), Some(Part::parse(t)), c),
            _ => return Err(MaskError::TooManyParts(pattern.to_string())),
        };
        Ok(Self {
            schema,
            table,
            column: Part::parse(column),
            style,
        })
    }

    /// Higher sorts first.
    fn specificity(&self) -> (usize, bool) {
        let parts = 1 + usize::from(self.table.is_some()) + usize::from(self.schema.is_some());
        let literal = !self.column.glob
            && !self.table.as_ref().is_some_and(|p| p.glob)
            && !self.schema.as_ref().is_some_and(|p| p.glob);
        (parts, literal)
    }

    fn matches(&self, table: Option<(&str, &str)>, column: &str) -> bool {
        if !self.column.matches(column) {
            return false;
        }
        match (&self.table, table) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(t), Some((schema, table))) => {
                t.matches(table) && self.schema.as_ref().is_none_or(|s| s.matches(schema))
            }
        }
    }
}

/// A validated set of column rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnRules {
    /// Most specific first.
    rules: Vec<Rule>,
}

impl ColumnRules {
    /// Parses `(pattern, style)` pairs; see the module documentation for the pattern syntax.
    pub fn new(rules: &[(String, MaskStyle)]) -> Result<Self, MaskError> {
        let mut parsed = rules
            .iter()
            .map(|(p, s)| Rule::parse(p, *s))
            .collect::<Result<Vec<_>, _>>()?;
        // Stable, so equal specificity keeps the configured order.
        parsed.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        Ok(Self { rules: parsed })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule uses the given style.
    pub fn uses(&self, style: MaskStyle) -> bool {
        self.rules.iter().any(|r| r.style == style)
    }

    /// The style for a column of `table` (`(schema, table)`, `None` when the column is not a
    /// plain table column), or `None` when no rule masks it.
    pub fn style_for(&self, table: Option<(&str, &str)>, column: &str) -> Option<MaskStyle> {
        self.rules
            .iter()
            .find(|r| r.matches(table, column))
            .map(|r| r.style)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MaskStyle::*;

    fn rules(list: &[(&str, MaskStyle)]) -> ColumnRules {
        let owned: Vec<(String, MaskStyle)> =
            list.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        ColumnRules::new(&owned).unwrap()
    }

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("*email*", "email", true),
            ("*email*", "work_email_address", true),
            ("*email*", "e_mail", false),
            ("card_*", "card_number", true),
            ("card_*", "card", false),
            ("card_*", "CARD_NUMBER", true),
            ("ssn", "ssn", true),
            ("ssn", "ssn2", false),
            ("s?n", "ssn", true),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("**x", "abx", true),
        ] {
            assert_eq!(Part::parse(p).matches(n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn qualified_rules_need_the_table() {
        let r = rules(&[("users.email", Full), ("billing.cards.number", Last4)]);
        assert_eq!(r.style_for(Some(("public", "users")), "email"), Some(Full));
        assert_eq!(r.style_for(Some(("crm", "USERS")), "Email"), Some(Full));
        assert_eq!(r.style_for(Some(("public", "admins")), "email"), None);
        assert_eq!(r.style_for(None, "email"), None);
        assert_eq!(
            r.style_for(Some(("billing", "cards")), "number"),
            Some(Last4)
        );
        assert_eq!(r.style_for(Some(("public", "cards")), "number"), None);
    }

    #[test]
    fn column_rules_match_any_table_and_labels() {
        let r = rules(&[("card_number", Last4), ("*email*", Hash), ("ssn", Null)]);
        assert_eq!(r.style_for(Some(("a", "b")), "card_number"), Some(Last4));
        assert_eq!(r.style_for(None, "card_number"), Some(Last4));
        assert_eq!(r.style_for(None, "contact_email"), Some(Hash));
        assert_eq!(r.style_for(None, "ssn"), Some(Null));
        assert_eq!(r.style_for(None, "name"), None);
        assert!(r.uses(Hash) && !r.uses(Full));
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let r = rules(&[
            ("*email*", Full),
            ("users.*email*", Last4),
            ("users.email", Hash),
            ("crm.users.email", Null),
        ]);
        assert_eq!(r.style_for(Some(("crm", "users")), "email"), Some(Null));
        assert_eq!(r.style_for(Some(("public", "users")), "email"), Some(Hash));
        assert_eq!(
            r.style_for(Some(("public", "users")), "alt_email"),
            Some(Last4)
        );
        assert_eq!(r.style_for(Some(("public", "orders")), "email"), Some(Full));
        let ordered = rules(&[("e*", Full), ("*l", Null)]);
        assert_eq!(ordered.style_for(None, "email"), Some(Full));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for (p, err) in [
            ("", MaskError::EmptyPattern),
            ("  ", MaskError::EmptyPattern),
            ("a.b.c.d", MaskError::TooManyParts("a.b.c.d".into())),
            ("users..email", MaskError::EmptyPart("users..email".into())),
            (".email", MaskError::EmptyPart(".email".into())),
            ("users.", MaskError::EmptyPart("users.".into())),
        ] {
            assert_eq!(
                ColumnRules::new(&[(p.to_string(), Full)]),
                Err(err),
                "{p:?}"
            );
        }
        assert!(ColumnRules::new(&[]).unwrap().is_empty());
    }
}
