//! The statement-policy part of the file: the process-wide `[policy]` section and each role's
//! `[role.R.rules.<resource|"*">]` rule tables with their `.mask` sub-tables.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mask::Detectors;
use crate::sql::StatementClass;

/// Session settings a rule never lets a client change unless it lists its own: each one either
/// changes privileges (`role`, `session_authorization`), changes how later statement text is
/// lexed (`standard_conforming_strings`, `client_encoding`), undoes read-only defaults, or
/// changes which function an unqualified name calls (`search_path`).
pub const DEFAULT_PROTECTED_SETTINGS: &[&str] = &[
    "role",
    "session_authorization",
    "session_characteristics",
    "standard_conforming_strings",
    "client_encoding",
    "default_transaction_read_only",
    "transaction_read_only",
    "search_path",
];

/// Process-wide policy settings. A list, when given, replaces the built-in default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Function patterns that make a statement Admin; default `crate::sql::DEFAULT_ADMIN_FUNCTIONS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_functions: Option<Vec<String>>,
    /// Function patterns that make a statement a Write; default `crate::sql::DEFAULT_WRITE_FUNCTIONS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_functions: Option<Vec<String>>,
}

impl PolicySection {
    /// Whether nothing is configured (the section can be left out of a written file).
    pub fn is_empty(&self) -> bool {
        self == &PolicySection::default()
    }
}

/// What a rule does with a statement of some class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The statement runs.
    Allow,
    /// The statement is refused with SQLSTATE 42501.
    Block,
    /// The statement needs a human's approval before it runs.
    Review,
}

impl Action {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Block => "block",
            Action::Review => "review",
        }
    }
}

fn block() -> Action {
    Action::Block
}

/// One role's rules for one resource (or for every resource of the role without its own entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ddl: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_out: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedural: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<Action>,
    /// Action for every class not listed; blocking fails closed.
    #[serde(default = "block")]
    pub default: Action,
    /// UPDATE and DELETE without a top-level WHERE are blocked.
    #[serde(default)]
    pub require_where: bool,
    /// A result set is cut after this many rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Command prefixes, matched word-wise against the classifier's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_commands: Vec<String>,
    /// Function patterns (`name`, `schema.name`, `prefix*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_functions: Vec<String>,
    /// SQL word sequences matched over normalized tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_patterns: Vec<String>,
    /// Settings the client may not change; default [`DEFAULT_PROTECTED_SETTINGS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_settings: Option<Vec<String>>,
    /// Masking of this rule's results.
    #[serde(default, skip_serializing_if = "MaskSection::is_empty")]
    pub mask: MaskSection,
}

impl Default for RuleSection {
    fn default() -> Self {
        RuleSection {
            read: None,
            write: None,
            ddl: None,
            admin: None,
            session: None,
            transaction: None,
            copy_out: None,
            procedural: None,
            unknown: None,
            default: Action::Block,
            require_where: false,
            max_rows: None,
            deny_commands: Vec::new(),
            deny_functions: Vec::new(),
            deny_patterns: Vec::new(),
            protected_settings: None,
            mask: MaskSection::default(),
        }
    }
}

/// Every statement class, in the order the file lists them.
pub const CLASSES: [StatementClass; 9] = [
    StatementClass::Read,
    StatementClass::Write,
    StatementClass::Ddl,
    StatementClass::Admin,
    StatementClass::Session,
    StatementClass::Transaction,
    StatementClass::CopyOut,
    StatementClass::Procedural,
    StatementClass::Unknown,
];

/// The key of a class in a rule table (`copy_out`, not the classifier's `copy-out`).
pub fn class_key(class: StatementClass) -> &'static str {
    match class {
        StatementClass::CopyOut => "copy_out",
        other => other.as_str(),
    }
}

impl RuleSection {
    /// The action for `class` and the key that decided it (the class's own, or `default`).
    pub fn action(&self, class: StatementClass) -> (Action, &'static str) {
        let listed = match class {
            StatementClass::Read => self.read,
            StatementClass::Write => self.write,
            StatementClass::Ddl => self.ddl,
            StatementClass::Admin => self.admin,
            StatementClass::Session => self.session,
            StatementClass::Transaction => self.transaction,
            StatementClass::CopyOut => self.copy_out,
            StatementClass::Procedural => self.procedural,
            StatementClass::Unknown => self.unknown,
        };
        match listed {
            Some(a) => (a, class_key(class)),
            None => (self.default, "default"),
        }
    }

    /// The protected settings in force: the rule's own list, or the default.
    pub fn protected_settings(&self) -> Vec<String> {
        match &self.protected_settings {
            Some(list) => list.iter().map(|s| s.to_ascii_lowercase()).collect(),
            None => DEFAULT_PROTECTED_SETTINGS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// Whether the rule restricts nothing: every class allowed, no deny lists (an explicit
    /// non-empty `protected_settings` counts as one), no require_where, no max_rows, no
    /// masking. Such a rule behaves as a role without rules.
    pub fn is_unrestricted(&self) -> bool {
        CLASSES.iter().all(|&c| self.action(c).0 == Action::Allow)
            && self.deny_commands.is_empty()
            && self.deny_functions.is_empty()
            && self.deny_patterns.is_empty()
            && self.protected_settings.as_ref().is_none_or(Vec::is_empty)
            && !self.require_where
            && self.max_rows.is_none()
            && !self.mask.detectors().any()
            && self.mask.columns.is_empty()
    }
}

/// A value detector's name in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    Cards,
    Emails,
    Ssns,
    Secrets,
}

/// `[role.R.rules.X.mask]`: column rules and value detectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSection {
    /// Column pattern (`column`, `table.column`, `schema.table.column`, globs) to style
    /// (`full`, `last4`, `hash`, `null`). Among equally specific patterns that match the same
    /// column, the first in name order wins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
    /// Detectors to run; default: all of them when any column rule exists, none otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detectors: Option<Vec<Detector>>,
}

impl MaskSection {
    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        self == &MaskSection::default()
    }

    /// The detectors in force.
    pub fn detectors(&self) -> Detectors {
        match &self.detectors {
            None if self.columns.is_empty() => Detectors::NONE,
            None => Detectors::ALL,
            Some(list) => {
                let mut d = Detectors::NONE;
                for item in list {
                    match item {
                        Detector::Cards => d.cards = true,
                        Detector::Emails => d.emails = true,
                        Detector::Ssns => d.ssns = true,
                        Detector::Secrets => d.secrets = true,
                    }
                }
                d
            }
        }
    }
}

/// `name` as a TOML key in a dotted path: bare when it can be, quoted otherwise (`"*"`).
pub fn toml_key(name: &str) -> Cow<'_, str> {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into()))
    }
}

/// The dotted path of a role's rule table: `role.reader.rules."*"`.
pub fn rule_path(role: &str, resource_key: &str) -> String {
    format!("role.{}.rules.{}", toml_key(role), toml_key(resource_key))
}
