//! The per-shard table `sluice stats` prints: one row per shard and the merged row, so that an
//! imbalance between cores shows at a glance.

use super::report::{ShardStats, StatsReport};

const HEADERS: [&str; 14] = [
    "shard",
    "conns",
    "stmts",
    "blocked",
    "masked",
    "bytes in",
    "bytes out",
    "errors",
    "lat p50",
    "p99",
    "p99.9",
    "added p50",
    "p99",
    "p99.9",
];

/// The table as text: a header line, one line per shard, then `total`. `conns` is active/opened;
/// bytes in are client to upstream, bytes out upstream to client.
pub fn render(report: &StatsReport) -> String {
    let mut rows: Vec<Vec<String>> = vec![HEADERS.iter().map(|h| h.to_string()).collect()];
    for s in &report.shards {
        let name = s.shard.map_or_else(|| "?".to_owned(), |i| i.to_string());
        rows.push(row(name, s));
    }
    rows.push(row("total".to_owned(), &report.total));
    let widths: Vec<usize> = (0..HEADERS.len())
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c == 0 {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                line.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if report.shards.iter().any(|s| !s.responded) {
        out.push_str("(a shard marked `-` did not answer in time; total covers the others)\n");
    }
    out
}

fn row(name: String, s: &ShardStats) -> Vec<String> {
    if !s.responded && s.shard.is_some() {
        let mut r = vec![name];
        r.extend(std::iter::repeat_n("-".to_owned(), HEADERS.len() - 1));
        return r;
    }
    vec![
        name,
        format!("{}/{}", s.connections.active, s.connections.opened),
        s.statements.total.to_string(),
        s.statements.refused.to_string(),
        s.masked_values.to_string(),
        bytes(s.bytes.client_to_upstream),
        bytes(s.bytes.upstream_to_client),
        s.errors.total.to_string(),
        micros(s.statement_latency.p50_us, s.statement_latency.count),
        micros(s.statement_latency.p99_us, s.statement_latency.count),
        micros(s.statement_latency.p999_us, s.statement_latency.count),
        micros(s.added_time.p50_us, s.added_time.count),
        micros(s.added_time.p99_us, s.added_time.count),
        micros(s.added_time.p999_us, s.added_time.count),
    ]
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

fn micros(us: f64, count: u64) -> String {
    if count == 0 {
        "-".to_owned()
    } else if us < 10.0 {
        format!("{us:.2}us")
    } else if us < 1_000.0 {
        format!("{us:.0}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ShardMetrics;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn one_row_per_shard_plus_total_aligned() {
        let m = ShardMetrics::default();
        m.add(crate::metrics::Counter::BytesToClient, 5 * 1024 * 1024);
        m.round_trips(3, Duration::from_micros(1500), Duration::from_nanos(4200));
        let report = StatsReport::build(&[Some(Arc::new(m.snapshot(0, 2))), None]);
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("shard"));
        assert!(lines[1].starts_with("0 "));
        assert!(
            lines[1].contains("5.0MiB")
                && lines[1].contains("1.50ms")
                && lines[1].contains("4.20us"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("1 ") && lines[2].trim_end().ends_with('-'),
            "{text}"
        );
        assert!(lines[3].starts_with("total"));
        assert!(lines[4].contains("did not answer"));
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(micros(2_500_000.0, 1), "2.50s");
    }
}
