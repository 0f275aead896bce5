//! Extended-protocol messages for the raw client (Parse, Bind, Describe, Execute, Sync, Close,
//! FunctionCall, CopyFail), and exchanges that read a whole reply, answering a COPY FROM STDIN
//! with CopyFail so that a statement that wrongly reached the server cannot hang the test.

use std::io;

use bytes::{BufMut, BytesMut};
use sluice::codec::pg::{self, tag};

use super::rawpg::{Reply, ServerError};
use super::RawConn;

/// Result column format code for text.
pub const TEXT: i16 = 0;
/// Result column format code for binary.
pub const BINARY: i16 = 1;

/// Appends one tagged frontend message whose body `write` fills.
fn message(out: &mut BytesMut, tag: u8, write: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let len_at = out.len();
    out.put_i32(0);
    write(out);
    let len = i32::try_from(out.len() - len_at).expect("message fits in i32");
    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

fn cstr(out: &mut BytesMut, s: &str) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

/// Parse: a statement named `name` (empty for the unnamed one), no declared parameter types.
pub fn parse(out: &mut BytesMut, name: &str, sql: &str) {
    message(out, b'P', |b| {
        cstr(b, name);
        cstr(b, sql);
        b.put_i16(0);
    });
}

/// Bind: text parameters (`None` is NULL), one result format code for every column.
pub fn bind(out: &mut BytesMut, portal: &str, stmt: &str, params: &[Option<&str>], result: i16) {
    message(out, b'B', |b| {
        cstr(b, portal);
        cstr(b, stmt);
        b.put_i16(0);
        b.put_i16(i16::try_from(params.len()).expect("few parameters"));
        for p in params {
            match p {
                None => b.put_i32(-1),
                Some(v) => {
                    b.put_i32(i32::try_from(v.len()).expect("small parameter"));
                    b.put_slice(v.as_bytes());
                }
            }
        }
        b.put_i16(1);
        b.put_i16(result);
    });
}

/// Describe of a portal (`b'P'`) or a statement (`b'S'`).
pub fn describe(out: &mut BytesMut, kind: u8, name: &str) {
    message(out, b'D', |b| {
        b.put_u8(kind);
        cstr(b, name);
    });
}

/// Execute a portal with no row limit.
pub fn execute(out: &mut BytesMut, portal: &str) {
    message(out, b'E', |b| {
        cstr(b, portal);
        b.put_i32(0);
    });
}

/// Sync.
pub fn sync(out: &mut BytesMut) {
    message(out, tag::frontend::SYNC, |_| {});
}

/// Close of a statement (`b'S'`) or portal (`b'P'`).
pub fn close(out: &mut BytesMut, kind: u8, name: &str) {
    message(out, b'C', |b| {
        b.put_u8(kind);
        cstr(b, name);
    });
}

/// FunctionCall of the function with `oid`, text arguments, text result.
pub fn function_call(out: &mut BytesMut, oid: u32, args: &[&str]) {
    message(out, tag::frontend::FUNCTION_CALL, |b| {
        b.put_u32(oid);
        b.put_i16(1);
        b.put_i16(TEXT);
        b.put_i16(i16::try_from(args.len()).expect("few arguments"));
        for a in args {
            b.put_i32(i32::try_from(a.len()).expect("small argument"));
            b.put_slice(a.as_bytes());
        }
        b.put_i16(TEXT);
    });
}

/// CopyFail with a reason.
pub fn copy_fail(out: &mut BytesMut, reason: &str) {
    message(out, tag::frontend::COPY_FAIL, |b| cstr(b, reason));
}

impl RawConn {
    /// Sends `bytes` and reads up to the next ReadyForQuery. A CopyInResponse (the server
    /// waiting for COPY data) is answered with CopyFail (and Sync, unless `bytes` is a simple
    /// Query) and kept in the reply.
    pub fn exchange(&mut self, bytes: &[u8]) -> io::Result<Reply> {
        self.send(bytes)?;
        let mut reply = Reply::default();
        loop {
            let frame = self.expect_frame()?;
            match frame.tag {
                tag::backend::READY_FOR_QUERY => {
                    reply.status = frame.body().first().copied().unwrap_or(0);
                    reply.frames.push(frame);
                    return Ok(reply);
                }
                tag::backend::COPY_IN_RESPONSE => {
                    let mut out = BytesMut::new();
                    copy_fail(&mut out, "the test sends no COPY data");
                    // A Sync sent before the COPY started was swallowed by copy-in mode; an
                    // extended-protocol request needs a new one to end its error state.
                    if bytes.first() != Some(&tag::frontend::QUERY) {
                        sync(&mut out);
                    }
                    self.send(&out)?;
                }
                _ => {}
            }
            reply.frames.push(frame);
        }
    }

    /// A simple-protocol Query, reply read with [`exchange`](Self::exchange).
    pub fn simple(&mut self, sql: &str) -> io::Result<Reply> {
        let mut out = BytesMut::new();
        pg::encode_query(&mut out, sql);
        self.exchange(&out)
    }

    /// Parse (unnamed) + Bind + Describe portal + Execute + Sync in one write: the extended
    /// protocol as drivers pipeline it, results in `format`.
    pub fn extended(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
        format: i16,
    ) -> io::Result<Reply> {
        let mut out = BytesMut::new();
        parse(&mut out, "", sql);
        bind(&mut out, "", "", params, format);
        describe(&mut out, b'P', "");
        execute(&mut out, "");
        sync(&mut out);
        self.exchange(&out)
    }
}

impl Reply {
    /// Every byte received for this request, frame headers included, concatenated.
    pub fn wire(&self) -> Vec<u8> {
        self.frames
            .iter()
            .flat_map(|f| f.bytes.iter().copied())
            .collect()
    }

    /// Every ErrorResponse, decoded.
    pub fn errors(&self) -> Vec<ServerError> {
        self.frames
            .iter()
            .filter(|f| f.tag == tag::backend::ERROR_RESPONSE)
            .map(super::rawpg::server_error)
            .collect()
    }

    /// Whether any message of `tag` was received.
    pub fn has(&self, tag: u8) -> bool {
        self.frames.iter().any(|f| f.tag == tag)
    }

    /// A one-line summary for assertion messages: error, tags, rows and status.
    pub fn summary(&self) -> String {
        let tags: String = self.frames.iter().map(|f| f.tag as char).collect();
        format!(
            "messages `{tags}`, errors {:?}, commands {:?}, rows {:?}, status {}",
            self.errors(),
            self.command_tags(),
            self.rows(),
            self.status as char
        )
    }
}
