//! Framing of tagged messages (everything after the startup packet): tag, length, body.

use bytes::{Bytes, BytesMut};

use super::CodecError;

/// Bytes before a tagged message's body: the tag and the `i32` length.
pub const HEADER_LEN: usize = 5;

/// A whole tagged message, zero-copy: `bytes` holds tag + length + body, sliced out of the read
/// buffer. Messages the gateway does not act on are relayed as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message type byte; see [`super::tag`].
    pub tag: u8,
    /// The complete message as it appeared on the wire.
    pub bytes: Bytes,
}

impl Frame {
    /// The body after the 5-byte header (empty if `bytes` is shorter than a header).
    pub fn body(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }

    /// The body as a shared slice of the frame's buffer, without copying.
    pub fn body_bytes(&self) -> Bytes {
        if self.bytes.len() < HEADER_LEN {
            return Bytes::new();
        }
        self.bytes.slice(HEADER_LEN..)
    }

    /// Total length on the wire, tag included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame holds no bytes at all (never true for a decoded frame).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Checks the tag before a typed decoder reads the body.
    pub(crate) fn expect(&self, tag: u8) -> Result<&[u8], CodecError> {
        if self.tag == tag {
            Ok(self.body())
        } else {
            Err(CodecError::Malformed("unexpected message tag"))
        }
    }
}

/// Peeks at a header without consuming: `Some((tag, total_len_including_tag))` once 5 bytes are
/// present, `None` before.
///
/// `max_len` bounds the length field (the message size without its tag byte), so a peer cannot
/// make the caller buffer more than it allows.
pub fn peek_header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, CodecError> {
    let Some(&[tag, a, b, c, d]) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([a, b, c, d]);
    // Negative lengths land here too.
    if len < 4 {
        return Err(CodecError::Malformed("length field below 4"));
    }
    let len = usize::try_from(len).map_err(|_| CodecError::Malformed("length does not fit"))?;
    if len > max_len {
        return Err(CodecError::TooLarge { len, max: max_len });
    }
    let total = len
        .checked_add(1)
        .ok_or(CodecError::Malformed("length does not fit"))?;
    Ok(Some((tag, total)))
}

/// Splits the next whole message off the front of `buf`, or `Ok(None)` if it is not complete.
///
/// The length is checked against `max_len` before anything is buffered for it; nothing is
/// consumed unless a whole frame is returned.
pub fn decode_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Frame>, CodecError> {
    let Some((tag, total)) = peek_header(buf, max_len)? else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    let bytes = buf.split_to(total).freeze();
    Ok(Some(Frame { tag, bytes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn decodes_back_to_back_frames_zero_copy() {
        let mut wire = msg(b'Q', b"select 1\0");
        wire.extend(msg(b'X', b""));
        let mut buf = BytesMut::from(&wire[..]);
        let q = decode_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(q.tag, b'Q');
        assert_eq!(q.body(), b"select 1\0");
        assert_eq!(&q.body_bytes()[..], b"select 1\0");
        let x = decode_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!((x.tag, x.len(), x.body()), (b'X', 5, &b""[..]));
        assert!(buf.is_empty());
        assert_eq!(decode_frame(&mut buf, 1024).unwrap(), None);
    }

    #[test]
    fn waits_for_header_and_body_without_consuming() {
        let wire = msg(b'Q', b"select 1\0");
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(decode_frame(&mut buf, 1024).unwrap(), None);
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn length_below_four_is_malformed() {
        for len in [0i32, 3, -1, i32::MIN] {
            let mut buf = BytesMut::new();
            buf.extend_from_slice(b"Q");
            buf.extend_from_slice(&len.to_be_bytes());
            assert_eq!(
                decode_frame(&mut buf, 1024),
                Err(CodecError::Malformed("length field below 4"))
            );
        }
    }

    #[test]
    fn oversized_length_is_rejected_from_the_header_alone() {
        let mut buf = BytesMut::from(&[b'D', 0x7f, 0xff, 0xff, 0xff][..]);
        let cap = buf.capacity();
        assert_eq!(
            decode_frame(&mut buf, 1 << 20),
            Err(CodecError::TooLarge {
                len: i32::MAX as usize,
                max: 1 << 20
            })
        );
        assert_eq!(buf.capacity(), cap, "no allocation for an unchecked length");
        assert_eq!(
            peek_header(&buf, 1 << 20).unwrap_err().to_string(),
            "message of 2147483647 bytes exceeds the limit of 1048576 bytes"
        );
    }

    #[test]
    fn length_equal_to_limit_is_accepted() {
        let wire = msg(b'd', &[7; 16]);
        assert_eq!(peek_header(&wire, 20).unwrap(), Some((b'd', 21)));
        assert!(peek_header(&wire, 19).is_err());
    }

    #[test]
    fn frame_accessors_tolerate_short_handmade_frames() {
        let f = Frame {
            tag: b'Q',
            bytes: Bytes::from_static(b"Q\0"),
        };
        assert_eq!(f.body(), b"");
        assert!(f.body_bytes().is_empty());
    }
}
