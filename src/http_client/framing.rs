//! Sans-IO reading of one HTTP/1.1 response: the head (httparse) and a body delimited by
//! `Content-Length`, by chunked transfer coding, or by the connection closing.

use super::HttpClientError;

/// Most response header lines accepted.
const MAX_HEADERS: usize = 64;

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names and values as sent (values decoded lossily as UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text for an error message: lossy UTF-8, trimmed, at most 500 characters.
    pub fn body_excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .trim()
            .chars()
            .take(500)
            .collect()
    }
}

enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Parses `buf` as a response to a request of `method`. `Ok(None)` means more bytes are
/// needed; `eof` says the peer has closed, which completes a close-delimited body and makes
/// anything else that is incomplete an error.
pub fn parse(buf: &[u8], method: &str, eof: bool) -> Result<Option<Response>, HttpClientError> {
    let bad = |m: String| HttpClientError::Response(m);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if eof => return Err(bad("truncated response head".into())),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(format!("bad response head: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    if (100..200).contains(&status) {
        return Err(bad(format!("unexpected interim response {status}")));
    }
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect();
    let framing = framing(&headers, status, method)?;
    let rest = &buf[head_len..];
    let body = match framing {
        Framing::Length(len) if rest.len() >= len => rest[..len].to_vec(),
        Framing::Length(len) if eof => {
            return Err(bad(format!(
                "body ended after {} of its {len} bytes",
                rest.len()
            )))
        }
        Framing::Length(_) => return Ok(None),
        Framing::Chunked => match dechunk(rest)? {
            Some(body) => body,
            None if eof => return Err(bad("chunked body ended early".into())),
            None => return Ok(None),
        },
        Framing::Close if eof => rest.to_vec(),
        Framing::Close => return Ok(None),
    };
    Ok(Some(Response {
        status,
        headers,
        body,
    }))
}

fn framing(
    headers: &[(String, String)],
    status: u16,
    method: &str,
) -> Result<Framing, HttpClientError> {
    let bad = |m: &str| HttpClientError::Response(m.to_owned());
    if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    fn named<'a>(
        headers: &'a [(String, String)],
        name: &'static str,
    ) -> impl Iterator<Item = &'a str> {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    let mut encodings = named(headers, "transfer-encoding");
    let mut lengths = named(headers, "content-length");
    if let Some(te) = encodings.next() {
        // Both, or several codings, are the material of request smuggling: refuse them.
        if lengths.next().is_some() || encodings.next().is_some() {
            return Err(bad(
                "both Transfer-Encoding and Content-Length, or several Transfer-Encoding headers",
            ));
        }
        return if te.eq_ignore_ascii_case("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(bad("unsupported Transfer-Encoding"))
        };
    }
    match lengths.next() {
        None => Ok(Framing::Close),
        Some(v) => {
            let len = parse_length(v).ok_or_else(|| bad("bad Content-Length"))?;
            if lengths.any(|other| parse_length(other) != Some(len)) {
                return Err(bad("conflicting Content-Length headers"));
            }
            Ok(Framing::Length(len))
        }
    }
}

fn parse_length(v: &str) -> Option<usize> {
    if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Decodes a chunked body; `Ok(None)` while the last chunk and trailers are not all there.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, HttpClientError> {
    let bad = |m: &str| HttpClientError::Response(format!("bad chunked body: {m}"));
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find_crlf(rest) else {
            return Ok(None);
        };
        let line = &rest[..line_end];
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        if size_text.is_empty()
            || size_text.len() > 15
            || !size_text.iter().all(u8::is_ascii_hexdigit)
        {
            return Err(bad("chunk size is not hexadecimal"));
        }
        // At most 15 hex digits, so the value fits in 60 bits.
        let size = size_text.iter().fold(0usize, |n, &d| {
            n * 16 + (d as char).to_digit(16).unwrap_or(0) as usize
        });
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailer lines up to an empty line; their content is ignored.
            loop {
                let Some(end) = find_crlf(rest) else {
                    return Ok(None);
                };
                if end == 0 {
                    return Ok(Some(body));
                }
                rest = &rest[end + 2..];
            }
        }
        if rest.len() < size.saturating_add(2) {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err(bad("chunk data not followed by CRLF"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(raw: &[u8]) -> Result<Response, HttpClientError> {
        // Every strict prefix needs more bytes (or is an error); the whole answers.
        for cut in 0..raw.len() {
            if let Ok(Some(r)) = parse(&raw[..cut], "GET", false) {
                panic!("complete after {cut} of {} bytes: {r:?}", raw.len());
            }
        }
        parse(raw, "GET", true).map(|r| r.expect("complete at eof"))
    }

    #[test]
    fn reads_content_length_bodies_on_every_prefix() {
        let r = whole(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.header("x-a"), Some("b"));
        // Bytes after the declared length are not part of the body.
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXX",
            "GET",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.body, b"hi");
    }

    #[test]
    fn reads_chunked_bodies_on_every_prefix() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        let r = whole(raw).unwrap();
        assert_eq!(r.body, b"hello 0123456789");
    }

    #[test]
    fn reads_close_delimited_bodies_only_at_eof() {
        let raw = b"HTTP/1.1 200 OK\r\n\r\n{\"keys\":[]}";
        assert_eq!(parse(raw, "GET", false).unwrap(), None);
        assert_eq!(
            parse(raw, "GET", true).unwrap().unwrap().body,
            b"{\"keys\":[]}"
        );
    }

    #[test]
    fn bodiless_statuses_and_head_need_no_body() {
        let r = parse(b"HTTP/1.1 204 No Content\r\n\r\n", "GET", false)
            .unwrap()
            .unwrap();
        assert!(r.body.is_empty());
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            "HEAD",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(r.body.is_empty());
    }

    #[test]
    fn refuses_ambiguous_or_broken_framing() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                [..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ] {
            assert!(
                parse(raw, "GET", true).is_err(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // Identical repeated lengths are harmless.
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
            "GET",
            true,
        );
        assert_eq!(r.unwrap().unwrap().body, b"ab");
    }

    #[test]
    fn truncation_at_eof_is_an_error() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Le"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        ] {
            assert!(parse(raw, "GET", true).is_err());
        }
    }
}
