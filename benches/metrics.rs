//! The statistics' cost on the data path: what one round trip adds (two clock reads per
//! direction, the request queue, two histogram records, the byte counters), and what a shard
//! spends on one snapshot for the control plane.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use sluice::metrics::ShardMetrics;
use sluice::proxy::pg::meter::SessionMeter;

fn round_trip(c: &mut Criterion) {
    let shard = Rc::new(ShardMetrics::default());
    let meter = SessionMeter::new(shard.clone());
    c.bench_function("metrics/round_trip", |b| {
        b.iter(|| {
            // Client batch read, request queued, written upstream; upstream batch read,
            // ReadyForQuery matched, written to the client: the calls the relay makes.
            let client_read = Instant::now();
            meter.request(client_read);
            meter.forwarded(client_read, Instant::now(), black_box(48));
            let upstream_read = Instant::now();
            meter.answered();
            meter.delivered(upstream_read, Instant::now(), black_box(120));
        })
    });
    // Fill the histograms across their range so the snapshot copies realistic ones.
    for i in 1..10_000u64 {
        shard.round_trips(
            1,
            Duration::from_micros(i * 37),
            Duration::from_nanos(i * 911),
        );
    }
    c.bench_function("metrics/shard_snapshot", |b| {
        b.iter(|| black_box(shard.snapshot(0, 10)))
    });
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
