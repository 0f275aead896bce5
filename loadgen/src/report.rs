//! The run's report: human text, JSON, and the HdrHistogram interval log.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::driver::{Outcome, Plan};
use crate::stats::ErrorKind;

/// Percentiles reported, as (label, quantile).
const QUANTILES: [(&str, f64); 4] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99_9", 0.999),
];

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds to microseconds, rounded to 0.1 µs.
fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

fn latency_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    let mut m = Map::new();
    m.insert("count".into(), json!(h.len()));
    m.insert("min".into(), json!(us(h.min())));
    m.insert("mean".into(), json!((h.mean() / 100.0).round() / 10.0));
    for (label, q) in QUANTILES {
        m.insert(label.into(), json!(us(h.value_at_quantile(q))));
    }
    m.insert("max".into(), json!(us(h.max())));
    Value::Object(m)
}

/// The JSON report; `workload` describes the target and is passed through.
pub fn json(outcome: &Outcome, plan: &Plan, workload: Value) -> Value {
    let s = &outcome.stats;
    let elapsed = outcome.elapsed.as_secs_f64();
    let per_second = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };
    let mut server = Map::new();
    let mut errors = Map::new();
    let (mut http4, mut http5) = (0, 0);
    for kind in ["connect", "tls", "auth", "protocol", "timeout", "io"] {
        errors.insert(kind.into(), json!(0));
    }
    for (kind, n) in &s.errors {
        match kind {
            ErrorKind::Server(code) => {
                server.insert(String::from_utf8_lossy(code).into_owned(), json!(n));
            }
            ErrorKind::HttpStatus(4) => http4 += n,
            ErrorKind::HttpStatus(_) => http5 += n,
            other => {
                errors.insert(other.label(), json!(n));
            }
        }
    }
    errors.insert("server".into(), Value::Object(server));
    errors.insert("http".into(), json!({"4xx": http4, "5xx": http5}));
    errors.insert("total".into(), json!(s.error_total()));
    let samples: Map<String, Value> = s
        .samples
        .iter()
        .map(|(k, m)| (k.label(), json!(m)))
        .collect();
    let total = s.successes + s.error_total();
    json!({
        "tool": concat!("sluice-loadgen ", env!("CARGO_PKG_VERSION")),
        "workload": workload,
        "load": {
            "connections": plan.connections,
            "threads": plan.threads.clamp(1, plan.connections.max(1)),
            "driver": outcome.driver,
            "mode": if plan.rate.is_some() { "open" } else { "closed" },
            "rate": plan.rate,
            "duration_s": plan.duration.map(|d| d.as_secs_f64()),
            "requests_limit": plan.requests,
            "warmup_s": plan.warmup.as_secs_f64(),
            "connect_per_request": plan.per_request,
            "pinned": plan.pin,
            "timeout_s": plan.timeout.as_secs_f64(),
            "connect_timeout_s": plan.connect_timeout.as_secs_f64(),
            "seed": plan.seed,
            "max_send_lag_us": plan.rate.map(|_| us(nanos(s.max_send_lag))),
            "unsent": plan.rate.map(|_| s.unsent),
        },
        "elapsed_s": elapsed,
        "requests": total,
        "successes": s.successes,
        "errors": errors,
        "error_samples": samples,
        "http_status": {
            "1xx": s.http_status[1], "2xx": s.http_status[2], "3xx": s.http_status[3],
            "4xx": s.http_status[4], "5xx": s.http_status[5],
        },
        "rows": s.rows,
        "connections_opened": s.connections_opened,
        "throughput_rps": per_second(s.successes),
        "requests_rps": per_second(total),
        "latency_us": latency_json(&s.latency),
        "service_time_us": s.service.as_ref().map(latency_json).unwrap_or(Value::Null),
    })
}

fn latency_line(label: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("  {label:<12}(no successful request)\n");
    }
    let mut line = format!("  {label:<12}");
    for (name, q) in QUANTILES {
        let _ = write!(
            line,
            "{} {:.1}  ",
            name.replace('_', "."),
            us(h.value_at_quantile(q))
        );
    }
    let _ = writeln!(
        line,
        "max {:.1}  (mean {:.1})",
        us(h.max()),
        h.mean() / 1000.0
    );
    line
}

/// The human report. `title` names the workload on its first line.
pub fn text(outcome: &Outcome, plan: &Plan, title: &str) -> String {
    let s = &outcome.stats;
    let elapsed = outcome.elapsed.as_secs_f64();
    let total = s.successes + s.error_total();
    let rate = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };
    let threads = plan.threads.clamp(1, plan.connections.max(1));
    let mut out = format!("sluice-loadgen: {title}\n");
    let _ = writeln!(
        out,
        "  {} connection{}{} on {} thread{} ({}), {}, {:.2} s measured{}",
        plan.connections,
        if plan.connections == 1 { "" } else { "s" },
        if plan.per_request {
            " (new one per request)"
        } else {
            ""
        },
        threads,
        if threads == 1 { "" } else { "s" },
        outcome.driver,
        match plan.rate {
            Some(r) => format!("open loop at {r} req/s"),
            None => "closed loop".into(),
        },
        elapsed,
        if plan.warmup.is_zero() {
            String::new()
        } else {
            format!(" after {:.1} s warm-up", plan.warmup.as_secs_f64())
        }
    );
    let _ = writeln!(
        out,
        "  {:<12}{total} ({:.1}/s): {} succeeded ({:.1}/s), {} failed",
        "requests",
        rate(total),
        s.successes,
        rate(s.successes),
        s.error_total()
    );
    out.push_str(&latency_line("latency µs", &s.latency));
    if let Some(service) = &s.service {
        out.push_str(&latency_line("service µs", service));
        let _ = writeln!(
            out,
            "  {:<12}{:.1} µs at most (generator lateness, not charged to the server)",
            "send lag",
            us(nanos(s.max_send_lag))
        );
        if s.unsent > 0 {
            let _ = writeln!(
                out,
                "  {:<12}{} scheduled requests were not sent or not answered before the end",
                "unsent", s.unsent
            );
        }
    }
    if s.http_status.iter().any(|&n| n > 0) {
        let classes: Vec<String> = (1..=5)
            .filter(|&c| s.http_status[c] > 0)
            .map(|c| format!("{c}xx {}", s.http_status[c]))
            .collect();
        let _ = writeln!(out, "  {:<12}{}", "status", classes.join(", "));
    }
    if s.rows > 0 {
        let _ = writeln!(out, "  {:<12}{}", "rows", s.rows);
    }
    for (kind, n) in &s.errors {
        let sample = s.samples.get(kind).map(String::as_str).unwrap_or("");
        let _ = writeln!(
            out,
            "  {:<12}{}: {n} (first: {sample})",
            "error",
            kind.label()
        );
    }
    out
}

/// Writes the HdrHistogram interval log (V2, DEFLATE-compressed histograms, values in
/// nanoseconds; the max column is in milliseconds).
pub fn hdr_log(path: &Path, outcome: &mut Outcome, started: SystemTime) -> anyhow::Result<()> {
    let Some(intervals) = outcome.stats.intervals.take() else {
        return Ok(());
    };
    let (every, histograms) = intervals.finish();
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut file = BufWriter::new(file);
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(concat!(
            "sluice-loadgen ",
            env!("CARGO_PKG_VERSION"),
            ": request latency in nanoseconds"
        ))
        .with_start_time(started)
        .with_base_time(started)
        .with_max_value_divisor(1_000_000.0)
        .begin_log_with(&mut file, &mut serializer)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for (index, h) in &histograms {
        writer
            .write_histogram(h, every * (*index as u32), every, None)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    drop(writer);
    std::io::Write::flush(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
