//! Prometheus text exposition (format 0.0.4) of the shards' snapshots, every series labelled
//! with its `shard`.
//!
//! Latencies are exported as Prometheus histograms (cumulative `_bucket` series with fixed
//! bounds in seconds, plus exact `_sum` and `_count`) rather than as summaries: buckets of
//! different shards add up, so `histogram_quantile(0.99, sum by (le) (rate(..._bucket[1m])))`
//! gives the gateway-wide quantile, which precomputed per-shard quantiles never could. Exact
//! quantiles from the full HDR histograms are in `/v1/stats`.

use std::fmt::Write;
use std::sync::Arc;

use super::kinds::{
    action_name, class_name, Counter, ErrorKind, ACTION_SLOTS, CLASS_SLOTS, UNCLASSIFIED,
};
use super::shard::ShardSnapshot;
use super::timing::Timing;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds of statement latency, in its units (microseconds): 50 us to 60 s.
const LATENCY_BOUNDS: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];
/// Bucket bounds of gateway-added time, in its units (nanoseconds): 1 us to 1 s.
const ADDED_BOUNDS: &[u64] = &[
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Appends single-value series, each with its HELP and TYPE lines: (name, type, help, value).
pub fn scalars(out: &mut String, series: &[(&str, &str, &str, u64)]) {
    use std::fmt::Write as _;
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Renders every series. A shard that did not answer (`None`) shows only `sluice_shard_up 0`.
pub fn render(answers: &[Option<Arc<ShardSnapshot>>]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let shards: Vec<(usize, &ShardSnapshot)> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.as_deref().map(|s| (i, s)))
        .collect();

    header(
        &mut out,
        "sluice_shard_up",
        "gauge",
        "Whether the shard answered this scrape (1) or not (0).",
    );
    for (i, a) in answers.iter().enumerate() {
        let _ = writeln!(
            out,
            "sluice_shard_up{{shard=\"{i}\"}} {}",
            u8::from(a.is_some())
        );
    }

    header(
        &mut out,
        "sluice_connections_active",
        "gauge",
        "Client connections open now.",
    );
    for (i, s) in &shards {
        let _ = writeln!(
            out,
            "sluice_connections_active{{shard=\"{i}\"}} {}",
            s.connections_active
        );
    }

    let counters: [(Counter, &str, &str); 5] = [
        (
            Counter::ConnectionsOpened,
            "sluice_connections_opened_total",
            "Client TCP connections accepted.",
        ),
        (
            Counter::SessionsStarted,
            "sluice_sessions_started_total",
            "Sessions that reached the upstream.",
        ),
        (
            Counter::AuthFailures,
            "sluice_auth_failures_total",
            "Clients refused for their session token.",
        ),
        (
            Counter::Requests,
            "sluice_requests_total",
            "Round trips started (Query, Sync, FunctionCall).",
        ),
        (
            Counter::MaskedValues,
            "sluice_masked_values_total",
            "Values masked in rows, plus messages rewritten by the value detectors.",
        ),
    ];
    for (counter, name, help) in counters {
        header(&mut out, name, "counter", help);
        for (i, s) in &shards {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", s.counter(counter));
        }
    }

    header(
        &mut out,
        "sluice_bytes_total",
        "counter",
        "Bytes relayed after authentication, as written to the other side.",
    );
    for (i, s) in &shards {
        for (direction, c) in [
            ("client_to_upstream", Counter::BytesToUpstream),
            ("upstream_to_client", Counter::BytesToClient),
        ] {
            let _ = writeln!(
                out,
                "sluice_bytes_total{{shard=\"{i}\",direction=\"{direction}\"}} {}",
                s.counter(c)
            );
        }
    }

    header(&mut out, "sluice_statements_total", "counter", "Statements by class and policy action; class \"unclassified\" counts statements of unrestricted sessions.");
    for (i, s) in &shards {
        for class in 0..CLASS_SLOTS {
            for action in 0..ACTION_SLOTS {
                // Unclassified statements are never judged, so never refused.
                if class == UNCLASSIFIED && action > 0 {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "sluice_statements_total{{shard=\"{i}\",class=\"{}\",action=\"{}\"}} {}",
                    class_name(class),
                    action_name(action),
                    s.statements[class][action]
                );
            }
        }
    }

    header(
        &mut out,
        "sluice_errors_total",
        "counter",
        "Connections and sessions ended by an error, by kind.",
    );
    for (i, s) in &shards {
        for kind in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "sluice_errors_total{{shard=\"{i}\",kind=\"{}\"}} {}",
                kind.name(),
                s.errors[kind.slot()]
            );
        }
    }

    histogram(
        &mut out,
        "sluice_statement_latency_seconds",
        "Round-trip time from a client's Query or Sync-terminated batch in to the ReadyForQuery sent back.",
        &shards,
        |s| &s.latency,
        LATENCY_BOUNDS,
    );
    histogram(
        &mut out,
        "sluice_added_time_seconds",
        "Time spent inside the gateway per round trip: client read to upstream write, plus upstream read to client write.",
        &shards,
        |s| &s.added,
        ADDED_BOUNDS,
    );
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    shards: &[(usize, &ShardSnapshot)],
    timing: impl Fn(&ShardSnapshot) -> &Timing,
    bounds: &[u64],
) {
    header(out, name, "histogram", help);
    for (i, s) in shards {
        let t = timing(s);
        for &bound in bounds {
            let le = t.scale.seconds(bound);
            let _ = writeln!(
                out,
                "{name}_bucket{{shard=\"{i}\",le=\"{le}\"}} {}",
                t.count_at_most(bound)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{shard=\"{i}\",le=\"+Inf\"}} {}",
            t.count()
        );
        let _ = writeln!(
            out,
            "{name}_sum{{shard=\"{i}\"}} {}",
            t.scale.seconds(t.sum)
        );
        let _ = writeln!(out, "{name}_count{{shard=\"{i}\"}} {}", t.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ShardMetrics;
    use std::time::Duration;

    #[test]
    fn exposes_every_family_per_shard_with_cumulative_buckets() {
        let m = ShardMetrics::default();
        m.add(Counter::Requests, 2);
        m.statements(0, 1, 1);
        m.round_trips(1, Duration::from_micros(300), Duration::from_micros(3));
        m.round_trips(1, Duration::from_millis(3), Duration::from_micros(30));
        let text = render(&[Some(Arc::new(m.snapshot(0, 1))), None]);
        assert!(text.contains("sluice_shard_up{shard=\"0\"} 1\n"));
        assert!(text.contains("sluice_shard_up{shard=\"1\"} 0\n"));
        assert!(!text.contains("shard=\"1\",")); // no series but `up` for a silent shard
        assert!(text.contains("sluice_requests_total{shard=\"0\"} 2\n"));
        assert!(text
            .contains("sluice_statements_total{shard=\"0\",class=\"read\",action=\"block\"} 1\n"));
        assert!(text
            .contains("sluice_statement_latency_seconds_bucket{shard=\"0\",le=\"0.00025\"} 0\n"));
        assert!(
            text.contains("sluice_statement_latency_seconds_bucket{shard=\"0\",le=\"0.0005\"} 1\n")
        );
        assert!(
            text.contains("sluice_statement_latency_seconds_bucket{shard=\"0\",le=\"+Inf\"} 2\n")
        );
        assert!(text.contains("sluice_added_time_seconds_count{shard=\"0\"} 2\n"));
        assert!(text.contains("sluice_added_time_seconds_sum{shard=\"0\"} 0.000033\n"));
        // Every sample line is `name{labels} value` with a number for a value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').expect(line);
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
