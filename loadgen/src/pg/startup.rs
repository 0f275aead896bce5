//! Opening a PostgreSQL connection: TCP, optional TLS (SSLRequest first), startup packet and
//! authentication (trust, cleartext, md5, SCRAM-SHA-256 through `postgres-protocol`).

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::frontend;

use super::wire::{self, Auth, ResponseScan, ServerError, WireError};
use crate::net::tls::TlsClient;
use crate::net::{connect_tcp, Transport};
use crate::stats::{After, ErrorKind, Failure};

/// Where and as whom to connect.
#[derive(Clone)]
pub struct PgParams {
    pub addr: SocketAddr,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub tls: Option<TlsClient>,
}

/// An authenticated connection, idle (after ReadyForQuery), with its buffers.
pub struct PgStream {
    pub io: Transport,
    /// Bytes received and not yet consumed.
    pub rb: BytesMut,
    /// The next messages to send.
    pub out: BytesMut,
}

fn io_failure(kind: ErrorKind, what: &str, e: io::Error) -> Failure {
    Failure::new(kind, format!("{what}: {e}"), After::Reconnect)
}

fn protocol(e: WireError) -> Failure {
    Failure::new(ErrorKind::Protocol, e.to_string(), After::Reconnect)
}

impl PgStream {
    /// Sends what is in `out` and empties it.
    pub async fn send(&mut self) -> Result<(), Failure> {
        let out = std::mem::take(&mut self.out);
        let (res, mut out) = self.io.write_all(out).await;
        out.clear();
        self.out = out;
        res.map_err(|e| io_failure(ErrorKind::Io, "sending to the server", e))
    }

    /// Sends `out`, then reads until ReadyForQuery; returns the transaction status.
    pub async fn exchange(&mut self, scan: &mut ResponseScan) -> Result<u8, Failure> {
        self.send().await?;
        loop {
            if let Some(status) = scan.feed(&mut self.rb).map_err(protocol)? {
                return Ok(status);
            }
            match self.io.read(&mut self.rb).await {
                Ok(0) => {
                    // A FATAL error (shutdown, terminated backend) comes just before the close.
                    return Err(match scan.error.take() {
                        Some(e) => {
                            Failure::new(ErrorKind::Server(e.code), e.message, After::Reconnect)
                        }
                        None => Failure::new(
                            ErrorKind::Io,
                            "the server closed the connection mid-request",
                            After::Reconnect,
                        ),
                    });
                }
                Ok(_) => {}
                Err(e) => return Err(io_failure(ErrorKind::Io, "reading from the server", e)),
            }
        }
    }

    /// Reads one complete message during start-up: (tag, body).
    async fn next_message(&mut self) -> Result<(u8, BytesMut), Failure> {
        loop {
            if let Some((tag, total)) = wire::peek(&self.rb).map_err(protocol)? {
                let mut msg = self.rb.split_to(total);
                let body = msg.split_off(5);
                return Ok((tag, body));
            }
            match self.io.read(&mut self.rb).await {
                Ok(0) => {
                    return Err(Failure::new(
                        ErrorKind::Connect,
                        "the server closed the connection during start-up",
                        After::Reconnect,
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(io_failure(ErrorKind::Connect, "reading during start-up", e)),
            }
        }
    }
}

/// Opens, authenticates and waits for the first ReadyForQuery.
pub async fn connect(p: &PgParams) -> Result<PgStream, Failure> {
    let mut tcp = connect_tcp(p.addr)
        .await
        .map_err(|e| io_failure(ErrorKind::Connect, &format!("connecting to {}", p.addr), e))?;
    let io = match &p.tls {
        None => Transport::Plain(tcp),
        Some(tls) => {
            use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
            let (res, _) = tcp.write_all(wire::SSL_REQUEST.to_vec()).await;
            res.map_err(|e| io_failure(ErrorKind::Connect, "sending SSLRequest", e))?;
            // Exactly one byte: anything after it must arrive through TLS.
            let (res, answer) = tcp.read(Vec::with_capacity(1)).await;
            let n = res
                .map_err(|e| io_failure(ErrorKind::Connect, "reading the SSLRequest answer", e))?;
            match (n, answer.first()) {
                (1, Some(b'S')) => {}
                (1, Some(b'N')) => {
                    return Err(Failure::new(
                        ErrorKind::Tls,
                        "the server does not accept TLS (answered N to SSLRequest)",
                        After::Stop,
                    ))
                }
                _ => {
                    return Err(Failure::new(
                        ErrorKind::Protocol,
                        "unexpected answer to SSLRequest",
                        After::Stop,
                    ))
                }
            }
            Transport::start_tls(tcp, tls).await.map_err(|e| {
                // A certificate or protocol problem will not go away; a reset might.
                let after = if e.kind() == io::ErrorKind::InvalidData {
                    After::Stop
                } else {
                    After::Reconnect
                };
                Failure::new(ErrorKind::Tls, format!("TLS handshake: {e}"), after)
            })?
        }
    };
    let mut s = PgStream {
        io,
        rb: BytesMut::with_capacity(16 * 1024),
        out: BytesMut::with_capacity(1024),
    };
    frontend::startup_message(
        [
            ("user", p.user.as_str()),
            ("database", p.database.as_str()),
            ("application_name", "sluice-loadgen"),
        ],
        &mut s.out,
    )
    .map_err(|e| {
        Failure::new(
            ErrorKind::Protocol,
            format!("startup packet: {e}"),
            After::Stop,
        )
    })?;
    s.send().await.map_err(|f| Failure {
        kind: ErrorKind::Connect,
        ..f
    })?;
    authenticate(&mut s, p).await?;
    let mut scan = ResponseScan::default();
    loop {
        match scan.feed(&mut s.rb).map_err(protocol)? {
            Some(_) => break,
            None => {
                if let Some(e) = scan.error.take() {
                    return Err(startup_error(e));
                }
                match s.io.read(&mut s.rb).await {
                    Ok(0) => {
                        return Err(Failure::new(
                            ErrorKind::Connect,
                            "the server closed the connection during start-up",
                            After::Reconnect,
                        ))
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Err(io_failure(ErrorKind::Connect, "reading during start-up", e))
                    }
                }
            }
        }
    }
    if let Some(e) = scan.error.take() {
        return Err(startup_error(e));
    }
    Ok(s)
}

/// Class 28 is a credentials problem, 3D000 a missing database: neither gets better by retrying.
fn startup_error(e: ServerError) -> Failure {
    if e.is_auth() {
        Failure::new(ErrorKind::Auth, e.message, After::Stop)
    } else {
        let after = if &e.code == b"3D000" {
            After::Stop
        } else {
            After::Reconnect
        };
        Failure::new(ErrorKind::Server(e.code), e.message, after)
    }
}

fn auth_failure(message: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::Auth, message, After::Stop)
}

async fn authenticate(s: &mut PgStream, p: &PgParams) -> Result<(), Failure> {
    let mut scram: Option<ScramSha256> = None;
    let password = || {
        p.password.as_deref().ok_or_else(|| {
            auth_failure("the server asks for a password and none was given (--password, the URL or PGPASSWORD)")
        })
    };
    loop {
        let (tag, body) = s.next_message().await?;
        match tag {
            b'R' => {}
            b'E' => return Err(startup_error(ServerError::decode(&body))),
            t => {
                return Err(Failure::new(
                    ErrorKind::Protocol,
                    format!(
                        "unexpected message '{}' during authentication",
                        t.escape_ascii()
                    ),
                    After::Stop,
                ))
            }
        }
        let encode =
            |e: io::Error| auth_failure(format!("encoding an authentication message: {e}"));
        match Auth::decode(&body).map_err(protocol)? {
            Auth::Ok => return Ok(()),
            Auth::Cleartext => frontend::password_message(password()?.as_bytes(), &mut s.out).map_err(encode)?,
            Auth::Md5(salt) => {
                let hash = md5_hash(p.user.as_bytes(), password()?.as_bytes(), salt);
                frontend::password_message(hash.as_bytes(), &mut s.out).map_err(encode)?;
            }
            Auth::Sasl(mechanisms) => {
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(auth_failure(format!(
                        "the server offers no supported SASL mechanism ({})",
                        mechanisms.join(", ")
                    )));
                }
                let client = ScramSha256::new(password()?.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, client.message(), &mut s.out)
                    .map_err(encode)?;
                scram = Some(client);
            }
            Auth::SaslContinue(data) => {
                let client = scram
                    .as_mut()
                    .ok_or_else(|| auth_failure("SASL continue without SASL start"))?;
                client
                    .update(&data)
                    .map_err(|e| auth_failure(format!("SCRAM: {e}")))?;
                frontend::sasl_response(client.message(), &mut s.out).map_err(encode)?;
            }
            Auth::SaslFinal(data) => {
                // The server proves it knows the password too.
                scram
                    .take()
                    .ok_or_else(|| auth_failure("SASL final without SASL start"))?
                    .finish(&data)
                    .map_err(|e| auth_failure(format!("SCRAM server signature: {e}")))?;
                continue;
            }
            Auth::Unsupported(code) => {
                return Err(auth_failure(format!(
                    "unsupported authentication method (code {code}); use trust, password, md5 or scram-sha-256"
                )))
            }
        }
        s.send().await?;
    }
}
