//! Session-state messages from the server: BackendKeyData, ReadyForQuery, ParameterStatus.

use bytes::{BufMut, BytesMut};

use super::tag::backend::{BACKEND_KEY_DATA, PARAMETER_STATUS, READY_FOR_QUERY};
use super::wire::{begin, finish, put_cstr, Reader};
use super::{CodecError, Frame};

/// The key a client needs to cancel a query on this session (`K`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendKeyData {
    /// Process id of the backend.
    pub pid: i32,
    /// Secret key of the backend.
    pub secret: i32,
}

impl BackendKeyData {
    /// Decodes a `K` frame.
    pub fn decode(frame: &Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(BACKEND_KEY_DATA)?);
        let key = Self {
            pid: r.i32()?,
            secret: r.i32()?,
        };
        r.finish()?;
        Ok(key)
    }

    /// Appends this message.
    pub fn encode(&self, out: &mut BytesMut) {
        let at = begin(out, BACKEND_KEY_DATA);
        out.put_i32(self.pid);
        out.put_i32(self.secret);
        finish(out, at);
    }
}

/// Transaction status carried by ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block; queries are rejected until it ends.
    Failed,
}

impl TransactionStatus {
    /// The status byte on the wire.
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Idle => b'I',
            Self::InTransaction => b'T',
            Self::Failed => b'E',
        }
    }

    /// Parses a status byte.
    pub fn from_byte(b: u8) -> Result<Self, CodecError> {
        match b {
            b'I' => Ok(Self::Idle),
            b'T' => Ok(Self::InTransaction),
            b'E' => Ok(Self::Failed),
            _ => Err(CodecError::Malformed("unknown transaction status")),
        }
    }
}

/// The server is ready for the next query (`Z`); a natural point to hand a connection back to a
/// pool when the status is idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyForQuery {
    /// Transaction status after the previous query.
    pub status: TransactionStatus,
}

impl ReadyForQuery {
    /// Decodes a `Z` frame.
    pub fn decode(frame: &Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(READY_FOR_QUERY)?);
        let status = TransactionStatus::from_byte(r.u8()?)?;
        r.finish()?;
        Ok(Self { status })
    }

    /// Appends this message.
    pub fn encode(&self, out: &mut BytesMut) {
        encode_ready_for_query(out, self.status);
    }
}

/// Appends ReadyForQuery with the given status.
pub fn encode_ready_for_query(out: &mut BytesMut, status: TransactionStatus) {
    let at = begin(out, READY_FOR_QUERY);
    out.put_u8(status.as_byte());
    finish(out, at);
}

/// A run-time parameter the server reports (`S`), borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterStatus<'a> {
    /// Parameter name, e.g. `server_version`.
    pub name: &'a str,
    /// Current value.
    pub value: &'a str,
}

impl<'a> ParameterStatus<'a> {
    /// Decodes an `S` frame; name and value must be UTF-8 (PostgreSQL reports them in the
    /// client encoding, and every reported parameter is ASCII in practice).
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(PARAMETER_STATUS)?);
        let status = Self {
            name: r.cstr_utf8()?,
            value: r.cstr_utf8()?,
        };
        r.finish()?;
        Ok(status)
    }

    /// Appends this message.
    pub fn encode(&self, out: &mut BytesMut) {
        encode_parameter_status(out, self.name, self.value);
    }
}

/// Appends ParameterStatus (strings are cut at an interior NUL).
pub fn encode_parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    let at = begin(out, PARAMETER_STATUS);
    put_cstr(out, name.as_bytes());
    put_cstr(out, value.as_bytes());
    finish(out, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::codec::pg::testutil::{frame, handmade};

    #[test]
    fn backend_key_data_round_trips() {
        let key = BackendKeyData {
            pid: 31337,
            secret: i32::MIN,
        };
        let mut out = BytesMut::new();
        key.encode(&mut out);
        assert_eq!(out.len(), 13);
        assert_eq!(BackendKeyData::decode(&frame(&mut out)), Ok(key));
    }

    #[test]
    fn backend_key_data_must_be_eight_bytes() {
        for body in [&b"\0\0\0\x01"[..], b"\0\0\0\x01\0\0\0\x02\0"] {
            assert!(BackendKeyData::decode(&handmade(b'K', body)).is_err());
        }
    }

    #[test]
    fn ready_for_query_round_trips_each_status() {
        for status in [
            TransactionStatus::Idle,
            TransactionStatus::InTransaction,
            TransactionStatus::Failed,
        ] {
            let mut out = BytesMut::new();
            ReadyForQuery { status }.encode(&mut out);
            let f = frame(&mut out);
            assert_eq!(f.body(), [status.as_byte()]);
            assert_eq!(ReadyForQuery::decode(&f), Ok(ReadyForQuery { status }));
        }
    }

    #[test]
    fn ready_for_query_rejects_unknown_or_missing_status() {
        for body in [&b""[..], b"X", b"II"] {
            assert!(matches!(
                ReadyForQuery::decode(&handmade(b'Z', body)),
                Err(CodecError::Malformed(_))
            ));
        }
    }

    #[test]
    fn parameter_status_round_trips_and_borrows() {
        let mut out = BytesMut::new();
        encode_parameter_status(&mut out, "server_version", "15.18");
        let f = frame(&mut out);
        let p = ParameterStatus::decode(&f).unwrap();
        assert_eq!((p.name, p.value), ("server_version", "15.18"));
        let mut again = BytesMut::new();
        p.encode(&mut again);
        assert_eq!(again.freeze(), f.bytes);
    }

    #[test]
    fn parameter_status_rejects_bad_strings() {
        for body in [
            &b"name\0"[..],
            b"name",
            b"name\0value",
            b"n\0v\0extra",
            b"n\xff\0v\0",
        ] {
            assert!(matches!(
                ParameterStatus::decode(&handmade(b'S', body)),
                Err(CodecError::Malformed(_))
            ));
        }
    }
}
