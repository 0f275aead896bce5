//! Extended-query frontend messages the policy hooks read: Parse, Bind, Describe, Execute and
//! Close, borrowed from their frames, plus the encoders the gateway uses to inject its own.

use bytes::{BufMut, BytesMut};

use super::tag::frontend::{BIND, CLOSE, DESCRIBE, EXECUTE, PARSE, SYNC};
use super::wire::{begin, finish, put_cstr, Reader};
use super::{CodecError, Frame, FORMAT_TEXT};

/// Whether a Describe or Close names a prepared statement or a portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `S`: a prepared statement.
    Statement,
    /// `P`: a portal.
    Portal,
}

impl Target {
    fn decode(b: u8) -> Result<Self, CodecError> {
        match b {
            b'S' => Ok(Self::Statement),
            b'P' => Ok(Self::Portal),
            _ => Err(CodecError::Malformed(
                "Describe/Close target is neither S nor P",
            )),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Self::Statement => b'S',
            Self::Portal => b'P',
        }
    }
}

/// Parse (`P`): a statement name, its SQL text and declared parameter types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Statement name; empty is the unnamed statement.
    pub name: &'a [u8],
    /// The SQL text, exactly as the server will read it (up to its NUL).
    pub sql: &'a [u8],
}

impl<'a> Parse<'a> {
    /// Decodes a `P` frame; the parameter type list is checked for framing but not kept.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(PARSE)?);
        let name = r.cstr()?;
        let sql = r.cstr()?;
        let n = r.i16()?;
        if n < 0 {
            return Err(CodecError::Malformed("negative parameter type count"));
        }
        r.bytes(usize::try_from(n).unwrap_or(0) * 4)?;
        r.finish()?;
        Ok(Self { name, sql })
    }
}

/// Bind (`B`): which statement becomes which portal, and the result formats asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Destination portal; empty is the unnamed portal.
    pub portal: &'a [u8],
    /// Source prepared statement.
    pub statement: &'a [u8],
    /// Result column format codes (none: all text; one: for every column; else one each).
    pub result_formats: Vec<i16>,
    /// The parameter format codes, as on the wire (two bytes each).
    param_formats: &'a [u8],
    /// The parameter count and values, as on the wire (length-prefixed, -1 for NULL).
    param_values: &'a [u8],
}

impl<'a> Bind<'a> {
    /// Decodes a `B` frame, walking the parameter values to reach the result formats.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(BIND)?);
        let portal = r.cstr()?;
        let statement = r.cstr()?;
        let formats = count(r.i16()?)?;
        let param_formats = r.bytes(formats * 2)?;
        let values_at = r.position();
        let params = count(r.i16()?)?;
        for _ in 0..params {
            let len = r.i32()?;
            if len >= 0 {
                r.bytes(usize::try_from(len).unwrap_or(usize::MAX))?;
            } else if len != -1 {
                return Err(CodecError::Malformed("negative parameter length"));
            }
        }
        let param_values = frame
            .body()
            .get(values_at..r.position())
            .unwrap_or_default();
        let results = count(r.i16()?)?;
        let mut result_formats = Vec::with_capacity(results);
        for _ in 0..results {
            result_formats.push(r.i16()?);
        }
        r.finish()?;
        Ok(Self {
            portal,
            statement,
            result_formats,
            param_formats,
            param_values,
        })
    }

    /// The parameters in order: each one's format code (the single code given applies to
    /// all, none means text) and value (`None` for NULL), borrowed from the frame.
    pub fn parameters(&self) -> impl Iterator<Item = (i16, Option<&'a [u8]>)> + '_ {
        let formats: Vec<i16> = self
            .param_formats
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect();
        let mut r = Reader::new(self.param_values);
        let n = r
            .i16()
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        (0..n).map_while(move |i| {
            let format = match formats.len() {
                0 => FORMAT_TEXT,
                1 => formats[0],
                _ => *formats.get(i)?,
            };
            let value = match r.i32().ok()? {
                -1 => None,
                len => Some(r.bytes(usize::try_from(len).ok()?).ok()?),
            };
            Some((format, value))
        })
    }
}

/// Describe (`D`) of a statement or portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Describe<'a> {
    /// Statement or portal.
    pub target: Target,
    /// Its name.
    pub name: &'a [u8],
}

impl<'a> Describe<'a> {
    /// Decodes a frontend `D` frame.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let (target, name) = target_and_name(frame, DESCRIBE)?;
        Ok(Self { target, name })
    }
}

/// Close (`C`) of a statement or portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Close<'a> {
    /// Statement or portal.
    pub target: Target,
    /// Its name.
    pub name: &'a [u8],
}

impl<'a> Close<'a> {
    /// Decodes a frontend `C` frame.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let (target, name) = target_and_name(frame, CLOSE)?;
        Ok(Self { target, name })
    }
}

/// Execute (`E`) of a portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Execute<'a> {
    /// The portal.
    pub portal: &'a [u8],
    /// Most rows to return; 0 is no limit.
    pub max_rows: i32,
}

impl<'a> Execute<'a> {
    /// Decodes an `E` frame.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(EXECUTE)?);
        let portal = r.cstr()?;
        let max_rows = r.i32()?;
        r.finish()?;
        Ok(Self { portal, max_rows })
    }
}

fn target_and_name(frame: &Frame, tag: u8) -> Result<(Target, &[u8]), CodecError> {
    let mut r = Reader::new(frame.expect(tag)?);
    let target = Target::decode(r.u8()?)?;
    let name = r.cstr()?;
    r.finish()?;
    Ok((target, name))
}

fn count(n: i16) -> Result<usize, CodecError> {
    usize::try_from(n).map_err(|_| CodecError::Malformed("negative count"))
}

/// Appends a Parse without declared parameter types.
pub fn encode_parse(out: &mut BytesMut, name: &[u8], sql: &str) {
    let at = begin(out, PARSE);
    put_cstr(out, name);
    put_cstr(out, sql.as_bytes());
    out.put_i16(0);
    finish(out, at);
}

/// Appends a Describe.
pub fn encode_describe(out: &mut BytesMut, target: Target, name: &[u8]) {
    let at = begin(out, DESCRIBE);
    out.put_u8(target.byte());
    put_cstr(out, name);
    finish(out, at);
}

/// Appends a Sync.
pub fn encode_sync(out: &mut BytesMut) {
    let at = begin(out, SYNC);
    finish(out, at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::pg::decode_frame;

    fn frame(bytes: &BytesMut) -> Frame {
        let mut b = bytes.clone();
        decode_frame(&mut b, 1 << 20).unwrap().unwrap()
    }

    #[test]
    fn parse_round_trips_and_rejects_trailing_bytes() {
        let mut out = BytesMut::new();
        encode_parse(&mut out, b"s1", "SELECT $1");
        let p = frame(&out);
        let parse = Parse::decode(&p).unwrap();
        assert_eq!((parse.name, parse.sql), (&b"s1"[..], &b"SELECT $1"[..]));
        let mut bad = out.clone();
        bad.put_u8(0);
        let len = (bad.len() - 1) as i32;
        bad[1..5].copy_from_slice(&len.to_be_bytes());
        assert!(Parse::decode(&frame(&bad)).is_err());
    }

    #[test]
    fn bind_reads_result_formats_past_parameters() {
        let mut out = BytesMut::new();
        let at = begin(&mut out, BIND);
        put_cstr(&mut out, b"p");
        put_cstr(&mut out, b"s");
        out.put_i16(1);
        out.put_i16(1);
        out.put_i16(2);
        out.put_i32(3);
        out.put_slice(b"abc");
        out.put_i32(-1);
        out.put_i16(2);
        out.put_i16(0);
        out.put_i16(1);
        finish(&mut out, at);
        let f = frame(&out);
        let b = Bind::decode(&f).unwrap();
        assert_eq!(b.portal, b"p");
        assert_eq!(b.statement, b"s");
        assert_eq!(b.result_formats, vec![0, 1]);
        let params: Vec<_> = b.parameters().collect();
        assert_eq!(params, [(1, Some(&b"abc"[..])), (1, None)]);
        // A parameter length running past the end is malformed, not a panic.
        let mut short = out.clone();
        short.truncate(short.len() - 6);
        let len = (short.len() - 1) as i32;
        short[1..5].copy_from_slice(&len.to_be_bytes());
        assert!(Bind::decode(&frame(&short)).is_err());
    }

    #[test]
    fn describe_close_execute_decode() {
        let mut out = BytesMut::new();
        encode_describe(&mut out, Target::Portal, b"");
        let d = frame(&out);
        assert_eq!(
            Describe::decode(&d).unwrap(),
            Describe {
                target: Target::Portal,
                name: b""
            }
        );
        let mut c = BytesMut::new();
        let at = begin(&mut c, CLOSE);
        c.put_u8(b'X');
        put_cstr(&mut c, b"s");
        finish(&mut c, at);
        assert!(Close::decode(&frame(&c)).is_err());
        let mut e = BytesMut::new();
        let at = begin(&mut e, EXECUTE);
        put_cstr(&mut e, b"p");
        e.put_i32(10);
        finish(&mut e, at);
        let ef = frame(&e);
        let ex = Execute::decode(&ef).unwrap();
        assert_eq!((ex.portal, ex.max_rows), (&b"p"[..], 10));
    }
}
