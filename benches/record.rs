//! The session recorder's cost: what `record()` costs the recording task for one typical
//! batch (a statement's client message, its response of a few rows, and a decision), and how
//! many MB/s of records the writer thread puts in segments (encoding, checksum, write; the
//! fsync runs on its one-second tick).
//!
//! `record/one_batch` times only the queueing: the queue is large enough that no batch waits,
//! and it is drained, untimed, between iterations. `record/writer` times a burst of batches
//! from `record()` to the writer's count of written batches.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use sluice::audit::Identity;
use sluice::codec::pg;
use sluice::config::{RecordingOverflow, RecordingSection};
use sluice::identity::ChainLink;
use sluice::record::{Batch, Item, Recorder};

const CAPACITY: usize = 65_536;

fn statement_bytes() -> (Bytes, Bytes) {
    let mut q = BytesMut::new();
    pg::encode_query(
        &mut q,
        "SELECT id, total FROM orders WHERE customer_id = 42 AND status = 'open'",
    );
    let mut r = BytesMut::new();
    let names = ["id", "total"];
    let fields: Vec<pg::FieldDescription<'_>> = names
        .iter()
        .map(|n| pg::FieldDescription {
            name: n.as_bytes(),
            table_oid: 16384,
            column: 1,
            type_oid: 23,
            type_size: 4,
            type_modifier: -1,
            format: 0,
        })
        .collect();
    pg::encode_row_description(&mut r, &fields);
    for i in 0..5u32 {
        let id = i.to_string();
        pg::encode_data_row(&mut r, [Some(id.as_bytes()), Some(&b"129.95"[..])]);
    }
    pg::encode_command_complete(&mut r, "SELECT 5");
    pg::encode_ready_for_query(&mut r, pg::TransactionStatus::Idle);
    (q.freeze(), r.freeze())
}

struct Parts {
    identity: Arc<Identity>,
    query: Bytes,
    response: Bytes,
}

impl Parts {
    fn batch(&self, session: u64, first: bool) -> Batch {
        let mut items = Vec::with_capacity(4);
        if first {
            items.push(Item::Start {
                time: UNIX_EPOCH + Duration::from_secs(1_795_453_200),
                identity: self.identity.clone(),
                resource: "orders".into(),
                client: ([127, 0, 0, 1], 5555).into(),
                tls: true,
            });
        }
        items.push(Item::FromClient {
            at: Duration::from_micros(10),
            bytes: self.query.clone(),
        });
        items.push(Item::Decision {
            at: Duration::from_micros(12),
            fingerprint: "select id, total from orders where customer_id = ? and status = ?".into(),
            decision: "allow",
            rule: Some("role.reader.rules.orders.read".into()),
        });
        items.push(Item::ToClient {
            at: Duration::from_micros(300),
            bytes: self.response.clone(),
        });
        Batch { session, items }
    }
}

fn wait_until(rec: &Recorder, batches: u64) {
    while rec.counters().batches < batches {
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let section = RecordingSection {
        dir: dir.path().to_owned(),
        segment_bytes: 64 << 20,
        retention: Duration::from_secs(3600),
        flush_interval: Duration::from_secs(1),
        max_statement_bytes: 64 << 10,
        queue_capacity: CAPACITY,
        overflow: RecordingOverflow::Fail,
    };
    let rec = Recorder::start(&section).unwrap();
    let (query, response) = statement_bytes();
    let parts = Parts {
        identity: Arc::new(Identity {
            token: "Xk3vQ9mJ2pL8nR4tW6yZ1a".into(),
            subject: "report-subagent".into(),
            chain: vec![ChainLink {
                jti: "Aq7bC2dE4fG6hJ8kL0mN1p".into(),
                name: "ci-nightly".into(),
            }],
            roles: vec!["reader".into()],
            user: Some("report".into()),
        }),
        query,
        response,
    };
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    let mut sent = 0u64;

    let mut g = c.benchmark_group("record");
    g.bench_function("one_batch", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CAPACITY as u64 / 2);
                let batches: Vec<Batch> = (0..n).map(|i| parts.batch(sent + i, i == 0)).collect();
                let t = Instant::now();
                rt.block_on(async {
                    for b in batches {
                        black_box(rec.record(b).await).unwrap();
                    }
                });
                total += t.elapsed();
                sent += n;
                left -= n;
                wait_until(&rec, sent);
            }
            total
        })
    });

    let burst = 20_000u64;
    let bytes_per_batch = {
        let before = rec.counters().bytes;
        rt.block_on(rec.record(parts.batch(sent, false))).unwrap();
        sent += 1;
        wait_until(&rec, sent);
        rec.counters().bytes - before
    };
    g.throughput(Throughput::Bytes(bytes_per_batch * burst));
    g.sample_size(10);
    g.bench_function("writer", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let batches: Vec<Batch> =
                    (0..burst).map(|i| parts.batch(sent + i, false)).collect();
                let t = Instant::now();
                rt.block_on(async {
                    for b in batches {
                        rec.record(b).await.unwrap();
                    }
                });
                sent += burst;
                wait_until(&rec, sent);
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
    rec.shutdown();
    let c = rec.counters();
    eprintln!(
        "recorder: {} batches, {} bytes written, {} bytes per batch, lost {}, write errors {}",
        c.batches, c.bytes, bytes_per_batch, c.lost, c.write_errors
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
