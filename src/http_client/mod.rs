//! A small blocking HTTP/1.1 client for the control plane's own outbound calls (identity
//! providers' key sets) and for the CLI (`sluice stats`): one request per connection over std
//! sockets, rustls for `https://`, with connect, read and total deadlines and a response cap.

mod framing;
mod url;

#[cfg(test)]
pub(crate) mod test_server;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use framing::{parse as parse_response, Response};
pub use url::Url;

/// Why a request got no complete response.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("bad URL {0}")]
    Url(String),
    #[error("bad request: {0}")]
    Request(String),
    #[error("plaintext http:// is only allowed to loopback addresses, and {0} is not one")]
    NotLoopback(String),
    #[error("cannot reach {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("timed out")]
    Timeout,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed response: {0}")]
    Response(String),
}

/// One request to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    /// Extra header lines; `Host`, `Connection` and `Content-Length` are written by the client.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A `GET` of `url` with the given extra headers.
    pub fn get(url: &'a Url, headers: &'a [(&'a str, &'a str)]) -> Self {
        Request {
            method: "GET",
            url,
            headers,
            body: &[],
        }
    }
}

/// How requests are sent. Cheap to clone: the TLS configuration is shared.
#[derive(Debug, Clone)]
pub struct Client {
    /// Limit for connecting, and for each single read or write.
    pub timeout: Duration,
    /// Limit for the whole exchange, so that a server trickling bytes cannot hold a caller.
    pub total_timeout: Duration,
    /// Largest response (head and body as received) accepted.
    pub max_response: usize,
    /// Refuse `http://` unless the host and every address it resolves to is loopback.
    pub plaintext_loopback_only: bool,
    pub user_agent: &'static str,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// A client that verifies HTTPS servers against `ca_file`, or the public Web PKI roots.
    pub fn new(ca_file: Option<&Path>) -> Result<Client, HttpClientError> {
        crate::tls::config::install_default_provider();
        let tls = crate::tls::config::client_config(ca_file)
            .map_err(|e| HttpClientError::Tls(e.to_string()))?;
        Ok(Client {
            timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            max_response: 1 << 20,
            plaintext_loopback_only: false,
            user_agent: concat!("sluice/", env!("CARGO_PKG_VERSION")),
            tls: Some(tls),
        })
    }

    /// Sends `req` and reads the whole response, whatever its status.
    pub fn send(&self, req: &Request<'_>) -> Result<Response, HttpClientError> {
        let deadline = Instant::now() + self.total_timeout;
        let head = self.request_head(req)?;
        let url = req.url;
        if !url.https && self.plaintext_loopback_only && !url.is_loopback_host() {
            return Err(HttpClientError::NotLoopback(url.host.clone()));
        }
        let tcp = self.connect(url)?;
        let mut conn = if url.https {
            let cfg = self
                .tls
                .clone()
                .ok_or_else(|| HttpClientError::Tls("no TLS configuration".into()))?;
            let name = rustls::pki_types::ServerName::try_from(url.host.clone()).map_err(|_| {
                HttpClientError::Url(format!("`{}` is not a TLS server name", url.host))
            })?;
            let tls = rustls::ClientConnection::new(cfg, name)
                .map_err(|e| HttpClientError::Tls(e.to_string()))?;
            Conn::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)))
        } else {
            Conn::Plain(tcp)
        };
        conn.arm(self.timeout, deadline)?;
        conn.write_all(head.as_bytes()).map_err(io_err)?;
        conn.write_all(req.body).map_err(io_err)?;
        conn.flush().map_err(io_err)?;
        self.read_response(&mut conn, req.method, deadline)
    }

    fn request_head(&self, req: &Request<'_>) -> Result<String, HttpClientError> {
        let clean = |s: &str| !s.is_empty() && !s.bytes().any(|b| b.is_ascii_control());
        if !clean(req.method) || !req.method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(HttpClientError::Request(format!("method `{}`", req.method)));
        }
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nConnection: close\r\n",
            req.method,
            req.url.target,
            req.url.authority(),
            self.user_agent
        );
        for (name, value) in req.headers {
            let reserved = ["host", "connection", "content-length", "transfer-encoding"]
                .iter()
                .any(|r| name.eq_ignore_ascii_case(r));
            if reserved
                || !clean(name)
                || name.contains([':', ' '])
                || value.bytes().any(|b| b.is_ascii_control())
            {
                return Err(HttpClientError::Request(format!("header `{name}`")));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH") {
            head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
        }
        head.push_str("\r\n");
        Ok(head)
    }

    fn connect(&self, url: &Url) -> Result<TcpStream, HttpClientError> {
        let address = url.authority();
        let connect_err = |source| HttpClientError::Connect {
            address: address.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(connect_err)?
            .collect();
        if !url.https && self.plaintext_loopback_only {
            if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(HttpClientError::NotLoopback(a.ip().to_string()));
            }
        }
        let mut last = std::io::Error::other("the name resolved to no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(t) => return Ok(t),
                Err(e) => last = e,
            }
        }
        Err(connect_err(last))
    }

    fn read_response(
        &self,
        conn: &mut Conn,
        method: &str,
        deadline: Instant,
    ) -> Result<Response, HttpClientError> {
        let mut buf = Vec::with_capacity(8192);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            conn.arm(self.timeout, deadline)?;
            let n = match conn.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A TLS peer that closes without close_notify may have been cut short: only a
                // body whose own framing says it is complete is accepted.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return framing::parse(&buf, method, false)?.ok_or_else(|| {
                        HttpClientError::Response(
                            "connection closed without TLS close_notify".into(),
                        )
                    });
                }
                Err(e) => return Err(io_err(e)),
            };
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > self.max_response {
                return Err(HttpClientError::TooLarge(self.max_response));
            }
            if let Some(resp) = framing::parse(&buf, method, n == 0)? {
                return Ok(resp);
            }
        }
    }
}

fn io_err(e: std::io::Error) -> HttpClientError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => HttpClientError::Timeout,
        _ => HttpClientError::Io(e),
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(t) => t,
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Sets the socket timeouts to `timeout`, or less if the total deadline is nearer.
    fn arm(&self, timeout: Duration, deadline: Instant) -> Result<(), HttpClientError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpClientError::Timeout);
        }
        let t = Some(timeout.min(left));
        self.tcp().set_read_timeout(t)?;
        self.tcp().set_write_timeout(t)?;
        Ok(())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(t) => t.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(t) => t.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(t) => t.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests;
