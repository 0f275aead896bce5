//! The audit trail's cost: what `try_record` costs the recording thread for one typical
//! statement event (built the way a shard builds it: shared identity and resource, a cloned
//! fingerprint), and how many events a second the writer thread turns into synced JSON lines.
//!
//! `audit/try_record` times only the recording: batches stay below the queue capacity and the
//! queue is drained, untimed, between batches, so no event is dropped and the numbers are
//! those of the normal path. The writer runs meanwhile, on the other core if there is one.
//!
//! On a 2-core VM: `try_record` about 380-440 ns with the event's construction (about 80 ns
//! alone), the writer about 2 us per event (serialization, file write, rotation). Most of the
//! recording cost is the allocator, not the queue: the fingerprint and rule strings are
//! allocated here and freed on the writer thread, and those frees contend with this thread's
//! next allocations (`perf`: `_int_malloc` dominates, the channel's send is under 1%).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use sluice::audit::{Audit, Event, Identity, Kind};
use sluice::config::{AuditSection, Overflow};
use sluice::identity::ChainLink;

const CAPACITY: usize = 65_536;

struct Parts {
    identity: Arc<Identity>,
    resource: Arc<str>,
    fingerprint: String,
}

impl Parts {
    fn new() -> Parts {
        Parts {
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
            resource: "orders".into(),
            fingerprint: sluice::sql::fingerprint(
                "SELECT id, total FROM orders WHERE customer_id = 42 AND status = 'open'",
            ),
        }
    }

    fn event(&self, session: u64) -> Event {
        let mut e = Event::new(Kind::Statement);
        e.session = Some(session);
        e.identity = Some(self.identity.clone());
        e.client = Some(([127, 0, 0, 1], 5555).into());
        e.resource = Some(self.resource.clone());
        e.fingerprint = Some(self.fingerprint.clone());
        e.decision = Some("allow");
        e.rule = Some("role.reader.rules.orders.read".into());
        e.added = Some(Duration::from_nanos(3_250));
        e
    }
}

fn wait_until(audit: &Audit, written: u64) {
    while audit.counters().written < written {
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let section = AuditSection {
        file: Some(dir.path().join("audit.jsonl")),
        max_file_bytes: 16 << 20,
        keep_files: 2,
        queue_capacity: CAPACITY,
        overflow: Overflow::Drop,
        ..AuditSection::default()
    };
    let audit = Audit::start(&section).unwrap();
    let parts = Parts::new();
    let mut sent = 0u64;

    c.bench_function("audit/try_record", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CAPACITY as u64 / 2);
                wait_until(&audit, sent);
                let start = Instant::now();
                for i in 0..n {
                    let _ = audit.try_record(black_box(parts.event(i)));
                }
                timed += start.elapsed();
                sent += n;
                left -= n;
            }
            timed
        })
    });
    c.bench_function("audit/event_only", |b| {
        b.iter(|| black_box(parts.event(black_box(7))))
    });
    c.bench_function("audit/writer_10k_events", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..10_000 {
                    let _ = audit.try_record(parts.event(i));
                }
                sent += 10_000;
                wait_until(&audit, sent);
            }
            start.elapsed()
        })
    });
    audit.shutdown();
    let counters = audit.counters();
    eprintln!("audit counters after the run: {counters:?}");
    assert_eq!(counters.dropped, 0, "the measured path dropped events");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
