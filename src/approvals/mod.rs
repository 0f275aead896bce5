//! Held statements waiting for a human: the process-wide broker between the shards (which hold
//! a statement and wait) and the control plane (which lists requests and takes decisions).
//!
//! A shard submits a request and waits on its own timer-driven pulse; the broker moves a
//! generation counter on every decision, which each shard compares from the timer it already
//! runs (never from the data path), so nothing is woken across threads and waiting costs no busy
//! loop. The lock is taken on submit, decide and list, never per message.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::identity::{ChainLink, Claims};

mod webhook;

pub use webhook::Webhook;

/// Decided requests kept for `GET /v1/approvals`.
const RECENT: usize = 200;
/// Pending requests at most (more are refused at once rather than held).
const MAX_PENDING: usize = 10_000;

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved {
        by: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        /// Until when the same statement fingerprint by the same identity is approved too.
        #[serde(skip_serializing_if = "Option::is_none")]
        window_until: Option<u64>,
    },
    Denied {
        by: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    TimedOut,
    /// The client disconnected while waiting.
    Withdrawn,
}

/// One request as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    pub session: u64,
    pub token_id: String,
    pub subject: String,
    /// The requester's ancestors, root first.
    pub chain: Vec<ChainLink>,
    pub roles: Vec<String>,
    pub resource: String,
    pub client: String,
    /// The full statement text.
    pub statement: String,
    pub fingerprint: String,
    /// The rule that asked for review.
    pub rule: String,
    /// Unix seconds.
    pub requested_at: f64,
    /// Seconds it has waited (until decided).
    pub waiting_seconds: f64,
    #[serde(flatten)]
    pub status: Status,
}

/// What a shard knows of the request it submitted.
pub struct Submitted {
    pub id: String,
}

/// What a shard asks to hold.
pub struct Ask<'a> {
    pub session: u64,
    pub claims: &'a Claims,
    pub resource: &'a str,
    pub client: SocketAddr,
    pub statement: &'a str,
    pub fingerprint: &'a str,
    pub rule: &'a str,
}

/// What an approver decided.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub approve: bool,
    pub comment: Option<String>,
    /// With an approval: the same fingerprint by the same identity is approved this long.
    pub window: Option<Duration>,
}

impl Decision {
    /// An approval (for this statement only).
    pub fn approve() -> Decision {
        Decision {
            approve: true,
            ..Decision::default()
        }
    }

    /// A denial.
    pub fn deny() -> Decision {
        Decision::default()
    }
}

/// Why a decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("no approval request {0}")]
    NotFound(String),
    #[error("request {0} was already decided ({1})")]
    AlreadyDecided(String, &'static str),
    #[error("this token may not approve statements on resource `{0}`")]
    NotApprover(String),
    #[error("an identity cannot approve a request made by its own identity chain")]
    OwnChain,
    #[error("the approval window may be at most {0}s")]
    WindowTooLong(u64),
}

impl DecideError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            DecideError::NotFound(_) => "not_found",
            DecideError::AlreadyDecided(..) => "already_decided",
            DecideError::NotApprover(_) => "not_approver",
            DecideError::OwnChain => "own_chain",
            DecideError::WindowTooLong(_) => "window_too_long",
        }
    }
}

struct Entry {
    request: Request,
    requested: SystemTime,
    decided: Option<SystemTime>,
}

/// An approval of a fingerprint for an identity, for a while.
struct Window {
    token_id: String,
    resource: String,
    fingerprint: String,
    until: SystemTime,
}

#[derive(Default)]
struct State {
    pending: HashMap<String, Entry>,
    recent: VecDeque<Entry>,
    windows: Vec<Window>,
}

/// The broker. Shared by the shards and the control plane.
#[derive(Default)]
pub struct Approvals {
    state: Mutex<State>,
    generation: AtomicU64,
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The requester's identity chain as token ids: its ancestors and itself.
fn chain_ids(claims: &Claims) -> impl Iterator<Item = &str> {
    claims
        .chain
        .iter()
        .map(|l| l.jti.as_str())
        .chain(std::iter::once(claims.jti.as_str()))
}

impl Approvals {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves on every decision, timeout and withdrawal.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether an approval window already covers this statement for this identity.
    pub fn window_allows(&self, claims: &Claims, resource: &str, fingerprint: &str) -> bool {
        let now = SystemTime::now();
        let mut state = self.lock();
        state.windows.retain(|w| w.until > now);
        state.windows.iter().any(|w| {
            w.token_id == claims.jti && w.resource == resource && w.fingerprint == fingerprint
        })
    }

    /// Holds a statement: a new pending request. `None` when too many are pending.
    pub fn submit(&self, ask: &Ask<'_>) -> Option<Submitted> {
        let mut state = self.lock();
        if state.pending.len() >= MAX_PENDING {
            return None;
        }
        let id = new_id(&state.pending);
        let now = SystemTime::now();
        let request = Request {
            id: id.clone(),
            session: ask.session,
            token_id: ask.claims.jti.clone(),
            subject: ask.claims.sub.clone(),
            chain: ask.claims.chain.clone(),
            roles: ask.claims.roles.clone(),
            resource: ask.resource.to_owned(),
            client: ask.client.to_string(),
            statement: ask.statement.to_owned(),
            fingerprint: ask.fingerprint.to_owned(),
            rule: ask.rule.to_owned(),
            requested_at: secs(now),
            waiting_seconds: 0.0,
            status: Status::Pending,
        };
        state.pending.insert(
            id.clone(),
            Entry {
                request,
                requested: now,
                decided: None,
            },
        );
        Some(Submitted { id })
    }

    /// The request as the API shows it, pending or recent.
    pub fn get(&self, id: &str) -> Option<Request> {
        let state = self.lock();
        state
            .pending
            .get(id)
            .or_else(|| state.recent.iter().find(|e| e.request.id == id))
            .map(|e| e.request.clone())
    }

    /// The request's status (a decided request is looked up among the recent ones).
    pub fn status(&self, id: &str) -> Option<Status> {
        let state = self.lock();
        if let Some(e) = state.pending.get(id) {
            return Some(e.request.status.clone());
        }
        state
            .recent
            .iter()
            .find(|e| e.request.id == id)
            .map(|e| e.request.status.clone())
    }

    /// Ends a pending request without a human (timeout, withdrawal). Returns the request as it
    /// ended, or `None` if it was decided in the meantime.
    pub fn end(&self, id: &str, status: Status) -> Option<Request> {
        let mut state = self.lock();
        let mut entry = state.pending.remove(id)?;
        entry.request.status = status;
        let ended = finish(&mut state, entry);
        drop(state);
        self.changed();
        Some(ended)
    }

    /// A human's decision. `may_approve` says whether the approver's roles cover a resource.
    pub fn decide(
        &self,
        id: &str,
        approver: &Claims,
        decision: Decision,
        max_window: Duration,
        may_approve: impl Fn(&str) -> bool,
    ) -> Result<Request, DecideError> {
        let Decision {
            approve,
            comment,
            window,
        } = decision;
        if window.is_some_and(|w| w > max_window) {
            return Err(DecideError::WindowTooLong(max_window.as_secs()));
        }
        let mut state = self.lock();
        let Some(entry) = state.pending.get(id) else {
            return Err(match state.recent.iter().find(|e| e.request.id == id) {
                Some(e) => {
                    DecideError::AlreadyDecided(id.to_owned(), status_name(&e.request.status))
                }
                None => DecideError::NotFound(id.to_owned()),
            });
        };
        let request = &entry.request;
        if !may_approve(&request.resource) {
            return Err(DecideError::NotApprover(request.resource.clone()));
        }
        let theirs: Vec<&str> = request
            .chain
            .iter()
            .map(|l| l.jti.as_str())
            .chain(std::iter::once(request.token_id.as_str()))
            .collect();
        if chain_ids(approver).any(|id| theirs.contains(&id)) {
            return Err(DecideError::OwnChain);
        }
        let by = format!("{} ({})", approver.sub, approver.jti);
        let now = SystemTime::now();
        let mut entry = state.pending.remove(id).expect("looked up above");
        entry.request.status = if approve {
            let until = window.map(|w| now + w);
            if let Some(until) = until {
                state.windows.push(Window {
                    token_id: entry.request.token_id.clone(),
                    resource: entry.request.resource.clone(),
                    fingerprint: entry.request.fingerprint.clone(),
                    until,
                });
            }
            Status::Approved {
                by,
                comment,
                window_until: until.map(|u| secs(u) as u64),
            }
        } else {
            Status::Denied { by, comment }
        };
        let decided = finish(&mut state, entry);
        drop(state);
        self.changed();
        Ok(decided)
    }

    /// Pending requests (oldest first) and recent decided ones (newest first).
    pub fn list(&self) -> (Vec<Request>, Vec<Request>) {
        let now = SystemTime::now();
        let state = self.lock();
        let mut pending: Vec<Request> = state
            .pending
            .values()
            .map(|e| {
                let mut r = e.request.clone();
                r.waiting_seconds = now
                    .duration_since(e.requested)
                    .map_or(0.0, |d| d.as_secs_f64());
                r
            })
            .collect();
        pending.sort_by(|a, b| a.requested_at.total_cmp(&b.requested_at));
        let recent = state
            .recent
            .iter()
            .rev()
            .map(|e| e.request.clone())
            .collect();
        (pending, recent)
    }
}

/// Moves a decided entry to the recent list; returns its request.
fn finish(state: &mut State, mut entry: Entry) -> Request {
    let now = SystemTime::now();
    entry.decided = Some(now);
    entry.request.waiting_seconds = now
        .duration_since(entry.requested)
        .map_or(0.0, |d| d.as_secs_f64());
    let request = entry.request.clone();
    if state.recent.len() >= RECENT {
        state.recent.pop_front();
    }
    state.recent.push_back(entry);
    request
}

/// The name of a status, for messages.
pub fn status_name(s: &Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Approved { .. } => "approved",
        Status::Denied { .. } => "denied",
        Status::TimedOut => "timed out",
        Status::Withdrawn => "withdrawn",
    }
}

/// A short random id (10 base32 characters), unique among the pending ones.
fn new_id(pending: &HashMap<String, Entry>) -> String {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    loop {
        let mut b = [0u8; 10];
        if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
            let n = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            b.copy_from_slice(&n.to_le_bytes()[..10]);
        }
        let id: String = b
            .iter()
            .map(|x| ALPHABET[usize::from(*x) % ALPHABET.len()] as char)
            .collect();
        if !pending.contains_key(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, chain: &[&str]) -> Claims {
        Claims::test_chain(jti, chain, u64::MAX / 2)
    }

    fn windowed(w: Duration) -> Decision {
        Decision {
            window: Some(w),
            ..Decision::approve()
        }
    }

    fn ask<'a>(c: &'a Claims) -> Ask<'a> {
        Ask {
            session: 1,
            claims: c,
            resource: "orders",
            client: "127.0.0.1:1".parse().unwrap(),
            statement: "DELETE FROM t WHERE id = 1",
            fingerprint: "delete from t where id = ?",
            rule: "role.agent.rules.orders.write",
        }
    }

    #[test]
    fn an_approver_decides_but_never_for_its_own_chain() {
        let a = Approvals::default();
        let requester = claims("leaf", &["root", "mid"]);
        let id = a.submit(&ask(&requester)).unwrap().id;
        assert_eq!(a.status(&id), Some(Status::Pending));
        let g = a.generation();
        let yes = |_: &str| true;
        let h = Duration::from_secs(3600);
        for own in [
            claims("root", &[]),
            claims("mid", &["root"]),
            claims("x", &["root"]),
        ] {
            assert_eq!(
                a.decide(&id, &own, Decision::approve(), h, yes)
                    .unwrap_err(),
                DecideError::OwnChain
            );
        }
        let outsider = claims("oncall", &[]);
        assert_eq!(
            a.decide(&id, &outsider, Decision::approve(), h, |_| false)
                .unwrap_err()
                .code(),
            "not_approver"
        );
        let r = a
            .decide(
                &id,
                &outsider,
                Decision {
                    comment: Some("no".into()),
                    ..Decision::deny()
                },
                h,
                yes,
            )
            .unwrap();
        assert!(matches!(r.status, Status::Denied { .. }));
        assert!(a.generation() > g);
        assert!(matches!(a.status(&id), Some(Status::Denied { .. })));
        assert_eq!(
            a.decide(&id, &outsider, Decision::approve(), h, yes)
                .unwrap_err()
                .code(),
            "already_decided"
        );
        let (pending, recent) = a.list();
        assert!(pending.is_empty());
        assert_eq!(recent.len(), 1);
    }

    #[test]
    fn a_window_approves_the_same_fingerprint_for_the_same_identity_only() {
        let a = Approvals::default();
        let requester = claims("leaf", &["root"]);
        let other = claims("other", &["root"]);
        let id = a.submit(&ask(&requester)).unwrap().id;
        let h = Duration::from_secs(3600);
        assert_eq!(
            a.decide(&id, &claims("ops", &[]), windowed(h * 2), h, |_| true)
                .unwrap_err()
                .code(),
            "window_too_long"
        );
        a.decide(&id, &claims("ops", &[]), windowed(h), h, |_| true)
            .unwrap();
        let fp = "delete from t where id = ?";
        assert!(a.window_allows(&requester, "orders", fp));
        assert!(!a.window_allows(&other, "orders", fp));
        assert!(!a.window_allows(&requester, "billing", fp));
        assert!(!a.window_allows(&requester, "orders", "delete from t"));
    }

    #[test]
    fn timeouts_and_withdrawals_end_a_request_once() {
        let a = Approvals::default();
        let requester = claims("leaf", &[]);
        let id = a.submit(&ask(&requester)).unwrap().id;
        assert!(a.end(&id, Status::Withdrawn).is_some());
        assert!(a.end(&id, Status::TimedOut).is_none());
        assert_eq!(a.status(&id), Some(Status::Withdrawn));
    }
}
