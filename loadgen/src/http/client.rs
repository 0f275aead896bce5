//! The HTTP/1.1 workload: one request (encoded once, before the run) per exchange, on kept-alive
//! connections or a fresh connection per request.

use std::net::SocketAddr;

use bytes::BytesMut;

use super::response::ResponseReader;
use super::url::HttpUrl;
use crate::driver::{Client, Reply, Target};
use crate::net::tls::TlsClient;
use crate::net::{connect_tcp, Transport};
use crate::rng::Rng;
use crate::stats::{After, ErrorKind, Failure};

/// Headers the client writes itself from its options.
const MANAGED: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// Encodes the request. `headers` are `Name: value` strings given by the user.
pub fn encode_request(
    method: &str,
    url: &HttpUrl,
    headers: &[String],
    body: &[u8],
    keep_alive: bool,
) -> Result<Vec<u8>, String> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
        return Err(format!(
            "{method:?} is not an HTTP method (expected e.g. GET or POST)"
        ));
    }
    let mut out = format!("{method} {} HTTP/1.1\r\n", url.path);
    let mut has_host = false;
    let mut has_agent = false;
    let mut extra = String::new();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} is not `Name: value`"))?;
        let name = name.trim();
        let value = value.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(format!("header name {name:?} is not a valid token"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!("header {name} holds a line break or NUL"));
        }
        let lower = name.to_ascii_lowercase();
        if MANAGED.contains(&lower.as_str()) {
            return Err(format!(
                "header {name} is set by the load generator (from --body and --no-keepalive)"
            ));
        }
        has_host |= lower == "host";
        has_agent |= lower == "user-agent";
        extra.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_host {
        out.push_str(&format!("Host: {}\r\n", url.host_header()));
    }
    if !has_agent {
        out.push_str(concat!(
            "User-Agent: sluice-loadgen/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    out.push_str(&extra);
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !keep_alive {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Ok(bytes)
}

/// What the worker threads share.
pub struct HttpTarget {
    pub addr: SocketAddr,
    pub tls: Option<TlsClient>,
    pub request: Vec<u8>,
    /// HEAD: responses carry no body.
    pub head: bool,
}

impl Target for HttpTarget {
    type Client = HttpClient;

    fn client(&self) -> HttpClient {
        HttpClient {
            addr: self.addr,
            tls: self.tls.as_ref().map(|t| t.for_thread()),
            request: self.request.clone(),
            head: self.head,
        }
    }
}

/// A worker thread's view of the target.
pub struct HttpClient {
    addr: SocketAddr,
    tls: Option<TlsClient>,
    request: Vec<u8>,
    head: bool,
}

/// An open HTTP connection and its buffers.
pub struct HttpConn {
    io: Transport,
    rb: BytesMut,
    out: BytesMut,
}

impl Client for HttpClient {
    type Conn = HttpConn;

    async fn connect(&self) -> Result<HttpConn, Failure> {
        let tcp = connect_tcp(self.addr).await.map_err(|e| {
            Failure::new(
                ErrorKind::Connect,
                format!("connecting to {}: {e}", self.addr),
                After::Reconnect,
            )
        })?;
        let io = match &self.tls {
            None => Transport::Plain(tcp),
            Some(tls) => Transport::start_tls(tcp, tls).await.map_err(|e| {
                let after = if e.kind() == std::io::ErrorKind::InvalidData {
                    After::Stop
                } else {
                    After::Reconnect
                };
                Failure::new(ErrorKind::Tls, format!("TLS handshake: {e}"), after)
            })?,
        };
        Ok(HttpConn {
            io,
            rb: BytesMut::with_capacity(16 * 1024),
            out: BytesMut::with_capacity(self.request.len()),
        })
    }

    async fn request(&self, c: &mut HttpConn, _rng: &mut Rng) -> Result<Reply, Failure> {
        let mut out = std::mem::take(&mut c.out);
        out.clear();
        out.extend_from_slice(&self.request);
        let (res, out) = c.io.write_all(out).await;
        c.out = out;
        res.map_err(|e| {
            Failure::new(
                ErrorKind::Io,
                format!("sending the request: {e}"),
                After::Reconnect,
            )
        })?;
        let mut reader = ResponseReader::new(self.head);
        loop {
            let done = reader
                .feed(&mut c.rb)
                .map_err(|e| Failure::new(ErrorKind::Protocol, e.to_string(), After::Reconnect))?;
            if let Some(d) = done {
                return Ok(Reply {
                    status: Some(d.status),
                    rows: 0,
                    closed: !d.keep_alive,
                });
            }
            match c.io.read(&mut c.rb).await {
                Ok(0) => {
                    let d = reader.eof().map_err(|e| {
                        Failure::new(ErrorKind::Io, e.to_string(), After::Reconnect)
                    })?;
                    return Ok(Reply {
                        status: Some(d.status),
                        rows: 0,
                        closed: true,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(Failure::new(
                        ErrorKind::Io,
                        format!("reading the response: {e}"),
                        After::Reconnect,
                    ))
                }
            }
        }
    }

    async fn close(&self, c: HttpConn) {
        c.io.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_encoded_with_managed_headers() {
        let url = HttpUrl::parse("http://127.0.0.1:8080/api?x=1").unwrap();
        let req = encode_request("POST", &url, &["X-Token: abc".into()], b"{}", false).unwrap();
        assert_eq!(
            String::from_utf8(req).unwrap(),
            format!(
                "POST /api?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: sluice-loadgen/{}\r\n\
                 X-Token: abc\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
                env!("CARGO_PKG_VERSION")
            )
        );
        let req = encode_request("GET", &url, &["Host: other".into()], b"", true).unwrap();
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("GET /api?x=1 HTTP/1.1\r\nUser-Agent"));
        assert!(text.contains("Host: other\r\n") && !text.contains("Content-Length"));
    }

    #[test]
    fn bad_methods_and_headers_are_refused() {
        let url = HttpUrl::parse("http://h/").unwrap();
        assert!(encode_request("get", &url, &[], b"", true).is_err());
        assert!(encode_request("GET", &url, &["NoColon".into()], b"", true).is_err());
        assert!(encode_request("GET", &url, &["Bad Name: x".into()], b"", true).is_err());
        assert!(encode_request("GET", &url, &["Content-Length: 3".into()], b"", true).is_err());
        assert!(encode_request("GET", &url, &["X: a\nb".into()], b"", true).is_err());
    }
}
