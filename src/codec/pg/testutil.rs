//! Helpers shared by the codec's unit tests.

use bytes::{BufMut, BytesMut};

use super::wire::{begin, finish};
use super::{decode_frame, Frame};

/// Decodes the one whole frame at the start of `out` (up to 1 MiB).
pub fn frame(out: &mut BytesMut) -> Frame {
    decode_frame(out, 1 << 20).unwrap().unwrap()
}

/// A frame with `tag` and a body given byte for byte, however malformed.
pub fn handmade(tag: u8, body: &[u8]) -> Frame {
    let mut out = BytesMut::new();
    let at = begin(&mut out, tag);
    out.put_slice(body);
    finish(&mut out, at);
    frame(&mut out)
}
