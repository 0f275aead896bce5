//! One compiled rule table: the action per statement class and the checks that block a
//! statement whatever its class allows (protected settings, require_where, deny lists).

use crate::config::{Action, RuleSection, CLASSES};
use crate::sql::{find_function_match, Denylist, LexOptions, StatementClass, StatementInfo};

use super::verdict::{blocked, Blocked};

/// What one statement gets from a rule.
#[derive(Debug)]
pub(super) enum Check {
    /// Nothing in the rule stops it.
    Pass,
    /// Its class needs approval (and nothing else stops it).
    Review(Blocked),
    /// It must not run.
    Block(Blocked),
}

/// A rule table ready to judge statements.
#[derive(Debug)]
pub(super) struct Rule {
    /// `role.reader.rules."*"`.
    path: String,
    /// Action and deciding key, indexed by [`StatementClass::severity`].
    actions: [(Action, &'static str); CLASSES.len()],
    require_where: bool,
    max_rows: Option<u64>,
    /// Each denied command as configured, and its words upper-cased.
    deny_commands: Vec<(String, Vec<String>)>,
    deny_functions: Vec<String>,
    /// `None` when the rule has no patterns, so statements are never normalized for nothing.
    denylist: Option<Denylist>,
    /// Lower-case setting names.
    protected: Vec<String>,
}

impl Rule {
    /// Compiles `section`, found at `path`. Errors are `key: message` lines.
    pub(super) fn compile(path: String, section: &RuleSection) -> Result<Rule, Vec<String>> {
        let mut actions = [(Action::Block, "default"); CLASSES.len()];
        for class in CLASSES {
            actions[usize::from(class.severity())] = section.action(class);
        }
        let denylist = if section.deny_patterns.is_empty() {
            None
        } else {
            let patterns: Vec<&str> = section.deny_patterns.iter().map(String::as_str).collect();
            Some(Denylist::new(&patterns).map_err(|e| vec![format!("{path}.deny_patterns: {e}")])?)
        };
        Ok(Rule {
            actions,
            require_where: section.require_where,
            max_rows: section.max_rows,
            deny_commands: section
                .deny_commands
                .iter()
                .map(|c| {
                    let words = c.split_whitespace().map(str::to_ascii_uppercase);
                    (c.clone(), words.collect())
                })
                .collect(),
            deny_functions: section
                .deny_functions
                .iter()
                .map(|f| f.to_ascii_lowercase())
                .collect(),
            denylist,
            protected: section.protected_settings(),
            path,
        })
    }

    /// The row limit of result sets.
    pub(super) fn max_rows(&self) -> Option<u64> {
        self.max_rows
    }

    /// The rule's key path.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// Judges one statement of `sql`. Hard blocks are looked for before a review is asked, so
    /// that a statement no approval could allow is never held for one.
    pub(super) fn check(
        &self,
        role: &str,
        sql: &str,
        st: &StatementInfo,
        lex: LexOptions,
    ) -> Check {
        let command = if st.command.is_empty() {
            "statement"
        } else {
            st.command
        };
        let (action, key) = self.actions[usize::from(st.class.severity())];
        if action == Action::Block {
            let what = match (&st.class, &st.reason) {
                (StatementClass::Unknown, Some(reason)) => {
                    format!("{command} blocked by policy: {reason}")
                }
                (StatementClass::Unknown, None) => {
                    format!("{command} blocked by policy: it could not be classified")
                }
                _ => format!("{command} blocked by policy"),
            };
            let rule = format!("{}.{key}", self.path);
            return Check::Block(blocked(false, role, rule, &what, " = block", ""));
        }
        if let Some(b) = self.hard_block(role, sql, st, lex, command) {
            return Check::Block(b);
        }
        if action == Action::Review {
            let rule = format!("{}.{key}", self.path);
            let what = format!("{command} requires approval");
            let tail = "; approvals are not available yet, so it was not run";
            return Check::Review(blocked(true, role, rule, &what, " = review", tail));
        }
        Check::Pass
    }

    /// The checks that block a statement whatever its class's action.
    fn hard_block(
        &self,
        role: &str,
        sql: &str,
        st: &StatementInfo,
        lex: LexOptions,
        command: &str,
    ) -> Option<Blocked> {
        let rule = |key: &str| format!("{}.{key}", self.path);
        if let Some(setting) = &st.setting {
            if self
                .protected
                .iter()
                .any(|p| p.eq_ignore_ascii_case(setting))
            {
                let what = format!("{command} of protected setting {setting} blocked by policy");
                let detail = format!(" includes \"{setting}\"");
                return Some(blocked(
                    false,
                    role,
                    rule("protected_settings"),
                    &what,
                    &detail,
                    "",
                ));
            }
        }
        if self.require_where && lacks_where(st) {
            let what = format!("{command} without a WHERE clause blocked by policy");
            return Some(blocked(
                false,
                role,
                rule("require_where"),
                &what,
                " = true",
                "",
            ));
        }
        if let Some((denied, _)) = self
            .deny_commands
            .iter()
            .find(|(_, words)| command_starts_with(st.command, words))
        {
            let what = format!("{command} blocked by policy");
            let detail = format!(" includes \"{denied}\"");
            return Some(blocked(
                false,
                role,
                rule("deny_commands"),
                &what,
                &detail,
                "",
            ));
        }
        for f in &st.functions {
            if let Some(pattern) = find_function_match(&self.deny_functions, f) {
                let what = format!("{command} calling {f} blocked by policy");
                let detail = format!(" includes \"{pattern}\"");
                return Some(blocked(
                    false,
                    role,
                    rule("deny_functions"),
                    &what,
                    &detail,
                    "",
                ));
            }
        }
        if let Some(denylist) = &self.denylist {
            // A statement starts outside any quote or comment, so its own text lexes the same
            // as it does inside the message. A span that is not a slice of `sql` (never
            // expected) falls back to the whole message, which errs toward blocking.
            let text = sql.get(st.span.clone()).unwrap_or(sql);
            if let Some(pattern) = denylist.find_in(text, lex) {
                let what = format!("{command} matching \"{pattern}\" blocked by policy");
                let detail = format!(" includes \"{pattern}\"");
                return Some(blocked(
                    false,
                    role,
                    rule("deny_patterns"),
                    &what,
                    &detail,
                    "",
                ));
            }
        }
        None
    }
}

/// Whether an UPDATE or DELETE that changes data has no top-level WHERE. Wrappers that run
/// their statement (`EXPLAIN ANALYZE`, `PREPARE`) keep the inner statement's answer; a plain
/// EXPLAIN is a read and changes nothing. An UPDATE or DELETE whose WHERE the classifier
/// could not determine counts as lacking one (fail closed).
fn lacks_where(st: &StatementInfo) -> bool {
    match st.has_where {
        Some(has) => !has && st.class != StatementClass::Read,
        None => matches!(st.command, "UPDATE" | "DELETE"),
    }
}

/// Whether `command`'s first words are `words` (upper case).
fn command_starts_with(command: &str, words: &[String]) -> bool {
    let mut have = command.split_whitespace();
    !words.is_empty()
        && words
            .iter()
            .all(|w| have.next().is_some_and(|h| h.eq_ignore_ascii_case(w)))
}
