//! The idle-connections scenario: `sluice-loadgen` holds many connections open and sends a
//! trickle of queries over them (open loop), while the harness reads the target's resident
//! memory before and with the connections open, for the memory each client connection costs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::proc;

/// What one run of the idle load is asked to do.
#[derive(Debug, Clone)]
pub struct IdleLoad {
    /// Connections held open.
    pub connections: u32,
    /// Requests per second over all of them.
    pub rate: u32,
    /// Seconds the load runs once every connection is open.
    pub duration: u32,
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct IdleResult {
    /// Requests per second answered.
    pub throughput: f64,
    /// Latency percentiles, ms (p50, p99), corrected for coordinated omission.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// Successful requests.
    pub successes: u64,
    /// Failed requests.
    pub errors: u64,
    /// Connections the generator opened.
    pub opened: u64,
    /// The target's resident memory before the load and with every connection open, KiB.
    pub rss_kib: Option<(u64, u64)>,
    /// The generator's JSON report and stderr.
    pub output: String,
}

/// The statement of the trickle: one row by primary key.
pub const SCRIPT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = {rand 1 100000};\n";

/// `sluice-loadgen` next to the sluice binary, as `cargo build --release -p loadgen` puts it.
pub fn default_loadgen(sluice: &Path) -> PathBuf {
    sluice.with_file_name("sluice-loadgen")
}

/// Runs the idle load against `endpoint`; `pid` is the process whose memory is read.
pub fn run(
    loadgen: &Path,
    endpoint: &Endpoint,
    load: &IdleLoad,
    script: &Path,
    pid: Option<u32>,
    scratch: &Path,
) -> Result<IdleResult, String> {
    if !loadgen.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p loadgen`",
            loadgen.display()
        ));
    }
    let json = scratch.join("idle.json");
    let _ = fs::remove_file(&json);
    let before = pid.and_then(rss_kib);
    let mut cmd = Command::new(loadgen);
    cmd.env("PGPASSWORD", &endpoint.password)
        .args([
            "pg",
            "--host",
            "127.0.0.1",
            "-p",
            &endpoint.port.to_string(),
        ])
        .args([
            "-U",
            &endpoint.user,
            "-d",
            &endpoint.dbname,
            "--tls",
            "disable",
        ])
        .arg("-f")
        .arg(script)
        .args(["-M", "prepared", "-j", "2"])
        .args(["-c", &load.connections.to_string()])
        .args(["-R", &load.rate.to_string()])
        .args(["-T", &format!("{}s", load.duration)])
        .args(["--connect-timeout", "60s", "--json-out"])
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    proc::record(&cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", loadgen.display()))?;
    let stdout = proc::drain(child.stdout.take());
    let stderr = proc::drain(child.stderr.take());
    // The generator opens every connection before its clock starts. Once the target holds
    // them all (counted in the kernel's socket table), wait a second for the first requests
    // to settle, then read the memory.
    let started = Instant::now();
    let limit = Duration::from_secs(u64::from(load.duration) + 180);
    let mut with_load = None;
    let mut all_open_at: Option<Instant> = None;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "sluice-loadgen still running after {limit:?}; killed"
            ));
        }
        if with_load.is_none() {
            match all_open_at {
                None if established(endpoint.port) >= load.connections as usize => {
                    all_open_at = Some(Instant::now());
                }
                Some(at) if at.elapsed() >= Duration::from_secs(1) => {
                    with_load = pid.and_then(rss_kib);
                }
                _ => {}
            }
        }
        thread::sleep(Duration::from_millis(100));
    };
    let output = format!(
        "$ {}\n--- stdout ---\n{}--- stderr ---\n{}",
        proc::describe(&cmd),
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    let report = fs::read_to_string(&json)
        .map_err(|e| format!("sluice-loadgen wrote no report ({status}): {e}\n{output}"))?;
    parse(&report, before.zip(with_load), output)
}

/// Established TCP connections whose local port is `port` (the target's side of each client
/// connection), from /proc/net/tcp and tcp6.
fn established(port: u16) -> usize {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let mut cols = line.split_whitespace().skip(1);
                    let (Some(addr), Some(_), Some(state)) =
                        (cols.next(), cols.next(), cols.next())
                    else {
                        return false;
                    };
                    addr.ends_with(&local) && state == "01"
                })
                .count()
        })
        .sum()
}

/// Resident memory of a process, KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn parse(report: &str, rss_kib: Option<(u64, u64)>, output: String) -> Result<IdleResult, String> {
    let v: serde_json::Value =
        serde_json::from_str(report).map_err(|e| format!("bad sluice-loadgen report: {e}"))?;
    let num = |path: &[&str]| {
        let mut at = &v;
        for key in path {
            at = &at[*key];
        }
        at.as_f64()
    };
    Ok(IdleResult {
        throughput: num(&["throughput_rps"]).unwrap_or(f64::NAN),
        p50_ms: num(&["latency_us", "p50"]).map_or(f64::NAN, |us| us / 1000.0),
        p99_ms: num(&["latency_us", "p99"]).map_or(f64::NAN, |us| us / 1000.0),
        successes: num(&["successes"]).unwrap_or(0.0) as u64,
        errors: num(&["errors", "total"]).unwrap_or(0.0) as u64,
        opened: num(&["connections_opened"]).unwrap_or(0.0) as u64,
        rss_kib,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_gives_throughput_latency_and_counts() {
        let report = r#"{"throughput_rps": 49.5, "successes": 742, "connections_opened": 1000,
            "errors": {"total": 3}, "latency_us": {"p50": 1100.0, "p99": 52000.0}}"#;
        let r = parse(report, Some((1000, 25000)), String::new()).unwrap();
        assert_eq!((r.successes, r.errors, r.opened), (742, 3, 1000));
        assert_eq!((r.throughput, r.p50_ms, r.p99_ms), (49.5, 1.1, 52.0));
        assert_eq!(r.rss_kib, Some((1000, 25000)));
        assert!(parse("not json", None, String::new())
            .unwrap_err()
            .contains("bad sluice-loadgen report"));
    }

    #[test]
    fn resident_memory_and_established_connections_come_from_proc() {
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(established(port), 0);
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        // The server side of the connection has the listener's port as its local port.
        assert_eq!(established(port), 1);
    }
}
