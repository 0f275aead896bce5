//! What the gateway counts: the fixed sets of counters, statement classes and actions, and
//! error kinds, each with the label it is exported under.

use crate::config::{class_key, Action, CLASSES};
use crate::sql::StatementClass;

/// Plain per-shard counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// TCP connections accepted (sessions, cancel requests and refused attempts alike).
    ConnectionsOpened,
    /// Sessions that reached the upstream and started relaying.
    SessionsStarted,
    /// Clients refused for their session token (invalid, expired, wrong resource or role).
    AuthFailures,
    /// Round trips started: Query, Sync and FunctionCall messages (each owes a ReadyForQuery).
    Requests,
    /// Bytes relayed from clients to upstreams, as written (after any rewrite).
    BytesToUpstream,
    /// Bytes relayed from upstreams to clients, as written (after masking).
    BytesToClient,
    /// Values masked in result rows, plus error, notice, notification and COPY messages
    /// rewritten by the value detectors.
    MaskedValues,
}

impl Counter {
    /// Every counter, in slot order.
    pub const ALL: [Counter; 7] = [
        Counter::ConnectionsOpened,
        Counter::SessionsStarted,
        Counter::AuthFailures,
        Counter::Requests,
        Counter::BytesToUpstream,
        Counter::BytesToClient,
        Counter::MaskedValues,
    ];

    /// Index into a counter array.
    pub fn slot(self) -> usize {
        self as usize
    }
}

/// Why a connection or session ended badly, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client broke the protocol (malformed, oversized or unexpected message).
    ClientProtocol,
    /// The client's connection failed or closed during startup or mid-write.
    ClientIo,
    /// The client's startup asked for something refused (plaintext on a TLS listener,
    /// forbidden startup parameters).
    StartupRefused,
    /// The client did not finish authenticating within `gateway.auth_timeout`.
    AuthTimeout,
    /// The token was valid but no policy lets its roles in (or the startup defeats it).
    SessionRefused,
    /// The upstream could not be reached or refused the gateway's login.
    UpstreamConnect,
    /// The upstream closed or broke the connection of a running session.
    UpstreamLost,
    /// The policy hooks ended a session they could not follow safely.
    PolicyFatal,
    /// A session was ended because its token expired.
    TokenExpired,
}

impl ErrorKind {
    /// Every kind, in slot order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::ClientProtocol,
        ErrorKind::ClientIo,
        ErrorKind::StartupRefused,
        ErrorKind::AuthTimeout,
        ErrorKind::SessionRefused,
        ErrorKind::UpstreamConnect,
        ErrorKind::UpstreamLost,
        ErrorKind::PolicyFatal,
        ErrorKind::TokenExpired,
    ];

    /// Index into an error array.
    pub fn slot(self) -> usize {
        self as usize
    }

    /// The `kind` label.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ClientProtocol => "client_protocol",
            ErrorKind::ClientIo => "client_io",
            ErrorKind::StartupRefused => "startup_refused",
            ErrorKind::AuthTimeout => "auth_timeout",
            ErrorKind::SessionRefused => "session_refused",
            ErrorKind::UpstreamConnect => "upstream_connect",
            ErrorKind::UpstreamLost => "upstream_lost",
            ErrorKind::PolicyFatal => "policy_fatal",
            ErrorKind::TokenExpired => "token_expired",
        }
    }
}

/// Statement class slots: the policy's classes in configuration order, then `unclassified`
/// for statements of sessions whose role is relayed without classification.
pub const CLASS_SLOTS: usize = CLASSES.len() + 1;
/// The slot of statements nobody classified.
pub const UNCLASSIFIED: usize = CLASSES.len();
/// Action slots: allow, block, review.
pub const ACTION_SLOTS: usize = 3;

/// The slot of a statement class.
pub fn class_slot(class: StatementClass) -> usize {
    CLASSES
        .iter()
        .position(|&c| c == class)
        .unwrap_or(CLASSES.len() - 1)
}

/// The `class` label of a slot: the class's key in rule tables (`copy_out`), or `unclassified`.
pub fn class_name(slot: usize) -> &'static str {
    CLASSES.get(slot).map_or("unclassified", |&c| class_key(c))
}

/// The slot of an action.
pub fn action_slot(action: Action) -> usize {
    match action {
        Action::Allow => 0,
        Action::Block => 1,
        Action::Review => 2,
    }
}

/// The `action` label of a slot.
pub fn action_name(slot: usize) -> &'static str {
    ["allow", "block", "review"]
        .get(slot)
        .copied()
        .unwrap_or("allow")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_dense_and_names_distinct() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.slot(), i);
        }
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.slot(), i);
        }
        let names: std::collections::BTreeSet<_> = (0..CLASS_SLOTS).map(class_name).collect();
        assert_eq!(names.len(), CLASS_SLOTS);
        assert_eq!(class_name(UNCLASSIFIED), "unclassified");
        for class in CLASSES {
            assert_eq!(class_name(class_slot(class)), class_key(class));
        }
        for a in [Action::Allow, Action::Block, Action::Review] {
            assert_eq!(action_name(action_slot(a)), a.as_str());
        }
    }
}
