//! Result-data messages from the server: RowDescription, DataRow, CommandComplete, the COPY
//! family (CopyData and the Copy*Response headers) and NotificationResponse.
//!
//! These are the messages that carry values out of the database, so masking reads them on
//! every row: decoders validate the whole layout once and then hand out borrowed slices, and the
//! DataRow encoder writes straight into the caller's buffer.

use bytes::{BufMut, BytesMut};

use super::tag::backend::{
    COMMAND_COMPLETE, COPY_BOTH_RESPONSE, COPY_DATA, COPY_IN_RESPONSE, COPY_OUT_RESPONSE, DATA_ROW,
    NOTIFICATION_RESPONSE, ROW_DESCRIPTION,
};
use super::wire::{begin, finish, put_cstr, to_i32, Reader};
use super::{CodecError, Frame};

/// Result-column format code for text.
pub const FORMAT_TEXT: i16 = 0;
/// Result-column format code for binary.
pub const FORMAT_BINARY: i16 = 1;

fn i16(r: &mut Reader<'_>) -> Result<i16, CodecError> {
    r.i16()
}

fn u32(r: &mut Reader<'_>) -> Result<u32, CodecError> {
    Ok(u32::from_be_bytes(r.array::<4>()?))
}

/// A count field that must not be negative.
fn count(r: &mut Reader<'_>, what: &'static str) -> Result<usize, CodecError> {
    usize::try_from(i16(r)?).map_err(|_| CodecError::Malformed(what))
}

/// One column of a RowDescription, borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// Column label as the client will see it (an alias if the query gave one), in the client
    /// encoding.
    pub name: &'a [u8],
    /// OID of the table the column comes from, 0 when it is not a plain table column.
    pub table_oid: u32,
    /// Attribute number of the column in that table, 0 when not a plain table column.
    pub column: i16,
    /// OID of the column's data type.
    pub type_oid: u32,
    /// `pg_type.typlen`: negative for variable-width types.
    pub type_size: i16,
    /// `pg_attribute.atttypmod`; type-specific.
    pub type_modifier: i32,
    /// [`FORMAT_TEXT`] or [`FORMAT_BINARY`] (always text in answer to Describe of a statement,
    /// where the format is not known yet).
    pub format: i16,
}

impl FieldDescription<'_> {
    fn read<'a>(r: &mut Reader<'a>) -> Result<FieldDescription<'a>, CodecError> {
        Ok(FieldDescription {
            name: r.cstr()?,
            table_oid: u32(r)?,
            column: i16(r)?,
            type_oid: u32(r)?,
            type_size: i16(r)?,
            type_modifier: r.i32()?,
            format: i16(r)?,
        })
    }

    fn write(&self, out: &mut BytesMut) {
        put_cstr(out, self.name);
        out.put_u32(self.table_oid);
        out.put_i16(self.column);
        out.put_u32(self.type_oid);
        out.put_i16(self.type_size);
        out.put_i32(self.type_modifier);
        out.put_i16(self.format);
    }
}

/// The columns of the rows that follow (`T`), validated once and iterated without copying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowDescription<'a> {
    len: usize,
    /// The field list after the count; every field is known to be complete.
    fields: &'a [u8],
}

impl<'a> RowDescription<'a> {
    /// Decodes a `T` frame; every field must be complete and nothing may follow the last.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(ROW_DESCRIPTION)?);
        let len = count(&mut r, "negative field count")?;
        let start = r.position();
        for _ in 0..len {
            FieldDescription::read(&mut r)?;
        }
        r.finish()?;
        let fields = frame.body().get(start..).unwrap_or_default();
        Ok(Self { len, fields })
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the rows have no columns (`SELECT` with an empty target list).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The columns in order.
    pub fn fields(&self) -> impl Iterator<Item = FieldDescription<'a>> {
        let mut r = Reader::new(self.fields);
        (0..self.len).map_while(move |_| FieldDescription::read(&mut r).ok())
    }
}

/// Appends a RowDescription with the given columns.
pub fn encode_row_description(out: &mut BytesMut, fields: &[FieldDescription<'_>]) {
    let at = begin(out, ROW_DESCRIPTION);
    out.put_i16(i16::try_from(fields.len()).unwrap_or(i16::MAX));
    for f in fields.iter().take(i16::MAX as usize) {
        f.write(out);
    }
    finish(out, at);
}

/// One result row (`D`): column values as borrowed slices, `None` for SQL NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRow<'a> {
    len: usize,
    /// The whole body, count included, so offsets match the wire.
    body: &'a [u8],
}

impl<'a> DataRow<'a> {
    /// Decodes a `D` frame: every length must be -1 or fit in what follows, and the values
    /// must end exactly at the end of the body.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let body = frame.expect(DATA_ROW)?;
        let mut r = Reader::new(body);
        let len = count(&mut r, "negative column count")?;
        for _ in 0..len {
            value(&mut r)?;
        }
        r.finish()?;
        Ok(Self { len, body })
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The column values in order; `None` is SQL NULL.
    pub fn values(&self) -> impl Iterator<Item = Option<&'a [u8]>> {
        let mut r = Reader::new(self.body);
        let _ = i16(&mut r);
        (0..self.len).map_while(move |_| value(&mut r).ok())
    }
}

fn value<'a>(r: &mut Reader<'a>) -> Result<Option<&'a [u8]>, CodecError> {
    match r.i32()? {
        -1 => Ok(None),
        n => {
            let n =
                usize::try_from(n).map_err(|_| CodecError::Malformed("negative value length"))?;
            Ok(Some(r.bytes(n)?))
        }
    }
}

/// Writes a DataRow value by value, for callers that produce values one at a time (a masked
/// row is built column by column). The column count is patched in by [`DataRowEncoder::finish`].
#[derive(Debug)]
pub struct DataRowEncoder<'o> {
    out: &'o mut BytesMut,
    len_at: usize,
    count_at: usize,
    count: usize,
}

impl<'o> DataRowEncoder<'o> {
    /// Starts a DataRow at the end of `out`.
    pub fn begin(out: &'o mut BytesMut) -> Self {
        let len_at = begin(out, DATA_ROW);
        let count_at = out.len();
        out.put_i16(0);
        Self {
            out,
            len_at,
            count_at,
            count: 0,
        }
    }

    /// Appends one value; `None` is SQL NULL.
    pub fn value(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.out.put_i32(-1),
            Some(v) => {
                self.out.put_i32(to_i32(v.len()));
                self.out.put_slice(v);
            }
        }
        self.count += 1;
    }

    /// Patches the column count and the message length.
    pub fn finish(self) {
        let n = i16::try_from(self.count).unwrap_or(i16::MAX);
        if let Some(slot) = self.out.get_mut(self.count_at..self.count_at + 2) {
            slot.copy_from_slice(&n.to_be_bytes());
        }
        finish(self.out, self.len_at);
    }
}

/// Appends a DataRow holding `values` (`None` is SQL NULL).
pub fn encode_data_row<'v>(out: &mut BytesMut, values: impl IntoIterator<Item = Option<&'v [u8]>>) {
    let mut row = DataRowEncoder::begin(out);
    for v in values {
        row.value(v);
    }
    row.finish();
}

/// A command finished (`C`); the tag says which and, for most, how many rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandComplete<'a> {
    /// The whole tag, e.g. `INSERT 0 5`, `SELECT 3`, `CREATE TABLE`.
    pub tag: &'a str,
}

impl<'a> CommandComplete<'a> {
    /// Decodes a `C` frame; the tag is ASCII in practice and must be UTF-8.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(COMMAND_COMPLETE)?);
        let tag = r.cstr_utf8()?;
        r.finish()?;
        Ok(Self { tag })
    }

    /// The command word(s) before any row count, e.g. `INSERT`, `SELECT`, `CREATE TABLE`.
    pub fn command(&self) -> &'a str {
        match self.rows() {
            Some(_) => {
                // The count (and INSERT's legacy OID before it) are the trailing numeric words.
                let mut end = self.tag.len();
                for word in self.tag.rsplit(' ') {
                    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
                        break;
                    }
                    end = end.saturating_sub(word.len() + 1);
                }
                self.tag.get(..end).unwrap_or(self.tag)
            }
            None => self.tag,
        }
    }

    /// The row count at the end of the tag (`SELECT 3` -> 3), if the command reports one.
    pub fn rows(&self) -> Option<u64> {
        let (_, last) = self.tag.rsplit_once(' ')?;
        if last.bytes().all(|b| b.is_ascii_digit()) {
            last.parse().ok()
        } else {
            None
        }
    }
}

/// Appends CommandComplete with the given tag.
pub fn encode_command_complete(out: &mut BytesMut, tag: &str) {
    let at = begin(out, COMMAND_COMPLETE);
    put_cstr(out, tag.as_bytes());
    finish(out, at);
}

/// One chunk of COPY data (`d`, the same in both directions); for `COPY TO STDOUT` PostgreSQL
/// sends one row per message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyData<'a> {
    /// The payload, exactly as sent.
    pub data: &'a [u8],
}

impl<'a> CopyData<'a> {
    /// Decodes a `d` frame.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        Ok(Self {
            data: frame.expect(COPY_DATA)?,
        })
    }
}

/// Appends CopyData around `data`.
pub fn encode_copy_data(out: &mut BytesMut, data: &[u8]) {
    let at = begin(out, COPY_DATA);
    out.put_slice(data);
    finish(out, at);
}

/// The header of a COPY (`G` in, `H` out, `W` both): overall format and one format per column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyResponse<'a> {
    /// The message tag, telling the direction.
    pub tag: u8,
    /// 0 for text (or CSV), 1 for binary.
    pub format: u8,
    len: usize,
    formats: &'a [u8],
}

impl<'a> CopyResponse<'a> {
    /// Decodes a `G`, `H` or `W` frame.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        if ![COPY_IN_RESPONSE, COPY_OUT_RESPONSE, COPY_BOTH_RESPONSE].contains(&frame.tag) {
            return Err(CodecError::Malformed("unexpected message tag"));
        }
        let mut r = Reader::new(frame.body());
        let format = r.u8()?;
        let len = count(&mut r, "negative column count")?;
        let formats = r.bytes(len.saturating_mul(2))?;
        r.finish()?;
        Ok(Self {
            tag: frame.tag,
            format,
            len,
            formats,
        })
    }

    /// Whether the overall format is binary.
    pub fn is_binary(&self) -> bool {
        self.format != 0
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the COPY has no columns.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Per-column format codes.
    pub fn column_formats(&self) -> impl Iterator<Item = i16> + 'a {
        self.formats
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
    }
}

/// Appends a Copy*Response with the given tag, overall format and per-column formats.
pub fn encode_copy_response(out: &mut BytesMut, tag: u8, format: u8, columns: &[i16]) {
    let at = begin(out, tag);
    out.put_u8(format);
    out.put_i16(i16::try_from(columns.len()).unwrap_or(i16::MAX));
    for &c in columns.iter().take(i16::MAX as usize) {
        out.put_i16(c);
    }
    finish(out, at);
}

/// A LISTEN notification (`A`), borrowed from the frame; channel and payload are bytes in the
/// client encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotificationResponse<'a> {
    /// Process id of the notifying backend.
    pub pid: i32,
    /// Channel name.
    pub channel: &'a [u8],
    /// Payload (empty when none was given).
    pub payload: &'a [u8],
}

impl<'a> NotificationResponse<'a> {
    /// Decodes an `A` frame.
    pub fn decode(frame: &'a Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(NOTIFICATION_RESPONSE)?);
        let n = Self {
            pid: r.i32()?,
            channel: r.cstr()?,
            payload: r.cstr()?,
        };
        r.finish()?;
        Ok(n)
    }

    /// Appends this message.
    pub fn encode(&self, out: &mut BytesMut) {
        encode_notification(out, self.pid, self.channel, self.payload);
    }
}

/// Appends a NotificationResponse (strings cut at an interior NUL).
pub fn encode_notification(out: &mut BytesMut, pid: i32, channel: &[u8], payload: &[u8]) {
    let at = begin(out, NOTIFICATION_RESPONSE);
    out.put_i32(pid);
    put_cstr(out, channel);
    put_cstr(out, payload);
    finish(out, at);
}

#[cfg(test)]
mod tests;
