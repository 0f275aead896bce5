//! Masking hot paths: the detector scan of a clean 1 KB row, a row holding one card number,
//! and the rewrite of a DataRow with one masked column.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use sluice::mask::Detectors;

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

criterion_group!(benches, detectors);
criterion_main!(benches);
