//! One pgbench run against one endpoint: the command, its summary numbers, and per-transaction
//! latencies from its `--log` files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::proc;

/// What one run is asked to do.
#[derive(Debug, Clone)]
pub struct Load {
    /// Concurrent clients (`-c`).
    pub clients: u32,
    /// pgbench worker threads (`-j`).
    pub jobs: u32,
    /// Seconds (`-T`).
    pub duration: u32,
    /// Query protocol (`-M`): simple or prepared.
    pub protocol: String,
    /// A new connection for every transaction (`-C`): measures login cost.
    pub connect: bool,
    /// A script file (`-f`) instead of the built-in select-only script (`-S`).
    pub script: Option<PathBuf>,
    /// Connect with `sslmode=require` instead of `disable`.
    pub tls: bool,
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Transactions per second, excluding connection set-up time.
    pub tps: f64,
    /// pgbench's average latency in milliseconds.
    pub latency_avg_ms: f64,
    /// Transactions processed.
    pub transactions: u64,
    /// Transactions that failed (pgbench 15+ reports them).
    pub failed: u64,
    /// Per-transaction latencies in microseconds, from the log files.
    pub latencies_us: Vec<u64>,
    /// Full pgbench stdout and stderr.
    pub output: String,
}

/// Runs `pgbench -n` (`-S` or the load's script) for `load` against `endpoint`, logging
/// transactions under `log_dir`.
pub fn run(
    pgbench: &Path,
    endpoint: &Endpoint,
    load: &Load,
    log_dir: &Path,
) -> Result<RunResult, String> {
    let _ = fs::remove_dir_all(log_dir);
    fs::create_dir_all(log_dir).map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    let prefix = log_dir.join("txn");
    let mut cmd = Command::new(pgbench);
    endpoint.apply(&mut cmd);
    if load.tls {
        cmd.env("PGSSLMODE", "require");
    }
    cmd.arg("-n");
    match &load.script {
        Some(script) => cmd.arg("-f").arg(script),
        None => cmd.arg("-S"),
    };
    if load.connect {
        cmd.arg("-C");
    }
    cmd.args([
        "-c",
        &load.clients.to_string(),
        "-j",
        &load.jobs.to_string(),
    ])
    .args(["-T", &load.duration.to_string(), "-M", &load.protocol])
    .arg("--log")
    .arg(format!("--log-prefix={}", prefix.display()))
    .arg(&endpoint.dbname);
    let out = proc::run(
        &mut cmd,
        Duration::from_secs(u64::from(load.duration) + 120),
    )?;
    let output = format!(
        "$ {}\n--- stdout ---\n{}--- stderr ---\n{}",
        proc::describe(&cmd),
        out.stdout,
        out.stderr
    );
    if !out.status.success() {
        return Err(format!(
            "pgbench against {} failed ({}):\n{}",
            endpoint.name,
            out.status,
            out.stderr.trim()
        ));
    }
    // With a connection per transaction (-C) pgbench counts the logins in; otherwise it
    // leaves out the initial connections.
    let tps = field(&out.stdout, "tps = ", "(without initial connection time)")
        .or_else(|| field(&out.stdout, "tps = ", "(including reconnection times)"))
        .ok_or_else(|| format!("no tps in pgbench output:\n{}", out.stdout))?;
    let latency_avg_ms = field(&out.stdout, "latency average = ", "ms").unwrap_or(f64::NAN);
    let transactions = field(
        &out.stdout,
        "number of transactions actually processed: ",
        "",
    )
    .unwrap_or(0.0) as u64;
    let failed = field(&out.stdout, "number of failed transactions: ", "").unwrap_or(0.0) as u64;
    let latencies_us = read_logs(log_dir)?;
    let _ = fs::remove_dir_all(log_dir);
    Ok(RunResult {
        tps,
        latency_avg_ms,
        transactions,
        failed,
        latencies_us,
        output,
    })
}

/// The number following `prefix` on the line that contains both `prefix` and `marker`.
fn field(stdout: &str, prefix: &str, marker: &str) -> Option<f64> {
    stdout
        .lines()
        .filter(|l| l.contains(marker))
        .find_map(|line| {
            let rest = line.trim().strip_prefix(prefix)?;
            rest.split_whitespace().next()?.parse().ok()
        })
}

/// Reads every `txn.PID[.N]` log: `client_id transaction_no time_us script_no epoch epoch_us`.
fn read_logs(dir: &Path) -> Result<Vec<u64>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut latencies = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        latencies.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
        );
    }
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::field;

    const PG15_OUTPUT: &str = "transaction type: <builtin: select only>\n\
        number of transactions actually processed: 412345\n\
        number of failed transactions: 0 (0.000%)\n\
        latency average = 1.552 ms\n\
        initial connection time = 35.101 ms\n\
        tps = 20612.345678 (without initial connection time)\n";

    #[test]
    fn tps_of_a_connection_per_transaction_run_parses() {
        let out = "latency average = 81.160 ms\ntps = 98.570659 (including reconnection times)\n";
        assert_eq!(
            field(out, "tps = ", "(including reconnection times)"),
            Some(98.570659)
        );
    }

    #[test]
    fn summary_numbers_parse_from_pg15_output() {
        assert_eq!(
            field(PG15_OUTPUT, "tps = ", "(without initial connection time)"),
            Some(20612.345678)
        );
        assert_eq!(field(PG15_OUTPUT, "latency average = ", "ms"), Some(1.552));
        assert_eq!(
            field(
                PG15_OUTPUT,
                "number of transactions actually processed: ",
                ""
            ),
            Some(412345.0)
        );
        assert_eq!(
            field(PG15_OUTPUT, "number of failed transactions: ", ""),
            Some(0.0)
        );
    }
}
