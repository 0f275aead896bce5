//! Client messages the gateway reads or writes: Query, the `p` family of authentication
//! responses, and Terminate.

use bytes::{BufMut, BytesMut};

use super::tag::frontend::{PASSWORD_MESSAGE, QUERY, TERMINATE};
use super::wire::{begin, finish, put_cstr, to_i32, Reader};
use super::{CodecError, Frame};

/// A password response (`p` after AuthenticationCleartextPassword), borrowed from the frame.
/// For sluice this carries the session token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PasswordMessage<'a> {
    /// The password, without its terminator.
    pub password: &'a str,
}

impl std::fmt::Debug for PasswordMessage<'_> {
    // A password or token must never reach a log through a stray `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordMessage")
            .field("password", &"<redacted>")
            .finish()
    }
}

impl<'a> PasswordMessage<'a> {
    /// Decodes a `p` frame holding one NUL-terminated UTF-8 string and nothing else (as
    /// PostgreSQL requires).
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(PASSWORD_MESSAGE)?);
        let password = r.cstr_utf8()?;
        r.finish()?;
        Ok(Self { password })
    }
}

/// Appends a password response (cut at an interior NUL).
pub fn encode_password(out: &mut BytesMut, password: &str) {
    let at = begin(out, PASSWORD_MESSAGE);
    put_cstr(out, password.as_bytes());
    finish(out, at);
}

/// The first SASL message (`p` after AuthenticationSASL), borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    /// The chosen mechanism.
    pub mechanism: &'a str,
    /// The client-first message; `None` when the client sent length -1.
    pub data: Option<&'a [u8]>,
}

impl<'a> SaslInitialResponse<'a> {
    /// Decodes a `p` frame as SASLInitialResponse.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(PASSWORD_MESSAGE)?);
        let mechanism = r.cstr_utf8()?;
        let data = match r.i32()? {
            -1 => None,
            // The slice read checks the length against what the frame holds.
            n => Some(
                r.bytes(
                    usize::try_from(n)
                        .map_err(|_| CodecError::Malformed("negative SASL data length"))?,
                )?,
            ),
        };
        r.finish()?;
        Ok(Self { mechanism, data })
    }
}

/// Appends SASLInitialResponse.
pub fn encode_sasl_initial_response(out: &mut BytesMut, mechanism: &str, data: &[u8]) {
    let at = begin(out, PASSWORD_MESSAGE);
    put_cstr(out, mechanism.as_bytes());
    out.put_i32(to_i32(data.len()));
    out.put_slice(data);
    finish(out, at);
}

/// A later SASL message (`p`): the body is the mechanism's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslResponse<'a> {
    /// Mechanism-specific data.
    pub data: &'a [u8],
}

impl<'a> SaslResponse<'a> {
    /// Decodes a `p` frame as SASLResponse.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        Ok(Self {
            data: frame.expect(PASSWORD_MESSAGE)?,
        })
    }
}

/// Appends SASLResponse.
pub fn encode_sasl_response(out: &mut BytesMut, data: &[u8]) {
    let at = begin(out, PASSWORD_MESSAGE);
    out.put_slice(data);
    finish(out, at);
}

/// A simple-protocol query (`Q`), borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query<'a> {
    /// The SQL text without its terminator, in the session's client encoding.
    pub sql: &'a [u8],
}

impl<'a> Query<'a> {
    /// Decodes a `Q` frame. The text must end with the message and contain no other NUL: the
    /// server would stop reading at the first one, so a gateway that read further could judge
    /// text the server never sees.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(QUERY)?);
        let sql = r.cstr()?;
        r.finish()?;
        Ok(Self { sql })
    }

    /// The SQL text as UTF-8 (the default client encoding).
    pub fn as_str(&self) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.sql).map_err(|_| CodecError::Malformed("query is not UTF-8"))
    }
}

/// Appends a simple-protocol Query (cut at an interior NUL).
pub fn encode_query(out: &mut BytesMut, sql: &str) {
    let at = begin(out, QUERY);
    put_cstr(out, sql.as_bytes());
    finish(out, at);
}

/// Appends Terminate.
pub fn encode_terminate(out: &mut BytesMut) {
    let at = begin(out, TERMINATE);
    finish(out, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::codec::pg::testutil::{frame, handmade};

    #[test]
    fn password_round_trips_and_is_redacted_in_debug() {
        let mut out = BytesMut::new();
        encode_password(&mut out, "eyJhbGciOiJFZERTQSJ9.e30.sig");
        let f = frame(&mut out);
        let p = PasswordMessage::decode(&f).unwrap();
        assert_eq!(p.password, "eyJhbGciOiJFZERTQSJ9.e30.sig");
        assert!(!format!("{p:?}").contains("eyJ"));
    }

    #[test]
    fn password_layout_is_strict() {
        for body in [
            &b""[..],
            b"secret",
            b"secret\0extra",
            b"sec\0ret\0",
            b"\xff\0",
        ] {
            assert!(matches!(
                PasswordMessage::decode(&handmade(b'p', body)),
                Err(CodecError::Malformed(_))
            ));
        }
        assert_eq!(
            PasswordMessage::decode(&handmade(b'p', b"\0"))
                .unwrap()
                .password,
            ""
        );
    }

    #[test]
    fn sasl_messages_round_trip() {
        let mut out = BytesMut::new();
        encode_sasl_initial_response(&mut out, "SCRAM-SHA-256", b"n,,n=,r=nonce");
        encode_sasl_response(&mut out, b"c=biws,r=nonce,p=proof");
        let first = frame(&mut out);
        let i = SaslInitialResponse::decode(&first).unwrap();
        assert_eq!(
            (i.mechanism, i.data),
            ("SCRAM-SHA-256", Some(&b"n,,n=,r=nonce"[..]))
        );
        let next = frame(&mut out);
        assert_eq!(
            SaslResponse::decode(&next).unwrap().data,
            b"c=biws,r=nonce,p=proof"
        );
    }

    #[test]
    fn sasl_initial_response_checks_data_length() {
        let ok = handmade(b'p', b"M\0\xff\xff\xff\xff");
        assert_eq!(SaslInitialResponse::decode(&ok).unwrap().data, None);
        for body in [
            &b"M\0\0\0\0\x05abc"[..],
            b"M\0\0\0\0\x01ab",
            b"M\0\xff\xff\xff\xfe",
            b"M\0\0\0",
        ] {
            assert!(
                SaslInitialResponse::decode(&handmade(b'p', body)).is_err(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn query_round_trips_zero_copy() {
        let mut out = BytesMut::new();
        encode_query(&mut out, "select 1; select 2");
        let f = frame(&mut out);
        let q = Query::decode(&f).unwrap();
        assert_eq!(q.as_str(), Ok("select 1; select 2"));
        assert_eq!(q.sql.as_ptr(), f.body().as_ptr());
    }

    #[test]
    fn query_with_interior_nul_or_no_terminator_is_rejected() {
        for body in [&b"select 1"[..], b"select 1\0; drop table t\0", b""] {
            assert!(Query::decode(&handmade(b'Q', body)).is_err());
        }
        let latin1 = handmade(b'Q', b"select 'caf\xe9'\0");
        let q = Query::decode(&latin1).unwrap();
        assert!(q.as_str().is_err());
    }

    #[test]
    fn terminate_is_five_bytes() {
        let mut out = BytesMut::new();
        encode_terminate(&mut out);
        assert_eq!(&out[..], b"X\0\0\0\x04");
    }
}
