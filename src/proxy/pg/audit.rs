//! A session's audit events: who it is (built once, shared by every event), what each
//! statement was (by fingerprint, never by value) and how it was decided. Events are queued on
//! the shard and handed to the audit trail before the statements they describe are forwarded,
//! so nothing runs that the trail was not given.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::SessionError;
use crate::audit::{Audit, Event, Identity, Kind};
use crate::codec::pg::tag;
use crate::identity::Claims;
use crate::sql::{fingerprint_with, LexOptions};

/// SQLSTATE of a statement the audit trail could not take (`audit.overflow = "fail"`).
const AUDIT_UNAVAILABLE: &str = "58000";

/// What the policy decided about one message's statements, for its audit event.
#[derive(Debug)]
pub struct Judged {
    pub fingerprint: String,
    pub decision: &'static str,
    pub rule: Option<String>,
    /// Time spent deciding.
    pub took: Duration,
}

impl Judged {
    /// The record of `sql` judged with `decision` by `rule`.
    pub fn new(
        sql: &str,
        standard_strings: bool,
        decision: &'static str,
        rule: Option<String>,
        took: Duration,
    ) -> Judged {
        let opts = LexOptions {
            standard_conforming_strings: standard_strings,
        };
        Judged {
            fingerprint: fingerprint_with(sql, opts),
            decision,
            rule,
            took,
        }
    }
}

/// The audit side of one session.
pub struct SessionAudit {
    audit: Audit,
    session: u64,
    client: SocketAddr,
    identity: Option<Arc<Identity>>,
    resource: Option<Arc<str>>,
    pending: RefCell<Vec<Event>>,
}

impl SessionAudit {
    /// The events of session `session` from `client`; `None` when the trail is off.
    pub fn new(audit: &Audit, session: u64, client: SocketAddr) -> Option<SessionAudit> {
        audit.enabled().then(|| SessionAudit {
            audit: audit.clone(),
            session,
            client,
            identity: None,
            resource: None,
            pending: RefCell::new(Vec::new()),
        })
    }

    /// From now on events carry this identity and resource.
    pub fn authenticated(&mut self, claims: &Claims, user: &str, resource: &str) {
        self.identity = Some(Arc::new(identity_of(claims, Some(user))));
        self.resource = Some(resource.into());
    }

    /// An event of this session, stamped now.
    pub fn event(&self, kind: Kind, decision: &'static str) -> Event {
        let mut e = Event::new(kind);
        e.session = Some(self.session);
        e.client = Some(self.client);
        e.identity = self.identity.clone();
        e.resource = self.resource.clone();
        e.decision = Some(decision);
        e
    }

    /// Queues the record of a judged statement.
    pub fn statement(&self, judged: Judged) {
        let mut e = self.event(Kind::Statement, judged.decision);
        e.fingerprint = Some(judged.fingerprint);
        e.rule = judged.rule;
        e.added = Some(judged.took);
        self.pending.borrow_mut().push(e);
    }

    /// Queues the record of a statement of an unrestricted session, relayed without judging.
    /// `message` is a whole Query or Parse message.
    pub fn relayed(&self, message: &[u8], read_at: Instant) {
        let Some(sql) = statement_text(message) else {
            return;
        };
        let text = String::from_utf8_lossy(sql);
        let judged = Judged::new(
            &text,
            true,
            "allow",
            Some("unrestricted".into()),
            read_at.elapsed(),
        );
        self.statement(judged);
    }

    /// Hands the queued events to the trail. With `overflow = "block"` this waits (only this
    /// session) until the trail takes them; with `fail`, a refusal ends the session.
    pub async fn flush(&self) -> Result<(), SessionError> {
        let events = std::mem::take(&mut *self.pending.borrow_mut());
        for e in events {
            self.audit.record(e).await.map_err(|refused| {
                SessionError::Policy(
                    AUDIT_UNAVAILABLE,
                    format!("sluice: the audit trail cannot record this session ({refused}); the session ends"),
                )
            })?;
        }
        Ok(())
    }

    /// Records one event now (session start and end).
    pub async fn record(&self, e: Event) {
        // A refusal here has nothing left to stop: the connection or session is already
        // decided, and the trail counts what it refused.
        let _ = self.audit.record(e).await;
    }
}

/// The audit identity of a token's claims.
pub fn identity_of(claims: &Claims, user: Option<&str>) -> Identity {
    Identity {
        token: claims.jti.clone(),
        subject: claims.sub.clone(),
        chain: claims.chain.clone(),
        roles: claims.roles.clone(),
        user: user.map(str::to_owned),
    }
}

/// The SQL text of a whole Query or Parse message.
fn statement_text(message: &[u8]) -> Option<&[u8]> {
    let (&t, rest) = message.split_first()?;
    let body = rest.get(4..)?;
    let body = match t {
        tag::frontend::QUERY => body,
        tag::frontend::PARSE => {
            let name_end = memchr::memchr(0, body)?;
            &body[name_end + 1..]
        }
        _ => return None,
    };
    let end = memchr::memchr(0, body)?;
    Some(&body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn finds_the_text_of_query_and_parse() {
        let mut q = BytesMut::new();
        crate::codec::pg::encode_query(&mut q, "SELECT 1");
        assert_eq!(statement_text(&q), Some(&b"SELECT 1"[..]));
        let mut p = Vec::new();
        p.push(b'P');
        let body = b"s1\0SELECT $1\0\0\0";
        p.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        p.extend_from_slice(body);
        assert_eq!(statement_text(&p), Some(&b"SELECT $1"[..]));
        assert_eq!(statement_text(b"S\0\0\0\x04"), None);
        assert_eq!(statement_text(b"Q\0\0"), None);
    }
}
