//! The client side of a session up to a verified identity: SSL/GSS negotiation, TLS, the
//! startup packet, and the cleartext-password exchange that carries the session token.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use rustls::ServerConnection;

use super::error::SessionError;
use crate::codec::pg::{self, CancelRequest, StartupMessage, StartupPacket};
use crate::identity::Claims;
use crate::proxy::io::{read_plain, ReadHalf, WriteHalf, MIN_READ_CHUNK};
use crate::proxy::state::{ListenerState, Snapshot, UpstreamTarget};
use crate::tls::stream;

/// Largest startup packet accepted (PostgreSQL itself allows 10000 bytes).
const MAX_STARTUP: usize = 10_000;
/// Largest password message accepted: a session token with room to spare.
const MAX_PASSWORD: usize = 16 * 1024;

/// Startup parameters passed on to the upstream; anything else is refused, because startup
/// parameters set server settings (`role`, `session_authorization`, `options=-c ...`) before any
/// statement could be judged.
const FORWARDED_PARAMS: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "timezone",
    "extra_float_digits",
    "intervalstyle",
    "search_path",
    "bytea_output",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "geqo",
];

/// A client connection after the startup packet, before authentication.
pub struct Hello {
    pub reader: ReadHalf,
    pub writer: WriteHalf,
    pub buf: BytesMut,
    pub startup: StartupMessage,
    pub tls: bool,
}

/// What a new connection turned out to be.
pub enum Accepted {
    Session(Hello),
    Cancel(CancelRequest),
    /// The client went away before sending a startup packet.
    Gone,
}

/// Reads the startup phase: answers SSLRequest (with TLS if the listener has it) and
/// GSSENCRequest, and returns the startup or cancel packet.
pub async fn accept(
    mut tcp: TcpStream,
    listener: &ListenerState,
) -> Result<Accepted, SessionError> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let Some(packet) = read_startup_plain(&mut tcp, &mut buf).await? else {
            return Ok(Accepted::Gone);
        };
        match packet {
            StartupPacket::SslRequest => match &listener.tls {
                Some(cfg) => {
                    // Bytes pipelined behind the SSLRequest would be read as if they had come
                    // over TLS: refuse them (the server-side half of CVE-2021-23214).
                    if !buf.is_empty() {
                        return Err(SessionError::ClientProtocol(
                            "unencrypted data after SSLRequest".into(),
                        ));
                    }
                    write_raw(&mut tcp, b"S").await?;
                    return accept_tls(tcp, cfg.clone()).await;
                }
                None => write_raw(&mut tcp, b"N").await?,
            },
            StartupPacket::GssEncRequest => write_raw(&mut tcp, b"N").await?,
            StartupPacket::Cancel(c) => return Ok(Accepted::Cancel(c)),
            StartupPacket::Startup(startup) => {
                let (r, w) = tcp.into_split();
                let mut writer = WriteHalf::Plain(w);
                if !listener.allow_plaintext {
                    let (code, msg) = SessionError::TlsRequired.client_error();
                    send_fatal(&mut writer, code, &msg).await;
                    return Err(SessionError::TlsRequired);
                }
                return Ok(Accepted::Session(Hello {
                    reader: ReadHalf::plain(r),
                    writer,
                    buf,
                    startup,
                    tls: false,
                }));
            }
        }
    }
}

async fn accept_tls(
    mut tcp: TcpStream,
    cfg: Arc<rustls::ServerConfig>,
) -> Result<Accepted, SessionError> {
    let conn = ServerConnection::new(cfg)
        .map_err(|e| SessionError::ClientProtocol(format!("TLS set-up: {e}")))?;
    let mut conn = rustls::Connection::Server(conn);
    let leftover = stream::handshake(&mut tcp, &mut conn)
        .await
        .map_err(SessionError::ClientIo)?;
    let (r, w) = stream::split(tcp, conn, leftover);
    let mut reader = ReadHalf::tls(r);
    let writer = WriteHalf::Tls(w);
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(packet) = pg::decode_startup(&mut buf, MAX_STARTUP).map_err(client_codec)? {
            return match packet {
                StartupPacket::Startup(startup) => Ok(Accepted::Session(Hello {
                    reader,
                    writer,
                    buf,
                    startup,
                    tls: true,
                })),
                StartupPacket::Cancel(c) => Ok(Accepted::Cancel(c)),
                StartupPacket::SslRequest | StartupPacket::GssEncRequest => Err(
                    SessionError::ClientProtocol("encryption requested twice".into()),
                ),
            };
        }
        if reader
            .read_into(&mut buf)
            .await
            .map_err(SessionError::ClientIo)?
            == 0
        {
            return Ok(Accepted::Gone);
        }
    }
}

async fn read_startup_plain(
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Option<StartupPacket>, SessionError> {
    loop {
        if let Some(p) = pg::decode_startup(buf, MAX_STARTUP).map_err(client_codec)? {
            return Ok(Some(p));
        }
        if read_plain(tcp, buf, MIN_READ_CHUNK)
            .await
            .map_err(SessionError::ClientIo)?
            == 0
        {
            return Ok(None);
        }
    }
}

async fn write_raw(tcp: &mut TcpStream, data: &'static [u8]) -> Result<(), SessionError> {
    tcp.write_all(data)
        .await
        .0
        .map(|_| ())
        .map_err(SessionError::ClientIo)
}

fn client_codec(e: pg::CodecError) -> SessionError {
    SessionError::ClientProtocol(e.to_string())
}

/// Sends an ErrorResponse with severity FATAL; failures are ignored (the session is ending).
pub async fn send_fatal(writer: &mut WriteHalf, code: &str, message: &str) {
    let mut out = BytesMut::with_capacity(64 + message.len());
    pg::encode_error(&mut out, "FATAL", code, message);
    let _ = writer.write_all(out.freeze()).await;
}

/// A client whose token has been verified for the resource it asked for.
pub struct Authenticated {
    pub claims: Claims,
    pub target: Arc<UpstreamTarget>,
    /// The free-form user name the client sent, recorded with the session.
    pub label: String,
    /// Startup parameters to forward to the upstream.
    pub params: Vec<(String, String)>,
}

/// Checks the startup parameters, asks for the token and verifies it.
pub async fn authenticate(
    hello: &mut Hello,
    snapshot: &Snapshot,
) -> Result<Authenticated, SessionError> {
    let startup = &hello.startup;
    let label = startup.user().unwrap_or_default().to_owned();
    if label.is_empty() {
        return Err(SessionError::Refused(
            "no user name in the startup packet".into(),
        ));
    }
    let resource = startup.database().unwrap_or_default().to_owned();
    let mut params = Vec::new();
    for (name, value) in startup.params() {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "user" | "database" => {}
            "replication" => {
                return Err(SessionError::Refused(
                    "replication connections are not supported".into(),
                ))
            }
            n if FORWARDED_PARAMS.contains(&n) => params.push((name.to_owned(), value.to_owned())),
            _ => {
                return Err(SessionError::Refused(format!(
                    "startup parameter \"{name}\" is not allowed through the gateway"
                )))
            }
        }
    }

    let mut out = BytesMut::with_capacity(16);
    pg::encode_auth_cleartext(&mut out);
    hello
        .writer
        .write_all(out.freeze())
        .await
        .map_err(SessionError::ClientIo)?;
    let frame = loop {
        if let Some(f) = pg::decode_frame(&mut hello.buf, MAX_PASSWORD).map_err(client_codec)? {
            break f;
        }
        if hello
            .reader
            .read_into(&mut hello.buf)
            .await
            .map_err(SessionError::ClientIo)?
            == 0
        {
            return Err(SessionError::ClientIo(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    };
    if frame.tag != pg::tag::frontend::PASSWORD_MESSAGE {
        return Err(SessionError::ClientProtocol(format!(
            "expected a password message, got message type '{}'",
            frame.tag.escape_ascii()
        )));
    }
    let token = pg::PasswordMessage::decode(&frame)
        .map_err(client_codec)?
        .password;
    let claims = snapshot
        .verifier
        .verify(token, SystemTime::now())
        .map_err(|e| SessionError::Auth(e.to_string()))?;
    if !claims.allows_resource(&resource) {
        return Err(SessionError::Auth(format!(
            "token is not valid for resource \"{resource}\""
        )));
    }
    let role_allows = claims.roles.iter().any(|r| {
        snapshot
            .config
            .roles
            .get(r)
            .is_some_and(|role| role.allows_resource(&resource))
    });
    if !role_allows {
        return Err(SessionError::Auth(format!(
            "no role of this token may reach resource \"{resource}\""
        )));
    }
    let target =
        snapshot.upstreams.get(&resource).cloned().ok_or_else(|| {
            SessionError::Auth(format!("resource \"{resource}\" is not configured"))
        })?;
    Ok(Authenticated {
        claims,
        target,
        label,
        params,
    })
}

/// Bytes the client must receive before its session starts: AuthenticationOk, the upstream's
/// parameter statuses and notices, the gateway's own BackendKeyData, and ReadyForQuery.
pub fn greeting(statuses: &[Bytes], ready: &Bytes, key: CancelRequest) -> Bytes {
    let mut out = BytesMut::with_capacity(512);
    pg::encode_auth_ok(&mut out);
    for f in statuses {
        out.extend_from_slice(f);
    }
    pg::BackendKeyData {
        pid: key.pid,
        secret: key.secret,
    }
    .encode(&mut out);
    out.extend_from_slice(ready);
    out.freeze()
}
