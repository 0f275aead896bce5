//! Bounds-checked readers and length-patching writers shared by the message codecs.
//!
//! Every read goes through [`Reader`], so a short or lying message becomes a
//! [`CodecError::Malformed`] instead of a panic.

use bytes::{BufMut, BytesMut};

use super::CodecError;

/// Cursor over a message body; every accessor checks bounds.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far, as an offset into the slice given to [`Reader::new`].
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining().is_empty()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(CodecError::Malformed("field length overflows"))?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(CodecError::Malformed("message shorter than its fields"))?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, CodecError> {
        Ok(i16::from_be_bytes(self.array::<2>()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(self.array::<4>()?))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// A NUL-terminated string, returned without its terminator.
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8], CodecError> {
        let rest = self.remaining();
        let nul = memchr::memchr(0, rest)
            .ok_or(CodecError::Malformed("string without NUL terminator"))?;
        let s = self.bytes(nul)?;
        self.pos += 1; // the terminator, known present
        Ok(s)
    }

    /// A NUL-terminated string that must be UTF-8.
    pub(crate) fn cstr_utf8(&mut self) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.cstr()?).map_err(|_| CodecError::Malformed("string is not UTF-8"))
    }

    /// Rejects bytes after the last field: PostgreSQL does too, and accepting them would let
    /// the gateway and the server disagree about what a message says.
    pub(crate) fn finish(&self) -> Result<(), CodecError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Malformed("trailing bytes after the last field"))
        }
    }
}

/// Starts a tagged message; returns the position of its length field for [`finish`].
pub(crate) fn begin(out: &mut BytesMut, tag: u8) -> usize {
    out.put_u8(tag);
    begin_untagged(out)
}

/// Starts a message without a tag byte (startup phase).
pub(crate) fn begin_untagged(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.put_i32(0);
    at
}

/// Writes the length of everything from the length field at `len_at` to the end of `out`.
pub(crate) fn finish(out: &mut BytesMut, len_at: usize) {
    let len = to_i32(out.len().saturating_sub(len_at));
    if let Some(slot) = out.get_mut(len_at..len_at.saturating_add(4)) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

/// Writes `s` up to its first NUL, then a terminator.
///
/// Cutting at an interior NUL is what the receiver would do anyway; doing it here keeps the
/// framing of the rest of the message intact when a string carries text a peer controlled.
pub(crate) fn put_cstr(out: &mut BytesMut, s: &[u8]) {
    let end = memchr::memchr(0, s).unwrap_or(s.len());
    out.put_slice(s.get(..end).unwrap_or_default());
    out.put_u8(0);
}

/// Lengths on the wire are `i32`; callers keep messages far below that (PostgreSQL caps them at
/// 1 GiB), so saturating only matters for inputs that would be rejected anyway.
pub(crate) fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
