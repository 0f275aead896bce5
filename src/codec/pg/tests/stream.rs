//! A test-side session decoder that walks one direction of a connection through the startup
//! phase and into tagged frames, keeping every byte it consumed.

use bytes::{Bytes, BytesMut};

use crate::codec::pg::{
    decode_frame, decode_startup, encode_cancel_request, encode_ssl_request, CodecError, Frame,
    StartupPacket, GSSENC_REQUEST_CODE,
};

/// Limit used for captures: far above any message in them.
pub(super) const MAX_LEN: usize = 1 << 20;

/// Which side of the connection a byte stream came from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Side {
    Frontend,
    /// The backend answers each SSL/GSS request with one byte before any tagged message.
    Backend {
        answers: usize,
    },
}

/// One decoded piece of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Unit {
    Startup(StartupPacket),
    Answer(u8),
    Frame(Frame),
}

impl Unit {
    /// The exact bytes this unit took from the stream.
    pub(super) fn wire(&self) -> Bytes {
        match self {
            Unit::Startup(StartupPacket::Startup(m)) => m.as_bytes().clone(),
            Unit::Startup(StartupPacket::SslRequest) => {
                let mut out = BytesMut::new();
                encode_ssl_request(&mut out);
                out.freeze()
            }
            Unit::Startup(StartupPacket::GssEncRequest) => {
                let mut out = BytesMut::from(&8u32.to_be_bytes()[..]);
                out.extend_from_slice(&GSSENC_REQUEST_CODE.to_be_bytes());
                out.freeze()
            }
            Unit::Startup(StartupPacket::Cancel(c)) => {
                let mut out = BytesMut::new();
                encode_cancel_request(*c, &mut out);
                out.freeze()
            }
            Unit::Answer(b) => Bytes::copy_from_slice(&[*b]),
            Unit::Frame(f) => f.bytes.clone(),
        }
    }

    /// A short label: the tag of a frame, or a marker for untagged units.
    pub(super) fn label(&self) -> u8 {
        match self {
            Unit::Startup(_) => 0,
            Unit::Answer(b) => *b,
            Unit::Frame(f) => f.tag,
        }
    }
}

/// Decoding state for one direction.
pub(super) struct StreamDecoder {
    side: Side,
    in_startup: bool,
}

impl StreamDecoder {
    pub(super) fn new(side: Side) -> Self {
        Self {
            side,
            in_startup: matches!(side, Side::Frontend),
        }
    }

    /// The next complete unit, `Ok(None)` when more bytes are needed.
    pub(super) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Unit>, CodecError> {
        if let Side::Backend { answers } = &mut self.side {
            if *answers > 0 {
                if buf.is_empty() {
                    return Ok(None);
                }
                *answers -= 1;
                let b = buf.split_to(1);
                return Ok(b.first().map(|&b| Unit::Answer(b)));
            }
        }
        if self.in_startup {
            let Some(p) = decode_startup(buf, MAX_LEN)? else {
                return Ok(None);
            };
            // After SSLRequest/GSSENCRequest is refused the client sends another startup packet.
            self.in_startup = matches!(p, StartupPacket::SslRequest | StartupPacket::GssEncRequest);
            return Ok(Some(Unit::Startup(p)));
        }
        Ok(decode_frame(buf, MAX_LEN)?.map(Unit::Frame))
    }

    /// Decodes everything currently decodable.
    pub(super) fn drain(
        &mut self,
        buf: &mut BytesMut,
        into: &mut Vec<Unit>,
    ) -> Result<(), CodecError> {
        while let Some(u) = self.next(buf)? {
            into.push(u);
        }
        Ok(())
    }
}

/// Decodes a whole stream at once; the stream must end on a unit boundary.
pub(super) fn decode_all(input: &[u8], side: Side) -> Vec<Unit> {
    let mut buf = BytesMut::from(input);
    let mut units = Vec::new();
    StreamDecoder::new(side)
        .drain(&mut buf, &mut units)
        .expect("whole capture decodes");
    assert!(
        buf.is_empty(),
        "{} bytes left after the last unit",
        buf.len()
    );
    units
}
