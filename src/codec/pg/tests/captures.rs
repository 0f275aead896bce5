//! Real PostgreSQL 15 sessions (see `testdata/README.md`) decoded whole, at every prefix and
//! byte by byte.

use bytes::BytesMut;

use super::stream::{decode_all, Side, StreamDecoder, Unit};
use crate::codec::pg::tag::{backend as be, frontend as fe};
use crate::codec::pg::{
    Authentication, BackendKeyData, ErrorNotice, Frame, ParameterStatus, PasswordMessage, Query,
    ReadyForQuery, StartupPacket, TransactionStatus,
};

struct Capture {
    name: &'static str,
    frontend: &'static [u8],
    backend: &'static [u8],
}

macro_rules! capture {
    ($name:literal) => {
        Capture {
            name: $name,
            frontend: include_bytes!(concat!("../testdata/", $name, ".fe.bin")),
            backend: include_bytes!(concat!("../testdata/", $name, ".be.bin")),
        }
    };
}

const CAPTURES: &[Capture] = &[
    capture!("simple"),
    capture!("extended_prepared"),
    capture!("copy"),
    capture!("error_simple"),
    capture!("error_txn"),
    capture!("listen_notify"),
    capture!("ssl_refused"),
];

fn find(name: &str) -> &'static Capture {
    CAPTURES
        .iter()
        .find(|c| c.name == name)
        .expect("known capture")
}

/// Both directions of a capture, decoded whole.
fn sides(c: &Capture) -> (Vec<Unit>, Vec<Unit>) {
    let fe_units = decode_all(c.frontend, Side::Frontend);
    let answers = fe_units
        .iter()
        .filter(|u| {
            matches!(
                u,
                Unit::Startup(StartupPacket::SslRequest | StartupPacket::GssEncRequest)
            )
        })
        .count();
    let be_units = decode_all(c.backend, Side::Backend { answers });
    (fe_units, be_units)
}

fn frames(units: &[Unit]) -> impl Iterator<Item = &Frame> {
    units.iter().filter_map(|u| match u {
        Unit::Frame(f) => Some(f),
        _ => None,
    })
}

fn labels(units: &[Unit]) -> Vec<u8> {
    units.iter().map(Unit::label).collect()
}

fn concat(units: &[Unit]) -> Vec<u8> {
    units.iter().flat_map(|u| u.wire()).collect()
}

/// Feeds every prefix `input[..n]` to a fresh decoder.
fn check_every_prefix(name: &str, input: &[u8], side: Side, whole: &[Unit]) {
    let ends: Vec<usize> = whole
        .iter()
        .scan(0, |end, u| {
            *end += u.wire().len();
            Some(*end)
        })
        .collect();
    for n in 0..=input.len() {
        let mut buf = BytesMut::from(&input[..n]);
        let mut units = Vec::new();
        StreamDecoder::new(side)
            .drain(&mut buf, &mut units)
            .unwrap_or_else(|e| panic!("{name}: prefix {n}: {e}"));
        let complete = ends.iter().take_while(|&&e| e <= n).count();
        assert_eq!(
            units.len(),
            complete,
            "{name}: prefix {n}: units out only when complete"
        );
        assert_eq!(
            units[..],
            whole[..complete],
            "{name}: prefix {n}: same units as whole"
        );
        let consumed = concat(&units);
        assert_eq!(
            consumed[..],
            input[..consumed.len()],
            "{name}: prefix {n}: lossless"
        );
        assert_eq!(
            consumed.len() + buf.len(),
            n,
            "{name}: prefix {n}: rest stays buffered"
        );
    }
}

/// Feeds the stream one byte at a time into one buffer.
fn check_byte_by_byte(name: &str, input: &[u8], side: Side, whole: &[Unit]) {
    let mut buf = BytesMut::new();
    let mut dec = StreamDecoder::new(side);
    let mut units = Vec::new();
    for (i, b) in input.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        dec.drain(&mut buf, &mut units)
            .unwrap_or_else(|e| panic!("{name}: byte {i}: {e}"));
    }
    assert!(buf.is_empty(), "{name}: nothing left over");
    assert_eq!(labels(&units), labels(whole), "{name}: same tags as whole");
    assert_eq!(concat(&units), input, "{name}: lossless");
}

#[test]
fn every_capture_decodes_losslessly_at_every_prefix() {
    for c in CAPTURES {
        let (fe_units, be_units) = sides(c);
        assert_eq!(
            concat(&fe_units),
            c.frontend,
            "{}: frontend lossless",
            c.name
        );
        assert_eq!(concat(&be_units), c.backend, "{}: backend lossless", c.name);
        let answers = Side::Backend {
            answers: be_units
                .iter()
                .filter(|u| matches!(u, Unit::Answer(_)))
                .count(),
        };
        check_every_prefix(c.name, c.frontend, Side::Frontend, &fe_units);
        check_every_prefix(c.name, c.backend, answers, &be_units);
        check_byte_by_byte(c.name, c.frontend, Side::Frontend, &fe_units);
        check_byte_by_byte(c.name, c.backend, answers, &be_units);
    }
}

#[test]
fn typed_decoders_accept_every_captured_message() {
    for c in CAPTURES {
        let (fe_units, be_units) = sides(c);
        for f in frames(&fe_units) {
            let ok = match f.tag {
                fe::QUERY => Query::decode(f).map(drop),
                fe::PASSWORD_MESSAGE => PasswordMessage::decode(f).map(drop),
                _ => Ok(()),
            };
            ok.unwrap_or_else(|e| panic!("{}: frontend {:?}: {e}", c.name, f));
            assert!(
                fe::name(f.tag).is_some(),
                "{}: unknown frontend tag {}",
                c.name,
                f.tag
            );
        }
        for f in frames(&be_units) {
            let ok = match f.tag {
                be::AUTHENTICATION => Authentication::decode(f).map(drop),
                be::BACKEND_KEY_DATA => BackendKeyData::decode(f).map(drop),
                be::READY_FOR_QUERY => ReadyForQuery::decode(f).map(drop),
                be::PARAMETER_STATUS => ParameterStatus::decode(f).map(drop),
                be::ERROR_RESPONSE | be::NOTICE_RESPONSE => ErrorNotice::decode(f).map(drop),
                _ => Ok(()),
            };
            ok.unwrap_or_else(|e| panic!("{}: backend {:?}: {e}", c.name, f));
            assert!(
                be::name(f.tag).is_some(),
                "{}: unknown backend tag {}",
                c.name,
                f.tag
            );
        }
    }
}

#[test]
fn every_session_starts_with_trust_auth_and_ends_with_terminate() {
    for c in CAPTURES {
        let (fe_units, be_units) = sides(c);
        let startup = fe_units.iter().find_map(|u| match u {
            Unit::Startup(StartupPacket::Startup(m)) => Some(m),
            _ => None,
        });
        let startup = startup.unwrap_or_else(|| panic!("{}: no StartupMessage", c.name));
        assert_eq!(
            (startup.user(), startup.database()),
            (Some("postgres"), Some("postgres"))
        );
        let first = frames(&be_units).next().expect("a backend frame");
        assert_eq!(
            Authentication::decode(first),
            Ok(Authentication::Ok),
            "{}",
            c.name
        );
        assert!(
            frames(&be_units).any(|f| BackendKeyData::decode(f).is_ok()),
            "{}",
            c.name
        );
        let version = frames(&be_units)
            .filter_map(|f| ParameterStatus::decode(f).ok())
            .find(|p| p.name == "server_version")
            .expect("server_version reported");
        assert!(
            version.value.starts_with("15."),
            "{}: {}",
            c.name,
            version.value
        );
        assert_eq!(
            frames(&fe_units).last().map(|f| f.tag),
            Some(fe::TERMINATE),
            "{}",
            c.name
        );
    }
}

#[test]
fn simple_session_carries_the_queries_text() {
    let (fe_units, be_units) = sides(find("simple"));
    assert!(labels(&be_units).contains(&be::EMPTY_QUERY_RESPONSE));
    let sql: Vec<&str> = frames(&fe_units)
        .filter_map(|f| Query::decode(f).ok())
        .map(|q| q.as_str().expect("UTF-8"))
        .collect();
    assert!(
        sql.iter().any(|q| q.contains("'hello' as greeting")),
        "{sql:?}"
    );
    assert!(
        sql.iter().any(|q| q.starts_with("insert into items")),
        "{sql:?}"
    );
}

#[test]
fn extended_session_uses_parse_bind_execute_sync() {
    let (fe_units, be_units) = sides(find("extended_prepared"));
    let fe_tags = labels(&fe_units);
    for t in [fe::PARSE, fe::BIND, fe::DESCRIBE, fe::EXECUTE, fe::SYNC] {
        assert!(fe_tags.contains(&t), "frontend lacks {}", t as char);
    }
    let be_tags = labels(&be_units);
    for t in [
        be::PARSE_COMPLETE,
        be::BIND_COMPLETE,
        be::COMMAND_COMPLETE,
        be::DATA_ROW,
    ] {
        assert!(be_tags.contains(&t), "backend lacks {}", t as char);
    }
}

#[test]
fn copy_session_has_both_copy_directions() {
    let (fe_units, be_units) = sides(find("copy"));
    let fe_tags = labels(&fe_units);
    assert!(fe_tags.contains(&fe::COPY_DATA) && fe_tags.contains(&fe::COPY_DONE));
    let be_tags = labels(&be_units);
    for t in [
        be::COPY_IN_RESPONSE,
        be::COPY_OUT_RESPONSE,
        be::COPY_DATA,
        be::COPY_DONE,
    ] {
        assert!(be_tags.contains(&t), "backend lacks {}", t as char);
    }
}

#[test]
fn error_sessions_report_sqlstates_and_failed_transactions() {
    let codes = |name| {
        let (_, be_units) = sides(find(name));
        let errors: Vec<(String, Option<String>)> = frames(&be_units)
            .filter(|f| f.tag == be::ERROR_RESPONSE)
            .map(|f| {
                let e = ErrorNotice::decode(f).expect("valid error");
                assert!(e.is_error() && e.severity() == Some("ERROR") && e.message().is_some());
                (
                    e.code().expect("SQLSTATE").to_owned(),
                    e.detail().map(str::to_owned),
                )
            })
            .collect();
        let failed = frames(&be_units)
            .filter_map(|f| ReadyForQuery::decode(f).ok())
            .any(|r| r.status == TransactionStatus::Failed);
        (errors, failed)
    };
    let (errors, _) = codes("error_simple");
    assert_eq!(errors, [("42P01".to_owned(), None)]);
    let (errors, failed) = codes("error_txn");
    let sqlstates: Vec<&str> = errors.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(sqlstates, ["22012", "25P02", "23505"]);
    assert_eq!(errors[2].1.as_deref(), Some("Key (id)=(1) already exists."));
    assert!(failed, "an aborted transaction reports status E");
}

#[test]
fn listen_session_receives_notifications() {
    let (_, be_units) = sides(find("listen_notify"));
    let notes: Vec<&Frame> = frames(&be_units)
        .filter(|f| f.tag == be::NOTIFICATION_RESPONSE)
        .collect();
    assert_eq!(notes.len(), 2);
    assert!(notes[0].body().windows(11).any(|w| w == b"hello there"));
}

#[test]
fn ssl_refusal_is_one_byte_before_the_startup_message() {
    let (fe_units, be_units) = sides(find("ssl_refused"));
    assert!(matches!(
        fe_units[0],
        Unit::Startup(StartupPacket::SslRequest)
    ));
    assert!(matches!(
        fe_units[1],
        Unit::Startup(StartupPacket::Startup(_))
    ));
    assert_eq!(be_units[0], Unit::Answer(b'N'));
}
