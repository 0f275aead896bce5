//! Errors raised while decoding PostgreSQL wire data.

/// Why bytes read from a peer could not be decoded.
///
/// Every variant means the peer that sent the bytes is at fault (or is not speaking protocol
/// 3.0); the caller decides which side that is and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The length field announces more bytes than the caller allows; nothing was buffered for it.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length announced by the peer.
        len: usize,
        /// Limit the caller passed in.
        max: usize,
    },
    /// The bytes do not follow the message layout; the reason is short and fixed.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A startup packet asked for a protocol version other than 3.0.
    #[error("unsupported protocol version {}.{}", .0 >> 16, .0 & 0xffff)]
    UnsupportedProtocol(u32),
}
