//! ErrorResponse (`E`) and NoticeResponse (`N`): a list of fields keyed by a code byte.

use bytes::{BufMut, BytesMut};

use super::tag::backend::{ERROR_RESPONSE, NOTICE_RESPONSE};
use super::wire::{begin, finish, put_cstr, Reader};
use super::{CodecError, Frame};

/// Field codes of ErrorResponse and NoticeResponse.
pub mod field {
    /// Severity, possibly localized (`S`).
    pub const SEVERITY: u8 = b'S';
    /// Severity, never localized (`V`).
    pub const SEVERITY_NONLOCALIZED: u8 = b'V';
    /// SQLSTATE code (`C`).
    pub const CODE: u8 = b'C';
    /// Primary message (`M`).
    pub const MESSAGE: u8 = b'M';
    /// Detail (`D`).
    pub const DETAIL: u8 = b'D';
    /// Hint (`H`).
    pub const HINT: u8 = b'H';
    /// Cursor position in the query string (`P`).
    pub const POSITION: u8 = b'P';
    /// Cursor position in an internal query (`p`).
    pub const INTERNAL_POSITION: u8 = b'p';
    /// Text of the internal query (`q`).
    pub const INTERNAL_QUERY: u8 = b'q';
    /// Call stack context (`W`).
    pub const WHERE: u8 = b'W';
    /// Schema name (`s`).
    pub const SCHEMA: u8 = b's';
    /// Table name (`t`).
    pub const TABLE: u8 = b't';
    /// Column name (`c`).
    pub const COLUMN: u8 = b'c';
    /// Data type name (`d`).
    pub const DATA_TYPE: u8 = b'd';
    /// Constraint name (`n`).
    pub const CONSTRAINT: u8 = b'n';
    /// Source file (`F`).
    pub const FILE: u8 = b'F';
    /// Source line (`L`).
    pub const LINE: u8 = b'L';
    /// Source routine (`R`).
    pub const ROUTINE: u8 = b'R';
}

/// A decoded ErrorResponse or NoticeResponse, borrowed from its frame.
///
/// Values are bytes in the session's client encoding; [`ErrorNotice::field_str`] gives them as
/// `&str` when they are UTF-8 (the default encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorNotice<'a> {
    tag: u8,
    /// The field list without its final terminator; validated by `decode`.
    fields: &'a [u8],
}

impl<'a> ErrorNotice<'a> {
    /// Decodes an `E` or `N` frame, checking that every field is terminated and the list ends
    /// exactly at the end of the body.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        if frame.tag != ERROR_RESPONSE && frame.tag != NOTICE_RESPONSE {
            return Err(CodecError::Malformed("unexpected message tag"));
        }
        let body = frame.body();
        let mut r = Reader::new(body);
        loop {
            if r.u8()? == 0 {
                r.finish()?;
                break;
            }
            r.cstr()?;
        }
        let fields = body.get(..body.len().saturating_sub(1)).unwrap_or_default();
        Ok(Self {
            tag: frame.tag,
            fields,
        })
    }

    /// True for ErrorResponse, false for NoticeResponse.
    pub fn is_error(&self) -> bool {
        self.tag == ERROR_RESPONSE
    }

    /// All fields in wire order as (code, value).
    pub fn fields(&self) -> impl Iterator<Item = (u8, &'a [u8])> {
        let mut r = Reader::new(self.fields);
        std::iter::from_fn(move || Some((r.u8().ok()?, r.cstr().ok()?)))
    }

    /// The first field with this code (see [`field`]).
    pub fn field(&self, code: u8) -> Option<&'a [u8]> {
        self.fields().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// The first field with this code, if present and UTF-8.
    pub fn field_str(&self, code: u8) -> Option<&'a str> {
        std::str::from_utf8(self.field(code)?).ok()
    }

    /// Severity, preferring the non-localized `V` over `S`.
    pub fn severity(&self) -> Option<&'a str> {
        self.field_str(field::SEVERITY_NONLOCALIZED)
            .or_else(|| self.field_str(field::SEVERITY))
    }

    /// SQLSTATE code (`C`).
    pub fn code(&self) -> Option<&'a str> {
        self.field_str(field::CODE)
    }

    /// Primary message (`M`).
    pub fn message(&self) -> Option<&'a str> {
        self.field_str(field::MESSAGE)
    }

    /// Detail (`D`).
    pub fn detail(&self) -> Option<&'a str> {
        self.field_str(field::DETAIL)
    }

    /// Hint (`H`).
    pub fn hint(&self) -> Option<&'a str> {
        self.field_str(field::HINT)
    }
}

/// Appends an `E` or `N` message with the given fields (values cut at an interior NUL; fields
/// with code 0 are skipped since that byte ends the list).
pub fn encode_fields(out: &mut BytesMut, tag: u8, fields: &[(u8, &str)]) {
    let at = begin(out, tag);
    for &(code, value) in fields {
        put_field(out, code, value);
    }
    out.put_u8(0);
    finish(out, at);
}

fn put_field(out: &mut BytesMut, code: u8, value: &str) {
    if code != 0 {
        out.put_u8(code);
        put_cstr(out, value.as_bytes());
    }
}

/// Appends an ErrorResponse with severity (`S` and `V`), SQLSTATE and message.
pub fn encode_error(out: &mut BytesMut, severity: &str, code: &str, message: &str) {
    encode_error_with_detail(out, severity, code, message, None, None);
}

/// Appends an ErrorResponse that also carries an optional detail and hint.
pub fn encode_error_with_detail(
    out: &mut BytesMut,
    severity: &str,
    code: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) {
    encode_with(out, ERROR_RESPONSE, severity, code, message, detail, hint);
}

/// Appends a NoticeResponse with severity (`S` and `V`), SQLSTATE and message.
pub fn encode_notice(out: &mut BytesMut, severity: &str, code: &str, message: &str) {
    encode_with(out, NOTICE_RESPONSE, severity, code, message, None, None);
}

fn encode_with(
    out: &mut BytesMut,
    tag: u8,
    severity: &str,
    code: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) {
    let at = begin(out, tag);
    put_field(out, field::SEVERITY, severity);
    put_field(out, field::SEVERITY_NONLOCALIZED, severity);
    put_field(out, field::CODE, code);
    put_field(out, field::MESSAGE, message);
    if let Some(detail) = detail {
        put_field(out, field::DETAIL, detail);
    }
    if let Some(hint) = hint {
        put_field(out, field::HINT, hint);
    }
    out.put_u8(0);
    finish(out, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::codec::pg::testutil::{frame, handmade};

    #[test]
    fn error_round_trips_with_fields_by_code() {
        let mut out = BytesMut::new();
        encode_error(
            &mut out,
            "ERROR",
            "42501",
            "statement blocked by rule no-ddl",
        );
        let f = frame(&mut out);
        assert_eq!(f.tag, b'E');
        let e = ErrorNotice::decode(&f).unwrap();
        assert!(e.is_error());
        assert_eq!(e.severity(), Some("ERROR"));
        assert_eq!(e.field_str(b'S'), Some("ERROR"));
        assert_eq!(e.code(), Some("42501"));
        assert_eq!(e.message(), Some("statement blocked by rule no-ddl"));
        assert_eq!((e.detail(), e.hint()), (None, None));
        assert_eq!(e.fields().map(|(c, _)| c).collect::<Vec<_>>(), b"SVCM");
    }

    #[test]
    fn notice_and_detail_variants() {
        let mut out = BytesMut::new();
        encode_notice(&mut out, "NOTICE", "01000", "waiting for approval a-17");
        encode_error_with_detail(
            &mut out,
            "FATAL",
            "28P01",
            "bad token",
            Some("expired"),
            Some("renew it"),
        );
        let n = frame(&mut out);
        let notice = ErrorNotice::decode(&n).unwrap();
        assert!(!notice.is_error());
        assert_eq!(notice.message(), Some("waiting for approval a-17"));
        let e = frame(&mut out);
        let e = ErrorNotice::decode(&e).unwrap();
        assert_eq!(
            (e.detail(), e.hint(), e.severity()),
            (Some("expired"), Some("renew it"), Some("FATAL"))
        );
    }

    #[test]
    fn interior_nul_cannot_inject_fields() {
        let mut out = BytesMut::new();
        encode_error(
            &mut out,
            "ERROR",
            "42501",
            "database \"x\0Cforged\" refused",
        );
        let f = frame(&mut out);
        let e = ErrorNotice::decode(&f).unwrap();
        assert_eq!(e.message(), Some("database \"x"));
        assert_eq!(e.fields().count(), 4);
    }

    #[test]
    fn non_utf8_values_are_bytes_only() {
        let e = handmade(b'N', b"Mcaf\xe9\0\0");
        let e = ErrorNotice::decode(&e).unwrap();
        assert_eq!(e.field(b'M'), Some(&b"caf\xe9"[..]));
        assert_eq!(e.message(), None);
    }

    #[test]
    fn malformed_field_lists_are_rejected() {
        for body in [&b""[..], b"SERROR", b"SERROR\0", b"SERROR\0\0x", b"\0\0"] {
            assert!(
                matches!(
                    ErrorNotice::decode(&handmade(b'E', body)),
                    Err(CodecError::Malformed(_))
                ),
                "body {body:?}"
            );
        }
        assert!(ErrorNotice::decode(&handmade(b'Z', b"\0")).is_err());
        assert_eq!(
            ErrorNotice::decode(&handmade(b'E', b"\0"))
                .unwrap()
                .fields()
                .count(),
            0
        );
    }
}
