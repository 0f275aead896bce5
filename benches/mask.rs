//! Masking hot paths: the detector scan of a clean 1 KB row, a row holding one card number,
//! and the rewrite of a DataRow with one masked column.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use bytes::BytesMut;
use sluice::codec::pg::{
    decode_frame, encode_data_row, encode_row_description, FieldDescription, RowDescription,
    FORMAT_TEXT,
};
use sluice::mask::{ColumnRules, Detectors, MaskPolicy, MaskStyle, RowPlan};

/// About 1 KB of the text a row of an orders table carries: ids, timestamps, names, an address,
/// a UUID, prices and free text, with nothing in it to mask.
fn clean_row() -> Vec<u8> {
    let mut row = Vec::new();
    while row.len() < 1024 {
        row.extend_from_slice(
            b"1048576\t2024-05-01 12:34:56.123456+00\tAnn Lee\t221B Baker Street, London NW1 6XE\t\
              550e8400-e29b-41d4-a716-446655440000\t19.99\tshipped\tCustomer asked for gift \
              wrapping; courier to call ahead on +44 20 7946 0958 before delivery.\t",
        );
    }
    row.truncate(1024);
    row
}

fn detectors(c: &mut Criterion) {
    let clean = clean_row();
    let mut with_card = clean.clone();
    with_card.splice(100..100, b" 4111 1111 1111 1111 ".iter().copied());
    with_card.truncate(1024);

    let mut g = c.benchmark_group("detectors");
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("clean_1k_row", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            let hit = Detectors::ALL.mask(black_box(&clean), &mut out);
            assert!(!hit);
        })
    });
    g.bench_function("1k_row_with_one_card", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            let hit = Detectors::ALL.mask(black_box(&with_card), &mut out);
            assert!(hit);
        })
    });
    for (name, d) in [
        (
            "clean_1k_cards",
            Detectors {
                cards: true,
                ..Detectors::NONE
            },
        ),
        (
            "clean_1k_emails",
            Detectors {
                emails: true,
                ..Detectors::NONE
            },
        ),
        (
            "clean_1k_ssns",
            Detectors {
                ssns: true,
                ..Detectors::NONE
            },
        ),
        (
            "clean_1k_secrets",
            Detectors {
                secrets: true,
                ..Detectors::NONE
            },
        ),
    ] {
        g.bench_function(name, |b| b.iter(|| assert!(!d.finds(black_box(&clean)))));
    }
    g.finish();
}

fn field(name: &'static [u8], column: i16, type_oid: u32) -> FieldDescription<'static> {
    FieldDescription {
        name,
        table_oid: 16_384,
        column,
        type_oid,
        type_size: -1,
        type_modifier: -1,
        format: FORMAT_TEXT,
    }
}

/// A users row (id, name, email, card_number, notes) with a rule masking `card_number` and
/// detectors on for the text columns.
fn rewrite(c: &mut Criterion) {
    let fields = [
        field(b"id", 1, 23),
        field(b"name", 2, 25),
        field(b"email_verified_at", 3, 1184),
        field(b"card_number", 4, 25),
        field(b"notes", 5, 25),
    ];
    let names = ["id", "name", "email_verified_at", "card_number", "notes"];
    let resolve = |_: u32, col: i16| {
        let name = names.get(usize::try_from(col - 1).ok()?)?;
        Some(("public".to_string(), "users".to_string(), name.to_string()))
    };
    let rules = ColumnRules::new(&[("card_number".to_string(), MaskStyle::Last4)]).unwrap();
    let policy = MaskPolicy::new(rules, Detectors::ALL, None).unwrap();
    let mut buf = BytesMut::new();
    encode_row_description(&mut buf, &fields);
    let desc_frame = decode_frame(&mut buf, 1 << 20).unwrap().unwrap();
    let desc = RowDescription::decode(&desc_frame).unwrap();
    let plan = RowPlan::build(&policy, &desc, &resolve);
    encode_data_row(
        &mut buf,
        [
            Some(&b"1048576"[..]),
            Some(b"Ann Lee"),
            Some(b"2024-05-01 12:34:56.123456+00"),
            Some(b"4111111111111111"),
            Some(b"Customer asked for gift wrapping; courier to call ahead before delivery."),
        ],
    );
    let row = decode_frame(&mut buf, 1 << 20).unwrap().unwrap();
    let row_len = row.len() as u64;

    let mut g = c.benchmark_group("data_row");
    g.throughput(Throughput::Bytes(row_len));
    g.bench_function("rewrite_one_masked_column", |b| {
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            assert!(plan.rewrite_data_row(black_box(&row), &mut out).unwrap());
        })
    });
    g.finish();
}

criterion_group!(benches, detectors, rewrite);
criterion_main!(benches);
