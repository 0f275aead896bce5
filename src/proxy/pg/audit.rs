//! A session's audit events: who it is (built once, shared by every event), what each
//! statement was (by fingerprint, never by value) and how it was decided. Events are queued on
//! the shard and handed to the audit trail before the statements they describe are forwarded,
//! so nothing runs that the trail was not given.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::SessionError;
use crate::audit::{Audit, Event, Identity, Kind};
use crate::codec::pg::tag;
use crate::identity::Claims;
use crate::sql::{fingerprint_with, LexOptions};

/// SQLSTATE of a statement the audit trail could not take (`audit.overflow = "fail"`).
const AUDIT_UNAVAILABLE: &str = "58000";

/// What a judgement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JudgedKind {
    /// A statement decided now: an audit event and a recorded decision.
    Statement,
    /// An allowed Parse: recorded with the statement text, audited at each execution.
    Decision,
    /// One execution of a prepared statement: an audit event only.
    Execution,
}

/// What the policy decided about one message's statements, for its audit event.
#[derive(Debug, Clone)]
pub struct Judged {
    pub kind: JudgedKind,
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
            kind: JudgedKind::Statement,
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
    /// Fingerprints of an unrestricted session's prepared statements and of the portals bound
    /// to them, so that each execution is audited.
    prepared: RefCell<HashMap<Vec<u8>, Rc<str>>>,
    portals: RefCell<HashMap<Vec<u8>, Rc<str>>>,
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
            prepared: RefCell::default(),
            portals: RefCell::default(),
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

    /// Follows a message of an unrestricted session, relayed without judging: a Query is
    /// recorded, a Parse remembered, a Bind ties a portal to its statement, and an Execute is
    /// recorded with its statement's fingerprint. `message` is one whole message.
    pub fn relayed(&self, message: &[u8], read_at: Instant) {
        let Some((&t, rest)) = message.split_first() else {
            return;
        };
        let body = rest.get(4..).unwrap_or_default();
        let fingerprint = |sql: &[u8]| {
            let opts = LexOptions::default();
            fingerprint_with(&String::from_utf8_lossy(sql), opts)
        };
        match t {
            tag::frontend::QUERY => {
                if let Some(sql) = statement_text(message) {
                    self.unrestricted(fingerprint(sql), read_at);
                }
            }
            tag::frontend::PARSE => {
                if let (Some(name), Some(sql)) = (cstr(body, 0), statement_text(message)) {
                    let fp: Rc<str> = fingerprint(sql).into();
                    self.prepared.borrow_mut().insert(name.to_vec(), fp);
                }
            }
            tag::frontend::BIND => {
                let Some(portal) = cstr(body, 0) else { return };
                let Some(statement) = cstr(body, portal.len() + 1) else {
                    return;
                };
                let fp = self.prepared.borrow().get(statement).cloned();
                if let Some(fp) = fp {
                    self.portals.borrow_mut().insert(portal.to_vec(), fp);
                }
            }
            tag::frontend::EXECUTE => {
                let fp = cstr(body, 0).and_then(|p| self.portals.borrow().get(p).cloned());
                if let Some(fp) = fp {
                    self.unrestricted(fp.to_string(), read_at);
                }
            }
            _ => {}
        }
    }

    fn unrestricted(&self, fingerprint: String, read_at: Instant) {
        self.statement(Judged {
            kind: JudgedKind::Statement,
            fingerprint,
            decision: "allow",
            rule: Some("unrestricted".into()),
            took: read_at.elapsed(),
        });
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

/// The NUL-terminated string at `at` in `body`.
fn cstr(body: &[u8], at: usize) -> Option<&[u8]> {
    let rest = body.get(at..)?;
    let end = memchr::memchr(0, rest)?;
    Some(&rest[..end])
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
