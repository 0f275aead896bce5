//! One client connection from accept to close: authenticate, connect upstream, relay, end.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use monoio::net::TcpStream;
use tracing::{debug, info, warn};

use super::client::{self, Accepted};
use super::error::SessionError;
use super::relay::{self, EndReason, Exit, SessionState};
use super::upstream;
use crate::codec::pg;
use crate::proxy::state::ShardCtx;

/// Serves one accepted connection to completion. Never panics on client or upstream input.
pub async fn serve(tcp: TcpStream, peer: SocketAddr, listener: usize, ctx: Rc<ShardCtx>) {
    let _ = tcp.set_nodelay(true);
    ctx.live.set(ctx.live.get() + 1);
    let _live = LiveGuard(ctx.clone());
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
                return;
            }
            Err(_) => {
                debug!(%peer, "startup timed out");
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
            let (code, msg) = e.client_error();
            client::send_fatal(&mut hello.writer, code, &msg).await;
            return;
        }
        Err(_) => {
            let (code, msg) = SessionError::AuthTimeout.client_error();
            client::send_fatal(&mut hello.writer, code, &msg).await;
            return;
        }
    };
    let claims = &authed.claims;
    let resource = authed.target.name.clone();

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
            let (code, msg) = e.client_error();
            client::send_fatal(&mut hello.writer, code, &msg).await;
            return;
        }
    };
    let key = ctx.cancels.register(authed.target.clone(), up.key);
    let _cancel_key = CancelGuard(ctx.clone(), key.pid);
    let greeting = client::greeting(&up.statuses, &up.ready, key);
    if hello.writer.write_all(greeting).await.is_err() {
        return;
    }
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
    let state = SessionState::default();
    let max_message = snapshot.config.gateway.max_message_bytes;
    let mut cbuf = std::mem::take(&mut hello.buf);
    let mut ubuf = std::mem::take(&mut up.buf);
    drop(snapshot);

    let outcome = monoio::select! {
        r = relay::client_to_upstream(&mut hello.reader, &mut up.writer, &mut cbuf, &state, max_message) => r,
        r = relay::upstream_to_client(&mut up.reader, &mut hello.writer, &mut ubuf, &state) => r,
        r = control(&ctx, &state, expiry) => Ok(r),
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
            let (code, msg) = reason.client_error();
            client::send_fatal(&mut hello.writer, code, msg).await;
            terminate_upstream(&mut up.writer).await;
            let _ = hello.writer.shutdown().await;
        }
        Err(e) => {
            let (code, msg) = e.client_error();
            client::send_fatal(&mut hello.writer, code, &msg).await;
            terminate_upstream(&mut up.writer).await;
            let _ = hello.writer.shutdown().await;
            info!(%peer, resource, error = %e, "session failed");
        }
    }
    info!(
        %peer,
        resource,
        statements = state.statements.get(),
        "session ended"
    );
}

/// Ends the session when its token expires or the gateway drains: at once if idle, otherwise
/// after the running statement; and at once when the drain deadline passes.
async fn control(ctx: &ShardCtx, state: &SessionState, expiry: Instant) -> Exit {
    let reason = monoio::select! {
        _ = monoio::time::sleep_until(expiry.into()) => EndReason::Expired,
        _ = ctx.drain.wait() => EndReason::Shutdown,
    };
    if state.idle() {
        return Exit::End(reason);
    }
    state.end_after_statement(reason);
    ctx.force.wait().await;
    Exit::End(EndReason::Shutdown)
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
