//! The client side of `sluice stats`: one GET of `/v1/stats` through the shared blocking
//! HTTP client, with timeouts and a size limit.

use std::path::Path;
use std::time::Duration;

use crate::http_client::{Client, HttpClientError, Request, Response, Url};
use crate::metrics::StatsReport;

/// Largest response accepted.
const MAX_RESPONSE: usize = 16 << 20;

/// Why the statistics could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum StatsClientError {
    #[error("--gateway: {0}")]
    Url(String),
    #[error(transparent)]
    Http(#[from] HttpClientError),
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
    let mut client = Client::new(ca_file)?;
    client.timeout = timeout;
    client.total_timeout = timeout.saturating_mul(4);
    client.max_response = MAX_RESPONSE;
    client.user_agent = "sluice-stats";
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
        return Err(StatsClientError::Status {
            status: resp.status,
            body: resp.body_excerpt(),
        });
    }
    serde_json::from_slice(&resp.body)
        .map_err(|e| StatsClientError::Response(format!("not a stats report: {e}")))
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
