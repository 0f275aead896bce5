//! The blocking HTTP(S) client of the admin listener: `sluice stats` (one GET of `/v1/stats`)
//! and the token commands (JSON requests with a bearer token, JSON answers or errors). One
//! request per connection, with timeouts and a size limit.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::ErrorBody;
use crate::metrics::StatsReport;

/// Largest response accepted.
const MAX_RESPONSE: u64 = 16 << 20;

/// Why a call to the admin listener failed.
#[derive(Debug, thiserror::Error)]
pub enum StatsClientError {
    #[error("--gateway: {0}")]
    Url(String),
    /// The I/O error is this error's source, so `{:#}` shows it once.
    #[error("cannot reach {address}")]
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
    /// The gateway refused with the API's error body.
    #[error("the gateway refused ({status} {code}): {message}{}", retry_hint(*.retry_after))]
    Api {
        status: u16,
        code: String,
        message: String,
        /// Seconds to wait before retrying (`Retry-After`, sent with 429).
        retry_after: Option<u64>,
    },
    /// The request cannot be sent as given.
    #[error("{0}")]
    Request(String),
    #[error("malformed response: {0}")]
    Response(String),
}

/// The errors of every admin API call (the name predates the token commands).
pub type ClientError = StatsClientError;

fn retry_hint(retry_after: Option<u64>) -> String {
    retry_after.map_or_else(String::new, |s| format!(" (retry after {s}s)"))
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
    let request = format!(
        "GET /v1/stats HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\
         Connection: close\r\nUser-Agent: sluice-stats\r\n\r\n",
        host_header(&url)
    );
    let raw = roundtrip(&url, ca_file, timeout, request.as_bytes(), false)?;
    parse_response(&raw)
}

/// The `Host` header value for `url` (IPv6 literals in brackets).
fn host_header(url: &GatewayUrl) -> String {
    if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    }
}

/// Connects, sends `request` whole, and reads the whole response (the server closes after
/// one answer). With `secret`, plaintext is refused unless every address of the host is a
/// loopback address: a token must never cross a network in the clear.
fn roundtrip(
    url: &GatewayUrl,
    ca_file: Option<&Path>,
    timeout: Duration,
    request: &[u8],
    secret: bool,
) -> Result<Vec<u8>, StatsClientError> {
    let address = format!("{}:{}", url.host, url.port);
    let connect_err = |source| StatsClientError::Connect {
        address: address.clone(),
        source,
    };
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(connect_err)?
        .collect();
    if secret && !url.https && addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(StatsClientError::Request(format!(
            "refusing to send a token over plaintext http:// to {}, which is not a loopback \
             address: use https://",
            url.host
        )));
    }
    // TLS set-up first, so that a bad --ca-file is reported even when the gateway is down.
    let tls = if url.https {
        crate::tls::config::install_default_provider();
        let cfg = crate::tls::config::client_config(ca_file)
            .map_err(|e| StatsClientError::Tls(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(url.host.clone()).map_err(|_| {
            StatsClientError::Url(format!("`{}` is not a TLS server name", url.host))
        })?;
        Some(
            rustls::ClientConnection::new(Arc::clone(&cfg), name)
                .map_err(|e| StatsClientError::Tls(e.to_string()))?,
        )
    } else {
        None
    };
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
    match tls {
        Some(conn) => send_and_read(rustls::StreamOwned::new(conn, tcp), request),
        None => send_and_read(tcp, request),
    }
}

fn send_and_read(
    mut stream: impl Read + Write,
    request: &[u8],
) -> Result<Vec<u8>, StatsClientError> {
    stream.write_all(request)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > MAX_RESPONSE {
        return Err(StatsClientError::Response("response too large".into()));
    }
    Ok(raw)
}

/// A response split into what the callers look at.
struct Response<'a> {
    status: u16,
    /// `Retry-After` in seconds, when present and numeric.
    retry_after: Option<u64>,
    body: &'a [u8],
}

fn split_response(raw: &[u8]) -> Result<Response<'_>, StatsClientError> {
    let bad = |m: String| StatsClientError::Response(m);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("truncated head".into())),
        Err(e) => return Err(bad(e.to_string())),
    };
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let mut body = &raw[head_len..];
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = body
            .get(..len)
            .ok_or_else(|| bad(format!("body shorter than its Content-Length {len}")))?;
    }
    Ok(Response {
        status: resp.code.unwrap_or(0),
        retry_after: header("retry-after").and_then(|v| v.parse().ok()),
        body,
    })
}

/// The error for a non-200 answer: the gateway's code and message when the body is the API's
/// error shape, otherwise the status and the start of the body.
fn status_error(r: &Response<'_>) -> StatsClientError {
    match serde_json::from_slice::<ErrorBody>(r.body) {
        Ok(b) => StatsClientError::Api {
            status: r.status,
            code: printable(&b.error.code),
            message: printable(&b.error.message),
            retry_after: r.retry_after,
        },
        Err(_) => StatsClientError::Status {
            status: r.status,
            body: printable(String::from_utf8_lossy(r.body).trim()),
        },
    }
}

/// Server text made safe to print on a terminal: control characters (escape sequences
/// included) are escaped, and the length is capped.
fn printable(text: &str) -> String {
    let capped: String = text.chars().take(500).collect();
    crate::identity::escape_controls(&capped)
}

/// Decodes a whole HTTP response carrying the JSON report.
pub fn parse_response(raw: &[u8]) -> Result<StatsReport, StatsClientError> {
    let r = split_response(raw)?;
    if r.status != 200 {
        return Err(status_error(&r));
    }
    serde_json::from_slice(r.body)
        .map_err(|e| StatsClientError::Response(format!("not a stats report: {e}")))
}

/// Where and how to reach the admin API.
#[derive(Debug, Clone, Copy)]
pub struct Gateway<'a> {
    /// `http://HOST:PORT` (loopback only) or `https://HOST:PORT`.
    pub url: &'a str,
    /// CA certificate (PEM) for an HTTPS listener (default: the public Web PKI roots).
    pub ca_file: Option<&'a Path>,
    /// Limit for connecting, and for each read and write.
    pub timeout: Duration,
}

/// `POST path` with a JSON body and an optional bearer token; decodes a 200 answer as `T`,
/// anything else into [`StatsClientError::Api`] carrying the gateway's code and message.
pub fn post_json<B: Serialize, T: DeserializeOwned>(
    gateway: &Gateway<'_>,
    path: &str,
    bearer: Option<&str>,
    body: &B,
) -> Result<T, StatsClientError> {
    let body = serde_json::to_vec(body)
        .map_err(|e| StatsClientError::Request(format!("encoding the request: {e}")))?;
    call(gateway, "POST", path, bearer, Some(&body))
}

/// `GET path` with an optional bearer token; decodes like [`post_json`].
pub fn get_json<T: DeserializeOwned>(
    gateway: &Gateway<'_>,
    path: &str,
    bearer: Option<&str>,
) -> Result<T, StatsClientError> {
    call(gateway, "GET", path, bearer, None)
}

fn call<T: DeserializeOwned>(
    gateway: &Gateway<'_>,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&[u8]>,
) -> Result<T, StatsClientError> {
    let url = parse_url(gateway.url)?;
    let request = encode_request(method, path, &host_header(&url), bearer, body)?;
    let raw = roundtrip(&url, gateway.ca_file, gateway.timeout, &request, true)?;
    parse_api_response(&raw)
}

/// One HTTP/1.1 request, whole: head, then `body` (JSON) if any. The bearer token must be a
/// single run of visible ASCII, so that it cannot end the header and start another.
pub fn encode_request(
    method: &str,
    path: &str,
    host: &str,
    bearer: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Vec<u8>, StatsClientError> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\
         Connection: close\r\nUser-Agent: sluice/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(token) = bearer {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StatsClientError::Request(
                "the token is empty or holds spaces or control characters".into(),
            ));
        }
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.unwrap_or_default());
    Ok(out)
}

/// Decodes a whole HTTP response from the admin API: `T` from a 200, the gateway's error
/// otherwise.
pub fn parse_api_response<T: DeserializeOwned>(raw: &[u8]) -> Result<T, StatsClientError> {
    let r = split_response(raw)?;
    if r.status != 200 {
        return Err(status_error(&r));
    }
    serde_json::from_slice(r.body)
        .map_err(|e| StatsClientError::Response(format!("unexpected answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::{
        ChainLink, DelegateRequest, RevokeRequest, RevokeResponse, SessionsResponse, TokenResponse,
        SESSIONS_PATH, TOKEN_DELEGATE_PATH, TOKEN_REVOKE_PATH,
    };

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

    /// A one-shot HTTP server on a loopback port: answers the first request with `response`
    /// and hands back the bytes it received (head and Content-Length body).
    fn one_shot_server(response: String) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "client closed before sending a whole request");
                got.extend_from_slice(&buf[..n]);
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut req = httparse::Request::new(&mut headers);
                if let httparse::Status::Complete(head) = req.parse(&got).unwrap() {
                    let len = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .map_or(0, |h| {
                            std::str::from_utf8(h.value).unwrap().parse().unwrap()
                        });
                    if got.len() >= head + len {
                        break;
                    }
                }
            }
            conn.write_all(response.as_bytes()).unwrap();
            got
        });
        (url, server)
    }

    fn json_response(status: &str, extra: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn gateway(url: &str) -> Gateway<'_> {
        Gateway {
            url,
            ca_file: None,
            timeout: Duration::from_secs(10),
        }
    }

    fn delegate_request() -> DelegateRequest {
        DelegateRequest {
            name: "report-subagent".into(),
            roles: vec!["reader".into()],
            resources: vec!["orders".into()],
            ttl: Some("5m".into()),
        }
    }

    #[test]
    fn post_sends_bearer_and_json_and_decodes_the_answer() {
        let answer = TokenResponse {
            token: "aaa.bbb.ccc".into(),
            token_id: "J3".into(),
            subject: "report-subagent".into(),
            roles: vec!["reader".into()],
            resources: vec!["orders".into()],
            expires_at: 1_748_779_500,
            chain: vec![ChainLink {
                jti: "J1".into(),
                name: "ci-root".into(),
            }],
        };
        let body = serde_json::to_string(&answer).unwrap();
        let (url, server) = one_shot_server(json_response("200 OK", "", &body));
        let got: TokenResponse = post_json(
            &gateway(&url),
            TOKEN_DELEGATE_PATH,
            Some("parent.token.sig"),
            &delegate_request(),
        )
        .unwrap();
        assert_eq!(got, answer);

        let raw = server.join().unwrap();
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head = match req.parse(&raw).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial request"),
        };
        assert_eq!(req.method, Some("POST"));
        assert_eq!(req.path, Some("/v1/token/delegate"));
        assert_eq!(req.version, Some(1));
        let header = |name: &str| {
            let values: Vec<&str> = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| std::str::from_utf8(h.value).unwrap())
                .collect();
            assert_eq!(values.len(), 1, "exactly one {name} header");
            values[0].to_owned()
        };
        assert_eq!(header("authorization"), "Bearer parent.token.sig");
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(header("host"), url.trim_start_matches("http://"));
        assert_eq!(header("connection"), "close");
        let sent_body = &raw[head..];
        assert_eq!(header("content-length"), sent_body.len().to_string());
        let sent: DelegateRequest = serde_json::from_slice(sent_body).unwrap();
        assert_eq!(sent, delegate_request());
    }

    #[test]
    fn an_api_error_shows_the_gateways_code_and_message() {
        let body = r#"{"error":{"code":"scope_widening","message":"the parent token does not reach `billing`"}}"#;
        let (url, server) = one_shot_server(json_response("403 Forbidden", "", body));
        let err = post_json::<_, TokenResponse>(
            &gateway(&url),
            TOKEN_DELEGATE_PATH,
            Some("parent.token.sig"),
            &delegate_request(),
        )
        .unwrap_err();
        server.join().unwrap();
        assert!(
            matches!(&err, StatsClientError::Api { status: 403, code, retry_after: None, .. }
                if code == "scope_widening"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the gateway refused (403 scope_widening): the parent token does not reach `billing`"
        );
    }

    #[test]
    fn a_429_says_when_to_retry() {
        let body = r#"{"error":{"code":"rate_limited","message":"too many exchanges"}}"#;
        let raw = json_response("429 Too Many Requests", "Retry-After: 7\r\n", body);
        let err = parse_api_response::<RevokeResponse>(raw.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the gateway refused (429 rate_limited): too many exchanges (retry after 7s)"
        );
        // A body that is not the error shape still says what came back.
        let raw = json_response("502 Bad Gateway", "", "upstream\u{1b}[31m down");
        let err = parse_api_response::<RevokeResponse>(raw.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the gateway answered 502: upstream\\u{1b}[31m down"
        );
    }

    #[test]
    fn get_decodes_sessions() {
        let body = r#"{"sessions":[{"session":9,"shard":0,"token_id":"J","subject":"s",
            "chain":[],"roles":["reader"],"resource":"orders","user":"u",
            "client":"127.0.0.1:5000","started_at":1748779200.25,"statements":3}]}"#;
        let (url, server) = one_shot_server(json_response("200 OK", "", body));
        let got: SessionsResponse =
            get_json(&gateway(&url), SESSIONS_PATH, Some("admin.token.sig")).unwrap();
        assert_eq!(got.sessions[0].session, 9);
        assert_eq!(got.sessions[0].started_at, 1_748_779_200.25);
        let raw = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(raw.starts_with("GET /v1/sessions HTTP/1.1\r\n"), "{raw}");
        assert!(
            raw.contains("\r\nAuthorization: Bearer admin.token.sig\r\n"),
            "{raw}"
        );
        assert!(
            !raw.to_ascii_lowercase().contains("content-length"),
            "{raw}"
        );
    }

    #[test]
    fn request_encoding_refuses_header_injection() {
        let ok = encode_request(
            "POST",
            "/v1/token/revoke",
            "gw:8443",
            Some("a.b.c"),
            Some(b"{}"),
        )
        .unwrap();
        let text = String::from_utf8(ok).unwrap();
        assert!(text.starts_with("POST /v1/token/revoke HTTP/1.1\r\nHost: gw:8443\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"), "{text}");
        for bad in ["", "a.b.c\r\nX-Admin: 1", "a b", "a.b.c\n"] {
            let err = encode_request("GET", "/", "h:1", Some(bad), None).unwrap_err();
            assert!(matches!(err, StatsClientError::Request(_)), "{bad:?}");
        }
    }

    #[test]
    fn tokens_never_travel_in_plaintext_beyond_loopback() {
        // 192.0.2.1 is TEST-NET-1: the check fires before any connection is attempted.
        let err = post_json::<_, RevokeResponse>(
            &gateway("http://192.0.2.1:9432"),
            TOKEN_REVOKE_PATH,
            Some("a.b.c"),
            &RevokeRequest {
                token_id: "J".into(),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("use https://"), "{err}");
    }
}
