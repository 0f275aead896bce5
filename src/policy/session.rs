//! The policy one session runs under: its role's rule for its resource, ready to judge SQL.

use std::sync::Arc;

use crate::config::PolicySection;
use crate::mask::MaskPolicy;
use crate::sql::{check_masked_uses, classify, ClassifyOptions, StatementClass};

use super::rule::{Check, Rule};
use super::verdict::{blocked, Verdict};

/// Classifier settings of a [`super::PolicySet`], built once for each value of the session's
/// `standard_conforming_strings` so that judging never rebuilds the function lists.
#[derive(Debug)]
pub(super) struct Classifiers {
    standard: ClassifyOptions,
    escapes: ClassifyOptions,
}

impl Classifiers {
    pub(super) fn new(policy: &PolicySection) -> Classifiers {
        let mut standard = ClassifyOptions::default();
        if let Some(list) = &policy.admin_functions {
            standard.admin_functions = list.clone();
        }
        if let Some(list) = &policy.write_functions {
            standard.write_functions = list.clone();
        }
        let escapes = ClassifyOptions {
            standard_conforming_strings: false,
            ..standard.clone()
        };
        Classifiers { standard, escapes }
    }

    fn get(&self, standard_conforming_strings: bool) -> &ClassifyOptions {
        if standard_conforming_strings {
            &self.standard
        } else {
            &self.escapes
        }
    }
}

/// One role's policy on one resource. Shared (`Arc`) by every session it applies to.
#[derive(Debug)]
pub struct SessionPolicy {
    role: String,
    /// `None`: unrestricted, nothing is classified.
    rule: Option<Rule>,
    mask: MaskPolicy,
    /// Lower-case column names (the last part of each column rule) whose derived uses are
    /// refused; empty when no column is masked.
    masked_columns: Vec<String>,
    classifiers: Arc<Classifiers>,
}

impl SessionPolicy {
    pub(super) fn new_unrestricted(role: &str, classifiers: Arc<Classifiers>) -> SessionPolicy {
        SessionPolicy {
            role: role.to_owned(),
            rule: None,
            mask: MaskPolicy::default(),
            masked_columns: Vec::new(),
            classifiers,
        }
    }

    pub(super) fn new_restricted(
        role: &str,
        rule: Rule,
        mask: MaskPolicy,
        masked_columns: Vec<String>,
        classifiers: Arc<Classifiers>,
    ) -> SessionPolicy {
        SessionPolicy {
            role: role.to_owned(),
            rule: Some(rule),
            mask,
            masked_columns,
            classifiers,
        }
    }

    /// Whether everything is allowed and nothing masked or limited: the proxy can skip every
    /// policy hook.
    pub fn unrestricted(&self) -> bool {
        self.rule.is_none()
    }

    /// The role this policy belongs to.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The key path of the rule in force (`role.reader.rules."*"`), `None` when unrestricted.
    pub fn rule_path(&self) -> Option<&str> {
        self.rule.as_ref().map(Rule::path)
    }

    /// Judges one simple-protocol Query text or one Parse text (may hold several statements;
    /// one blocked statement blocks the message). `standard_conforming_strings` is the
    /// session's current value, as last reported by the upstream's ParameterStatus. A message
    /// with no statement (empty, or only comments) is allowed: the server runs nothing.
    pub fn judge(&self, sql: &str, standard_conforming_strings: bool) -> Verdict {
        self.judge_each(sql, standard_conforming_strings, |_| {})
    }

    /// [`judge`](Self::judge), also telling `seen` the class of every statement of the
    /// message (for the statistics). Nothing is seen when the policy is unrestricted: nothing
    /// is classified then.
    pub fn judge_each(
        &self,
        sql: &str,
        standard_conforming_strings: bool,
        mut seen: impl FnMut(StatementClass),
    ) -> Verdict {
        let Some(rule) = &self.rule else {
            return Verdict::Allow;
        };
        let opts = self.classifiers.get(standard_conforming_strings);
        let classification = classify(sql, opts);
        for st in &classification.statements {
            seen(st.class);
        }
        let mut review = None;
        for st in &classification.statements {
            match rule.check(&self.role, sql, st, opts.lex_options()) {
                Check::Block(b) => return Verdict::Block(b),
                Check::Review(b) => {
                    review.get_or_insert(b);
                }
                Check::Pass => {}
            }
        }
        // Derived uses of masked columns (`card_number::text`, `row_to_json(t)`, renames in
        // `FROM t AS c(...)`, WHERE oracles) would return or reveal a value the row masking
        // cannot recognise: such a message is refused whole.
        if !self.masked_columns.is_empty() {
            if let Err(reason) = check_masked_uses(sql, &self.masked_columns, opts.lex_options()) {
                return Verdict::Block(blocked(
                    false,
                    &self.role,
                    format!("{}.mask", rule.path()),
                    &format!("masked column use refused: {reason}"),
                    "",
                    "",
                ));
            }
        }
        // A review is reported only when no statement of the message is blocked outright.
        review.map_or(Verdict::Allow, Verdict::Block)
    }

    /// The masking of this session's results; [`MaskPolicy::is_active`] says whether to mask.
    pub fn mask(&self) -> &MaskPolicy {
        &self.mask
    }

    /// Rows after which a result set is cut (the client gets a notice), if limited.
    pub fn max_rows(&self) -> Option<u64> {
        self.rule.as_ref().and_then(Rule::max_rows)
    }
}
