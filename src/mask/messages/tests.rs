//! Tests for masking error and notice fields, notifications and COPY data.

use bytes::BytesMut;

use super::*;
use crate::codec::pg::{decode_frame, encode_error_with_detail, tag, CopyData};
use crate::mask::{ColumnRules, HashKey, HASH_PREFIX};

fn next(out: &mut BytesMut) -> Frame {
    decode_frame(out, 1 << 20).unwrap().unwrap()
}

#[test]
fn error_fields_quoting_a_value_are_masked() {
    let mut wire = BytesMut::new();
    encode_error_with_detail(
        &mut wire,
        "ERROR",
        "22P02",
        "invalid input syntax for type integer: \"4111 1111 1111 1111\"",
        Some("Key (email)=(ann@example.com) already exists."),
        None,
    );
    let f = next(&mut wire);
    let mut out = BytesMut::new();
    assert!(mask_error_fields(&f, &Detectors::ALL, &mut out).unwrap());
    let masked = next(&mut out);
    let e = ErrorNotice::decode(&masked).unwrap();
    assert_eq!(e.code(), Some("22P02"));
    assert_eq!(e.severity(), Some("ERROR"));
    assert_eq!(
        e.message(),
        Some("invalid input syntax for type integer: \"****-****-****-1111\"")
    );
    assert_eq!(e.detail(), Some("Key (email)=(****@****) already exists."));
    assert!(out.is_empty());
}

#[test]
fn clean_errors_and_notices_are_forwarded() {
    let mut wire = BytesMut::new();
    crate::codec::pg::encode_notice(&mut wire, "NOTICE", "00000", "relation exists, skipping");
    let f = next(&mut wire);
    let mut out = BytesMut::new();
    assert!(!mask_error_fields(&f, &Detectors::ALL, &mut out).unwrap());
    assert!(out.is_empty());
    let bad = Frame {
        tag: tag::backend::ERROR_RESPONSE,
        bytes: bytes::Bytes::from_static(b"E\0\0\0\x05M"),
    };
    assert!(mask_error_fields(&bad, &Detectors::ALL, &mut out).is_err());
}

#[test]
fn notification_payloads_are_masked() {
    let mut wire = BytesMut::new();
    encode_notification(
        &mut wire,
        77,
        b"jobs",
        b"{\"token\":\"AKIAIOSFODNN7EXAMPLE\"}",
    );
    encode_notification(&mut wire, 77, b"jobs", b"done");
    let (dirty, clean) = (next(&mut wire), next(&mut wire));
    let mut out = BytesMut::new();
    assert!(mask_notification(&dirty, &Detectors::ALL, &mut out).unwrap());
    assert!(!mask_notification(&clean, &Detectors::ALL, &mut out).unwrap());
    let f = next(&mut out);
    let n = NotificationResponse::decode(&f).unwrap();
    assert_eq!(
        (n.pid, n.channel, n.payload),
        (77, &b"jobs"[..], &b"{\"token\":\"****\"}"[..])
    );
}

fn policy(rules: &[(&str, MaskStyle)]) -> MaskPolicy {
    let rules: Vec<(String, MaskStyle)> = rules.iter().map(|(p, s)| (p.to_string(), *s)).collect();
    MaskPolicy::new(
        ColumnRules::new(&rules).unwrap(),
        Detectors::ALL,
        Some(HashKey::new(&[3; 32]).unwrap()),
    )
    .unwrap()
}

fn copy(plan: &CopyPlan, data: &[u8]) -> Option<Vec<u8>> {
    let mut wire = BytesMut::new();
    encode_copy_data(&mut wire, data);
    let f = next(&mut wire);
    let mut out = BytesMut::new();
    if !plan.mask_copy_data(&f, &mut out).unwrap() {
        assert!(out.is_empty());
        return None;
    }
    let f = next(&mut out);
    Some(CopyData::decode(&f).unwrap().data.to_vec())
}

#[test]
fn copy_text_rows_are_masked_field_by_field() {
    let p = policy(&[]);
    let styles = [
        None,
        Some(MaskStyle::Last4),
        Some(MaskStyle::Null),
        Some(MaskStyle::Hash),
        None,
    ];
    let plan = CopyPlan::new(&p, CopyFormat::Text { delimiter: b'\t' }, &styles).unwrap();
    let got = copy(
        &plan,
        b"1\t4111\\t1111-1234\t123-45-6789\tann@example.com\tnote ann@example.com\n",
    )
    .unwrap();
    let fields: Vec<&[u8]> = got
        .strip_suffix(b"\n")
        .unwrap()
        .split(|&b| b == b'\t')
        .collect();
    assert_eq!(fields[0], b"1");
    assert_eq!(fields[1], b"****1234");
    assert_eq!(fields[2], b"\\N");
    assert!(fields[3].starts_with(HASH_PREFIX));
    assert_eq!(fields[4], b"note ****@****");
    // NULL stays NULL, and a clean row passes untouched.
    assert_eq!(copy(&plan, b"2\t\\N\t\\N\t\\N\tclean\n"), None);
}

#[test]
fn copy_hash_matches_the_data_row_hash() {
    let p = policy(&[]);
    let plan = CopyPlan::new(
        &p,
        CopyFormat::Text { delimiter: b',' },
        &[Some(MaskStyle::Hash)],
    )
    .unwrap();
    let got = copy(&plan, b"a\\,b\\\\c\n").unwrap();
    let mut direct = Vec::new();
    MaskStyle::Hash.apply(p.key(), b"a,b\\c", &mut direct);
    direct.push(b'\n');
    assert_eq!(got, direct);
}

#[test]
fn copy_last4_output_is_escaped() {
    let plan = CopyPlan::new(
        &policy(&[]),
        CopyFormat::Text { delimiter: b'\t' },
        &[Some(MaskStyle::Last4)],
    )
    .unwrap();
    assert_eq!(copy(&plan, b"abcdef\\tgh\n").unwrap(), b"****f\\tgh\n");
}

#[test]
fn copy_csv_and_binary() {
    let p = policy(&[]);
    let csv = CopyPlan::new(&p, CopyFormat::Csv, &[None, None]).unwrap();
    assert_eq!(
        copy(&csv, b"1,\"ann@example.com\"\n").unwrap(),
        b"1,\"****@****\"\n"
    );
    assert!(CopyPlan::new(&p, CopyFormat::Csv, &[Some(MaskStyle::Full)]).is_err());
    assert!(CopyPlan::new(&p, CopyFormat::Binary, &[None]).is_err());
    let off = MaskPolicy::default();
    let binary = CopyPlan::new(&off, CopyFormat::Binary, &[None]).unwrap();
    assert!(binary.is_pass_through());
    assert_eq!(copy(&binary, b"PGCOPY\n\xff\r\n\0"), None);
}

#[test]
fn unescape_handles_every_escape() {
    let mut out = Vec::new();
    unescape(b"a\\b\\f\\n\\r\\t\\v\\101\\x41\\x4g\\\\\\q\\", &mut out);
    assert_eq!(out, b"a\x08\x0c\n\r\t\x0bAA\x04g\\q\\");
}

proptest::proptest! {
    #[test]
    fn arbitrary_copy_data_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        let p = policy(&[]);
        let styles = [Some(MaskStyle::Last4), Some(MaskStyle::Hash), None, Some(MaskStyle::Full)];
        let plan = CopyPlan::new(&p, CopyFormat::Text { delimiter: b'\t' }, &styles).unwrap();
        let _ = copy(&plan, &data);
        let mut plain = Vec::new();
        unescape(&data, &mut plain);
    }
}
