//! The `/v1/stats` document: every shard's numbers and their merge, with latency quantiles
//! computed from the full histograms. `sluice stats` reads the same document back.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::kinds::{action_name, class_name, Counter, ErrorKind};
use super::shard::ShardSnapshot;
use super::timing::Timing;

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatsReport {
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardStats>,
    /// Every shard that answered, merged.
    pub total: ShardStats,
}

/// One shard's numbers (or the merged numbers, with `shard` absent).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ShardStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// False when the shard did not answer in time; its numbers are then all zero.
    pub responded: bool,
    pub connections: Connections,
    pub sessions_started: u64,
    pub auth_failures: u64,
    /// Round trips started (Query, Sync, FunctionCall).
    pub requests: u64,
    pub statements: Statements,
    pub masked_values: u64,
    pub bytes: Bytes,
    pub errors: Errors,
    /// From a request in to its ReadyForQuery out.
    pub statement_latency: Quantiles,
    /// Time spent inside the gateway per round trip.
    pub added_time: Quantiles,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Connections {
    pub active: u64,
    pub opened: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Statements {
    pub total: u64,
    /// Blocked or held for review.
    pub refused: u64,
    /// `class -> action -> count`, nonzero entries only.
    pub by_class: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Bytes {
    pub client_to_upstream: u64,
    pub upstream_to_client: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Errors {
    pub total: u64,
    /// `kind -> count`, nonzero entries only.
    pub by_kind: BTreeMap<String, u64>,
}

/// A distribution summarized, in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Quantiles {
    pub count: u64,
    pub sum_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Quantiles {
    fn of(t: &Timing) -> Quantiles {
        let q = |x| t.scale.micros(t.quantile(x));
        Quantiles {
            count: t.count(),
            sum_us: t.scale.micros(t.sum),
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: q(1.0),
        }
    }
}

impl ShardStats {
    /// The numbers of a snapshot.
    pub fn of(s: &ShardSnapshot, shard: Option<usize>) -> ShardStats {
        let mut by_class: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (class, row) in s.statements.iter().enumerate() {
            for (action, &n) in row.iter().enumerate() {
                if n > 0 {
                    by_class
                        .entry(class_name(class).to_owned())
                        .or_default()
                        .insert(action_name(action).to_owned(), n);
                }
            }
        }
        let by_kind = ErrorKind::ALL
            .iter()
            .filter(|k| s.errors[k.slot()] > 0)
            .map(|k| (k.name().to_owned(), s.errors[k.slot()]))
            .collect();
        ShardStats {
            shard,
            responded: true,
            connections: Connections {
                active: s.connections_active,
                opened: s.counter(Counter::ConnectionsOpened),
            },
            sessions_started: s.counter(Counter::SessionsStarted),
            auth_failures: s.counter(Counter::AuthFailures),
            requests: s.counter(Counter::Requests),
            statements: Statements {
                total: s.statements_total(),
                refused: s.statements_refused(),
                by_class,
            },
            masked_values: s.counter(Counter::MaskedValues),
            bytes: Bytes {
                client_to_upstream: s.counter(Counter::BytesToUpstream),
                upstream_to_client: s.counter(Counter::BytesToClient),
            },
            errors: Errors {
                total: s.errors_total(),
                by_kind,
            },
            statement_latency: Quantiles::of(&s.latency),
            added_time: Quantiles::of(&s.added),
        }
    }
}

impl StatsReport {
    /// The report of the shards' answers (`None`: the shard did not answer).
    pub fn build(answers: &[Option<Arc<ShardSnapshot>>]) -> StatsReport {
        let mut total = ShardSnapshot::empty(0);
        let mut shards = Vec::with_capacity(answers.len());
        for (i, a) in answers.iter().enumerate() {
            match a {
                Some(s) => {
                    total.merge(s);
                    shards.push(ShardStats::of(s, Some(i)));
                }
                None => shards.push(ShardStats {
                    shard: Some(i),
                    ..ShardStats::default()
                }),
            }
        }
        let mut total = ShardStats::of(&total, None);
        total.responded = answers.iter().all(Option::is_some);
        StatsReport { shards, total }
    }
}
