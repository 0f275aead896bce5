//! Sans-IO HTTP/1.1 for the admin listener: parse a request head (httparse) with strict
//! framing rules, and encode a whole response. Every response closes the connection, so no
//! request ever follows another on the same socket and there is no pipelining to get wrong.

use std::fmt::Write;

/// Largest request head accepted; larger gets 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body accepted; larger gets 413.
pub const MAX_BODY: u64 = 64 * 1024;
/// Headers parsed at most; more gets 431.
const MAX_HEADERS: usize = 32;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    /// Length of the body that follows the head (0 when none was declared).
    pub content_length: u64,
    /// The credential of an `Authorization: Bearer` header.
    pub bearer: Option<String>,
}

/// Why a request is refused before routing: the status to answer with and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// Parses the head at the start of `buf`: `Ok(None)` when more bytes are needed, the head and
/// its length once complete, or the refusal of a malformed, oversized or unsupported request.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(refuse(431, "request head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(refuse(431, "too many headers")),
        Err(_) => return Err(refuse(400, "malformed request")),
    };
    if len > MAX_HEAD {
        return Err(refuse(431, "request head too large"));
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(refuse(400, "malformed request"));
    };
    // Only origin-form targets (`/path?query`); absolute and authority forms are not ours.
    if !target.starts_with('/') {
        return Err(refuse(400, "request target must be a path"));
    }
    let mut content_length: Option<u64> = None;
    let mut host = false;
    let mut bearer = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not accepted: with Content-Length only, the framing cannot
            // be read two ways.
            return Err(refuse(400, "Transfer-Encoding is not accepted"));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| refuse(400, "invalid Content-Length"))?;
            if content_length.is_some_and(|c| c != v) {
                return Err(refuse(400, "conflicting Content-Length headers"));
            }
            content_length = Some(v);
        }
        host |= h.name.eq_ignore_ascii_case("host");
        if h.name.eq_ignore_ascii_case("authorization") {
            if bearer.is_some() {
                return Err(refuse(400, "more than one Authorization header"));
            }
            let value = std::str::from_utf8(h.value)
                .map_err(|_| refuse(400, "invalid Authorization header"))?;
            let (scheme, credential) = value.trim().split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
                return Err(refuse(401, "use Authorization: Bearer <token>"));
            }
            bearer = Some(credential.trim().to_owned());
        }
    }
    // HTTP/1.1 requires Host (RFC 9112 section 3.2).
    if version == 1 && !host {
        return Err(refuse(400, "missing Host header"));
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(refuse(413, "request body too large"));
    }
    let path = target.split('?').next().unwrap_or(target).to_owned();
    Ok(Some((
        RequestHead {
            method: method.to_owned(),
            path,
            content_length,
            bearer,
        },
        len,
    )))
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra header lines (`Name: value`), e.g. `Allow` on a 405.
    pub headers: Vec<String>,
}

impl Response {
    /// A response with a body.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// An error before any endpoint answered: a JSON error body whose code is named after the
    /// status, with `detail` as its message.
    pub fn error(status: u16, detail: &str) -> Response {
        let code = match status {
            400 => "invalid_request",
            401 => "unauthenticated",
            404 => "not_found",
            405 => "method_not_allowed",
            408 => "timeout",
            413 => "body_too_large",
            431 => "head_too_large",
            503 => "busy",
            _ => "internal",
        };
        Response::json_error(status, code, detail)
    }

    /// A JSON error: `{"error": {"code": ..., "message": ...}}` with a stable `code`.
    pub fn json_error(status: u16, code: &str, message: &str) -> Response {
        let mut r = Response::json(status, &super::api::ErrorBody::new(code, message));
        r.status = status;
        r
    }

    /// A JSON body.
    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        match serde_json::to_vec_pretty(value) {
            Ok(mut body) => {
                body.push(b'\n');
                Response::new(status, "application/json", body)
            }
            Err(_) => Response::json_error(500, "internal", "could not encode the response"),
        }
    }

    /// The bytes on the wire; with `head_only` (a HEAD request) the body is left out but its
    /// length is still announced.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for h in &self.headers {
            let _ = write!(head, "{h}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase of the statuses the admin listener uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n";

    #[test]
    fn parses_a_request_from_every_prefix() {
        for cut in 0..GET.len() {
            assert_eq!(parse_head(&GET[..cut]), Ok(None), "prefix {cut}");
        }
        let (head, len) = parse_head(GET).unwrap().unwrap();
        assert_eq!(len, GET.len());
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/metrics");
        assert_eq!(head.content_length, 0);
        // HTTP/1.0 needs no Host.
        assert!(parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn refuses_bad_framing_and_oversize() {
        let status = |req: &[u8]| parse_head(req).err().map(|r| r.status);
        assert_eq!(status(b"GARBAGE\x01 / HTTP/1.1\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), Some(400)); // no Host
        assert_eq!(
            status(b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"),
            Some(413)
        );
        let mut long = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 10, b'a');
        assert_eq!(status(&long), Some(431));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(status(&many), Some(431));
    }

    #[test]
    fn encodes_responses_with_length_and_close() {
        let r = Response::new(200, "text/plain", "hi");
        let wire = String::from_utf8(r.encode(false)).unwrap();
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(wire.contains("Content-Length: 2\r\n") && wire.contains("Connection: close\r\n"));
        assert!(wire.ends_with("\r\n\r\nhi"));
        let head = String::from_utf8(r.encode(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 2\r\n"));
    }
}
