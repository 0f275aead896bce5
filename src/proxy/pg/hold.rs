//! A statement held for a human's approval, from the session's side: submit the request, tell
//! the client, wait without a busy loop, and give up when the approval times out or the client
//! goes away.
//!
//! The wait is driven by the shard's timer: the shard fires `ctx.decided` when the broker's
//! generation moves, and the session then looks up its request. Meanwhile the session's next
//! client read is in flight: if it ends (the client hung up) the request is withdrawn; if it
//! brings bytes they stay in the session's buffer for after the decision.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tracing::info;

use super::audit::SessionAudit;
use super::guarded::{ClientRead, ClientWriter, Holds, Waited};
use super::inspect::{Held, Refusal};
use crate::approvals::{status_name, Ask, Status};
use crate::audit::Kind;
use crate::codec::pg;
use crate::identity::Claims;
use crate::proxy::state::ShardCtx;

/// Everything a session's held statements need.
pub struct SessionHolds<'a> {
    pub ctx: &'a ShardCtx,
    pub claims: &'a Arc<Claims>,
    pub session: u64,
    pub resource: &'a str,
    pub peer: SocketAddr,
    pub writer: &'a ClientWriter<'a>,
    pub audit: Option<&'a SessionAudit>,
    pub timeout: Duration,
    /// How to reach the admin API, for the notice (`--gateway URL`), when it is configured.
    pub gateway: Option<String>,
}

impl SessionHolds<'_> {
    async fn audit(&self, decision: &'static str, held: &Held, detail: String) {
        if let Some(a) = self.audit {
            let mut e = a.event(Kind::Approval, decision);
            e.fingerprint = Some(held.fingerprint.clone());
            e.rule = Some(held.rule.clone());
            e.detail = Some(detail);
            a.record(e).await;
        }
    }

    async fn notice(&self, message: &str) {
        let mut out = BytesMut::with_capacity(message.len() + 32);
        pg::encode_notice(&mut out, "NOTICE", "01000", message);
        // A client that cannot be written to is noticed by the relay.
        let _ = self.writer.send(out.freeze()).await;
    }
}

impl Holds for SessionHolds<'_> {
    async fn wait(&self, held: &Held, read: Option<ClientRead<'_>>) -> Waited {
        let mut read = read;
        let mut read_done = None;
        let outcome = self.decide(held, &mut read, &mut read_done).await;
        Waited {
            outcome,
            read: read_done,
        }
    }
}

impl SessionHolds<'_> {
    async fn decide(
        &self,
        held: &Held,
        read: &mut Option<ClientRead<'_>>,
        read_done: &mut Option<bool>,
    ) -> Option<Result<(), Refusal>> {
        let approvals = &self.ctx.approvals;
        if approvals.window_allows(self.claims, self.resource, &held.fingerprint) {
            self.audit(
                "approved",
                held,
                "within an earlier approval's window".into(),
            )
            .await;
            return Some(Ok(()));
        }
        let ask = Ask {
            session: self.session,
            claims: self.claims,
            resource: self.resource,
            client: self.peer,
            statement: &held.sql,
            fingerprint: &held.fingerprint,
            rule: &held.rule,
        };
        let Some(submitted) = approvals.submit(&ask) else {
            return Some(Err(
                "sluice: too many statements await approval; try again later".into(),
            ));
        };
        let id = submitted.id;
        info!(peer = %self.peer, id, rule = held.rule, "statement held for approval");
        self.audit("requested", held, format!("approval {id}"))
            .await;
        self.ctx.webhook.notify(approvals, &id);
        let how = match &self.gateway {
            Some(url) => format!("sluice approvals approve {id} --gateway {url}"),
            None => format!("sluice approvals approve {id}"),
        };
        self.notice(&format!(
            "sluice: statement awaits approval {id} (rule {}); an approver runs: {how}",
            held.rule
        ))
        .await;

        let deadline = Instant::now() + self.timeout;
        loop {
            let mut timed_out = false;
            match read.as_mut() {
                Some(r) => monoio::select! {
                    _ = self.ctx.decided.next() => {}
                    _ = monoio::time::sleep_until(deadline.into()) => timed_out = true,
                    alive = r.as_mut() => {
                        *read = None;
                        *read_done = Some(alive);
                        if !alive && approvals.end(&id, Status::Withdrawn).is_some() {
                            let detail = format!("approval {id}: the client disconnected");
                            self.audit("withdrawn", held, detail).await;
                            return None;
                        }
                    }
                },
                None => monoio::select! {
                    _ = self.ctx.decided.next() => {}
                    _ = monoio::time::sleep_until(deadline.into()) => timed_out = true,
                },
            }
            if timed_out && approvals.end(&id, Status::TimedOut).is_some() {
                let secs = self.timeout.as_secs();
                self.audit("timed_out", held, format!("approval {id} after {secs}s"))
                    .await;
                return Some(Err(format!(
                    "sluice: approval {id} timed out after {secs}s; the statement did not run"
                )
                .into()));
            }
            match approvals.status(&id) {
                Some(Status::Pending) => {}
                Some(Status::Approved { by, .. }) => {
                    self.audit("approved", held, format!("approval {id} by {by}"))
                        .await;
                    return Some(Ok(()));
                }
                Some(Status::Denied { by, comment }) => {
                    let why = comment.map(|c| format!(": {c}")).unwrap_or_default();
                    self.audit("denied", held, format!("approval {id} by {by}{why}"))
                        .await;
                    return Some(Err(format!(
                        "sluice: statement denied by {by}{why} (approval {id})"
                    )
                    .into()));
                }
                Some(other) => {
                    return Some(Err(format!(
                        "sluice: approval {id} {}; the statement did not run",
                        status_name(&other)
                    )
                    .into()))
                }
                None => {
                    return Some(Err(format!(
                        "sluice: approval {id} was lost; the statement did not run"
                    )
                    .into()))
                }
            }
        }
    }
}
