//! A minimal blocking PostgreSQL protocol client for tests that need what a driver hides: the
//! BackendKeyData, transaction status bytes, hand-made malformed messages, slow reading.
//! Encoding and decoding use the gateway crate's own codec.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use sluice::codec::pg::{self, tag, CancelRequest, ErrorNotice, Frame};

/// Largest backend message the raw client accepts (the gateway relays up to 1 GB).
const MAX_MESSAGE: usize = 1 << 30;
/// How long a read may block before the test is considered stuck.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A client connection speaking the protocol over plain TCP.
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    /// The BackendKeyData received at login, if any.
    pub key: Option<CancelRequest>,
}

/// The fields of an ErrorResponse or NoticeResponse a test usually checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Severity (`ERROR`, `FATAL`, ...).
    pub severity: String,
    /// SQLSTATE.
    pub code: String,
    /// Primary message.
    pub message: String,
}

/// Everything the server sent for one request, up to and including ReadyForQuery.
#[derive(Debug, Default)]
pub struct Reply {
    /// Every message, in order.
    pub frames: Vec<Frame>,
    /// The transaction status byte of the final ReadyForQuery (`I`, `T` or `E`).
    pub status: u8,
}

impl Reply {
    /// The first ErrorResponse, if any.
    pub fn error(&self) -> Option<ServerError> {
        self.frames
            .iter()
            .find(|f| f.tag == tag::backend::ERROR_RESPONSE)
            .map(server_error)
    }

    /// Text values of every DataRow, in order (NULL as `None`).
    pub fn rows(&self) -> Vec<Vec<Option<String>>> {
        self.frames
            .iter()
            .filter(|f| f.tag == tag::backend::DATA_ROW)
            .map(|f| {
                data_row(f)
                    .into_iter()
                    .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                    .collect()
            })
            .collect()
    }

    /// CommandComplete tags, in order.
    pub fn command_tags(&self) -> Vec<String> {
        self.frames
            .iter()
            .filter(|f| f.tag == tag::backend::COMMAND_COMPLETE)
            .map(cstr_body)
            .collect()
    }
}

impl RawConn {
    /// Opens a TCP connection with read and write timeouts set.
    pub fn connect(addr: SocketAddr) -> io::Result<RawConn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            key: None,
        })
    }

    /// Connects, sends a StartupMessage, answers the cleartext password request with `token`
    /// and reads until the first ReadyForQuery. Returns the server's error if it refuses.
    pub fn login(
        addr: SocketAddr,
        resource: &str,
        user: &str,
        token: &str,
    ) -> Result<RawConn, ServerError> {
        let io_err = |e: io::Error| ServerError {
            severity: "IO".into(),
            code: String::new(),
            message: e.to_string(),
        };
        let mut conn = RawConn::connect(addr).map_err(io_err)?;
        conn.send_startup(&[("user", user), ("database", resource)])
            .map_err(io_err)?;
        loop {
            let frame = conn.expect_frame().map_err(io_err)?;
            match frame.tag {
                tag::backend::AUTHENTICATION => {
                    match pg::Authentication::decode(&frame).map_err(|e| io_err(codec(e)))? {
                        pg::Authentication::CleartextPassword => {
                            let mut out = BytesMut::new();
                            pg::encode_password(&mut out, token);
                            conn.send(&out).map_err(io_err)?;
                        }
                        pg::Authentication::Ok => {}
                        other => {
                            return Err(io_err(io::Error::other(format!(
                                "unexpected authentication request {other:?}"
                            ))))
                        }
                    }
                }
                tag::backend::BACKEND_KEY_DATA => {
                    let k = pg::BackendKeyData::decode(&frame).map_err(|e| io_err(codec(e)))?;
                    conn.key = Some(CancelRequest {
                        pid: k.pid,
                        secret: k.secret,
                    });
                }
                tag::backend::ERROR_RESPONSE => return Err(server_error(&frame)),
                tag::backend::READY_FOR_QUERY => return Ok(conn),
                _ => {}
            }
        }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends a protocol 3.0 StartupMessage with `params`.
    pub fn send_startup(&mut self, params: &[(&str, &str)]) -> io::Result<()> {
        let mut out = BytesMut::new();
        pg::encode_startup(params, &mut out);
        self.send(&out)
    }

    /// Sends a simple-protocol Query.
    pub fn send_query(&mut self, sql: &str) -> io::Result<()> {
        let mut out = BytesMut::new();
        pg::encode_query(&mut out, sql);
        self.send(&out)
    }

    /// Sends a Query and reads its reply up to ReadyForQuery.
    pub fn query(&mut self, sql: &str) -> io::Result<Reply> {
        self.send_query(sql)?;
        self.read_reply()
    }

    /// Reads messages up to and including the next ReadyForQuery.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let mut reply = Reply::default();
        loop {
            let frame = self.expect_frame()?;
            if frame.tag == tag::backend::READY_FOR_QUERY {
                reply.status = frame.body().first().copied().unwrap_or(0);
                reply.frames.push(frame);
                return Ok(reply);
            }
            reply.frames.push(frame);
        }
    }

    /// The next message, or `None` when the server closed the connection.
    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(f) = pg::decode_frame(&mut self.buf, MAX_MESSAGE).map_err(codec)? {
                return Ok(Some(f));
            }
            if self.fill(64 * 1024)? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside a message",
                    ))
                };
            }
        }
    }

    /// The next message; a closed connection is an error.
    pub fn expect_frame(&mut self) -> io::Result<Frame> {
        self.read_frame()?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
        })
    }

    /// Reads at most `max` more bytes into the buffer; returns how many (0 at end of stream).
    pub fn fill(&mut self, max: usize) -> io::Result<usize> {
        let mut chunk = vec![0u8; max];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Discards buffered bytes (for tests that only count what arrives).
    pub fn discard(&mut self, n: usize) {
        self.buf.advance(n.min(self.buf.len()));
    }

    /// Waits up to `within` for the server to close the connection, discarding whatever it
    /// sends first. A reset counts as closed. Returns the messages received before the close.
    pub fn wait_closed(&mut self, within: Duration) -> Result<Vec<Frame>, String> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "connection still open after {within:?}; received {frames:?}"
                ));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match self.read_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return Ok(frames),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    return Ok(frames)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    }

    /// Sends Terminate; errors are ignored (the test is done with the connection).
    pub fn terminate(mut self) {
        let mut out = BytesMut::new();
        pg::encode_terminate(&mut out);
        let _ = self.send(&out);
    }
}

/// Sends a CancelRequest for `key` on a fresh connection to `addr` and waits for the server to
/// close it (servers answer a cancel request with nothing).
pub fn send_cancel(addr: SocketAddr, key: CancelRequest) -> io::Result<()> {
    let mut conn = RawConn::connect(addr)?;
    let mut out = BytesMut::new();
    pg::encode_cancel_request(key, &mut out);
    conn.send(&out)?;
    conn.wait_closed(Duration::from_secs(10))
        .map(|_| ())
        .map_err(io::Error::other)
}

/// Decodes an ErrorResponse or NoticeResponse.
pub fn server_error(frame: &Frame) -> ServerError {
    let fields = ErrorNotice::decode(frame).expect("malformed error or notice");
    ServerError {
        severity: fields.severity().unwrap_or_default().to_string(),
        code: fields.code().unwrap_or_default().to_string(),
        message: fields.message().unwrap_or_default().to_string(),
    }
}

/// Column values of a DataRow, `None` for NULL.
pub fn data_row(frame: &Frame) -> Vec<Option<Vec<u8>>> {
    assert_eq!(frame.tag, tag::backend::DATA_ROW, "not a DataRow");
    let mut body = frame.body();
    let count = body.get_i16();
    (0..count)
        .map(|_| {
            let len = body.get_i32();
            if len < 0 {
                return None;
            }
            let (value, rest) = body.split_at(len as usize);
            body = rest;
            Some(value.to_vec())
        })
        .collect()
}

/// A message body that is a single NUL-terminated string (CommandComplete).
fn cstr_body(frame: &Frame) -> String {
    let body = frame.body();
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

fn codec(e: pg::CodecError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}
