//! The startup phase: the untagged first packets of a connection (SSLRequest, GSSENCRequest,
//! CancelRequest, StartupMessage).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{begin_untagged, finish, put_cstr};
use super::CodecError;

/// Protocol version 3.0 as sent in a StartupMessage.
pub const PROTOCOL_3_0: u32 = 3 << 16;
/// Request code of an SSLRequest.
pub const SSL_REQUEST_CODE: u32 = (1234 << 16) | 5679;
/// Request code of a GSSENCRequest.
pub const GSSENC_REQUEST_CODE: u32 = (1234 << 16) | 5680;
/// Request code of a CancelRequest.
pub const CANCEL_REQUEST_CODE: u32 = (1234 << 16) | 5678;
/// PostgreSQL's own limit on a startup packet, a sensible `max_len` for [`decode_startup`].
pub const MAX_STARTUP_LEN: usize = 10_000;

/// Length and request code: the smallest startup-phase packet.
const MIN_LEN: usize = 8;
/// Length, code, process id and secret key.
const CANCEL_LEN: usize = 16;

/// The first packet of a connection (a client may send SSLRequest or GSSENCRequest first and a
/// StartupMessage after the server's one-byte answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// The client asks for TLS before anything else.
    SslRequest,
    /// The client asks for GSSAPI encryption before anything else.
    GssEncRequest,
    /// The client asks to cancel the query running on another connection.
    Cancel(CancelRequest),
    /// The client starts a protocol 3.0 session.
    Startup(StartupMessage),
}

/// Identifies the session whose running query should be cancelled (the values a server gave in
/// BackendKeyData).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelRequest {
    /// Process id of the target backend.
    pub pid: i32,
    /// Secret key of the target backend.
    pub secret: i32,
}

/// A validated protocol 3.0 StartupMessage, kept as the packet's bytes.
///
/// Decoding has checked that the parameters are UTF-8, properly terminated, non-empty by name
/// and unique, so the accessors parse the same bytes again without failing.
#[derive(Clone, PartialEq, Eq)]
pub struct StartupMessage {
    raw: Bytes,
}

impl StartupMessage {
    /// The value of parameter `name` (exact, case-sensitive match).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// All parameters in wire order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.param_area().split_terminator('\0');
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    /// The `user` parameter.
    pub fn user(&self) -> Option<&str> {
        self.param("user")
    }

    /// The `database` parameter; like PostgreSQL, an absent or empty one means the user name.
    pub fn database(&self) -> Option<&str> {
        match self.param("database") {
            Some(db) if !db.is_empty() => Some(db),
            _ => self.user(),
        }
    }

    /// The whole packet as received, length field included.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The `name\0value\0...` area between the version and the final terminator.
    fn param_area(&self) -> &str {
        let end = self.raw.len().saturating_sub(1);
        let area = self.raw.get(MIN_LEN..end).unwrap_or_default();
        // Validated in `validate_params`; the fallback is never taken.
        std::str::from_utf8(area).unwrap_or_default()
    }
}

impl fmt::Debug for StartupMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.params()).finish()
    }
}

/// Splits the next startup-phase packet off `buf`, or `Ok(None)` if it is not complete.
///
/// The length field is checked against `max_len` before anything is buffered for it; nothing is
/// consumed unless a packet is returned. Versions other than 3.0 give
/// [`CodecError::UnsupportedProtocol`]; bad layouts give [`CodecError::Malformed`].
pub fn decode_startup(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<StartupPacket>, CodecError> {
    let Some(&[a, b, c, d]) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([a, b, c, d]);
    let len = usize::try_from(len).map_err(|_| CodecError::Malformed("length does not fit"))?;
    if len < MIN_LEN {
        return Err(CodecError::Malformed("startup length below 8"));
    }
    if len > max_len {
        return Err(CodecError::TooLarge { len, max: max_len });
    }
    if buf.len() < len {
        return Ok(None);
    }
    let raw = buf.split_to(len).freeze();
    let Some(&[a, b, c, d]) = raw.get(4..MIN_LEN) else {
        return Err(CodecError::Malformed("startup length below 8"));
    };
    match u32::from_be_bytes([a, b, c, d]) {
        SSL_REQUEST_CODE if len == MIN_LEN => Ok(Some(StartupPacket::SslRequest)),
        SSL_REQUEST_CODE => Err(CodecError::Malformed("SSLRequest length is not 8")),
        GSSENC_REQUEST_CODE if len == MIN_LEN => Ok(Some(StartupPacket::GssEncRequest)),
        GSSENC_REQUEST_CODE => Err(CodecError::Malformed("GSSENCRequest length is not 8")),
        CANCEL_REQUEST_CODE => decode_cancel(&raw).map(|c| Some(StartupPacket::Cancel(c))),
        PROTOCOL_3_0 => {
            validate_params(&raw)?;
            Ok(Some(StartupPacket::Startup(StartupMessage { raw })))
        }
        other => Err(CodecError::UnsupportedProtocol(other)),
    }
}

fn decode_cancel(raw: &[u8]) -> Result<CancelRequest, CodecError> {
    match raw {
        &[_, _, _, _, _, _, _, _, p0, p1, p2, p3, s0, s1, s2, s3] => Ok(CancelRequest {
            pid: i32::from_be_bytes([p0, p1, p2, p3]),
            secret: i32::from_be_bytes([s0, s1, s2, s3]),
        }),
        _ => Err(CodecError::Malformed("CancelRequest length is not 16")),
    }
}

/// Checks the parameter list the way the accessors will read it.
///
/// Duplicates are refused: PostgreSQL keeps the last value, and a gateway that read the first
/// would judge a different database or option than the server applies.
fn validate_params(raw: &[u8]) -> Result<(), CodecError> {
    let body = raw.get(MIN_LEN..).unwrap_or_default();
    // Either the lone final terminator, or parameters whose last string ends right before it.
    let area = match body {
        [0] => &[][..],
        [.., 0, 0] => body.get(..body.len() - 1).unwrap_or_default(),
        _ => {
            return Err(CodecError::Malformed(
                "startup packet without final terminator",
            ))
        }
    };
    let area = std::str::from_utf8(area)
        .map_err(|_| CodecError::Malformed("startup parameter is not UTF-8"))?;
    let mut names = Vec::new();
    let mut parts = area.split_terminator('\0');
    while let Some(name) = parts.next() {
        if name.is_empty() {
            return Err(CodecError::Malformed("empty startup parameter name"));
        }
        if parts.next().is_none() {
            return Err(CodecError::Malformed("startup parameter without a value"));
        }
        names.push(name);
    }
    names.sort_unstable();
    if names.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(CodecError::Malformed("duplicate startup parameter"));
    }
    Ok(())
}

/// Appends a protocol 3.0 StartupMessage (used towards the upstream server).
///
/// Strings are cut at an interior NUL and pairs whose name ends up empty are skipped, so the
/// packet always parses as the given list.
pub fn encode_startup(params: &[(&str, &str)], out: &mut BytesMut) {
    let at = begin_untagged(out);
    out.put_u32(PROTOCOL_3_0);
    for (name, value) in params {
        if name.as_bytes().first().is_none_or(|&b| b == 0) {
            continue;
        }
        put_cstr(out, name.as_bytes());
        put_cstr(out, value.as_bytes());
    }
    out.put_u8(0);
    finish(out, at);
}

/// Appends an SSLRequest.
pub fn encode_ssl_request(out: &mut BytesMut) {
    out.put_u32(MIN_LEN as u32);
    out.put_u32(SSL_REQUEST_CODE);
}

/// Appends a CancelRequest.
pub fn encode_cancel_request(req: CancelRequest, out: &mut BytesMut) {
    out.put_u32(CANCEL_LEN as u32);
    out.put_u32(CANCEL_REQUEST_CODE);
    out.put_i32(req.pid);
    out.put_i32(req.secret);
}

#[cfg(test)]
mod tests;
