//! What judging a message decides, and the text the client is shown when it is blocked.

/// The decision on one Query or Parse message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every statement may run.
    Allow,
    /// The message must not reach the upstream as it is.
    Block(Blocked),
}

impl Verdict {
    /// Whether the message may run.
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow)
    }
}

/// Why a message was blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The rule's action was `review`: the statement needs a human's approval. (Every other
    /// statement of the message was allowed; a hard block always wins over a review.)
    pub review: bool,
    /// The rule key that decided, e.g. `role.reader.rules."*".write`.
    pub rule: String,
    /// The full text for the client's ErrorResponse (SQLSTATE 42501): starts with `sluice: `,
    /// names the statement's command and the rule.
    pub message: String,
}

/// Builds a [`Blocked`]: `sluice: {what} (role {role}, rule {rule}{detail})` plus `tail`.
pub(super) fn blocked(
    review: bool,
    role: &str,
    rule: String,
    what: &str,
    detail: &str,
    tail: &str,
) -> Blocked {
    let message = format!("sluice: {what} (role {role}, rule {rule}{detail}){tail}");
    Blocked {
        review,
        rule,
        message,
    }
}
