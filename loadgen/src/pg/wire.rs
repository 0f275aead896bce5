//! PostgreSQL messages the load generator sends and reads, sans-IO: encoders append to a
//! `BytesMut`, decoders look at complete messages at the front of a buffer and consume them.
//!
//! Only what a client needs to judge a response is decoded (ReadyForQuery, ErrorResponse, the
//! authentication requests, a first column when asked); every other message is skipped by length.

use bytes::{Buf, BufMut, BytesMut};

/// SSLRequest: length 8, code 80877103.
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// Largest backend message accepted (PostgreSQL's own limit on a field is 1 GB).
const MAX_MESSAGE: usize = (1 << 30) + 1024;

/// A backend stream this client cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("backend message '{tag}' declares an invalid length {len}")]
    Length { tag: char, len: u32 },
    #[error("malformed {0} message from the server")]
    Malformed(&'static str),
    #[error("the server started COPY, which a load workload cannot feed")]
    Copy,
}

/// An ErrorResponse, reduced to what is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// SQLSTATE, e.g. `42P01`.
    pub code: [u8; 5],
    /// The primary message.
    pub message: String,
}

impl ServerError {
    /// Decodes the body of an ErrorResponse (or NoticeResponse).
    pub fn decode(mut body: &[u8]) -> ServerError {
        let mut code = *b"XX000";
        let mut message = String::new();
        while let Some((&field, rest)) = body.split_first() {
            if field == 0 {
                break;
            }
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let value = &rest[..end];
            match field {
                b'C' if value.len() == 5 => code.copy_from_slice(value),
                b'M' => message = String::from_utf8_lossy(value).into_owned(),
                _ => {}
            }
            body = rest.get(end + 1..).unwrap_or_default();
        }
        ServerError { code, message }
    }

    /// SQLSTATE class 28: invalid authorization specification / invalid password.
    pub fn is_auth(&self) -> bool {
        self.code.starts_with(b"28")
    }
}

/// The header of the complete message at the front of `buf`: its tag and total length
/// (tag byte included). `None` while the message is incomplete.
pub fn peek(buf: &[u8]) -> Result<Option<(u8, usize)>, WireError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 || len as usize > MAX_MESSAGE {
        return Err(WireError::Length {
            tag: char::from(buf[0]),
            len,
        });
    }
    let total = len as usize + 1;
    Ok((buf.len() >= total).then_some((buf[0], total)))
}

/// An authentication request from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Ok,
    Cleartext,
    Md5([u8; 4]),
    Sasl(Vec<String>),
    SaslContinue(Vec<u8>),
    SaslFinal(Vec<u8>),
    /// Kerberos, GSS, SSPI, ...: the code.
    Unsupported(u32),
}

impl Auth {
    /// Decodes the body of an Authentication ('R') message.
    pub fn decode(body: &[u8]) -> Result<Auth, WireError> {
        let bad = WireError::Malformed("authentication");
        if body.len() < 4 {
            return Err(bad);
        }
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let rest = &body[4..];
        Ok(match code {
            0 => Auth::Ok,
            3 => Auth::Cleartext,
            5 => Auth::Md5(
                rest.get(..4)
                    .ok_or(bad)?
                    .try_into()
                    .map_err(|_| WireError::Malformed("authentication"))?,
            ),
            10 => Auth::Sasl(
                rest.split(|&b| b == 0)
                    .filter(|m| !m.is_empty())
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .collect(),
            ),
            11 => Auth::SaslContinue(rest.to_vec()),
            12 => Auth::SaslFinal(rest.to_vec()),
            other => Auth::Unsupported(other),
        })
    }
}

/// Follows one response (to a Query, or to a Sync) up to its ReadyForQuery.
#[derive(Debug, Default)]
pub struct ResponseScan {
    /// DataRow messages seen.
    pub rows: u64,
    /// The first ErrorResponse seen.
    pub error: Option<ServerError>,
    /// When set, the first column of the first row is kept (`None` inside for SQL NULL).
    pub capture: bool,
    pub first_value: Option<Option<Vec<u8>>>,
}

impl ResponseScan {
    /// Consumes every complete message in `buf`; returns the transaction status byte once the
    /// ReadyForQuery has been consumed, `None` if more input is needed.
    pub fn feed(&mut self, buf: &mut BytesMut) -> Result<Option<u8>, WireError> {
        while let Some((tag, total)) = peek(buf)? {
            match tag {
                b'Z' => {
                    let status = if total > 5 { buf[5] } else { b'I' };
                    buf.advance(total);
                    return Ok(Some(status));
                }
                b'D' => {
                    if self.capture && self.rows == 0 {
                        self.first_value = Some(first_column(&buf[5..total])?);
                    }
                    self.rows += 1;
                }
                b'E' if self.error.is_none() => {
                    self.error = Some(ServerError::decode(&buf[5..total]));
                }
                b'G' | b'H' | b'W' => return Err(WireError::Copy),
                _ => {}
            }
            buf.advance(total);
        }
        Ok(None)
    }
}

fn first_column(body: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
    let bad = WireError::Malformed("DataRow");
    if body.len() < 2 || u16::from_be_bytes([body[0], body[1]]) == 0 {
        return Err(bad);
    }
    let len = i32::from_be_bytes(
        body.get(2..6)
            .ok_or(bad.clone())?
            .try_into()
            .map_err(|_| bad.clone())?,
    );
    if len < 0 {
        return Ok(None);
    }
    Ok(Some(body.get(6..6 + len as usize).ok_or(bad)?.to_vec()))
}

/// Starts a message with `tag` and a length to be filled in by [`finish`]; returns where the
/// length goes.
pub fn begin(out: &mut BytesMut, tag: u8) -> usize {
    out.put_u8(tag);
    let at = out.len();
    out.put_u32(0);
    at
}

/// Writes the length of the message begun at `at`.
pub fn finish(out: &mut BytesMut, at: usize) {
    let len = (out.len() - at) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Execute of the unnamed portal, all rows, followed by Sync.
pub fn execute_sync(out: &mut BytesMut) {
    out.put_u8(b'E');
    out.put_u32(9);
    out.put_u8(0);
    out.put_u32(0);
    out.put_u8(b'S');
    out.put_u32(4);
}

/// Terminate.
pub fn terminate(out: &mut BytesMut) {
    out.put_u8(b'X');
    out.put_u32(4);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn error_body(code: &str, message: &str) -> Vec<u8> {
        let mut b = Vec::new();
        for (f, v) in [(b'S', "ERROR"), (b'C', code), (b'M', message)] {
            b.push(f);
            b.extend_from_slice(v.as_bytes());
            b.push(0);
        }
        b.push(0);
        b
    }

    /// A response as PostgreSQL 15 sends it for a failing statement after two rows.
    fn response() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(msg(b'T', b"\x00\x01abalance\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00"));
        v.extend(msg(b'D', b"\x00\x01\x00\x00\x00\x0242"));
        v.extend(msg(b'D', b"\x00\x01\xff\xff\xff\xff"));
        v.extend(msg(
            b'E',
            &error_body("42P01", "relation \"nope\" does not exist"),
        ));
        v.extend(msg(b'Z', b"I"));
        v
    }

    #[test]
    fn scan_reaches_ready_from_every_split_point() {
        let whole = response();
        for cut in 0..=whole.len() {
            let mut scan = ResponseScan {
                capture: true,
                ..Default::default()
            };
            let mut buf = BytesMut::from(&whole[..cut]);
            let mut status = scan.feed(&mut buf).unwrap();
            if status.is_none() {
                buf.extend_from_slice(&whole[cut..]);
                status = scan.feed(&mut buf).unwrap();
            }
            assert_eq!(status, Some(b'I'), "cut at {cut}");
            assert!(buf.is_empty());
            assert_eq!(scan.rows, 2);
            assert_eq!(scan.first_value, Some(Some(b"42".to_vec())));
            let err = scan.error.unwrap();
            assert_eq!(&err.code, b"42P01");
            assert_eq!(err.message, "relation \"nope\" does not exist");
        }
    }

    #[test]
    fn scan_leaves_what_follows_ready() {
        let mut bytes = response();
        bytes.extend(msg(b'Z', b"T"));
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(ResponseScan::default().feed(&mut buf).unwrap(), Some(b'I'));
        assert_eq!(ResponseScan::default().feed(&mut buf).unwrap(), Some(b'T'));
    }

    /// Every response of a stream as (status, rows, SQLSTATE), feeding it in two parts cut at
    /// `cut`.
    fn responses(stream: &[u8], cut: usize) -> Vec<(u8, u64, Option<[u8; 5]>)> {
        let mut out = Vec::new();
        let mut buf = BytesMut::from(&stream[..cut]);
        let mut scan = ResponseScan::default();
        for rest in [&stream[cut..], &[][..]] {
            while let Some(status) = scan.feed(&mut buf).unwrap() {
                let done = std::mem::take(&mut scan);
                out.push((status, done.rows, done.error.map(|e| e.code)));
            }
            buf.extend_from_slice(rest);
        }
        assert!(
            buf.is_empty(),
            "trailing bytes after the last ReadyForQuery"
        );
        out
    }

    /// Backend bytes of real PostgreSQL 15 sessions, captured for the gateway's codec tests.
    const CAPTURES: [(&str, &[u8]); 4] = [
        (
            "simple",
            include_bytes!("../../../src/codec/pg/testdata/simple.be.bin"),
        ),
        (
            "extended_prepared",
            include_bytes!("../../../src/codec/pg/testdata/extended_prepared.be.bin"),
        ),
        (
            "error_txn",
            include_bytes!("../../../src/codec/pg/testdata/error_txn.be.bin"),
        ),
        (
            "listen_notify",
            include_bytes!("../../../src/codec/pg/testdata/listen_notify.be.bin"),
        ),
    ];

    #[test]
    fn real_sessions_scan_alike_from_every_split_point() {
        for (name, stream) in CAPTURES {
            let whole = responses(stream, stream.len());
            assert!(whole.len() >= 2, "{name}");
            for cut in 0..stream.len() {
                assert_eq!(responses(stream, cut), whole, "{name} cut at {cut}");
            }
        }
        // Division by zero, then a statement in the aborted transaction, then a duplicate key.
        let codes: Vec<[u8; 5]> = responses(CAPTURES[2].1, 0)
            .into_iter()
            .filter_map(|r| r.2)
            .collect();
        assert_eq!(codes, vec![*b"22012", *b"25P02", *b"23505"]);
        let statuses: Vec<u8> = responses(CAPTURES[2].1, 0)
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert!(
            statuses.contains(&b'E'),
            "an aborted transaction shows as status E"
        );
    }

    #[test]
    fn bad_length_and_copy_are_errors() {
        let mut buf = BytesMut::from(&b"Z\x00\x00\x00\x02"[..]);
        assert!(matches!(
            ResponseScan::default().feed(&mut buf),
            Err(WireError::Length { tag: 'Z', len: 2 })
        ));
        let mut buf = BytesMut::from(&msg(b'G', b"\x00\x00\x00")[..]);
        assert_eq!(ResponseScan::default().feed(&mut buf), Err(WireError::Copy));
    }

    #[test]
    fn auth_requests_decode() {
        assert_eq!(Auth::decode(&[0, 0, 0, 0]).unwrap(), Auth::Ok);
        assert_eq!(Auth::decode(&[0, 0, 0, 3]).unwrap(), Auth::Cleartext);
        assert_eq!(
            Auth::decode(&[0, 0, 0, 5, 1, 2, 3, 4]).unwrap(),
            Auth::Md5([1, 2, 3, 4])
        );
        assert_eq!(
            Auth::decode(b"\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00").unwrap(),
            Auth::Sasl(vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()])
        );
        assert_eq!(
            Auth::decode(b"\x00\x00\x00\x0br=abc").unwrap(),
            Auth::SaslContinue(b"r=abc".to_vec())
        );
        assert_eq!(Auth::decode(&[0, 0, 0, 7]).unwrap(), Auth::Unsupported(7));
        assert!(Auth::decode(&[0, 0, 0, 5, 1]).is_err());
        assert!(Auth::decode(&[0, 0]).is_err());
    }

    #[test]
    fn error_fields_decode_and_auth_class_is_recognised() {
        let e = ServerError::decode(&error_body("28P01", "password authentication failed"));
        assert!(e.is_auth());
        assert_eq!(e.message, "password authentication failed");
        // A truncated body keeps what it has and defaults the code.
        let e = ServerError::decode(b"Mhalf");
        assert_eq!(&e.code, b"XX000");
        assert_eq!(e.message, "half");
    }

    #[test]
    fn execute_sync_matches_postgres_protocol() {
        let mut ours = BytesMut::new();
        execute_sync(&mut ours);
        let mut theirs = BytesMut::new();
        postgres_protocol::message::frontend::execute("", 0, &mut theirs).unwrap();
        postgres_protocol::message::frontend::sync(&mut theirs);
        assert_eq!(ours, theirs);
        let mut ours = BytesMut::new();
        terminate(&mut ours);
        let mut theirs = BytesMut::new();
        postgres_protocol::message::frontend::terminate(&mut theirs);
        assert_eq!(ours, theirs);
    }
}
