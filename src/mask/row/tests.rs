//! Row plan tests: decisions per column and the DataRow rewrite, decoded back with the codec.

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::codec::pg::{decode_frame, encode_data_row, encode_row_description, FORMAT_BINARY};
use crate::mask::{ColumnRules, HashKey, HASH_PREFIX};

const USERS: u32 = 16_384;
const TEXT: u32 = 25;
const INT4: u32 = 23;
const INT8: u32 = 20;
const JSONB: u32 = 3802;

fn resolver(table_oid: u32, column: i16) -> Option<(String, String, String)> {
    let name = match (table_oid, column) {
        (USERS, 1) => "id",
        (USERS, 2) => "email",
        (USERS, 3) => "card_number",
        (USERS, 4) => "notes",
        (USERS, 5) => "ssn",
        _ => return None,
    };
    Some(("public".into(), "users".into(), name.into()))
}

fn policy(rules: &[(&str, MaskStyle)], detectors: Detectors) -> MaskPolicy {
    let rules: Vec<(String, MaskStyle)> = rules.iter().map(|(p, s)| (p.to_string(), *s)).collect();
    MaskPolicy::new(
        ColumnRules::new(&rules).unwrap(),
        detectors,
        Some(HashKey::new(&[9; 32]).unwrap()),
    )
    .unwrap()
}

fn field(
    name: &'static [u8],
    table_oid: u32,
    column: i16,
    type_oid: u32,
    format: i16,
) -> FieldDescription<'static> {
    FieldDescription {
        name,
        table_oid,
        column,
        type_oid,
        type_size: -1,
        type_modifier: -1,
        format,
    }
}

fn plan(policy: &MaskPolicy, fields: &[FieldDescription<'_>]) -> RowPlan {
    let mut out = BytesMut::new();
    encode_row_description(&mut out, fields);
    let f = decode_frame(&mut out, 1 << 20).unwrap().unwrap();
    RowPlan::build(policy, &RowDescription::decode(&f).unwrap(), &resolver)
}

fn row(values: &[Option<&[u8]>]) -> Frame {
    let mut out = BytesMut::new();
    encode_data_row(&mut out, values.iter().copied());
    decode_frame(&mut out, 1 << 20).unwrap().unwrap()
}

/// Rewrites and decodes the result; `None` when the row was left untouched.
fn rewrite(plan: &RowPlan, values: &[Option<&[u8]>]) -> Option<Vec<Option<Vec<u8>>>> {
    let mut out = BytesMut::from(&b"before"[..]);
    let changed = plan.rewrite_data_row(&row(values), &mut out).unwrap();
    assert_eq!(&out[..6], b"before", "appends after what the buffer held");
    let _ = out.split_to(6);
    if !changed {
        assert!(out.is_empty());
        return None;
    }
    let f = decode_frame(&mut out, 1 << 20).unwrap().unwrap();
    assert!(out.is_empty());
    let decoded = DataRow::decode(&f).unwrap();
    Some(decoded.values().map(|v| v.map(<[u8]>::to_vec)).collect())
}

fn users_fields() -> Vec<FieldDescription<'static>> {
    vec![
        field(b"id", USERS, 1, INT4, FORMAT_TEXT),
        field(b"email", USERS, 2, TEXT, FORMAT_TEXT),
        field(b"c", USERS, 3, TEXT, FORMAT_TEXT), // aliased: `card_number AS c`
        field(b"notes", USERS, 4, TEXT, FORMAT_TEXT),
        field(b"ssn", USERS, 5, TEXT, FORMAT_TEXT),
    ]
}

#[test]
fn plan_decides_per_column() {
    let p = policy(
        &[
            ("users.email", MaskStyle::Hash),
            ("card_*", MaskStyle::Last4),
            ("ssn", MaskStyle::Null),
        ],
        Detectors::ALL,
    );
    let plan = plan(&p, &users_fields());
    assert_eq!(plan.len(), 5);
    assert_eq!(plan.action(0), Some(ColumnAction::Pass));
    assert_eq!(plan.action(1), Some(ColumnAction::Masked(MaskStyle::Hash)));
    assert_eq!(plan.action(2), Some(ColumnAction::Masked(MaskStyle::Last4)));
    assert_eq!(plan.action(3), Some(ColumnAction::Scan));
    assert_eq!(plan.action(4), Some(ColumnAction::Masked(MaskStyle::Null)));
    assert_eq!(plan.refusal(), None);
    assert!(!plan.is_pass_through());
}

#[test]
fn rewrite_round_trips_every_style_and_detectors() {
    let p = policy(
        &[
            ("users.email", MaskStyle::Hash),
            ("card_*", MaskStyle::Last4),
            ("ssn", MaskStyle::Null),
        ],
        Detectors::ALL,
    );
    let plan = plan(&p, &users_fields());
    let got = rewrite(
        &plan,
        &[
            Some(b"7"),
            Some(b"ann@example.com"),
            Some(b"4111111111111111"),
            Some(b"call me on 4111 1111 1111 1111 or bob@example.org"),
            Some(b"123-45-6789"),
        ],
    )
    .unwrap();
    assert_eq!(got[0].as_deref(), Some(&b"7"[..]));
    let hashed = got[1].as_deref().unwrap();
    assert!(hashed.starts_with(HASH_PREFIX) && !hashed.windows(3).any(|w| w == b"ann"));
    assert_eq!(got[2].as_deref(), Some(&b"****1111"[..]));
    assert_eq!(
        got[3].as_deref(),
        Some(&b"call me on ****-****-****-1111 or ****@****"[..])
    );
    assert_eq!(got[4], None);
}

#[test]
fn clean_rows_and_nulls_are_not_rewritten() {
    let p = policy(&[("ssn", MaskStyle::Full)], Detectors::ALL);
    let plan = plan(&p, &users_fields());
    assert_eq!(
        rewrite(
            &plan,
            &[
                Some(b"1"),
                Some(b"not an address"),
                None,
                Some(b"hello"),
                None
            ]
        ),
        None
    );
    // Only the later column changes: the earlier ones are copied into the rewrite.
    let got = rewrite(
        &plan,
        &[Some(b"1"), None, Some(b"x"), Some(b"y"), Some(b"123")],
    )
    .unwrap();
    assert_eq!(
        got,
        vec![
            Some(b"1".to_vec()),
            None,
            Some(b"x".to_vec()),
            Some(b"y".to_vec()),
            Some(b"****".to_vec())
        ]
    );
}

#[test]
fn computed_columns_are_scanned_and_labels_match_rules() {
    let p = policy(&[("*email*", MaskStyle::Full)], Detectors::ALL);
    let fields = [
        field(b"?column?", 0, 0, TEXT, FORMAT_TEXT),
        field(b"contact_email", 0, 0, TEXT, FORMAT_TEXT),
        field(b"big", 0, 0, INT8, FORMAT_TEXT),
        field(b"n", 0, 0, INT4, FORMAT_TEXT),
    ];
    let plan = plan(&p, &fields);
    let got = rewrite(
        &plan,
        &[
            Some(b"x 4111111111111111"),
            Some(b"whatever"),
            Some(b"4111111111111111"),
            Some(b"12"),
        ],
    )
    .unwrap();
    assert_eq!(got[0].as_deref(), Some(&b"x ****-****-****-1111"[..]));
    assert_eq!(got[1].as_deref(), Some(&b"****"[..]));
    assert_eq!(
        got[2].as_deref(),
        Some(&b"****-****-****-1111"[..]),
        "int8 holds cards"
    );
    assert_eq!(plan.action(3), Some(ColumnAction::Pass));
}

#[test]
fn binary_results_are_refused_where_masking_cannot_work() {
    let p = policy(
        &[("card_number", MaskStyle::Full), ("ssn", MaskStyle::Null)],
        Detectors::ALL,
    );
    let fields = [
        field(b"id", USERS, 1, INT4, FORMAT_BINARY),
        field(b"notes", USERS, 4, TEXT, FORMAT_BINARY),
        field(b"ssn", USERS, 5, INT8, FORMAT_BINARY),
        field(b"card_number", USERS, 3, TEXT, FORMAT_BINARY),
        field(b"doc", 0, 0, JSONB, FORMAT_BINARY),
    ];
    let mut plan = plan(&p, &fields);
    assert_eq!(plan.action(0), Some(ColumnAction::Pass));
    assert_eq!(
        plan.action(1),
        Some(ColumnAction::Scan),
        "binary text is text"
    );
    assert_eq!(plan.action(2), Some(ColumnAction::Masked(MaskStyle::Null)));
    assert_eq!(plan.action(3), Some(ColumnAction::Masked(MaskStyle::Full)));
    assert_eq!(
        plan.action(4),
        Some(ColumnAction::Refuse(RefuseReason::BinaryFormat))
    );
    assert_eq!(plan.refusal(), Some((4, RefuseReason::BinaryFormat)));
    // A rewrite that meets a refused column anyway never forwards it.
    let got = rewrite(&plan, &[None, None, None, None, Some(&b"\x01{}"[..])]).unwrap();
    assert_eq!(got[4], None);
    // Bind asked for text after all.
    plan.set_result_formats(&[]);
    assert_eq!(plan.refusal(), None);
    plan.set_result_formats(&[FORMAT_BINARY]);
    assert!(plan.refusal().is_some());
    plan.set_result_formats(&[0, 0, 0, 0, 1]);
    assert_eq!(plan.refusal(), Some((4, RefuseReason::BinaryFormat)));
    plan.set_result_formats(&[0, 0]);
    assert!(
        plan.refusal().is_some(),
        "a format list of the wrong length is refused"
    );
}

#[test]
fn binary_int8_is_scanned_as_its_decimal_form() {
    let p = policy(&[], Detectors::ALL);
    let plan = plan(&p, &[field(b"n", 0, 0, INT8, FORMAT_BINARY)]);
    assert_eq!(plan.action(0), Some(ColumnAction::ScanInt8));
    assert_eq!(plan.refusal(), None);
    let count = 120_i64.to_be_bytes();
    assert_eq!(
        rewrite(&plan, &[Some(&count[..])]),
        None,
        "forwarded untouched"
    );
    let card = 4_111_111_111_111_111_i64.to_be_bytes();
    assert_eq!(rewrite(&plan, &[Some(&card[..])]).unwrap()[0], None);
    assert_eq!(rewrite(&plan, &[Some(&b"short"[..])]).unwrap()[0], None);
}

#[test]
fn unresolvable_table_columns_are_refused_when_rules_exist() {
    let fields = [field(b"x", 99_999, 1, TEXT, FORMAT_TEXT)];
    let with_rules = plan(
        &policy(&[("ssn", MaskStyle::Full)], Detectors::ALL),
        &fields,
    );
    assert_eq!(with_rules.refusal(), Some((0, RefuseReason::Unresolved)));
    let detectors_only = plan(&policy(&[], Detectors::ALL), &fields);
    assert_eq!(detectors_only.action(0), Some(ColumnAction::Scan));
}

#[test]
fn no_masking_means_pass_through() {
    let plan = plan(&policy(&[], Detectors::NONE), &users_fields());
    assert!(plan.is_pass_through());
    assert_eq!(rewrite(&plan, &[Some(&b"4111111111111111"[..]); 5]), None);
}

#[test]
fn mismatched_and_malformed_rows_are_errors() {
    let plan = plan(&policy(&[], Detectors::ALL), &users_fields());
    let mut out = BytesMut::new();
    assert!(plan
        .rewrite_data_row(&row(&[Some(b"1")]), &mut out)
        .is_err());
    let bad = Frame {
        tag: b'D',
        bytes: bytes::Bytes::from_static(b"D\0\0\0\x06\0\x01"),
    };
    assert!(plan.rewrite_data_row(&bad, &mut out).is_err());
    assert!(out.is_empty());
}

proptest! {
    #[test]
    fn rewritten_rows_never_hold_the_card_or_email(
        card_at in 0usize..3,
        noise in "[a-z ,.:]{0,40}",
    ) {
        let p = policy(&[], Detectors::ALL);
        let fields = [
            field(b"a", 0, 0, TEXT, FORMAT_TEXT),
            field(b"b", 0, 0, TEXT, FORMAT_TEXT),
            field(b"c", 0, 0, TEXT, FORMAT_TEXT),
        ];
        let plan = plan(&p, &fields);
        let secret = format!("{noise} 5555 5555 5555 4444 mail ann.lee@example.com {noise}");
        let mut values: Vec<Option<&[u8]>> = vec![Some(noise.as_bytes()); 3];
        values[card_at] = Some(secret.as_bytes());
        let got = rewrite(&plan, &values).unwrap();
        for v in got.iter().flatten() {
            let s = String::from_utf8_lossy(v);
            prop_assert!(!s.contains("5555 5555 5555") && !s.contains("ann.lee"), "{}", s);
        }
    }
}

#[test]
fn the_counted_rewrite_says_how_many_values_were_masked() {
    let p = policy(&[("ssn", MaskStyle::Full)], Detectors::ALL);
    let plan = plan(&p, &users_fields());
    let mut out = BytesMut::new();
    let clean = row(&[Some(b"1"), None, Some(b"x"), Some(b"y"), None]);
    assert_eq!(plan.rewrite_data_row_counted(&clean, &mut out).unwrap(), 0);
    assert!(out.is_empty());
    // The ssn column by rule, the notes column by a detector.
    let dirty = row(&[
        Some(b"1"),
        None,
        Some(b"x"),
        Some(b"mail bob@example.org"),
        Some(b"123"),
    ]);
    assert_eq!(plan.rewrite_data_row_counted(&dirty, &mut out).unwrap(), 2);
    assert!(!out.is_empty());
}
