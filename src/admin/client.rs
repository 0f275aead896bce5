//! The blocking HTTP(S) client of the admin listener, on the shared HTTP client: `sluice
//! stats` (one GET of `/v1/stats`) and the token commands (JSON requests with a bearer token,
//! JSON answers or errors). One request per connection, with timeouts and a size limit; a
//! bearer token never travels in plaintext beyond loopback.

use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::ErrorBody;
use crate::http_client::{Client, HttpClientError, Request, Response, Url};
use crate::metrics::StatsReport;

/// Largest response accepted.
const MAX_RESPONSE: usize = 16 << 20;

/// Why a call to the admin listener failed.
#[derive(Debug, thiserror::Error)]
pub enum StatsClientError {
    #[error("--gateway: {0}")]
    Url(String),
    #[error(transparent)]
    Http(#[from] HttpClientError),
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
    let parsed = Url::parse(url).map_err(|e| match e {
        HttpClientError::Url(m) => StatsClientError::Url(m),
        other => StatsClientError::Url(other.to_string()),
    })?;
    if parsed.target != "/" || url.ends_with('?') {
        return Err(StatsClientError::Url(format!(
            "`{url}`: give only the scheme, host and port"
        )));
    }
    Ok(GatewayUrl {
        https: parsed.https,
        host: parsed.host,
        port: parsed.port,
    })
}

/// Fetches `/v1/stats` from the gateway's admin listener. `ca_file` verifies an HTTPS
/// listener's certificate (default: the public Web PKI roots).
pub fn fetch(
    url: &str,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<StatsReport, StatsClientError> {
    let gw = parse_url(url)?;
    let url = Url {
        https: gw.https,
        host: gw.host,
        port: gw.port,
        target: "/v1/stats".into(),
    };
    let client = client(ca_file, timeout, "sluice-stats")?;
    let resp = client.send(&Request::get(&url, &[("Accept", "application/json")]))?;
    report(&resp)
}

/// Decodes a whole HTTP response carrying the JSON report.
pub fn parse_response(raw: &[u8]) -> Result<StatsReport, StatsClientError> {
    let resp = crate::http_client::parse_response(raw, "GET", true)?
        .ok_or_else(|| StatsClientError::Response("incomplete response".into()))?;
    report(&resp)
}

fn report(resp: &Response) -> Result<StatsReport, StatsClientError> {
    if resp.status != 200 {
        return Err(status_error(resp));
    }
    serde_json::from_slice(&resp.body)
        .map_err(|e| StatsClientError::Response(format!("not a stats report: {e}")))
}

fn client(
    ca_file: Option<&Path>,
    timeout: Duration,
    agent: &'static str,
) -> Result<Client, StatsClientError> {
    let mut client = Client::new(ca_file)?;
    client.timeout = timeout;
    client.total_timeout = timeout.saturating_mul(4);
    client.max_response = MAX_RESPONSE;
    client.user_agent = agent;
    Ok(client)
}

/// The gateway's error: its code and message from the API's error body, else the body as text.
fn status_error(r: &Response) -> StatsClientError {
    match serde_json::from_slice::<ErrorBody>(&r.body) {
        Ok(b) => StatsClientError::Api {
            status: r.status,
            code: printable(&b.error.code),
            message: printable(&b.error.message),
            retry_after: r.header("retry-after").and_then(|v| v.trim().parse().ok()),
        },
        Err(_) => StatsClientError::Status {
            status: r.status,
            body: printable(&r.body_excerpt()),
        },
    }
}

/// Server text made safe to print on a terminal: control characters (escape sequences
/// included) are escaped, and the length is capped.
fn printable(text: &str) -> String {
    let capped: String = text.chars().take(500).collect();
    crate::identity::escape_controls(&capped)
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
    let gw = parse_url(gateway.url)?;
    let url = Url {
        https: gw.https,
        host: gw.host,
        port: gw.port,
        target: path.into(),
    };
    let authorization = match bearer {
        Some(token) if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) => {
            return Err(StatsClientError::Request(
                "the token is empty or holds spaces or control characters".into(),
            ))
        }
        Some(token) => Some(format!("Bearer {token}")),
        None => None,
    };
    let mut headers = vec![("Accept", "application/json")];
    if let Some(a) = &authorization {
        headers.push(("Authorization", a));
    }
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let mut client = client(gateway.ca_file, gateway.timeout, "sluice")?;
    client.plaintext_loopback_only = true;
    let resp = client.send(&Request {
        method,
        url: &url,
        headers: &headers,
        body: body.unwrap_or_default(),
    })?;
    api_answer(&resp)
}

/// `T` from a 200 answer of the admin API, the gateway's error otherwise.
fn api_answer<T: DeserializeOwned>(resp: &Response) -> Result<T, StatsClientError> {
    if resp.status != 200 {
        return Err(status_error(resp));
    }
    serde_json::from_slice(&resp.body)
        .map_err(|e| StatsClientError::Response(format!("unexpected answer: {e}")))
}

/// Decodes a whole HTTP response from the admin API (see [`post_json`]).
pub fn parse_api_response<T: DeserializeOwned>(raw: &[u8]) -> Result<T, StatsClientError> {
    let resp = crate::http_client::parse_response(raw, "POST", true)?
        .ok_or_else(|| StatsClientError::Response("incomplete response".into()))?;
    api_answer(&resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::{
        ChainLink, DelegateRequest, RevokeRequest, RevokeResponse, SessionsResponse, TokenResponse,
        SESSIONS_PATH, TOKEN_DELEGATE_PATH, TOKEN_REVOKE_PATH,
    };
    use std::io::{Read, Write};

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
    fn a_token_cannot_inject_a_header() {
        for bad in ["", "a.b.c\r\nX-Admin: 1", "a b", "a.b.c\n"] {
            let err = get_json::<SessionsResponse>(
                &gateway("http://127.0.0.1:9"),
                SESSIONS_PATH,
                Some(bad),
            )
            .unwrap_err();
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
        assert!(
            err.to_string().contains("only allowed to loopback"),
            "{err}"
        );
    }
}
