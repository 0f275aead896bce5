//! The admin listener's connections: one request each, every step under a deadline, a cap on
//! connections in flight. A client that sends nothing, sends slowly or never reads holds one
//! slot until its deadline and nothing else; the accept loop never waits on a client.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::Splitable;
use monoio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use super::http::{self, Response};
use super::routes;
use super::tokens::{self, Call, Plane};
use crate::metrics::{Collector, ShardSnapshot};
use crate::proxy::io::{ReadHalf, WriteHalf};
use crate::tls::stream;

/// Connections served at once; more are answered 503 at once.
const MAX_CONNECTIONS: usize = 64;
/// Time for a client to complete its TLS handshake and request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the whole exchange, response included.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the shards have to answer a request for their snapshots.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(1);
/// After answering, how long (and how much) unread request bytes are drained so that closing
/// does not reset the connection before the client has read the response.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;
/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// What every connection task shares.
pub(super) struct Shared {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub collector: Collector,
    pub active: Cell<usize>,
    pub plane: Plane,
}

/// Accepts connections until `stopped` says so.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Rc<Shared>,
    stopped: impl Fn() -> bool,
) {
    while !stopped() {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = monoio::time::sleep(STOP_POLL) => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "admin accept failed");
                monoio::time::sleep(STOP_POLL).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        if shared.active.get() >= MAX_CONNECTIONS {
            monoio::spawn(refuse_busy(tcp));
            continue;
        }
        shared.active.set(shared.active.get() + 1);
        let shared = shared.clone();
        monoio::spawn(async move {
            if monoio::time::timeout(EXCHANGE_TIMEOUT, exchange(tcp, peer, &shared))
                .await
                .is_err()
            {
                debug!("admin connection timed out");
            }
            shared.active.set(shared.active.get() - 1);
        });
    }
}

/// Answers 503 to a connection over the cap, without reading it.
async fn refuse_busy(tcp: TcpStream) {
    let (r, w) = tcp.into_split();
    let (mut reader, mut writer) = (ReadHalf::plain(r), WriteHalf::Plain(w));
    let response = Response::error(503, "too many admin connections");
    let _ = monoio::time::timeout(Duration::from_secs(1), async {
        let _ = writer.write_all(response.encode(false).into()).await;
        linger(&mut reader, &mut writer).await;
    })
    .await;
}

async fn exchange(mut tcp: TcpStream, peer: std::net::SocketAddr, shared: &Shared) {
    let head_deadline = Instant::now() + HEAD_TIMEOUT;
    let (mut reader, mut writer, mut buf) = match &shared.tls {
        None => {
            let (r, w) = tcp.into_split();
            (ReadHalf::plain(r), WriteHalf::Plain(w), BytesMut::new())
        }
        Some(cfg) => {
            let conn = match rustls::ServerConnection::new(cfg.clone()) {
                Ok(c) => c,
                Err(e) => return warn!(error = %e, "admin TLS set-up failed"),
            };
            let mut conn = rustls::Connection::Server(conn);
            let shaken = monoio::time::timeout_at(
                head_deadline.into(),
                stream::handshake(&mut tcp, &mut conn),
            )
            .await;
            let leftover = match shaken {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => return debug!(error = %e, "admin TLS handshake failed"),
                Err(_) => return debug!("admin TLS handshake timed out"),
            };
            let (r, w) = stream::split(tcp, conn, leftover);
            (ReadHalf::tls(r), WriteHalf::Tls(w), BytesMut::new())
        }
    };
    let response = match read_head(&mut reader, &mut buf, head_deadline).await {
        Ok(Some((head, _))) if tokens::is_api(&head.path) => {
            let body = match read_body(&mut reader, &mut buf, &head, head_deadline).await {
                Ok(b) => b,
                Err(refused) => {
                    let _ = writer.write_all(refused.encode(false).into()).await;
                    return;
                }
            };
            let call = Call {
                method: &head.method,
                path: &head.path,
                bearer: head.bearer.as_deref(),
                body: &body,
                peer,
            };
            tokens::handle(&shared.plane, call).await.encode(false)
        }
        Ok(Some((head, _))) => match routes::route(&head.method, &head.path) {
            Ok((endpoint, head_only)) => {
                let answers = collect(&shared.collector).await;
                let audit = shared.plane.audit.counters();
                let audit = shared.plane.audit.enabled().then_some(&audit);
                let recorder = &shared.plane.recorder;
                let recording = recorder.counters();
                let recording = recorder.enabled().then_some(&recording);
                routes::render(endpoint, &answers, audit, recording).encode(head_only)
            }
            Err(refused) => refused.encode(head.method == "HEAD"),
        },
        Ok(None) => return,
        Err(refused) => refused.encode(false),
    };
    if writer.write_all(response.into()).await.is_ok() {
        linger(&mut reader, &mut writer).await;
    }
}

/// Reads until a request head is complete; returns it and its length. `Ok(None)`: the client
/// left or timed out (a timed out client that sent part of a request is told 408).
async fn read_head(
    reader: &mut ReadHalf,
    buf: &mut BytesMut,
    deadline: Instant,
) -> Result<Option<(http::RequestHead, usize)>, Response> {
    loop {
        match http::parse_head(buf) {
            Ok(Some(parsed)) => return Ok(Some(parsed)),
            Ok(None) => {}
            Err(refused) => return Err(Response::error(refused.status, refused.reason)),
        }
        match monoio::time::timeout_at(deadline.into(), reader.read_into(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return Ok(None),
            Err(_) if buf.is_empty() => return Ok(None),
            Err(_) => return Err(Response::error(408, "request head not received in time")),
        }
    }
}

/// Reads the body the head announced (its size was checked against the limit with the head).
async fn read_body(
    reader: &mut ReadHalf,
    buf: &mut BytesMut,
    head: &http::RequestHead,
    deadline: Instant,
) -> Result<Vec<u8>, Response> {
    let (_, head_len) = http::parse_head(buf)
        .ok()
        .flatten()
        .ok_or_else(|| Response::json_error(400, "invalid_request", "malformed request"))?;
    let want = head_len + head.content_length as usize;
    while buf.len() < want {
        match monoio::time::timeout_at(deadline.into(), reader.read_into(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => {
                return Err(Response::json_error(
                    400,
                    "invalid_request",
                    "body cut short",
                ))
            }
            Err(_) => {
                return Err(Response::json_error(
                    408,
                    "timeout",
                    "request body not received in time",
                ))
            }
        }
    }
    Ok(buf[head_len..want].to_vec())
}

/// Asks every shard for its snapshot and waits for the answers (at most [`COLLECT_TIMEOUT`];
/// a shard that does not answer in time is reported as such).
async fn collect(collector: &Collector) -> Vec<Option<Arc<ShardSnapshot>>> {
    let mut answers = collector.ask();
    let deadline = Instant::now() + COLLECT_TIMEOUT;
    while !answers.poll() && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
    answers.finish()
}

/// Closes the sending side, then reads and drops what the client still sends (briefly), so
/// that unread request bytes do not make the kernel reset the connection before the client
/// has read the response.
async fn linger(reader: &mut ReadHalf, writer: &mut WriteHalf) {
    let _ = writer.shutdown().await;
    let deadline = Instant::now() + LINGER;
    let mut drained = 0;
    let mut scratch = BytesMut::new();
    while drained < LINGER_BYTES {
        match monoio::time::timeout_at(deadline.into(), reader.read_into(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => {
                drained += n;
                scratch.clear();
            }
            _ => return,
        }
    }
}
