//! Row plans: what to do with each column of a result, decided once per RowDescription, and
//! the DataRow rewrite that applies it.

use bytes::BytesMut;

use super::types::{binary_is_text, is_inert, INT8};
use super::{Applied, Detectors, HashKey, MaskPolicy, MaskStyle};
use crate::codec::pg::{
    CodecError, DataRow, DataRowEncoder, FieldDescription, Frame, RowDescription, FORMAT_TEXT,
};

/// Maps a column's table OID and attribute number to `(schema, table, column)` names; the
/// proxy answers from the catalog (cached per upstream). `None` means it could not tell.
pub trait ColumnResolver {
    /// Names of attribute `column` of the table with OID `table_oid`.
    fn resolve(&self, table_oid: u32, column: i16) -> Option<(String, String, String)>;
}

impl<F: Fn(u32, i16) -> Option<(String, String, String)>> ColumnResolver for F {
    fn resolve(&self, table_oid: u32, column: i16) -> Option<(String, String, String)> {
        self(table_oid, column)
    }
}

/// What happens to one column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnAction {
    /// Forwarded as is: no rule masks it and its type cannot hold a detector match.
    Pass,
    /// Text that the detectors scan.
    Scan,
    /// A binary `int8`: its decimal form is scanned, and a value the detectors flag (a card
    /// number fits in 19 digits) is sent as NULL, the only mask the binary form can carry.
    ScanInt8,
    /// Replaced by a column rule's style.
    Masked(MaskStyle),
    /// Cannot be masked in the requested form; the proxy must answer with an error instead of
    /// forwarding the result. A rewrite that meets it anyway sends NULL.
    Refuse(RefuseReason),
}

/// Why a column is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// Binary format for a column that may hold masked data.
    BinaryFormat,
    /// A table column whose names the resolver could not give, while column rules exist.
    Unresolved,
}

impl RefuseReason {
    /// Fixed text for the client's error message.
    pub fn message(self) -> &'static str {
        match self {
            Self::BinaryFormat => {
                "binary result format is not allowed for a column that may hold masked data"
            }
            Self::Unresolved => "the source of a result column could not be resolved for masking",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Column {
    type_oid: u32,
    /// The action for text format.
    text: ColumnAction,
    /// The action for the current format.
    action: ColumnAction,
}

/// The masking plan for the rows following one RowDescription.
#[derive(Clone, Debug)]
pub struct RowPlan {
    columns: Vec<Column>,
    detectors: Detectors,
    key: Option<HashKey>,
    /// True when every column passes, so rows are forwarded without looking at values.
    all_pass: bool,
}

impl RowPlan {
    /// Decides each column's action. Column rules are matched against the resolved table
    /// column (when the column is one) and, for one-part rules, also against the label the
    /// client sees, so an alias cannot dodge a rule and a computed `AS email` is caught.
    pub fn build(
        policy: &MaskPolicy,
        desc: &RowDescription<'_>,
        resolver: &dyn ColumnResolver,
    ) -> Self {
        let columns = desc
            .fields()
            .map(|f| {
                let text = text_action(policy, &f, resolver);
                Column {
                    type_oid: f.type_oid,
                    text,
                    action: for_format(text, f.type_oid, f.format),
                }
            })
            .collect();
        let mut plan = Self {
            columns,
            detectors: policy.detectors(),
            key: policy.key().cloned(),
            all_pass: false,
        };
        plan.update_all_pass();
        plan
    }

    fn update_all_pass(&mut self) {
        self.all_pass = self.columns.iter().all(|c| c.action == ColumnAction::Pass);
    }

    /// Re-decides the actions for the result formats of a Bind (none: all text; one: for
    /// every column; otherwise one per column), since a RowDescription answering Describe of
    /// a statement always says text.
    pub fn set_result_formats(&mut self, formats: &[i16]) {
        let n = self.columns.len();
        for (i, c) in self.columns.iter_mut().enumerate() {
            let format = match formats {
                [] => FORMAT_TEXT,
                [one] => *one,
                many if many.len() == n => many.get(i).copied().unwrap_or(FORMAT_TEXT),
                // PostgreSQL rejects such a Bind; refuse rather than guess.
                _ => i16::MAX,
            };
            c.action = for_format(c.text, c.type_oid, format);
        }
        self.update_all_pass();
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether the plan has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The action for column `i`.
    pub fn action(&self, i: usize) -> Option<ColumnAction> {
        self.columns.get(i).map(|c| c.action)
    }

    /// Whether every row can be forwarded untouched.
    pub fn is_pass_through(&self) -> bool {
        self.all_pass
    }

    /// The first refused column and why; the proxy answers with an error instead of rows.
    pub fn refusal(&self) -> Option<(usize, RefuseReason)> {
        self.columns
            .iter()
            .enumerate()
            .find_map(|(i, c)| match c.action {
                ColumnAction::Refuse(r) => Some((i, r)),
                _ => None,
            })
    }

    /// Applies the plan to a DataRow. Returns false when nothing changed (the caller forwards
    /// the original frame, zero-copy), true when a rewritten DataRow was appended to `out`.
    /// A row whose column count differs from the plan is malformed: forwarding it unmasked is
    /// not an option.
    pub fn rewrite_data_row(&self, frame: &Frame, out: &mut BytesMut) -> Result<bool, CodecError> {
        self.rewrite_data_row_counted(frame, out)
            .map(|masked| masked > 0)
    }

    /// [`rewrite_data_row`](Self::rewrite_data_row), returning how many values were replaced
    /// (0: nothing changed and nothing was appended).
    pub fn rewrite_data_row_counted(
        &self,
        frame: &Frame,
        out: &mut BytesMut,
    ) -> Result<u32, CodecError> {
        let row = DataRow::decode(frame)?;
        if row.len() != self.columns.len() {
            return Err(CodecError::Malformed(
                "DataRow column count differs from RowDescription",
            ));
        }
        if self.all_pass {
            return Ok(0);
        }
        let mut masked = 0;
        // Unallocated until a value actually needs masking.
        let mut scratch = Vec::new();
        let mut encoder: Option<DataRowEncoder<'_>> = None;
        // Moved into the encoder when the first value changes.
        let mut unused_out = Some(out);
        for (i, (value, column)) in row.values().zip(&self.columns).enumerate() {
            scratch.clear();
            let replaced = match (value, column.action) {
                (None, _) | (_, ColumnAction::Pass) => None,
                (Some(v), ColumnAction::Scan) => self
                    .detectors
                    .mask(v, &mut scratch)
                    .then_some(Applied::Value),
                (Some(v), ColumnAction::Masked(style)) => {
                    Some(style.apply(self.key.as_ref(), v, &mut scratch))
                }
                (Some(v), ColumnAction::ScanInt8) => {
                    let flagged = <[u8; 8]>::try_from(v).map_or(true, |b| {
                        self.detectors
                            .finds(i64::from_be_bytes(b).to_string().as_bytes())
                    });
                    flagged.then_some(Applied::Null)
                }
                (Some(_), ColumnAction::Refuse(_)) => Some(Applied::Null),
            };
            let Some(applied) = replaced else {
                if let Some(enc) = encoder.as_mut() {
                    enc.value(value);
                }
                continue;
            };
            masked += 1;
            let enc = match (encoder.as_mut(), unused_out.take()) {
                (Some(enc), _) => enc,
                (None, Some(out)) => {
                    let mut enc = DataRowEncoder::begin(out);
                    for earlier in row.values().take(i) {
                        enc.value(earlier);
                    }
                    encoder.insert(enc)
                }
                // Unreachable: the buffer is handed over exactly when the encoder starts.
                (None, None) => return Err(CodecError::Malformed("row rewrite state")),
            };
            match applied {
                Applied::Null => enc.value(None),
                Applied::Value => enc.value(Some(&scratch)),
            }
        }
        Ok(match encoder {
            Some(enc) => {
                enc.finish();
                masked
            }
            None => 0,
        })
    }
}

/// The action for a column in text format.
fn text_action(
    policy: &MaskPolicy,
    f: &FieldDescription<'_>,
    resolver: &dyn ColumnResolver,
) -> ColumnAction {
    let rules = policy.rules();
    let mut style = None;
    if !rules.is_empty() {
        if f.table_oid != 0 {
            match resolver.resolve(f.table_oid, f.column) {
                Some((schema, table, column)) => {
                    style = rules.style_for(Some((&schema, &table)), &column);
                }
                None => return ColumnAction::Refuse(RefuseReason::Unresolved),
            }
        }
        if style.is_none() {
            style = rules.style_for(None, &String::from_utf8_lossy(f.name));
        }
    }
    match style {
        Some(style) => ColumnAction::Masked(style),
        None if policy.detectors().any() && !is_inert(f.type_oid) => ColumnAction::Scan,
        None => ColumnAction::Pass,
    }
}

/// Adjusts a text-format action for the column's actual format.
fn for_format(text: ColumnAction, type_oid: u32, format: i16) -> ColumnAction {
    if format == FORMAT_TEXT {
        return text;
    }
    match text {
        // NULL is the same in every format.
        ColumnAction::Pass
        | ColumnAction::ScanInt8
        | ColumnAction::Refuse(_)
        | ColumnAction::Masked(MaskStyle::Null) => text,
        ColumnAction::Scan | ColumnAction::Masked(_) if binary_is_text(type_oid) => text,
        ColumnAction::Scan if type_oid == INT8 => ColumnAction::ScanInt8,
        ColumnAction::Scan | ColumnAction::Masked(_) => {
            ColumnAction::Refuse(RefuseReason::BinaryFormat)
        }
    }
}

#[cfg(test)]
mod tests;
