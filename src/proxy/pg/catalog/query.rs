//! The catalog query and the reading of its answer, sans-IO: the text sent as a simple Query,
//! and a state machine fed backend frames until ReadyForQuery.

use std::collections::HashMap;
use std::fmt::Write;

use crate::codec::pg::{self, tag::backend, DataRow, ErrorNotice, Frame};

use super::cache::TableInfo;

/// The lookup for `oids` (already deduplicated, none zero). The OIDs are integers formatted
/// here, so nothing from a client reaches the text. System columns (negative attribute
/// numbers) are included because a result may select them (`ctid`, `xmin`) and an
/// unresolved column is refused when column rules exist; dropped columns are left out so that
/// their placeholder names (`........pg.dropped.N........`) are never reported.
pub fn sql(oids: &[u32]) -> String {
    let mut list = String::with_capacity(oids.len() * 8);
    for (i, oid) in oids.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let _ = write!(list, "{oid}");
    }
    format!(
        "SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
         WHERE c.oid = ANY('{{{list}}}'::pg_catalog.oid[]) \
         AND a.attnum <> 0 AND NOT a.attisdropped"
    )
}

/// How reading the answer went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// The upstream answered with an error and then ReadyForQuery: the connection is usable.
    Refused { code: String, message: String },
    /// The upstream sent something that is not a well-formed answer to the query: the
    /// connection must be dropped.
    Protocol(String),
}

/// Accumulates the answer to one catalog query.
#[derive(Debug, Default)]
pub struct Answer {
    tables: HashMap<u32, TableInfo>,
    error: Option<(String, String)>,
}

impl Answer {
    /// Feeds one backend frame: `Ok(Some(tables))` once ReadyForQuery ends a successful answer,
    /// `Ok(None)` while more frames are due.
    pub fn feed(&mut self, frame: &Frame) -> Result<Option<HashMap<u32, TableInfo>>, AnswerError> {
        match frame.tag {
            backend::DATA_ROW if self.error.is_none() => self.row(frame)?,
            backend::ROW_DESCRIPTION
            | backend::COMMAND_COMPLETE
            | backend::EMPTY_QUERY_RESPONSE
            | backend::PARAMETER_STATUS
            | backend::NOTICE_RESPONSE
            | backend::NOTIFICATION_RESPONSE => {}
            backend::ERROR_RESPONSE => {
                let e = ErrorNotice::decode(frame).map_err(codec)?;
                self.error = Some((
                    e.code().unwrap_or("XX000").to_owned(),
                    e.message().unwrap_or("no message").to_owned(),
                ));
            }
            backend::READY_FOR_QUERY => {
                return match self.error.take() {
                    Some((code, message)) => Err(AnswerError::Refused { code, message }),
                    None => Ok(Some(std::mem::take(&mut self.tables))),
                };
            }
            t => {
                return Err(AnswerError::Protocol(format!(
                    "unexpected message '{}' in answer to the catalog query",
                    t.escape_ascii()
                )))
            }
        }
        Ok(None)
    }

    fn row(&mut self, frame: &Frame) -> Result<(), AnswerError> {
        let row = DataRow::decode(frame).map_err(codec)?;
        let mut values = row.values();
        let mut next = |what: &str| -> Result<&[u8], AnswerError> {
            values
                .next()
                .flatten()
                .ok_or_else(|| AnswerError::Protocol(format!("catalog row without {what}")))
        };
        let oid = number::<u32>(next("oid")?, "oid")?;
        let schema = text(next("schema")?, "schema")?;
        let table = text(next("table")?, "table")?;
        let attnum = number::<i16>(next("attnum")?, "attnum")?;
        let column = text(next("column")?, "column")?;
        let info = self.tables.entry(oid).or_insert_with(|| TableInfo {
            schema,
            table,
            columns: Vec::new(),
        });
        // Rows arrive in no particular order; keep the list sorted for binary search.
        match info.columns.binary_search_by_key(&attnum, |(n, _)| *n) {
            Ok(i) => info.columns[i].1 = column,
            Err(i) => info.columns.insert(i, (attnum, column)),
        }
        Ok(())
    }
}

fn codec(e: pg::CodecError) -> AnswerError {
    AnswerError::Protocol(format!("bad message in answer to the catalog query: {e}"))
}

fn text(v: &[u8], what: &str) -> Result<String, AnswerError> {
    // The side connection asks for client_encoding UTF8, so anything else is a broken answer.
    String::from_utf8(v.to_vec())
        .map_err(|_| AnswerError::Protocol(format!("catalog {what} is not UTF-8")))
}

fn number<T: std::str::FromStr>(v: &[u8], what: &str) -> Result<T, AnswerError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| AnswerError::Protocol(format!("catalog {what} is not a number")))
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::codec::pg::{
        decode_frame, encode_command_complete, encode_data_row, encode_error, encode_notice,
        encode_parameter_status, encode_ready_for_query, TransactionStatus,
    };

    fn frames(build: impl FnOnce(&mut BytesMut)) -> Vec<Frame> {
        let mut buf = BytesMut::new();
        build(&mut buf);
        let mut out = Vec::new();
        while let Some(f) = decode_frame(&mut buf, 1 << 20).unwrap() {
            out.push(f);
        }
        assert!(buf.is_empty());
        out
    }

    fn row(buf: &mut BytesMut, values: [&str; 5]) {
        encode_data_row(buf, values.iter().map(|v| Some(v.as_bytes())));
    }

    fn run(frames: &[Frame]) -> Result<HashMap<u32, TableInfo>, AnswerError> {
        let mut answer = Answer::default();
        for (i, f) in frames.iter().enumerate() {
            if let Some(done) = answer.feed(f)? {
                assert_eq!(i + 1, frames.len(), "answer ended before the last frame");
                return Ok(done);
            }
        }
        panic!("no ReadyForQuery");
    }

    #[test]
    fn query_lists_the_oids_as_an_array_literal() {
        let q = sql(&[16384, 7, 4294967295]);
        assert!(
            q.contains("ANY('{16384,7,4294967295}'::pg_catalog.oid[])"),
            "{q}"
        );
        assert!(q.contains("NOT a.attisdropped"));
        assert!(sql(&[1]).contains("'{1}'"));
    }

    #[test]
    fn rows_group_into_tables_with_sorted_columns() {
        let f = frames(|b| {
            encode_parameter_status(b, "application_name", "x");
            row(b, ["16384", "app", "users", "2", "email"]);
            encode_notice(b, "NOTICE", "00000", "hello");
            row(b, ["16384", "app", "users", "1", "id"]);
            row(b, ["16390", "public", "orders", "1", "id"]);
            row(b, ["16384", "app", "users", "-1", "ctid"]);
            encode_command_complete(b, "SELECT 4");
            encode_ready_for_query(b, TransactionStatus::Idle);
        });
        let tables = run(&f).unwrap();
        assert_eq!(tables.len(), 2);
        let users = &tables[&16384];
        assert_eq!(
            (users.schema.as_str(), users.table.as_str()),
            ("app", "users")
        );
        assert_eq!(
            users.columns,
            vec![(-1, "ctid".into()), (1, "id".into()), (2, "email".into())]
        );
        assert_eq!(tables[&16390].column(1), Some("id"));
    }

    #[test]
    fn an_error_is_reported_after_ready_for_query() {
        let f = frames(|b| {
            encode_error(b, "ERROR", "42501", "permission denied for table pg_class");
            encode_ready_for_query(b, TransactionStatus::Idle);
        });
        assert_eq!(
            run(&f).unwrap_err(),
            AnswerError::Refused {
                code: "42501".into(),
                message: "permission denied for table pg_class".into()
            }
        );
    }

    #[test]
    fn malformed_rows_and_unexpected_messages_are_protocol_errors() {
        let short = frames(|b| encode_data_row(b, [Some(&b"1"[..]), Some(b"s")]));
        assert!(matches!(run(&short), Err(AnswerError::Protocol(_))));
        let null = frames(|b| {
            encode_data_row(
                b,
                [Some(&b"1"[..]), Some(b"s"), Some(b"t"), Some(b"1"), None],
            )
        });
        assert!(matches!(run(&null), Err(AnswerError::Protocol(_))));
        let bad_number = frames(|b| row(b, ["x", "s", "t", "1", "c"]));
        assert!(matches!(run(&bad_number), Err(AnswerError::Protocol(_))));
        let bad_utf8 = frames(|b| {
            encode_data_row(
                b,
                [
                    Some(&b"1"[..]),
                    Some(b"s"),
                    Some(b"\xff"),
                    Some(b"1"),
                    Some(b"c"),
                ],
            )
        });
        assert!(matches!(run(&bad_utf8), Err(AnswerError::Protocol(_))));
        let copy = frames(|b| pg::encode_copy_data(b, b"x"));
        assert!(matches!(run(&copy), Err(AnswerError::Protocol(_))));
    }
}
