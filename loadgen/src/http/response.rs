//! Reading an HTTP/1.1 response, sans-IO: the head with `httparse`, then the body by its framing
//! (RFC 9112 section 6.3), discarded as it arrives so that large bodies cost no memory.

use bytes::{Buf, BytesMut};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// A response this client cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed response head: {0}")]
    Head(String),
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("conflicting or invalid Content-Length")]
    ContentLength,
    #[error("malformed chunked body")]
    Chunked,
    #[error("the server switched protocols (101), which a load workload cannot follow")]
    Upgrade,
    #[error("the connection closed before the response was complete")]
    Truncated,
}

/// A complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub status: u16,
    /// The connection may carry another request.
    pub keep_alive: bool,
}

#[derive(Debug)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    End,
}

/// Follows one response.
#[derive(Debug)]
pub struct ResponseReader {
    head_request: bool,
    state: State,
    status: u16,
    keep_alive: bool,
}

impl ResponseReader {
    /// `head_request`: the request was HEAD, so the response has no body whatever it says.
    pub fn new(head_request: bool) -> ResponseReader {
        ResponseReader {
            head_request,
            state: State::Head,
            status: 0,
            keep_alive: false,
        }
    }

    /// Consumes what it can from `buf`; `Some` once the response is complete.
    pub fn feed(&mut self, buf: &mut BytesMut) -> Result<Option<Done>, HttpError> {
        loop {
            match &mut self.state {
                State::Head => {
                    if !self.head(buf)? {
                        return Ok(None);
                    }
                }
                State::Length(left) => {
                    let n = (*left).min(buf.len() as u64);
                    buf.advance(n as usize);
                    *left -= n;
                    return Ok((*left == 0).then(|| self.done()));
                }
                State::UntilClose => {
                    buf.clear();
                    return Ok(None);
                }
                State::Chunked(chunk) => {
                    let finished = step_chunk(chunk, buf)?;
                    return Ok(finished.then(|| self.done()));
                }
            }
        }
    }

    /// The peer closed the connection: completes a body read to the close, else an error.
    pub fn eof(&mut self) -> Result<Done, HttpError> {
        match self.state {
            State::UntilClose => Ok(Done {
                status: self.status,
                keep_alive: false,
            }),
            _ => Err(HttpError::Truncated),
        }
    }

    fn done(&self) -> Done {
        Done {
            status: self.status,
            keep_alive: self.keep_alive,
        }
    }

    /// Parses a head if complete; sets the body state. Interim 1xx heads are skipped.
    fn head(&mut self, buf: &mut BytesMut) -> Result<bool, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(HttpError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(e) => return Err(HttpError::Head(e.to_string())),
        };
        let status = resp.code.unwrap_or(0);
        let http11 = resp.version == Some(1);
        let mut keep_alive = http11;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut transfer_encoding = false;
        for h in resp.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                let n: u64 = value.parse().map_err(|_| HttpError::ContentLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HttpError::ContentLength);
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = true;
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                        keep_alive = true;
                    }
                }
            }
        }
        buf.advance(len);
        if status == 101 {
            return Err(HttpError::Upgrade);
        }
        if (100..200).contains(&status) {
            return Ok(true);
        }
        self.status = status;
        self.keep_alive = keep_alive;
        self.state = if self.head_request || status == 204 || status == 304 {
            State::Length(0)
        } else if transfer_encoding {
            if chunked {
                State::Chunked(Chunk::Size)
            } else {
                self.keep_alive = false;
                State::UntilClose
            }
        } else if let Some(n) = length {
            State::Length(n)
        } else {
            self.keep_alive = false;
            State::UntilClose
        };
        Ok(true)
    }
}

/// Advances the chunked-body state machine over `buf`; true once the body has ended (after the
/// empty line that closes the trailer section), false while it needs more input.
fn step_chunk(chunk: &mut Chunk, buf: &mut BytesMut) -> Result<bool, HttpError> {
    loop {
        match *chunk {
            Chunk::Size => {
                let Some(line) = take_line(buf)? else {
                    return Ok(false);
                };
                let digits = line[..].split(|&b| b == b';').next().unwrap_or_default();
                let digits = std::str::from_utf8(digits)
                    .map_err(|_| HttpError::Chunked)?
                    .trim_matches([' ', '\t']);
                if digits.is_empty() || digits.len() > 15 {
                    return Err(HttpError::Chunked);
                }
                let size = u64::from_str_radix(digits, 16).map_err(|_| HttpError::Chunked)?;
                *chunk = if size == 0 {
                    Chunk::Trailer
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::End => return Ok(true),
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(false);
                }
                let n = left.min(buf.len() as u64);
                buf.advance(n as usize);
                *chunk = if left == n {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - n)
                };
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(false);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(HttpError::Chunked);
                }
                buf.advance(2);
                *chunk = Chunk::Size;
            }
            Chunk::Trailer => {
                let Some(line) = take_line(buf)? else {
                    return Ok(false);
                };
                if line.is_empty() {
                    *chunk = Chunk::End;
                    return Ok(true);
                }
            }
        }
    }
}

/// Takes one CRLF-terminated line (without the CRLF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, HttpError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) => {
            if end == 0 || buf[end - 1] != b'\r' {
                return Err(HttpError::Chunked);
            }
            let mut line = buf.split_to(end + 1);
            line.truncate(end - 1);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(HttpError::Chunked),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` split at every point and checks the same outcome and that nothing of the
    /// following response is consumed.
    fn every_split(bytes: &[u8], head_request: bool) -> Done {
        let mut first = None;
        let mut with_next = bytes.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        for cut in 0..=bytes.len() {
            let mut r = ResponseReader::new(head_request);
            let mut buf = BytesMut::from(&with_next[..cut]);
            let mut done = r.feed(&mut buf).unwrap();
            buf.extend_from_slice(&with_next[cut..]);
            if done.is_none() {
                done = r.feed(&mut buf).unwrap();
            }
            let done = done.unwrap_or_else(|| panic!("incomplete at cut {cut}"));
            assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\n", "cut {cut}");
            assert_eq!(*first.get_or_insert(done), done);
        }
        first.unwrap()
    }

    #[test]
    fn content_length_body() {
        let d = every_split(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false);
        assert_eq!(
            d,
            Done {
                status: 200,
                keep_alive: true
            }
        );
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let d = every_split(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n",
            false,
        );
        assert_eq!(
            d,
            Done {
                status: 404,
                keep_alive: true
            }
        );
    }

    #[test]
    fn no_body_cases() {
        let d = every_split(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
            false,
        );
        assert_eq!(d.status, 204);
        let d = every_split(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true);
        assert_eq!(d.status, 200);
        let d = every_split(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false);
        assert_eq!(
            d,
            Done {
                status: 500,
                keep_alive: false
            }
        );
    }

    #[test]
    fn http10_defaults_to_close_unless_keep_alive() {
        let d = every_split(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert!(!d.keep_alive);
        let d = every_split(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(d.keep_alive);
    }

    #[test]
    fn body_until_close() {
        let mut r = ResponseReader::new(false);
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n\r\nsome body"[..]);
        assert_eq!(r.feed(&mut buf).unwrap(), None);
        assert_eq!(
            r.eof().unwrap(),
            Done {
                status: 200,
                keep_alive: false
            }
        );
        let mut r = ResponseReader::new(false);
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..]);
        assert_eq!(r.feed(&mut buf).unwrap(), None);
        assert_eq!(r.eof(), Err(HttpError::Truncated));
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            &b"NOT HTTP\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            let mut r = ResponseReader::new(false);
            let mut buf = BytesMut::from(bad);
            assert!(
                r.feed(&mut buf).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
