//! The run folder: where it goes, the software and machine it ran on, and the summary table.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::audit_trail::{Counters, OnDisk};
use crate::stats;

/// Results of one (target, case) pair over all rounds.
#[derive(Debug, Default)]
pub struct Row {
    /// Target name.
    pub target: String,
    /// The case: protocol, client count, TLS, ... (see `scenarios`).
    pub case: String,
    /// TPS of each successful round.
    pub tps: Vec<f64>,
    /// pgbench's average latency of each successful round, ms.
    pub latency_avg_ms: Vec<f64>,
    /// Per-transaction latencies of all rounds, µs, sorted once all rounds are in.
    pub latencies_us: Vec<u64>,
    /// Transactions processed over all rounds, as pgbench counted them.
    pub transactions: u64,
    /// Failed transactions over all rounds.
    pub failed_transactions: u64,
    /// Errors of rounds that did not complete, or why the target never started.
    pub errors: Vec<String>,
    /// Percentiles (p50, p99) in ms as a generator reported them, per round, where no
    /// per-transaction log exists (sluice-loadgen runs).
    pub reported_ms: Vec<(f64, f64)>,
    /// Connections held open (idle scenario).
    pub connections: u64,
    /// Resident memory of the target before the load and with every connection open, KiB,
    /// per round.
    pub rss_kib: Vec<(u64, u64)>,
}

/// The time a gateway target says it added itself (its `/v1/stats` histograms, every case
/// and round of the run together).
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    /// Target name.
    pub target: String,
    /// Round trips measured.
    pub count: u64,
    /// p50, p99 and p99.9 of the added time, µs.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// See `p50_us`.
    pub p999_us: f64,
    /// Statement latency p99 as the gateway saw it, µs.
    pub latency_p99_us: f64,
}

impl Added {
    /// Reads the merged numbers of a `/v1/stats` document.
    pub fn from_stats(target: &str, json: &str) -> Option<Added> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let total = &v["total"];
        let added = &total["added_time"];
        Some(Added {
            target: target.to_string(),
            count: added["count"].as_u64()?,
            p50_us: added["p50_us"].as_f64()?,
            p99_us: added["p99_us"].as_f64()?,
            p999_us: added["p999_us"].as_f64()?,
            latency_p99_us: total["statement_latency"]["p99_us"].as_f64()?,
        })
    }
}

impl Row {
    /// Mean TPS over the successful rounds.
    pub fn tps_mean(&self) -> f64 {
        stats::mean(&self.tps)
    }

    /// p99 latency over every logged transaction, ms.
    pub fn p99_ms(&self) -> Option<f64> {
        self.ms(99.0)
    }

    fn ms(&self, p: f64) -> Option<f64> {
        if self.latencies_us.is_empty() && !self.reported_ms.is_empty() {
            // Only the percentiles the generator reported: their mean over the rounds.
            let pick = |r: &(f64, f64)| if p == 50.0 { r.0 } else { r.1 };
            let values: Vec<f64> = self.reported_ms.iter().map(pick).collect();
            return (p == 50.0 || p == 99.0).then(|| stats::mean(&values));
        }
        stats::percentile(&self.latencies_us, p).map(|us| us as f64 / 1000.0)
    }

    /// Memory per client connection, KiB: (with − before) / connections in the first round,
    /// when the target process is fresh. Later rounds reuse the heap the first one left behind,
    /// so their growth understates what a connection costs (they stay in the JSON).
    pub fn kib_per_connection(&self) -> Option<f64> {
        let (before, with) = *self.rss_kib.first()?;
        (self.connections > 0).then(|| (with as f64 - before as f64) / self.connections as f64)
    }
}

/// `bench-harness/runs/<YYYY-MM-DD>-<scenario>`, with `-2`, `-3`, ... if it already exists.
pub fn dated_dir(scenario: &str) -> PathBuf {
    let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("runs");
    let base = format!("{}-{scenario}", shell("date -u +%F"));
    let mut dir = runs.join(&base);
    let mut n = 2;
    while dir.exists() {
        dir = runs.join(format!("{base}-{n}"));
        n += 1;
    }
    dir
}

/// Output of a shell command, trimmed; `unknown (...)` when it fails.
pub fn shell(command: &str) -> String {
    match Command::new("sh").args(["-c", command]).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => format!("unknown ({})", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => format!("unknown ({e})"),
    }
}

/// `versions.txt`: software versions and the machine.
pub fn versions(pg_bindir: &Path, sluice: &Path, pgbouncer: Option<&Path>) -> String {
    let root = crate::workspace_root();
    let root = root.display();
    let rev = shell(&format!(
        "cd '{root}' && echo \"$(git rev-parse HEAD)$(git status --porcelain | grep -q . && echo ' (dirty tree)')\""
    ));
    let sluice_version = if sluice.is_file() {
        shell(&format!("'{}' --version 2>&1 | head -n1", sluice.display()))
    } else {
        format!("not built ({})", sluice.display())
    };
    let pgbouncer = match pgbouncer {
        Some(bin) => shell(&format!("'{}' --version 2>&1 | head -n1", bin.display())),
        None => "not installed".into(),
    };
    let io_uring = match fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        Ok(v) => {
            let meaning = match v.trim() {
                "0" => "enabled for all processes",
                "1" => "disabled for unprivileged processes",
                "2" => "disabled",
                _ => "unknown value",
            };
            format!("kernel.io_uring_disabled = {} ({meaning})", v.trim())
        }
        Err(_) => "kernel.io_uring_disabled absent (kernel before 6.6: io_uring not switched off by sysctl)".into(),
    };
    let bin = |name: &str| pg_bindir.join(name).display().to_string();
    [
        format!("sluice git rev: {rev}"),
        format!("sluice binary: {} -> {sluice_version}", sluice.display()),
        format!("rustc: {}", shell("rustc -V")),
        format!(
            "postgres: {}",
            shell(&format!("'{}' --version", bin("postgres")))
        ),
        format!(
            "pgbench: {}",
            shell(&format!("'{}' --version", bin("pgbench")))
        ),
        format!("pgbouncer: {pgbouncer}"),
        format!("kernel: {}", shell("uname -srvm")),
        format!("nproc: {}", shell("nproc")),
        format!(
            "cpu: {}",
            shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'")
        ),
        format!(
            "memory: {}",
            shell("grep MemTotal /proc/meminfo | tr -s ' '")
        ),
        format!("io_uring: {io_uring}"),
        format!("load average at start: {}", shell("cat /proc/loadavg")),
    ]
    .join("\n")
        + "\n"
}

/// What the summary says about the run's parameters.
pub struct Params<'a> {
    /// Scenario name.
    pub scenario: &'a str,
    /// Time added by each gateway target, by its own account.
    pub added: &'a [Added],
    /// Human summary of the workload, e.g. the pgbench flags.
    pub workload: &'a str,
    /// Rounds requested.
    pub rounds: u32,
    /// Start time, UTC.
    pub started: &'a str,
    /// Notes (targets that failed to start, skipped peers).
    pub notes: &'a [String],
    /// What each audited gateway target's trail wrote.
    pub trails: &'a [Trail],
}

/// What the audit trail of one gateway target wrote over the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trail {
    /// Target name.
    pub target: String,
    /// The gateway's own counters (`/metrics`) before it stopped, if it answered.
    pub counters: Option<Counters>,
    /// The trail's files once the gateway had stopped (and flushed), if they could be read.
    pub on_disk: Option<OnDisk>,
    /// Seconds the target was under load: its completed runs times the run duration.
    pub seconds: f64,
    /// Transactions the load generator completed through the target.
    pub transactions: u64,
    /// The same per case, from the gateway's count before and after each run.
    pub cases: Vec<TrailCase>,
}

/// What an audit trail took during one case's runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrailCase {
    /// The case.
    pub case: String,
    /// Events taken (written or queued) during the runs.
    pub events: u64,
    /// Seconds of those runs.
    pub seconds: f64,
    /// Transactions completed in them.
    pub transactions: u64,
}

impl TrailCase {
    /// Adds one run's events, seconds and transactions.
    pub fn push_run(&mut self, events: u64, seconds: f64, transactions: u64) {
        self.events += events;
        self.seconds += seconds;
        self.transactions += transactions;
    }
}

impl Trail {
    /// Events the trail took: the gateway's count, else the lines on disk.
    pub fn events(&self) -> Option<u64> {
        self.counters
            .as_ref()
            .map(|c| c.written)
            .or(self.on_disk.as_ref().map(|d| d.lines))
    }

    /// Events per second under load.
    pub fn per_second(&self) -> Option<f64> {
        let events = self.events()? as f64;
        (self.seconds > 0.0).then(|| events / self.seconds)
    }

    /// Events per transaction the load generator completed.
    pub fn per_transaction(&self) -> Option<f64> {
        let events = self.events()? as f64;
        (self.transactions > 0).then(|| events / self.transactions as f64)
    }

    /// Mean size of an event on disk, bytes.
    pub fn bytes_per_line(&self) -> Option<f64> {
        let d = self.on_disk.as_ref()?;
        (d.lines > 0).then(|| d.bytes as f64 / d.lines as f64)
    }
}

/// A gateway target measured against the one it adds a feature to (same binary and settings),
/// reported in a section of its own.
pub struct Comparison {
    /// The target without the feature.
    pub base: &'static str,
    /// The target with it.
    pub target: &'static str,
    /// Short names in the latency columns.
    pub labels: (&'static str, &'static str),
    /// What the ratio shows, the start of the section's sentence.
    pub what: &'static str,
}

/// The feature comparisons, each shown when both of its targets ran.
pub const COMPARISONS: &[Comparison] = &[
    Comparison {
        base: "sluice",
        target: "sluice-policy",
        labels: ("sluice", "policy"),
        what: "What the full policy costs over the pass-through role",
    },
    Comparison {
        base: "sluice-policy",
        target: "sluice-audit",
        labels: ("policy", "audit"),
        what: "What the audit trail (one event per statement, written by the gateway's writer \
               thread to a file in its directory, as `sluice init` configures it) costs on top of \
               the full policy",
    },
    Comparison {
        base: "sluice-policy",
        target: "sluice-record",
        labels: ("policy", "record"),
        what: "What session recording (every message each way and every decision, rows up to \
               `max_statement_bytes` per request, written by the recorder thread to segment files \
               in the gateway's directory, as `sluice init` configures it) costs on top of the \
               full policy",
    },
];

impl Comparison {
    /// The key of this comparison in `summary.json`, e.g. `sluice_policy_vs_sluice`.
    pub fn json_key(&self) -> String {
        format!("{}_vs_{}", snake(self.target), snake(self.base))
    }
}

fn snake(target: &str) -> String {
    target.replace('-', "_")
}

/// One target against its base, for one case.
#[derive(Debug)]
pub struct Cost {
    /// The case.
    pub case: String,
    /// The target's mean TPS over the base's.
    pub ratio: Option<f64>,
    /// The same ratio per round; empty unless both targets completed every round.
    pub round_ratios: Vec<f64>,
    /// p50 latency, (base, target), ms.
    pub p50_ms: (Option<f64>, Option<f64>),
    /// p99 latency, (base, target), ms.
    pub p99_ms: (Option<f64>, Option<f64>),
}

/// One [`Cost`] per case where both targets of `cmp` have results.
pub fn costs(rows: &[Row], cmp: &Comparison) -> Vec<Cost> {
    rows.iter()
        .filter(|r| r.target == cmp.target)
        .filter_map(|policy| {
            let base = find(rows, cmp.base, &policy.case)?;
            if policy.tps.is_empty() {
                return None;
            }
            let round_ratios = if base.tps.len() == policy.tps.len() {
                base.tps
                    .iter()
                    .zip(&policy.tps)
                    .filter(|(b, _)| **b > 0.0)
                    .map(|(b, p)| p / b)
                    .collect()
            } else {
                Vec::new()
            };
            Some(Cost {
                case: policy.case.clone(),
                ratio: ratio(policy, Some(base)),
                round_ratios,
                p50_ms: (base.ms(50.0), policy.ms(50.0)),
                p99_ms: (base.ms(99.0), policy.ms(99.0)),
            })
        })
        .collect()
}

fn ratio(row: &Row, base: Option<&Row>) -> Option<f64> {
    let base = base?.tps_mean();
    let ours = row.tps_mean();
    (base.is_finite() && base > 0.0 && ours.is_finite()).then(|| ours / base)
}

fn find<'a>(rows: &'a [Row], target: &str, case: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.target == target && r.case == case && !r.tps.is_empty())
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.filter(|v| v.is_finite())
        .map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// `summary.md`.
pub fn summary_md(params: &Params, rows: &[Row]) -> String {
    let mut out = format!(
        "# {}\n\nWorkload: `{}`, {} round(s), targets interleaved in each round. Started {}.\n\
         TPS excludes connection time (except with a connection per transaction, where it is \
         the point); p50/p99 are over every transaction of every round (pgbench `--log`). \
         Ratios are TPS ratios against the same case. Chart: `chart.svg`.\n\n\
         | target | case | TPS mean | TPS per round | latency avg (ms) | p50 (ms) | p99 (ms) | vs direct | vs sluice | vs pgbouncer | vs pgpool |\n\
         |---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
        params.scenario, params.workload, params.rounds, params.started
    );
    for row in rows {
        let per_round: Vec<String> = row.tps.iter().map(|t| format!("{t:.0}")).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.target,
            row.case,
            fmt(Some(row.tps_mean()), 0),
            if per_round.is_empty() {
                "failed".into()
            } else {
                per_round.join(", ")
            },
            fmt(Some(stats::mean(&row.latency_avg_ms)), 3),
            fmt(row.ms(50.0), 3),
            fmt(row.ms(99.0), 3),
            fmt(ratio(row, find(rows, "direct", &row.case)), 3),
            fmt(ratio(row, find(rows, "sluice", &row.case)), 3),
            fmt(ratio(row, find(rows, "pgbouncer", &row.case)), 3),
            fmt(ratio(row, find(rows, "pgpool", &row.case)), 3),
        ));
    }
    for cmp in COMPARISONS {
        out.push_str(&comparison_md(cmp, &costs(rows, cmp)));
    }
    if !params.added.is_empty() {
        out.push_str(
            "\n## Time sluice adds, by its own account\n\n\
             From each gateway's `/v1/stats` after the run (all cases and rounds together): per \
             round trip, the time from the client's message in to the upstream write plus from \
             the upstream's answer in to the client write, including any wait behind the \
             shard's other sessions.\n\n\
             | target | round trips | added p50 (µs) | added p99 (µs) | added p99.9 (µs) | statement p99 (µs) |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        for a in params.added {
            out.push_str(&format!(
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                a.target, a.count, a.p50_us, a.p99_us, a.p999_us, a.latency_p99_us
            ));
        }
    }
    out.push_str(&trails_md(params.trails));
    let memory: Vec<&Row> = rows.iter().filter(|r| !r.rss_kib.is_empty()).collect();
    if !memory.is_empty() {
        out.push_str(
            "\n## Memory per client connection\n\n\
             Resident memory (VmRSS) of the target process before the load and once every \
             connection is open, in the first round (a fresh process: later rounds reuse the heap \
             the first one left, see `summary.json`); per connection is the difference over the \
             connections held.\n\n\
             | target | connections | RSS before (MiB) | RSS with connections (MiB) | KiB per connection |\n\
             |---|---:|---:|---:|---:|\n",
        );
        for row in memory {
            let (before, with) = row.rss_kib[0];
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                row.target,
                row.connections,
                fmt(Some(before as f64 / 1024.0), 1),
                fmt(Some(with as f64 / 1024.0), 1),
                fmt(row.kib_per_connection(), 1),
            ));
        }
    }
    let errors: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.errors
                .iter()
                .map(move |e| format!("- {} / {}: {}", r.target, r.case, first_line(e)))
        })
        .chain(params.notes.iter().map(|n| format!("- {}", first_line(n))))
        .collect();
    if !errors.is_empty() {
        out.push_str("\n## Notes and failures\n\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    out.push_str("\nExact commands: `commands.txt`; software and machine: `versions.txt`; pgbench output: `raw/`.\n");
    out
}

/// The section of one comparison; empty when it has no case.
fn comparison_md(cmp: &Comparison, costs: &[Cost]) -> String {
    if costs.is_empty() {
        return String::new();
    }
    let (b, t) = cmp.labels;
    let mut out = format!(
        "\n## {} vs {}\n\n\
         {}, same gateway binary and settings: TPS ratio of the means, of each round (the two \
         ran back to back in every round), and the change in latency percentiles.\n\n\
         | case | TPS ratio | TPS ratio per round | p50 (ms) {b} → {t} | p99 (ms) {b} → {t} |\n\
         |---|---:|---|---|---|\n",
        cmp.target, cmp.base, cmp.what
    );
    for c in costs {
        let per_round: Vec<String> = c.round_ratios.iter().map(|r| format!("{r:.3}")).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} → {} | {} → {} |\n",
            c.case,
            fmt(c.ratio, 3),
            if per_round.is_empty() {
                "–".into()
            } else {
                per_round.join(", ")
            },
            fmt(c.p50_ms.0, 3),
            fmt(c.p50_ms.1, 3),
            fmt(c.p99_ms.0, 3),
            fmt(c.p99_ms.1, 3),
        ));
    }
    out
}

/// The "Audit trail" section: what each audited target's trail wrote, so a reader sees the
/// trail was real; empty without one.
fn trails_md(trails: &[Trail]) -> String {
    if trails.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Audit trail\n\n\
         What each audited gateway wrote over the whole run: events by the gateway's own count \
         (`/metrics`, before it stopped), per second under load (its runs times their duration) \
         and per transaction pgbench completed; then the trail's files once the gateway had \
         stopped and flushed (the current file and the rotated `.1`, `.2`, ...: fewer lines \
         than events when rotation dropped the oldest files); and how often a statement waited \
         for room in the writer's queue.\n\n\
         | target | events | events/s | events per transaction | lines on disk | MiB on disk | files | bytes per event | waited for queue | dropped | write errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let count = |v: Option<u64>| v.map_or("–".into(), |v| v.to_string());
    for t in trails {
        let c = t.counters.as_ref();
        let d = t.on_disk.as_ref();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            t.target,
            count(t.events()),
            fmt(t.per_second(), 0),
            fmt(t.per_transaction(), 2),
            count(d.map(|d| d.lines)),
            fmt(d.map(|d| d.bytes as f64 / (1024.0 * 1024.0)), 1),
            count(d.map(|d| d.files)),
            fmt(t.bytes_per_line(), 0),
            count(c.map(|c| c.blocked)),
            count(c.map(|c| c.dropped + c.refused)),
            count(c.map(|c| c.write_errors)),
        ));
    }
    if trails.iter().any(|t| !t.cases.is_empty()) {
        out.push_str(
            "\nPer case, from the gateway's count (written or queued) before and after each \
             run: a statement sent as a Query or a Parse is one event, so a prepared \
             statement executed again adds none.\n\n\
             | target | case | events | events/s | events per transaction |\n\
             |---|---|---:|---:|---:|\n",
        );
        for t in trails {
            for c in &t.cases {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    t.target,
                    c.case,
                    c.events,
                    fmt((c.seconds > 0.0).then(|| c.events as f64 / c.seconds), 0),
                    fmt(
                        (c.transactions > 0).then(|| c.events as f64 / c.transactions as f64),
                        2
                    ),
                ));
            }
        }
    }
    out
}

/// `summary.json`.
pub fn summary_json(params: &Params, rows: &[Row]) -> serde_json::Value {
    let results: Vec<_> = rows
        .iter()
        .map(|row| {
            json!({
                "target": row.target,
                "case": row.case,
                "tps_mean": finite(row.tps_mean()),
                "tps_rounds": row.tps,
                "latency_avg_ms_rounds": row.latency_avg_ms,
                "p50_ms": row.ms(50.0),
                "p99_ms": row.ms(99.0),
                "transactions": row.transactions,
                "transactions_logged": row.latencies_us.len(),
                "failed_transactions": row.failed_transactions,
                "ratio_vs_direct": ratio(row, find(rows, "direct", &row.case)),
                "ratio_vs_sluice": ratio(row, find(rows, "sluice", &row.case)),
                "ratio_vs_pgbouncer": ratio(row, find(rows, "pgbouncer", &row.case)),
                "ratio_vs_pgpool": ratio(row, find(rows, "pgpool", &row.case)),
                "errors": row.errors,
                "connections": row.connections,
                "rss_kib_rounds": row.rss_kib,
                "kib_per_connection": row.kib_per_connection(),
            })
        })
        .collect();
    let mut comparisons = serde_json::Map::new();
    for cmp in COMPARISONS {
        let (b, t) = (snake(cmp.base), snake(cmp.target));
        let cases: Vec<_> = costs(rows, cmp)
            .iter()
            .map(|c| {
                let mut v = serde_json::Map::new();
                v.insert("case".into(), json!(c.case));
                v.insert("tps_ratio".into(), json!(c.ratio));
                v.insert("tps_ratio_rounds".into(), json!(c.round_ratios));
                v.insert(format!("p50_ms_{b}"), json!(c.p50_ms.0));
                v.insert(format!("p50_ms_{t}"), json!(c.p50_ms.1));
                v.insert(format!("p99_ms_{b}"), json!(c.p99_ms.0));
                v.insert(format!("p99_ms_{t}"), json!(c.p99_ms.1));
                serde_json::Value::Object(v)
            })
            .collect();
        comparisons.insert(cmp.json_key(), json!(cases));
    }
    let trails: Vec<_> = params
        .trails
        .iter()
        .map(|t| {
            let c = t.counters.as_ref();
            let d = t.on_disk.as_ref();
            json!({
                "target": t.target,
                "events": t.events(),
                "events_per_second": t.per_second(),
                "events_per_transaction": t.per_transaction(),
                "seconds_under_load": t.seconds,
                "transactions": t.transactions,
                "events_written": c.map(|c| c.written),
                "events_waited_for_queue": c.map(|c| c.blocked),
                "events_dropped": c.map(|c| c.dropped),
                "events_refused": c.map(|c| c.refused),
                "write_errors": c.map(|c| c.write_errors),
                "files": d.map(|d| d.files),
                "bytes": d.map(|d| d.bytes),
                "lines": d.map(|d| d.lines),
                "cases": t.cases.iter().map(|c| json!({
                    "case": c.case,
                    "events": c.events,
                    "seconds": c.seconds,
                    "transactions": c.transactions,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut summary = json!({
        "scenario": params.scenario,
        "workload": params.workload,
        "rounds": params.rounds,
        "started": params.started,
        "notes": params.notes,
        "results": results,
        "audit_trail": trails,
        "added_time": params.added.iter().map(|a| json!({
            "target": a.target,
            "round_trips": a.count,
            "p50_us": a.p50_us,
            "p99_us": a.p99_us,
            "p999_us": a.p999_us,
            "statement_p99_us": a.latency_p99_us,
        })).collect::<Vec<_>>(),
    });
    if let Some(obj) = summary.as_object_mut() {
        obj.extend(comparisons);
    }
    summary
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn first_line(s: &str) -> String {
    let mut lines = s.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("").trim().to_string();
    match lines.next() {
        Some(second) => format!("{first} {}", second.trim()),
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, case: &str, tps: &[f64]) -> Row {
        Row {
            target: target.into(),
            case: case.into(),
            tps: tps.to_vec(),
            latency_avg_ms: vec![1.0; tps.len()],
            latencies_us: vec![500, 900, 1500],
            ..Row::default()
        }
    }

    fn params() -> Params<'static> {
        Params {
            scenario: "pgbench-select",
            added: &[],
            workload: "pgbench -S",
            rounds: 2,
            started: "now",
            notes: &[],
            trails: &[],
        }
    }

    fn policy_costs(rows: &[Row]) -> Vec<Cost> {
        costs(rows, &COMPARISONS[0])
    }

    #[test]
    fn policy_cost_is_the_ratio_of_means_and_of_each_round() {
        let rows = [
            row("sluice", "simple", &[100.0, 200.0]),
            row("sluice-policy", "simple", &[90.0, 150.0]),
        ];
        let costs = policy_costs(&rows);
        assert_eq!(costs.len(), 1);
        assert!((costs[0].ratio.unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(costs[0].round_ratios, [0.9, 0.75]);
        assert_eq!(costs[0].p50_ms, (Some(0.9), Some(0.9)));
    }

    #[test]
    fn no_policy_cost_without_both_targets_or_with_a_failed_one() {
        assert!(policy_costs(&[row("sluice", "simple", &[100.0])]).is_empty());
        assert!(policy_costs(&[row("sluice-policy", "simple", &[100.0])]).is_empty());
        let failed = [
            row("sluice", "simple", &[]),
            row("sluice-policy", "simple", &[100.0]),
        ];
        assert!(policy_costs(&failed).is_empty());
        // A round that failed for one target leaves the per-round ratios out, not misaligned.
        let uneven = [
            row("sluice", "simple", &[100.0]),
            row("sluice-policy", "simple", &[90.0, 80.0]),
        ];
        assert!(policy_costs(&uneven)[0].round_ratios.is_empty());
    }

    #[test]
    fn summary_has_the_sluice_column_and_the_policy_section() {
        let rows = [
            row("direct", "prepared", &[400.0]),
            row("sluice", "prepared", &[200.0]),
            row("sluice-policy", "prepared", &[150.0]),
        ];
        let md = summary_md(&params(), &rows);
        assert!(md.contains("| vs direct | vs sluice | vs pgbouncer | vs pgpool |"));
        assert!(md.contains(
            "| sluice-policy | prepared | 150 | 150 | 1.000 | 0.900 | 1.500 | 0.375 | 0.750 | – | – |"
        ));
        assert!(md.contains("## sluice-policy vs sluice"));
        assert!(md.contains("| prepared | 0.750 | 0.750 | 0.900 → 0.900 | 1.500 → 1.500 |"));
        let json = summary_json(&params(), &rows);
        assert_eq!(json["sluice_policy_vs_sluice"][0]["tps_ratio"], 0.75);
        assert_eq!(json["results"][2]["ratio_vs_sluice"], 0.75);
    }

    #[test]
    fn added_time_reads_the_merged_stats() {
        let json = r#"{"shards":[],"total":{"added_time":{"count":10,"sum_us":1.0,"p50_us":8.5,"p90_us":9.0,"p99_us":20.25,"p999_us":31.0,"max_us":40.0},"statement_latency":{"count":10,"sum_us":1.0,"p50_us":80.0,"p90_us":90.0,"p99_us":120.0,"p999_us":130.0,"max_us":140.0}}}"#;
        let a = Added::from_stats("sluice-policy", json).unwrap();
        assert_eq!((a.count, a.p99_us, a.latency_p99_us), (10, 20.25, 120.0));
        assert!(Added::from_stats("x", "{}").is_none());
        let added = [a];
        let p = Params {
            added: &added,
            ..params()
        };
        let md = summary_md(&p, &[]);
        assert!(
            md.contains("| sluice-policy | 10 | 8.5 | 20.2 | 31.0 | 120.0 |"),
            "{md}"
        );
    }

    #[test]
    fn memory_per_connection_is_the_growth_over_the_connections() {
        let mut r = row("sluice", "1000 connections, 50 req/s", &[50.0, 50.0]);
        r.latencies_us.clear();
        r.reported_ms = vec![(0.5, 2.0), (0.7, 4.0)];
        r.connections = 1000;
        r.rss_kib = vec![(10_000, 32_000), (31_000, 34_000)];
        assert_eq!(r.kib_per_connection(), Some(22.0));
        assert_eq!(r.p99_ms(), Some(3.0));
        let md = summary_md(&params(), &[r]);
        assert!(md.contains("## Memory per client connection"), "{md}");
        assert!(md.contains("| sluice | 1000 | 9.8 | 31.2 | 22.0 |"), "{md}");
    }

    #[test]
    fn audit_cost_is_measured_against_the_policy_target() {
        let rows = [
            row("direct", "simple", &[400.0, 400.0]),
            row("sluice", "simple", &[200.0, 200.0]),
            row("sluice-policy", "simple", &[160.0, 200.0]),
            row("sluice-audit", "simple", &[120.0, 180.0]),
        ];
        let audit = &COMPARISONS[1];
        let c = costs(&rows, audit);
        assert_eq!(c.len(), 1);
        assert!((c[0].ratio.unwrap() - 300.0 / 360.0).abs() < 1e-9);
        assert_eq!(c[0].round_ratios, [0.75, 0.9]);
        let md = summary_md(&params(), &rows);
        assert!(md.contains("## sluice-policy vs sluice"), "{md}");
        assert!(md.contains("## sluice-audit vs sluice-policy"), "{md}");
        assert!(md.contains(
            "| case | TPS ratio | TPS ratio per round | p50 (ms) policy → audit | p99 (ms) policy → audit |"
        ));
        assert!(
            md.contains("| simple | 0.833 | 0.750, 0.900 | 0.900 → 0.900 | 1.500 → 1.500 |"),
            "{md}"
        );
        // The audit table follows the policy table.
        assert!(
            md.find("## sluice-policy vs sluice") < md.find("## sluice-audit vs sluice-policy")
        );
        let json = summary_json(&params(), &rows);
        let a = &json["sluice_audit_vs_sluice_policy"][0];
        assert_eq!(a["tps_ratio_rounds"], json!([0.75, 0.9]));
        assert_eq!(a["p99_ms_sluice_policy"], 1.5);
        assert_eq!(a["p99_ms_sluice_audit"], 1.5);
        assert_eq!(json["sluice_policy_vs_sluice"][0]["tps_ratio"], 0.9);
        assert_eq!(json["results"][3]["ratio_vs_sluice"], 0.75);
        // Without the policy target there is nothing to compare the audit target with.
        let without_policy = [
            row("sluice", "simple", &[200.0]),
            row("sluice-audit", "simple", &[150.0]),
        ];
        let md = summary_md(&params(), &without_policy);
        assert!(!md.contains("## sluice-audit vs"), "{md}");
    }

    #[test]
    fn the_audit_trail_section_shows_what_the_trail_wrote() {
        let trails = [Trail {
            target: "sluice-audit".into(),
            counters: Some(Counters {
                written: 30_010,
                blocked: 7,
                dropped: 0,
                refused: 0,
                write_errors: 0,
                queued: 0,
            }),
            on_disk: Some(OnDisk {
                files: 2,
                bytes: 3 * 1024 * 1024,
                lines: 30_000,
            }),
            seconds: 10.0,
            transactions: 30_000,
            cases: vec![
                TrailCase {
                    case: "simple".into(),
                    events: 30_000,
                    seconds: 5.0,
                    transactions: 15_000,
                },
                TrailCase {
                    case: "prepared".into(),
                    events: 10,
                    seconds: 5.0,
                    transactions: 15_000,
                },
            ],
        }];
        let p = Params {
            trails: &trails,
            ..params()
        };
        let md = summary_md(&p, &[]);
        assert!(md.contains("## Audit trail"), "{md}");
        assert!(
            md.contains(
                "| sluice-audit | 30010 | 3001 | 1.00 | 30000 | 3.0 | 2 | 105 | 7 | 0 | 0 |"
            ),
            "{md}"
        );
        let json = summary_json(&p, &[]);
        assert_eq!(json["audit_trail"][0]["events_per_second"], 3001.0);
        assert_eq!(json["audit_trail"][0]["lines"], 30_000);
        assert_eq!(json["audit_trail"][0]["events_waited_for_queue"], 7);
        assert!(
            md.contains("| sluice-audit | simple | 30000 | 6000 | 2.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| sluice-audit | prepared | 10 | 2 | 0.00 |"),
            "{md}"
        );
        assert_eq!(json["audit_trail"][0]["cases"][1]["events"], 10);
        // Without the gateway's counters, the lines on disk count; with nothing, dashes.
        let lines_only = Trail {
            counters: None,
            ..trails[0].clone()
        };
        assert_eq!(lines_only.events(), Some(30_000));
        assert_eq!(lines_only.per_second(), Some(3000.0));
        let nothing = Trail {
            target: "sluice-audit".into(),
            ..Trail::default()
        };
        assert_eq!(nothing.per_second(), None);
        let md = summary_md(
            &Params {
                trails: &[nothing],
                ..params()
            },
            &[],
        );
        assert!(
            md.contains("| sluice-audit | – | – | – | – | – | – | – | – | – | – |"),
            "{md}"
        );
        assert!(!summary_md(&params(), &[]).contains("## Audit trail"));
    }

    #[test]
    fn summary_without_policy_target_has_no_policy_section() {
        let rows = [
            row("direct", "simple", &[400.0]),
            row("sluice", "simple", &[200.0]),
        ];
        assert!(!summary_md(&params(), &rows).contains("sluice-policy vs sluice"));
    }
}
