//! Masking of the other messages that carry values out: ErrorResponse and NoticeResponse text,
//! NotificationResponse payloads and `COPY TO STDOUT` data.

use bytes::{BufMut, BytesMut};

use super::{Applied, Detectors, HashKey, MaskError, MaskPolicy, MaskStyle, FULL_MASK};
use crate::codec::pg::{
    encode_copy_data, encode_notification, CodecError, CopyData, ErrorNotice, Frame,
    NotificationResponse,
};

/// Runs the detectors over free text (see [`Detectors::mask`]).
pub fn mask_text(detectors: &Detectors, text: &[u8], out: &mut Vec<u8>) -> bool {
    detectors.mask(text, out)
}

/// Masks every field of an ErrorResponse or NoticeResponse (message, detail, hint, context,
/// internal query, and the names too: any of them can quote a value). Returns false when the
/// frame can be forwarded as is, true when a rewritten message was appended to `out`.
pub fn mask_error_fields(
    frame: &Frame,
    detectors: &Detectors,
    out: &mut BytesMut,
) -> Result<bool, CodecError> {
    let notice = ErrorNotice::decode(frame)?;
    if !detectors.any() {
        return Ok(false);
    }
    let mut masked: Vec<(u8, Option<Vec<u8>>)> = Vec::new();
    let mut changed = false;
    for (code, value) in notice.fields() {
        let mut v = Vec::new();
        let hit = detectors.mask(value, &mut v);
        changed |= hit;
        masked.push((code, hit.then_some(v)));
    }
    if !changed {
        return Ok(false);
    }
    let at = out.len();
    out.put_u8(frame.tag);
    out.put_i32(0);
    for ((code, value), (_, replacement)) in notice.fields().zip(&masked) {
        out.put_u8(code);
        // Field values come from C strings and masks hold no NUL, so framing is preserved.
        out.put_slice(replacement.as_deref().unwrap_or(value));
        out.put_u8(0);
    }
    out.put_u8(0);
    let len = i32::try_from(out.len() - at - 1).unwrap_or(i32::MAX);
    if let Some(slot) = out.get_mut(at + 1..at + 5) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    Ok(true)
}

/// Masks a NotificationResponse's channel and payload; false means forward it as is, true
/// means a rewritten message was appended to `out`.
pub fn mask_notification(
    frame: &Frame,
    detectors: &Detectors,
    out: &mut BytesMut,
) -> Result<bool, CodecError> {
    let n = NotificationResponse::decode(frame)?;
    let (mut channel, mut payload) = (Vec::new(), Vec::new());
    let c = detectors.mask(n.channel, &mut channel);
    let p = detectors.mask(n.payload, &mut payload);
    if !c && !p {
        return Ok(false);
    }
    encode_notification(
        out,
        n.pid,
        if c { &channel } else { n.channel },
        if p { &payload } else { n.payload },
    );
    Ok(true)
}

/// The format of a `COPY TO STDOUT`, from its options (and its CopyOutResponse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFormat {
    /// Text format with this delimiter (tab unless `DELIMITER` says otherwise).
    Text {
        /// The field delimiter.
        delimiter: u8,
    },
    /// CSV: detectors run over each line; column rules cannot be applied field by field.
    Csv,
    /// Binary: cannot be masked at all.
    Binary,
}

/// How to mask the CopyData of one `COPY ... TO STDOUT`.
#[derive(Clone, Debug)]
pub struct CopyPlan {
    format: CopyFormat,
    styles: Vec<Option<MaskStyle>>,
    detectors: Detectors,
    key: Option<HashKey>,
}

impl CopyPlan {
    /// `columns` holds the rule style of each copied column in order (the proxy finds them
    /// with [`super::ColumnRules::style_for`]). A COPY that cannot be masked in its format is
    /// refused: binary with anything to mask, CSV with a masked column.
    pub fn new(
        policy: &MaskPolicy,
        format: CopyFormat,
        columns: &[Option<MaskStyle>],
    ) -> Result<Self, MaskError> {
        let any_style = columns.iter().any(Option::is_some);
        let detectors = policy.detectors();
        match format {
            CopyFormat::Binary if any_style || detectors.any() => {
                return Err(MaskError::Refused(
                    "binary COPY is not allowed for data that may be masked",
                ))
            }
            CopyFormat::Csv if any_style => {
                return Err(MaskError::Refused(
                    "CSV COPY is not allowed for a masked column; use text format",
                ))
            }
            _ => {}
        }
        Ok(Self {
            format,
            styles: columns.to_vec(),
            detectors,
            key: policy.key().cloned(),
        })
    }

    /// Whether CopyData can be forwarded without looking at it.
    pub fn is_pass_through(&self) -> bool {
        !self.detectors.any() && self.styles.iter().all(Option::is_none)
    }

    /// Masks one CopyData message (PostgreSQL sends one row per message; several lines in one
    /// are handled too). False means forward it as is, true means a rewritten CopyData was
    /// appended to `out`.
    pub fn mask_copy_data(&self, frame: &Frame, out: &mut BytesMut) -> Result<bool, CodecError> {
        let data = CopyData::decode(frame)?.data;
        if self.is_pass_through() {
            return Ok(false);
        }
        let mut masked = Vec::new();
        let changed = match self.format {
            CopyFormat::Binary => false,
            CopyFormat::Csv => self.detectors.mask(data, &mut masked),
            CopyFormat::Text { delimiter } => self.mask_text_rows(data, delimiter, &mut masked),
        };
        if changed {
            encode_copy_data(out, &masked);
        }
        Ok(changed)
    }

    /// Text format: fields split at the delimiter, lines at newline (both always escaped
    /// inside values), `\N` is NULL.
    fn mask_text_rows(&self, data: &[u8], delimiter: u8, masked: &mut Vec<u8>) -> bool {
        let mut copied = 0;
        let mut changed = false;
        let mut field = 0;
        let mut start = 0;
        let mut replacement = Vec::new();
        let mut i = 0;
        while start < data.len() {
            // The end of this field: a delimiter or newline not escaped by a backslash.
            while let Some(&b) = data.get(i) {
                if b == b'\\' {
                    i += 2;
                    continue;
                }
                if b == delimiter || b == b'\n' {
                    break;
                }
                i += 1;
            }
            let end = i.min(data.len());
            let value = data.get(start..end).unwrap_or_default();
            replacement.clear();
            if value != b"\\N" && self.mask_field(field, value, delimiter, &mut replacement) {
                if !changed {
                    masked.reserve(data.len());
                    changed = true;
                }
                masked.extend_from_slice(data.get(copied..start).unwrap_or_default());
                masked.extend_from_slice(&replacement);
                copied = end;
            }
            field = if data.get(end) == Some(&b'\n') {
                0
            } else {
                field + 1
            };
            start = end + 1;
            i = start;
        }
        if changed {
            masked.extend_from_slice(data.get(copied..).unwrap_or_default());
        }
        changed
    }

    fn mask_field(&self, field: usize, raw: &[u8], delimiter: u8, out: &mut Vec<u8>) -> bool {
        match self.styles.get(field).copied().flatten() {
            Some(MaskStyle::Null) => out.extend_from_slice(b"\\N"),
            Some(MaskStyle::Full) => out.extend_from_slice(FULL_MASK),
            Some(style) => {
                let mut plain = Vec::new();
                let mut value = Vec::new();
                unescape(raw, &mut plain);
                match style.apply(self.key.as_ref(), &plain, &mut value) {
                    Applied::Null => out.extend_from_slice(b"\\N"),
                    Applied::Value => escape(&value, delimiter, out),
                }
            }
            // Detectors run over the escaped text: masks hold no backslash, delimiter or
            // newline, and `\n` inside a PEM block does not stop its match.
            None => return self.detectors.mask(raw, out),
        }
        true
    }
}

/// Decodes COPY text-format escapes, so last4 and hash see the same value as in a DataRow.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&c) = raw.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut n = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            n = n * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((n & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut n = 0u32;
                for _ in 0..2 {
                    match raw.get(i).and_then(|&d| char::from(d).to_digit(16)) {
                        Some(d) => {
                            n = n * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push((n & 0xff) as u8);
            }
            other => out.push(other),
        }
    }
}

/// Encodes a value for COPY text format.
fn escape(value: &[u8], delimiter: u8, out: &mut Vec<u8>) {
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            d if d == delimiter => out.extend_from_slice(&[b'\\', d]),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests;
