//! The upstream side of a session: connect, optional TLS, and authenticate with the credential
//! only the gateway holds (SCRAM-SHA-256, md5, cleartext or trust). The client never sees any of it.

use std::net::ToSocketAddrs;

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use postgres_protocol::authentication::sasl::SCRAM_SHA_256;

use super::scram::ScramClient;
use rustls::ClientConnection;

use super::error::SessionError;
use crate::codec::pg::{self, Authentication, CancelRequest, Frame};
use crate::proxy::io::{ReadHalf, WriteHalf};
use crate::proxy::state::UpstreamTarget;
use crate::tls::stream;

/// Largest backend message accepted during connection set-up.
const MAX_SETUP_MESSAGE: usize = 1 << 20;
/// Largest backend message relayed (PostgreSQL's own limit on a field is 1 GB).
pub const MAX_BACKEND_MESSAGE: usize = (1 << 30) + 1024;

/// An authenticated upstream connection, ready for queries.
pub struct Upstream {
    pub reader: ReadHalf,
    pub writer: WriteHalf,
    pub buf: BytesMut,
    /// The upstream's own cancel key (never shown to the client).
    pub key: CancelRequest,
    /// ParameterStatus and NoticeResponse messages sent after authentication.
    pub statuses: Vec<Bytes>,
    /// The first ReadyForQuery.
    pub ready: Bytes,
}

/// Opens a TCP (and, if configured, TLS) connection to the target.
pub async fn open(target: &UpstreamTarget) -> Result<(ReadHalf, WriteHalf), SessionError> {
    let mut tcp = connect_tcp(target).await?;
    match &target.tls {
        None => {
            let (r, w) = tcp.into_split();
            Ok((ReadHalf::plain(r), WriteHalf::Plain(w)))
        }
        Some((cfg, name)) => {
            let mut req = BytesMut::with_capacity(8);
            pg::encode_ssl_request(&mut req);
            tcp.write_all(req.freeze())
                .await
                .0
                .map_err(SessionError::UpstreamIo)?;
            // Read exactly one byte: anything the server sent after it must come through TLS
            // (the client-side half of CVE-2021-23222).
            let (res, answer) = tcp.read(Vec::with_capacity(1)).await;
            match (res.map_err(SessionError::UpstreamIo)?, answer.first()) {
                (1, Some(b'S')) => {}
                (1, Some(b'N')) => {
                    return Err(SessionError::Upstream(
                        "upstream does not accept TLS but upstream_tls requires it".into(),
                    ))
                }
                _ => {
                    return Err(SessionError::Upstream(
                        "unexpected answer to SSLRequest".into(),
                    ))
                }
            }
            let conn = ClientConnection::new(cfg.clone(), name.clone())
                .map_err(|e| SessionError::Upstream(format!("TLS set-up: {e}")))?;
            let mut conn = rustls::Connection::Client(conn);
            let leftover = stream::handshake(&mut tcp, &mut conn)
                .await
                .map_err(|e| SessionError::Upstream(format!("TLS handshake: {e}")))?;
            let (r, w) = stream::split(tcp, conn, leftover);
            Ok((ReadHalf::tls(r), WriteHalf::Tls(w)))
        }
    }
}

async fn connect_tcp(target: &UpstreamTarget) -> Result<TcpStream, SessionError> {
    // Resolution is blocking; resources are normally addresses or names in /etc/hosts.
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| SessionError::Upstream(format!("cannot resolve {}: {e}", target.host)))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match monoio::time::timeout(target.connect_timeout, TcpStream::connect_addr(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) => last = Some(format!("{addr}: {e}")),
            Err(_) => last = Some(format!("{addr}: connect timed out")),
        }
    }
    Err(SessionError::Upstream(last.unwrap_or_else(|| {
        format!("{} resolved to no address", target.host)
    })))
}

/// Connects and authenticates; `params` are the client's forwarded startup parameters.
pub async fn connect(
    target: &UpstreamTarget,
    params: &[(String, String)],
) -> Result<Upstream, SessionError> {
    let (mut reader, mut writer) = open(target).await?;
    let mut startup: Vec<(&str, &str)> = vec![
        ("user", target.user.as_str()),
        ("database", target.database.as_str()),
    ];
    startup.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut out = BytesMut::with_capacity(256);
    pg::encode_startup(&startup, &mut out);
    send(&mut writer, &mut out).await?;

    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut scram: Option<ScramClient> = None;
    loop {
        let frame = next_frame(&mut reader, &mut buf).await?;
        match frame.tag {
            pg::tag::backend::AUTHENTICATION => {}
            pg::tag::backend::ERROR_RESPONSE => return Err(upstream_fatal(&frame)),
            t => {
                return Err(SessionError::Upstream(format!(
                    "unexpected message '{}' during authentication",
                    t.escape_ascii()
                )))
            }
        }
        let auth = Authentication::decode(&frame).map_err(upstream_codec)?;
        match auth {
            Authentication::Ok => break,
            Authentication::CleartextPassword => {
                pg::encode_password(&mut out, password(target)?);
            }
            Authentication::Md5Password { salt } => {
                let hash = postgres_protocol::authentication::md5_hash(
                    target.user.as_bytes(),
                    password(target)?.as_bytes(),
                    salt,
                );
                pg::encode_password(&mut out, &hash);
            }
            Authentication::Sasl { mechanisms } => {
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(SessionError::Upstream(format!(
                        "upstream offers no supported SASL mechanism ({})",
                        mechanisms.join(", ")
                    )));
                }
                let s = ScramClient::new(password(target)?)
                    .map_err(|e| SessionError::Upstream(format!("SCRAM: {e}")))?;
                pg::encode_sasl_initial_response(
                    &mut out,
                    SCRAM_SHA_256,
                    s.client_first().as_bytes(),
                );
                scram = Some(s);
            }
            Authentication::SaslContinue(data) => {
                let s = scram.as_mut().ok_or_else(|| {
                    SessionError::Upstream("SASL continue without SASL start".into())
                })?;
                let response = s
                    .client_final(&data)
                    .map_err(|e| SessionError::Upstream(format!("SCRAM: {e}")))?;
                pg::encode_sasl_response(&mut out, response.as_bytes());
            }
            Authentication::SaslFinal(data) => {
                // Verifies the server's signature: the upstream proves it knows the password too.
                scram
                    .take()
                    .ok_or_else(|| SessionError::Upstream("SASL final without SASL start".into()))?
                    .finish(&data)
                    .map_err(|e| SessionError::Upstream(format!("SCRAM: {e}")))?;
                continue;
            }
            other => {
                return Err(SessionError::Upstream(format!(
                    "unsupported upstream authentication method {other:?}"
                )))
            }
        }
        send(&mut writer, &mut out).await?;
    }

    let mut statuses = Vec::new();
    let mut key = None;
    loop {
        let frame = next_frame(&mut reader, &mut buf).await?;
        match frame.tag {
            pg::tag::backend::PARAMETER_STATUS | pg::tag::backend::NOTICE_RESPONSE => {
                statuses.push(frame.bytes)
            }
            pg::tag::backend::BACKEND_KEY_DATA => {
                let k = pg::BackendKeyData::decode(&frame).map_err(upstream_codec)?;
                key = Some(CancelRequest {
                    pid: k.pid,
                    secret: k.secret,
                });
            }
            pg::tag::backend::READY_FOR_QUERY => {
                return Ok(Upstream {
                    reader,
                    writer,
                    buf,
                    key: key.unwrap_or(CancelRequest { pid: 0, secret: 0 }),
                    statuses,
                    ready: frame.bytes,
                })
            }
            pg::tag::backend::ERROR_RESPONSE => return Err(upstream_fatal(&frame)),
            t => {
                return Err(SessionError::Upstream(format!(
                    "unexpected message '{}' during connection start-up",
                    t.escape_ascii()
                )))
            }
        }
    }
}

fn password(target: &UpstreamTarget) -> Result<&str, SessionError> {
    target.password.as_deref().ok_or_else(|| {
        SessionError::Upstream(format!(
            "upstream asks for a password but resource `{}` has none configured",
            target.name
        ))
    })
}

async fn send(writer: &mut WriteHalf, out: &mut BytesMut) -> Result<(), SessionError> {
    writer
        .write_all(out.split().freeze())
        .await
        .map_err(SessionError::UpstreamIo)
}

async fn next_frame(reader: &mut ReadHalf, buf: &mut BytesMut) -> Result<Frame, SessionError> {
    loop {
        if let Some(f) = pg::decode_frame(buf, MAX_SETUP_MESSAGE).map_err(upstream_codec)? {
            return Ok(f);
        }
        if reader
            .read_into(buf)
            .await
            .map_err(SessionError::UpstreamIo)?
            == 0
        {
            return Err(SessionError::Upstream(
                "upstream closed the connection during start-up".into(),
            ));
        }
    }
}

fn upstream_codec(e: pg::CodecError) -> SessionError {
    SessionError::Upstream(format!("bad message from upstream: {e}"))
}

/// An upstream ErrorResponse during set-up. Authentication failures are the gateway's
/// configuration problem, not the client's: the client gets a generic message, the log the detail.
fn upstream_fatal(frame: &Frame) -> SessionError {
    let fields = pg::ErrorNotice::decode(frame).ok();
    let code = fields
        .as_ref()
        .and_then(|f| f.code())
        .unwrap_or("08006")
        .to_owned();
    let message = fields
        .as_ref()
        .and_then(|f| f.message())
        .unwrap_or("upstream refused the connection")
        .to_owned();
    if code.starts_with("28") {
        return SessionError::Upstream(format!(
            "upstream rejected the gateway's credential: {message}"
        ));
    }
    SessionError::UpstreamFatal { code, message }
}

/// Sends a CancelRequest for `key` to the target's server (over TLS if the target uses it).
pub async fn cancel(target: &UpstreamTarget, key: CancelRequest) -> Result<(), SessionError> {
    let (mut reader, mut writer) = open(target).await?;
    let mut out = BytesMut::with_capacity(16);
    pg::encode_cancel_request(key, &mut out);
    send(&mut writer, &mut out).await?;
    // The server closes the connection once it has handled the request.
    let mut sink = BytesMut::with_capacity(64);
    let _ = monoio::time::timeout(
        std::time::Duration::from_secs(5),
        reader.read_into(&mut sink),
    )
    .await;
    Ok(())
}
