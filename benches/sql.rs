//! Micro-benchmarks of the SQL hot paths: fast-path classification of a typical 200-byte
//! SELECT side by side with a full `sqlparser` parse of the same text, denylist matching,
//! lexer throughput, and the masked-column check (token pass alone, and a cached parse).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::sql::{
    check_masked_uses, classify, normalize, ClassifyOptions, Denylist, LexOptions, Lexer,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::hint::black_box;

/// A typical application read: joins, filters, a parameter, a literal, ordering, a limit.
const SELECT_200: &str = "SELECT u.id, u.name, u.email, o.total, o.created_at FROM users u \
JOIN orders o ON o.user_id = u.id WHERE u.status = 'active' AND o.created_at > $1 \
ORDER BY o.created_at DESC LIMIT 50";

fn bench(c: &mut Criterion) {
    let opts = ClassifyOptions::default();
    let verdict = classify(SELECT_200, &opts);
    assert_eq!(
        verdict.statements[0].path,
        sluice::sql::ClassifyPath::FastPath
    );

    let mut g = c.benchmark_group("classify_200b_select");
    g.throughput(Throughput::Bytes(SELECT_200.len() as u64));
    g.bench_function("fast_path", |b| {
        b.iter(|| classify(black_box(SELECT_200), &opts))
    });
    g.bench_function("sqlparser_full_parse", |b| {
        b.iter(|| Parser::parse_sql(&PostgreSqlDialect {}, black_box(SELECT_200)).unwrap())
    });
    g.finish();

    let deny = Denylist::new(&[
        "drop table",
        "drop schema",
        "truncate",
        "alter system",
        "delete from users",
        "pg_read_file",
        "copy",
        "grant",
    ])
    .unwrap();
    let mut g = c.benchmark_group("denylist_200b");
    g.throughput(Throughput::Bytes(SELECT_200.len() as u64));
    g.bench_function("normalize_and_match", |b| {
        b.iter(|| {
            let n = normalize(black_box(SELECT_200), LexOptions::default());
            deny.find(&n).is_some()
        })
    });
    let n = normalize(SELECT_200, LexOptions::default());
    g.bench_function("match_only", |b| {
        b.iter(|| deny.find(black_box(&n)).is_some())
    });
    g.finish();

    let big: String = std::iter::repeat_n(SELECT_200, 64)
        .collect::<Vec<_>>()
        .join(";\n/* comment */ ");
    let mut g = c.benchmark_group("lexer");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("tokens_13kb", |b| {
        b.iter(|| Lexer::new(black_box(&big), LexOptions::default()).count())
    });
    g.finish();
}

/// The masked-column check of a masked session: the common case of a statement naming no
/// masked column (decided by the token pass alone), and a statement naming one (served from
/// the per-thread verdict cache after the first parse).
fn bench_masked(c: &mut Criterion) {
    let masked: Vec<String> = ["card_number", "ssn"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let opts = LexOptions::default();
    assert!(check_masked_uses(SELECT_200, &masked, opts).is_ok());
    let mut g = c.benchmark_group("masked_uses_200b_select");
    g.throughput(Throughput::Bytes(SELECT_200.len() as u64));
    g.bench_function("no_masked_name", |b| {
        b.iter(|| check_masked_uses(black_box(SELECT_200), &masked, opts))
    });
    let named = "SELECT c.id, c.card_number, o.total FROM customers c JOIN orders o \
ON o.customer_id = c.id WHERE c.status = 'active' AND o.created_at > $1 ORDER BY o.created_at \
DESC LIMIT 50";
    assert!(check_masked_uses(named, &masked, opts).is_ok());
    g.bench_function("masked_name_cached_parse", |b| {
        b.iter(|| check_masked_uses(black_box(named), &masked, opts))
    });
    g.finish();
}

criterion_group!(benches, bench, bench_masked);
criterion_main!(benches);
