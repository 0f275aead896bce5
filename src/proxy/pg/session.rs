//! One client connection from accept to close: authenticate, connect upstream, relay, end.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;
use tracing::{debug, info, warn};

use super::audit::SessionAudit;
use super::catalog::CatalogResolver;
use super::client::{self, Accepted};
use super::error::SessionError;
use super::guarded::{self, ClientWriter, TableNames};
use super::hold::SessionHolds;
use super::inspect::{Action, Inspector, INSUFFICIENT_PRIVILEGE};
use super::recording::SessionRecording;
use super::relay::{self, EndReason, Exit, SessionState};
use super::upstream;
use crate::audit::{Event, Kind};
use crate::codec::pg;
use crate::identity::Claims;
use crate::mask::ColumnResolver;
use crate::metrics::{Counter, ErrorKind};
use crate::policy::SessionPolicy;
use crate::proxy::sessions::SessionEntry;
use crate::proxy::state::{ShardCtx, Snapshot, UpstreamTarget};

/// Serves one accepted connection to completion. Never panics on client or upstream input.
pub async fn serve(tcp: TcpStream, peer: SocketAddr, listener: usize, ctx: Rc<ShardCtx>) {
    let _ = tcp.set_nodelay(true);
    ctx.live.set(ctx.live.get() + 1);
    ctx.metrics.add(Counter::ConnectionsOpened, 1);
    let _live = LiveGuard(ctx.clone());
    let session_id = ctx.sessions.next_id();
    let mut audit = SessionAudit::new(&ctx.audit, session_id, peer);
    if let Some(a) = &audit {
        a.record(a.event(Kind::Connection, "accept")).await;
    }
    let snapshot = ctx.snapshot.load_full();
    let Some(listener_state) = snapshot.listeners.get(listener) else {
        return;
    };
    let auth_timeout = snapshot.config.gateway.auth_timeout;

    let accepted =
        match monoio::time::timeout(auth_timeout, client::accept(tcp, listener_state)).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "connection refused during startup");
                ctx.metrics.error(e.kind());
                return;
            }
            Err(_) => {
                debug!(%peer, "startup timed out");
                ctx.metrics.error(ErrorKind::AuthTimeout);
                return;
            }
        };
    let mut hello = match accepted {
        Accepted::Gone => return,
        Accepted::Cancel(req) => return forward_cancel(&ctx, req, peer).await,
        Accepted::Session(h) => h,
    };

    let authed = match monoio::time::timeout(
        auth_timeout,
        client::authenticate(&mut hello, &snapshot),
    )
    .await
    {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            info!(%peer, user = hello.startup.user().unwrap_or(""), error = %e, "authentication refused");
            if let Some(a) = &audit {
                a.record(refused_event(a, &hello.startup, "failure", e.to_string()))
                    .await;
            }
            match e {
                SessionError::Auth(_) => ctx.metrics.add(Counter::AuthFailures, 1),
                _ => ctx.metrics.error(e.kind()),
            }
            let (code, msg) = e.client_error();
            client::send_fatal(&mut hello.writer, code, &msg).await;
            return;
        }
        Err(_) => {
            ctx.metrics.error(ErrorKind::AuthTimeout);
            if let Some(a) = &audit {
                let detail = SessionError::AuthTimeout.to_string();
                a.record(refused_event(a, &hello.startup, "failure", detail))
                    .await;
            }
            let (code, msg) = SessionError::AuthTimeout.client_error();
            client::send_fatal(&mut hello.writer, code, &msg).await;
            return;
        }
    };
    let claims = &authed.claims;
    if let Some(a) = &mut audit {
        a.authenticated(claims, &authed.label, &authed.target.name);
    }
    if ctx.revocations.load().covers(claims) {
        info!(%peer, token = claims.jti, "revoked token refused");
        if let Some(a) = &audit {
            let mut e = a.event(Kind::Authentication, "failure");
            e.detail = Some("token was revoked".into());
            a.record(e).await;
        }
        ctx.metrics.add(Counter::AuthFailures, 1);
        let refused = SessionError::Auth("token was revoked".into());
        let (code, msg) = refused.client_error();
        client::send_fatal(&mut hello.writer, code, &msg).await;
        return;
    }
    let resource = authed.target.name.clone();
    let policy = match policy_for(&snapshot, claims, &resource, &hello.startup) {
        Ok(p) => p,
        Err((code, msg)) => {
            info!(%peer, resource, error = msg, "session refused by policy");
            ctx.metrics.error(ErrorKind::SessionRefused);
            if let Some(a) = &audit {
                let mut e = a.event(Kind::Authentication, "refuse");
                e.detail = Some(msg.clone());
                a.record(e).await;
            }
            client::send_fatal(&mut hello.writer, code, &msg).await;
            return;
        }
    };
    if let Some(a) = &audit {
        a.record(a.event(Kind::Authentication, "success")).await;
    }

    // An upstream that accepts the connection but never answers must not hold the client forever.
    let connecting = upstream::connect(&authed.target, &authed.params);
    let connected = monoio::time::timeout(authed.target.connect_timeout + auth_timeout, connecting)
        .await
        .unwrap_or_else(|_| {
            Err(SessionError::Upstream(
                "upstream did not complete authentication in time".into(),
            ))
        });
    let mut up = match connected {
        Ok(u) => u,
        Err(e) => {
            warn!(%peer, resource, error = %e, "upstream connection failed");
            ctx.metrics.error(ErrorKind::UpstreamConnect);
            if let Some(a) = &audit {
                let mut e2 = a.event(Kind::SessionEnd, "failure");
                e2.detail = Some(e.to_string());
                a.record(e2).await;
            }
            let (code, msg) = e.client_error();
            client::send_fatal(&mut hello.writer, code, &msg).await;
            return;
        }
    };
    let key = ctx.cancels.register(authed.target.clone(), up.key);
    let _cancel_key = CancelGuard(ctx.clone(), key.pid);
    let greeting = client::greeting(&up.statuses, &up.ready, key);
    if hello.writer.write_all(greeting).await.is_err() {
        ctx.metrics.error(ErrorKind::ClientIo);
        return;
    }
    ctx.metrics.add(Counter::SessionsStarted, 1);
    info!(
        %peer,
        shard = ctx.id,
        user = authed.label,
        subject = claims.sub,
        token = claims.jti,
        resource,
        tls = hello.tls,
        "session started"
    );

    let expires_in = claims
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let expiry = Instant::now() + expires_in;
    let mut state = SessionState::new(ctx.metrics.clone());
    state.audit = audit;
    if ctx.recorder.enabled() {
        let identity = Arc::new(super::audit::identity_of(claims, Some(&authed.label)));
        state.recording = SessionRecording::start(
            &ctx.recorder,
            session_id,
            identity,
            &resource,
            peer,
            hello.tls,
        );
    }
    let shared_claims = Arc::new(claims.clone());
    let _listed = ctx.sessions.register(SessionEntry {
        id: session_id,
        shard: ctx.id,
        claims: shared_claims.clone(),
        resource: resource.clone(),
        user: authed.label.clone(),
        client: peer,
        started: SystemTime::now(),
        statements: state.statements.clone(),
    });
    let max_message = snapshot.config.gateway.max_message_bytes;
    let mut cbuf = std::mem::take(&mut hello.buf);
    let mut ubuf = std::mem::take(&mut up.buf);
    let inspector = match inspector_for(policy, &up.statuses) {
        Ok(Some(i)) => {
            let mut hooks = i.borrow_mut();
            hooks.judging = state.audit.is_some() || state.recording.is_some();
            hooks.fingerprints = state.audit.is_some();
            drop(hooks);
            Some(i)
        }
        Ok(None) => None,
        Err((code, msg)) => {
            info!(%peer, resource, error = msg, "session refused by policy");
            ctx.metrics.error(ErrorKind::SessionRefused);
            client::send_fatal(&mut hello.writer, code, &msg).await;
            terminate_upstream(&mut up.writer).await;
            return;
        }
    };
    let approval_timeout = snapshot.config.approvals.timeout;
    let gateway = snapshot.config.admin.as_ref().and_then(|a| {
        let scheme = if a.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        (!a.listen.ends_with(":0")).then(|| format!("{scheme}://{}", a.listen))
    });
    drop(snapshot);

    let outcome = match &inspector {
        None => monoio::select! {
            r = relay::client_to_upstream(&mut hello.reader, &mut up.writer, &mut cbuf, &state, max_message) => r,
            r = relay::upstream_to_client(&mut up.reader, &mut hello.writer, &mut ubuf, &state) => r,
            r = control(&ctx, &state, expiry, &shared_claims) => Ok(r),
        },
        Some(inspector) => {
            let tables = SessionTables {
                ctx: &ctx,
                target: &authed.target,
                resolver: ctx.catalog.resolver(&resource),
            };
            let writer = ClientWriter::new(&mut hello.writer);
            let holds = SessionHolds {
                ctx: &ctx,
                claims: &shared_claims,
                session: session_id,
                resource: &resource,
                peer,
                writer: &writer,
                audit: state.audit.as_ref(),
                timeout: approval_timeout,
                gateway,
            };
            monoio::select! {
                r = guarded::client_to_upstream(&mut hello.reader, &mut up.writer, &mut cbuf, &state, max_message, inspector, &tables, &holds) => r,
                r = guarded::upstream_to_client(&mut up.reader, &writer, &mut ubuf, &state, inspector, &tables) => r,
                r = control(&ctx, &state, expiry, &shared_claims) => Ok(r),
            }
        }
    };

    let ending = match &outcome {
        Ok(Exit::ClientClosed { .. }) => "client_closed",
        Ok(Exit::End(EndReason::Expired)) => "expired",
        Ok(Exit::End(EndReason::Revoked)) => "revoked",
        Ok(Exit::End(EndReason::Shutdown)) => "shutdown",
        Err(_) => "error",
    };
    match outcome {
        Ok(Exit::ClientClosed { mid_statement }) => {
            if mid_statement {
                // The upstream may be busy for a long time before it notices the closed socket.
                let target = authed.target.clone();
                let upstream_key = up.key;
                monoio::spawn(async move {
                    let _ = upstream::cancel(&target, upstream_key).await;
                });
            }
            terminate_upstream(&mut up.writer).await;
        }
        Ok(Exit::End(reason)) => {
            match reason {
                EndReason::Expired => ctx.metrics.error(ErrorKind::TokenExpired),
                // Revocation does not wait for the running statement: cancel it upstream.
                EndReason::Revoked if !state.idle() => {
                    let target = authed.target.clone();
                    let upstream_key = up.key;
                    monoio::spawn(async move {
                        let _ = upstream::cancel(&target, upstream_key).await;
                    });
                }
                _ => {}
            }
            if reason == EndReason::Revoked {
                info!(%peer, resource, token = claims.jti, "session ended: token revoked");
            }
            let (code, msg) = reason.client_error();
            client::send_fatal(&mut hello.writer, code, msg).await;
            terminate_upstream(&mut up.writer).await;
            let _ = hello.writer.shutdown().await;
        }
        Err(e) => {
            ctx.metrics.error(e.kind());
            let (code, msg) = e.client_error();
            client::send_fatal(&mut hello.writer, code, &msg).await;
            terminate_upstream(&mut up.writer).await;
            let _ = hello.writer.shutdown().await;
            info!(%peer, resource, error = %e, "session failed");
        }
    }
    if let Some(r) = &state.recording {
        r.end(ending).await;
    }
    if let Some(a) = &state.audit {
        let mut e = a.event(Kind::SessionEnd, ending);
        e.detail = Some(format!(
            "{} statements",
            state.statements.load(std::sync::atomic::Ordering::Relaxed)
        ));
        a.record(e).await;
    }
    info!(
        %peer,
        resource,
        statements = state.statements.load(std::sync::atomic::Ordering::Relaxed),
        blocked = inspector.as_ref().map_or(0, |i| i.borrow().blocked),
        "session ended"
    );
}

/// The policy of a session, checked against its startup parameters before any upstream
/// connection is opened.
fn policy_for(
    snapshot: &Snapshot,
    claims: &Claims,
    resource: &str,
    startup: &pg::StartupMessage,
) -> Result<Arc<SessionPolicy>, (&'static str, String)> {
    let Some(policy) = snapshot.policy.session(&claims.roles, resource) else {
        return Err((
            INSUFFICIENT_PRIVILEGE,
            format!("sluice: no role of this token has a policy for resource \"{resource}\""),
        ));
    };
    // A search_path chosen by the client decides which function an unqualified name calls, so
    // a restricted role cannot set one (in SQL it is a protected setting too).
    if !policy.unrestricted() && startup.param("search_path").is_some() {
        return Err((
            INSUFFICIENT_PRIVILEGE,
            "sluice: search_path cannot be set at startup under a restricted policy".into(),
        ));
    }
    Ok(policy)
}

/// The policy hooks of a session, or None when its role is relayed untouched. Refuses the
/// session (SQLSTATE, message) when the upstream's settings at connect already defeat the
/// policy (a non-UTF-8 client encoding).
fn inspector_for(
    policy: Arc<SessionPolicy>,
    statuses: &[Bytes],
) -> Result<Option<RefCell<Inspector>>, (&'static str, String)> {
    if !Inspector::needed(&policy) {
        return Ok(None);
    }
    let mut inspector = Inspector::new(policy, true);
    let nobody = |_: u32, _: i16| None;
    for status in statuses {
        let frame = pg::Frame {
            tag: pg::tag::backend::PARAMETER_STATUS,
            bytes: status.clone(),
        };
        if let Action::Fatal(code, msg) = inspector.on_server(&frame, &nobody) {
            return Err((code, msg));
        }
    }
    Ok(Some(RefCell::new(inspector)))
}

/// Table names for masking, from the shard's catalog cache.
struct SessionTables<'a> {
    ctx: &'a ShardCtx,
    target: &'a Arc<UpstreamTarget>,
    resolver: CatalogResolver<'a>,
}

impl TableNames for SessionTables<'_> {
    async fn ensure(&self, oids: &[u32]) {
        if let Err(e) = self.ctx.catalog.ensure(self.target, oids).await {
            warn!(resource = self.target.name, error = %e, "catalog lookup failed; unresolved columns are refused");
        }
    }

    fn resolver(&self) -> &dyn ColumnResolver {
        &self.resolver
    }
}

/// Ends the session when its token expires or the gateway drains: at once if idle, otherwise
/// after the running statement; and at once when the drain deadline passes. A revoked token
/// ends the session at once.
async fn control(ctx: &ShardCtx, state: &SessionState, expiry: Instant, claims: &Claims) -> Exit {
    let reason = loop {
        monoio::select! {
            _ = monoio::time::sleep_until(expiry.into()) => break EndReason::Expired,
            _ = ctx.drain.wait() => break EndReason::Shutdown,
            _ = ctx.revoked.next() => {
                if ctx.revocations.load().covers(claims) {
                    return Exit::End(EndReason::Revoked);
                }
            }
        }
    };
    if state.idle() {
        return Exit::End(reason);
    }
    state.end_after_statement(reason);
    loop {
        monoio::select! {
            _ = ctx.force.wait() => return Exit::End(EndReason::Shutdown),
            _ = ctx.revoked.next() => {
                if ctx.revocations.load().covers(claims) {
                    return Exit::End(EndReason::Revoked);
                }
            }
        }
    }
}

async fn terminate_upstream(writer: &mut crate::proxy::io::WriteHalf) {
    let mut out = BytesMut::with_capacity(8);
    pg::encode_terminate(&mut out);
    let _ = writer.write_all(out.freeze()).await;
    let _ = writer.shutdown().await;
}

async fn forward_cancel(ctx: &ShardCtx, req: pg::CancelRequest, peer: SocketAddr) {
    match ctx.cancels.lookup(req) {
        Some((target, upstream_key)) => {
            if let Err(e) = upstream::cancel(&target, upstream_key).await {
                warn!(%peer, error = %e, "forwarding a cancel request failed");
            } else {
                debug!(%peer, pid = req.pid, "cancel request forwarded");
            }
        }
        // Unknown keys are ignored silently, as PostgreSQL does: no oracle for guessing.
        None => debug!(%peer, "cancel request with an unknown key ignored"),
    }
}

struct LiveGuard(Rc<ShardCtx>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get().saturating_sub(1));
    }
}

struct CancelGuard(Rc<ShardCtx>, i32);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.cancels.remove(self.1);
    }
}

/// The audit event of a connection refused before its token was verified: the resource and
/// user it asked for, and why.
fn refused_event(
    audit: &SessionAudit,
    startup: &pg::StartupMessage,
    decision: &'static str,
    detail: String,
) -> Event {
    let mut e = audit.event(Kind::Authentication, decision);
    e.resource = startup.database().map(Into::into);
    e.detail = Some(match startup.user() {
        Some(user) => format!("{detail} (user {user:?})"),
        None => detail,
    });
    e
}
