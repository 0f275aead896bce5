//! The client side of `sluice stats`: one blocking HTTP(S) GET of `/v1/stats`, with timeouts
//! and a size limit.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::StatsReport;

/// Largest response accepted.
const MAX_RESPONSE: u64 = 16 << 20;

/// Why the statistics could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum StatsClientError {
    #[error("--gateway: {0}")]
    Url(String),
    #[error("cannot reach {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("reading the response: {0}")]
    Io(#[from] std::io::Error),
    #[error("the gateway answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("malformed response: {0}")]
    Response(String),
}

/// A parsed `--gateway` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrl {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

/// Parses `http://HOST:PORT` or `https://HOST:PORT` (a trailing `/` is allowed; a path is not).
pub fn parse_url(url: &str) -> Result<GatewayUrl, StatsClientError> {
    let bad = |m: &str| StatsClientError::Url(format!("`{url}`: {m}"));
    let (https, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(bad("must start with http:// or https://"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('@') || rest.contains('?') {
        return Err(bad("give only the scheme, host and port"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad("port must be a number from 1 to 65535"))?,
        ),
        _ => (rest, if https { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    Ok(GatewayUrl {
        https,
        host: host.to_owned(),
        port,
    })
}

/// Fetches `/v1/stats` from the gateway's admin listener. `ca_file` verifies an HTTPS
/// listener's certificate (default: the public Web PKI roots).
pub fn fetch(
    url: &str,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<StatsReport, StatsClientError> {
    let url = parse_url(url)?;
    let address = format!("{}:{}", url.host, url.port);
    let connect_err = |source| StatsClientError::Connect {
        address: address.clone(),
        source,
    };
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(connect_err)?
        .collect();
    let mut last = std::io::Error::other("no address");
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(t) => {
                tcp = Some(t);
                break;
            }
            Err(e) => last = e,
        }
    }
    let tcp = tcp.ok_or_else(|| connect_err(last))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let host_header = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        address.clone()
    };
    let request = format!(
        "GET /v1/stats HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\n\
         Connection: close\r\nUser-Agent: sluice-stats\r\n\r\n"
    );
    let raw = if url.https {
        crate::tls::config::install_default_provider();
        let cfg = crate::tls::config::client_config(ca_file)
            .map_err(|e| StatsClientError::Tls(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(url.host.clone()).map_err(|_| {
            StatsClientError::Url(format!("`{}` is not a TLS server name", url.host))
        })?;
        let conn = rustls::ClientConnection::new(Arc::clone(&cfg), name)
            .map_err(|e| StatsClientError::Tls(e.to_string()))?;
        exchange(rustls::StreamOwned::new(conn, tcp), &request)?
    } else {
        exchange(tcp, &request)?
    };
    parse_response(&raw)
}

fn exchange(mut stream: impl Read + Write, request: &str) -> Result<Vec<u8>, StatsClientError> {
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > MAX_RESPONSE {
        return Err(StatsClientError::Response("response too large".into()));
    }
    Ok(raw)
}

/// Decodes a whole HTTP response carrying the JSON report.
pub fn parse_response(raw: &[u8]) -> Result<StatsReport, StatsClientError> {
    let bad = |m: String| StatsClientError::Response(m);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("truncated head".into())),
        Err(e) => return Err(bad(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    let mut body = &raw[head_len..];
    if let Some(len) = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
    {
        body = body
            .get(..len)
            .ok_or_else(|| bad(format!("body shorter than its Content-Length {len}")))?;
    }
    if status != 200 {
        let text = String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(500)
            .collect();
        return Err(StatsClientError::Status { status, body: text });
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("not a stats report: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gateway_urls() {
        let u = parse_url("http://127.0.0.1:9432").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (false, "127.0.0.1", 9432)
        );
        let u = parse_url("https://gw.example:8443/").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (true, "gw.example", 8443)
        );
        assert_eq!(parse_url("http://[::1]:9432").unwrap().host, "::1");
        assert_eq!(parse_url("https://gw").unwrap().port, 443);
        for bad in [
            "ftp://x:1",
            "127.0.0.1:9432",
            "http://x:0",
            "http://x:1/v1/stats",
            "http://",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_a_report_or_says_what_the_gateway_said() {
        let report = crate::metrics::StatsReport::build(&[]);
        let body = serde_json::to_string(&report).unwrap();
        let ok = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(parse_response(ok.as_bytes()).unwrap(), report);
        let err = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope")
            .unwrap_err()
            .to_string();
        assert!(err.contains("404") && err.contains("nope"), "{err}");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n{").is_err());
    }
}
