//! What one audit event carries. Built on a shard, moved through the queue as is, and
//! serialized only on the writer thread, so recording costs the caller no formatting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::identity::ChainLink;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A client connection was accepted.
    Connection,
    /// A client presented a session token (decision `success` or `failure`).
    Authentication,
    /// The policy decided one statement.
    Statement,
    /// A session ended.
    SessionEnd,
    /// An identity provider's token was exchanged for a session token.
    TokenExchange,
    /// A token delegated a narrower child token.
    TokenDelegation,
    /// A token (and everything derived from it) was revoked.
    TokenRevocation,
    /// A held statement's approval request: requested, approved, denied, timed out, withdrawn.
    Approval,
}

impl Kind {
    /// The name written in the `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Connection => "connection",
            Kind::Authentication => "authentication",
            Kind::Statement => "statement",
            Kind::SessionEnd => "session_end",
            Kind::TokenExchange => "token_exchange",
            Kind::TokenDelegation => "token_delegation",
            Kind::TokenRevocation => "token_revocation",
            Kind::Approval => "approval",
        }
    }
}

/// Who acted: a verified session token and the chain of identities behind it. A session builds
/// one when its token is verified and shares it, behind an `Arc`, with all its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's unique id (`jti`).
    pub token: String,
    /// The token's subject.
    pub subject: String,
    /// The delegating ancestors, root first; empty for a root token.
    pub chain: Vec<ChainLink>,
    pub roles: Vec<String>,
    /// The label the client gave as its user name (free text, recorded, never trusted).
    pub user: Option<String>,
}

/// One audit event. Fields left `None` are omitted from the line. Nothing here may hold a
/// secret or a literal value from a statement: statements are recorded by fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub time: SystemTime,
    pub kind: Kind,
    /// The gateway's id for the client session.
    pub session: Option<u64>,
    pub identity: Option<Arc<Identity>>,
    /// The client's address.
    pub client: Option<SocketAddr>,
    /// The sluice resource (for PostgreSQL, the database name the client asked for).
    pub resource: Option<Arc<str>>,
    /// The statement's fingerprint (`crate::sql::fingerprint`): literals replaced, never values.
    pub fingerprint: Option<String>,
    /// `allow`, `block`, `mask`, `refuse`, `success`, `failure`, ...
    pub decision: Option<&'static str>,
    /// The rule that decided, e.g. `role.reader.rules.orders.write`.
    pub rule: Option<String>,
    /// Time the gateway added to the request.
    pub added: Option<Duration>,
    /// Reason, error code or other detail; never a secret.
    pub detail: Option<String>,
}

impl Event {
    /// An event of `kind` stamped now, with every optional field empty.
    pub fn new(kind: Kind) -> Event {
        Event::at(SystemTime::now(), kind)
    }

    /// An event of `kind` stamped `time`, with every optional field empty.
    pub fn at(time: SystemTime, kind: Kind) -> Event {
        Event {
            time,
            kind,
            session: None,
            identity: None,
            client: None,
            resource: None,
            fingerprint: None,
            decision: None,
            rule: None,
            added: None,
            detail: None,
        }
    }
}
