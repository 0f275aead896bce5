//! Runs a scenario: starts PostgreSQL and every target, then runs each case of the scenario
//! against each target, the targets interleaved within each round so drift hits all alike, and
//! writes the run folder.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::time::Duration;

use crate::audit_trail;
use crate::chart;
use crate::cli::{self, Options};
use crate::endpoint::Endpoint;
use crate::idle;
use crate::inprocess::{self, Sampled};
use crate::peer::Peer;
use crate::perf;
use crate::pgbench;
use crate::pgbouncer::Pgbouncer;
use crate::pgpool::Pgpool;
use crate::postgres::{Postgres, SUPERUSER};
use crate::proc;
use crate::report::{self, Params, Row, Trail, TrailCase};
use crate::scenarios::{self, Work};
use crate::scratch::Scratch;
use crate::sluice::{Profile, Sluice};
use crate::sluice_policy;
use crate::tls::Cert;

/// Runs the scenario and writes its run folder.
pub fn run(opts: &Options) -> Result<(), String> {
    let name = opts.scenario.name();
    let out_dir = opts.out.clone().unwrap_or_else(|| report::dated_dir(name));
    let started = report::shell("date -u +%FT%TZ");
    let scratch = Scratch::new()?;
    let password = secret();
    let mut notes = Vec::new();
    if let Some(note) = busy_machine() {
        say(&note);
        notes.push(note);
    }
    if opts.profile.is_some() {
        notes.push(
            "--profile: the first-round runs of gateway targets went to separate, self-sampling \
             gateways; the time sluice adds by its own account covers only the other rounds"
                .into(),
        );
    }

    let spec = scenarios::spec(opts, &scratch.subdir("scripts")?)?;
    let cert = if spec.tls {
        Some(Cert::self_signed(&scratch.subdir("tls")?)?)
    } else {
        None
    };
    say(&format!(
        "starting PostgreSQL and loading pgbench scale {}",
        opts.scale
    ));
    let pg = Postgres::start(
        scratch.path().join("pg"),
        &password,
        spec.max_connections,
        cert.as_ref(),
    )?;
    pg.pgbench_init(opts.scale)?;
    if let Some(sql) = &spec.prepare_sql {
        say("loading the scenario's tables");
        pg.psql("bench", sql)?;
    }
    let psql = pg.bindir().join("psql");
    let pgbouncer_bin = Pgbouncer::binary();
    let versions = report::versions(pg.bindir(), &opts.sluice, pgbouncer_bin.as_deref());

    // Start every requested target; one that fails is reported and the others still run.
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut failed_targets: Vec<(String, String)> = Vec::new();
    // One gateway process per sluice target, each with its own configuration, so the
    // pass-through target runs exactly the configuration of earlier runs.
    let mut gateways: Vec<Sluice> = Vec::new();
    // Peer proxies that started (pgbouncer, Pgpool-II).
    let mut peers: Vec<Peer> = Vec::new();
    let pgpool_bin = Pgpool::binary();
    for target in &opts.targets {
        let started: Result<Endpoint, String> = match target.as_str() {
            "direct" => Ok(Endpoint {
                name: "direct".into(),
                port: pg.port(),
                dbname: "bench".into(),
                user: SUPERUSER.into(),
                password: password.clone(),
            }),
            t if is_gateway(t) => {
                let workers = cli::workers_of(t).unwrap_or(opts.sluice_workers);
                let profile = profile_of(t);
                start_gateway(opts, target, &scratch, &pg, &password, workers, profile).map(|s| {
                    let endpoint = s.endpoint().clone();
                    gateways.push(s);
                    endpoint
                })
            }
            "pgbouncer" => match &pgbouncer_bin {
                None => {
                    Err("pgbouncer is not installed (Debian package `pgbouncer`); skipped".into())
                }
                Some(bin) => scratch.subdir("pgbouncer").and_then(|dir| {
                    Pgbouncer::start(
                        bin,
                        &dir,
                        pg.port(),
                        &password,
                        spec.max_clients,
                        cert.as_ref(),
                    )
                    .map(|p| keep(&mut peers, p))
                }),
            },
            "pgpool" => match &pgpool_bin {
                None => {
                    Err("Pgpool-II is not installed (Debian package `pgpool2`); skipped".into())
                }
                Some(bin) => scratch.subdir("pgpool").and_then(|dir| {
                    Pgpool::start(bin, &dir, pg.port(), &password, spec.max_clients)
                        .map(|p| keep(&mut peers, p))
                }),
            },
            other => Err(format!("unknown target {other}")),
        };
        let checked = started
            .and_then(|e| e.probe(&psql, Duration::from_secs(15)).map(|()| e))
            .and_then(|e| {
                if matches!(
                    target.as_str(),
                    "sluice-policy" | "sluice-audit" | "sluice-record"
                ) {
                    sluice_policy::verify(&e, &psql)?;
                }
                // Every gateway runs with the audit trail exactly when its target says so.
                if let Some(g) = gateways.iter().find(|g| &g.endpoint().name == target) {
                    g.check_audit(profile_of(target))?;
                }
                Ok(e)
            });
        match checked {
            Ok(endpoint) => {
                say(&format!(
                    "target {target} ready on 127.0.0.1:{}",
                    endpoint.port
                ));
                endpoints.push(endpoint);
            }
            Err(e) => {
                // A peer that started but does not answer says why in its log.
                let e = match peers.iter().find(|p| &p.endpoint().name == target) {
                    Some(peer) => format!("{e}\n{}", peer.log()),
                    None => e,
                };
                say(&format!("target {target} failed to start: {e}"));
                failed_targets.push((target.clone(), e));
            }
        }
    }
    if endpoints.is_empty() {
        return Err("no target started".into());
    }

    let mut rows: Vec<Row> = Vec::new();
    for case in &spec.cases {
        for target in &opts.targets {
            let mut row = Row {
                target: target.clone(),
                case: case.label.clone(),
                ..Row::default()
            };
            if let Some((_, e)) = failed_targets.iter().find(|(t, _)| t == target) {
                row.errors.push(format!("did not start: {e}"));
            }
            rows.push(row);
        }
    }

    let pgbench_bin = pg.bindir().join("pgbench");
    let mut raw: Vec<(String, String)> = Vec::new();
    let log_dir = scratch.path().join("txnlog");
    // Audit events per (target, case).
    let mut trail_cases: Vec<(String, TrailCase)> = Vec::new();
    for round in 1..=opts.rounds {
        for case in &spec.cases {
            for endpoint in &endpoints {
                say(&format!(
                    "round {round}/{}: {} {} for {}s",
                    opts.rounds, endpoint.name, case.label, opts.duration
                ));
                let row = rows
                    .iter_mut()
                    .find(|r| r.target == endpoint.name && r.case == case.label)
                    .expect("a row per target and case");
                let name = format!("round{round}-{}-{}.txt", endpoint.name, slug(&case.label));
                let profiler = match (&opts.perf, round) {
                    (Some(dir), 1) => gateways
                        .iter()
                        .find(|g| g.endpoint().name == endpoint.name)
                        .map(|g| {
                            let name = format!("{}-{}", endpoint.name, slug(&case.label));
                            perf::Recording::start(g.pid(), dir, &name, opts.duration)
                        }),
                    _ => None,
                };
                // The audit trail's count around the run, for its events per case.
                let trail_count = || {
                    gateways
                        .iter()
                        .find(|g| g.endpoint().name == endpoint.name && g.audit_file().is_some())
                        .and_then(|g| g.metrics().ok())
                        .and_then(|text| audit_trail::counters(&text))
                        .map(|c| c.taken())
                };
                let trail_before = trail_count();
                let sampled = match (&opts.profile, round) {
                    (Some(dir), 1)
                        if gateways.iter().any(|g| g.endpoint().name == endpoint.name) =>
                    {
                        let name = format!("{}-{}", endpoint.name, slug(&case.label));
                        match start_sampled(
                            opts,
                            &endpoint.name,
                            &scratch,
                            &pg,
                            &password,
                            dir,
                            &name,
                        ) {
                            Ok(s) => Some(s),
                            Err(e) => {
                                say(&format!("  in-process profiling failed: {e}"));
                                notes.push(format!("profiling {}: {e}", endpoint.name));
                                None
                            }
                        }
                    }
                    _ => None,
                };
                // A sampled run's load goes to its own gateway, reported as the target.
                let sampled_endpoint = sampled.as_ref().map(|s| s.endpoint().clone());
                let endpoint = sampled_endpoint.as_ref().unwrap_or(endpoint);
                let outcome = match &case.work {
                    Work::Pgbench(load) => {
                        pgbench::run(&pgbench_bin, endpoint, load, &log_dir).map(Outcome::Pgbench)
                    }
                    Work::Idle(load, script) => {
                        let pid = sampled
                            .as_ref()
                            .map(Sampled::pid)
                            .or_else(|| {
                                gateways
                                    .iter()
                                    .find(|g| g.endpoint().name == endpoint.name)
                                    .map(Sluice::pid)
                            })
                            .or_else(|| {
                                peers
                                    .iter()
                                    .find(|p| p.endpoint().name == endpoint.name)
                                    .map(Peer::pid)
                            });
                        idle::run(&opts.loadgen, endpoint, load, script, pid, scratch.path())
                            .map(Outcome::Idle)
                    }
                };
                if let Some(recording) = profiler {
                    match recording.and_then(|r| r.finish(&endpoint.name, &case.label)) {
                        Ok(svg) => say(&format!("  flamegraph: {}", svg.display())),
                        Err(e) => {
                            say(&format!("  profiling failed: {e}"));
                            notes.push(format!("profiling {}: {e}", endpoint.name));
                        }
                    }
                }
                if let (Some(before), Some(after), Ok(done)) =
                    (trail_before, trail_count(), &outcome)
                {
                    let transactions = match done {
                        Outcome::Pgbench(r) => r.transactions,
                        Outcome::Idle(r) => r.successes,
                    };
                    trail_case(&mut trail_cases, &endpoint.name, &case.label).push_run(
                        after.saturating_sub(before),
                        f64::from(opts.duration),
                        transactions,
                    );
                }
                if let Some(sampled) = sampled {
                    let (drawn, log) = sampled.finish(&endpoint.name, &case.label);
                    raw.push((format!("{name}-sampled-serve.stderr.txt"), log));
                    match drawn {
                        Ok(svg) => say(&format!("  flamegraph: {}", svg.display())),
                        Err(e) => {
                            say(&format!("  in-process profiling failed: {e}"));
                            notes.push(format!("profiling {}: {e}", endpoint.name));
                        }
                    }
                }
                match outcome {
                    Ok(Outcome::Pgbench(result)) => {
                        say(&format!(
                            "  tps {:.0}, latency avg {:.3} ms",
                            result.tps, result.latency_avg_ms
                        ));
                        row.tps.push(result.tps);
                        row.latency_avg_ms.push(result.latency_avg_ms);
                        row.transactions += result.transactions;
                        row.failed_transactions += result.failed;
                        row.latencies_us.extend(result.latencies_us);
                        raw.push((name, result.output));
                    }
                    Ok(Outcome::Idle(result)) => {
                        say(&format!(
                            "  {:.0} req/s, p99 {:.3} ms, {} connections, memory {}",
                            result.throughput,
                            result.p99_ms,
                            result.opened,
                            match result.rss_kib {
                                Some((a, b)) => format!("{a} -> {b} KiB"),
                                None => "not read".into(),
                            }
                        ));
                        row.tps.push(result.throughput);
                        row.reported_ms.push((result.p50_ms, result.p99_ms));
                        row.transactions += result.successes;
                        row.failed_transactions += result.errors;
                        row.connections = result.opened;
                        if let Some(rss) = result.rss_kib {
                            row.rss_kib.push(rss);
                        }
                        raw.push((name.replace(".txt", ".json.txt"), result.output));
                    }
                    Err(e) => {
                        say(&format!("  failed: {e}"));
                        raw.push((name, e.clone()));
                        row.errors.push(format!("round {round}: {e}"));
                    }
                }
            }
        }
    }
    for row in &mut rows {
        row.latencies_us.sort_unstable();
    }

    // The gateways' own account of the time they added and of their audit trail, then stop
    // the targets before writing, so their logs are complete and their trails flushed.
    let mut added = Vec::new();
    let mut trails = Vec::new();
    for s in &gateways {
        let name = s.endpoint().name.clone();
        match s.stats() {
            Ok(json) => {
                if let Some(a) = report::Added::from_stats(&name, &json) {
                    added.push(a);
                }
                raw.push((format!("{name}-stats.json"), json));
            }
            Err(e) => notes.push(format!("{name}: no statistics: {e}")),
        }
        if s.audit_file().is_some() {
            let counters = match s.metrics() {
                Ok(text) => {
                    let counters = audit_trail::counters(&text);
                    raw.push((format!("{name}-metrics.txt"), text));
                    counters
                }
                Err(e) => {
                    notes.push(format!("{name}: no metrics: {e}"));
                    None
                }
            };
            let (seconds, transactions) = under_load(&rows, &name, opts.duration);
            let cases = trail_cases
                .iter()
                .filter(|(t, _)| *t == name)
                .map(|(_, c)| c.clone())
                .collect();
            trails.push(Trail {
                target: name,
                counters,
                on_disk: None,
                seconds,
                transactions,
                cases,
            });
        }
    }
    for s in gateways.drain(..) {
        let name = s.endpoint().name.clone();
        let file = s.audit_file().map(Path::to_path_buf);
        raw.push((format!("{name}-serve.stderr.txt"), s.stop()));
        if let (Some(file), Some(trail)) = (file, trails.iter_mut().find(|t| t.target == name)) {
            match audit_trail::on_disk(&file) {
                Ok(d) => trail.on_disk = Some(d),
                Err(e) => notes.push(format!("{name}: audit trail not readable: {e}")),
            }
            if trail.events().unwrap_or(0) == 0 {
                notes.push(format!(
                    "{name}: the audit trail recorded no event; its cost was not measured"
                ));
            }
        }
    }
    peers.clear();
    let mut workload = spec.workload.clone();
    if opts.targets.iter().any(|t| t == "sluice-policy") {
        workload.push_str(&format!(
            "; sluice-policy: role `{}` with statement rules and masking (raw/sluice-policy.toml)",
            sluice_policy::ROLE
        ));
    }
    if opts.targets.iter().any(|t| t == "sluice-audit") {
        workload.push_str(&format!(
            "; sluice-audit: the same role plus the audit trail as `sluice init` writes it, to a \
             file on {} (raw/sluice-audit.toml); the other gateway targets run without a trail",
            report::shell(&format!("stat -f -c %T '{}'", scratch.path().display()))
        ));
    }
    let params = Params {
        scenario: name,
        added: &added,
        workload: &workload,
        rounds: opts.rounds,
        started: &started,
        notes: &notes,
        trails: &trails,
    };
    write(
        &out_dir,
        &params,
        &rows,
        &raw,
        &versions,
        scratch.path(),
        &opts.targets,
    )?;
    drop(pg);
    print!("{}", report::summary_md(&params, &rows));
    say(&format!("run folder: {}", out_dir.display()));
    Ok(())
}

fn write(
    out: &Path,
    params: &Params,
    rows: &[Row],
    raw: &[(String, String)],
    versions: &str,
    scratch: &Path,
    targets: &[String],
) -> Result<(), String> {
    let put = |path: &Path, text: &str| {
        fs::write(path, portable(text)).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    fs::create_dir_all(out.join("raw"))
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let commands = proc::recorded().join("\n") + "\n";
    put(&out.join("commands.txt"), &commands)?;
    put(&out.join("versions.txt"), versions)?;
    for (name, text) in raw {
        put(&out.join("raw").join(name), text)?;
    }
    // Configurations used (they hold no secrets: passwords come from the environment, the
    // auth_file is not copied).
    let mut configs: Vec<(std::path::PathBuf, String)> = targets
        .iter()
        .map(|t| (scratch.join(t).join("sluice.toml"), format!("{t}.toml")))
        .collect();
    configs.push((
        scratch.join("pgbouncer").join("pgbouncer.ini"),
        "pgbouncer.ini".into(),
    ));
    configs.push((
        scratch.join("pgpool").join("pgpool.conf"),
        "pgpool.conf".into(),
    ));
    for (from, name) in configs {
        if let Ok(text) = fs::read_to_string(&from) {
            put(&out.join("raw").join(name), &text)?;
        }
    }
    put(&out.join("summary.md"), &report::summary_md(params, rows))?;
    put(&out.join("chart.svg"), &chart::svg(params.scenario, rows))?;
    let json = serde_json::to_string_pretty(&report::summary_json(params, rows))
        .map_err(|e| e.to_string())?;
    put(&out.join("summary.json"), &(json + "\n"))?;
    Ok(())
}

/// A warning when other work already loads the machine: results are then less comparable
/// with other runs (the interleaving still keeps targets comparable within this one).
fn busy_machine() -> Option<String> {
    let load: f64 = fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (load > cpus / 2.0)
        .then(|| format!("machine busy at start: 1-minute load average {load:.2} on {cpus} CPUs"))
}

/// What one case's run produced.
enum Outcome {
    Pgbench(pgbench::RunResult),
    Idle(idle::IdleResult),
}

/// Keeps a started peer and returns where clients reach it.
fn keep(peers: &mut Vec<Peer>, peer: Peer) -> Endpoint {
    let endpoint = peer.endpoint().clone();
    peers.push(peer);
    endpoint
}

/// Whether a target is a sluice gateway (started by [`start_gateway`]).
fn is_gateway(target: &str) -> bool {
    matches!(
        target,
        "sluice" | "sluice-policy" | "sluice-audit" | "sluice-record" | "sluice-epoll"
    ) || cli::workers_of(target).is_some()
}

/// The role and trail a gateway target runs with.
fn profile_of(target: &str) -> Profile {
    match target {
        "sluice-policy" => Profile::Policy,
        "sluice-audit" => Profile::PolicyAudit,
        "sluice-record" => Profile::PolicyRecord,
        _ => Profile::PassThrough,
    }
}

/// The audit events so far of `target` in `case`, added on first use.
fn trail_case<'a>(
    cases: &'a mut Vec<(String, TrailCase)>,
    target: &str,
    case: &str,
) -> &'a mut TrailCase {
    let i = match cases
        .iter()
        .position(|(t, c)| t == target && c.case == case)
    {
        Some(i) => i,
        None => {
            let fresh = TrailCase {
                case: case.to_string(),
                ..TrailCase::default()
            };
            cases.push((target.to_string(), fresh));
            cases.len() - 1
        }
    };
    &mut cases[i].1
}

/// Seconds a target spent under load (its completed runs times their duration) and the
/// transactions completed in them.
fn under_load(rows: &[Row], target: &str, duration: u32) -> (f64, u64) {
    rows.iter()
        .filter(|r| r.target == target)
        .fold((0.0, 0), |(s, t), r| {
            (
                s + r.tps.len() as f64 * f64::from(duration),
                t + r.transactions,
            )
        })
}

/// Starts one gateway target in its own scratch subdirectory, named as the target.
fn start_gateway(
    opts: &Options,
    target: &str,
    scratch: &Scratch,
    pg: &Postgres,
    password: &str,
    workers: u32,
    profile: Profile,
) -> Result<Sluice, String> {
    let dir = scratch.subdir(target)?;
    let epoll = target == "sluice-epoll";
    let mut s = Sluice::start(
        &opts.sluice,
        &dir,
        pg.port(),
        password,
        workers,
        profile,
        epoll,
        &[],
    )?;
    s.rename(target);
    Ok(s)
}

/// `--profile`: a fresh gateway for one run of `target`, configured like the target's own
/// (which keeps running beside it) in its own scratch subdirectory, sampling itself into
/// `out/name.folded`.
fn start_sampled(
    opts: &Options,
    target: &str,
    scratch: &Scratch,
    pg: &Postgres,
    password: &str,
    out: &Path,
    name: &str,
) -> Result<Sampled, String> {
    let workers = cli::workers_of(target).unwrap_or(opts.sluice_workers);
    let profile = profile_of(target);
    let dir = scratch.subdir(&format!("{name}-sampled"))?;
    let psql = pg.bindir().join("psql");
    inprocess::Sampled::start(out, name, |env| {
        let epoll = target == "sluice-epoll";
        let mut s = Sluice::start(
            &opts.sluice,
            &dir,
            pg.port(),
            password,
            workers,
            profile,
            epoll,
            env,
        )?;
        s.rename(target);
        s.endpoint().probe(&psql, Duration::from_secs(15))?;
        Ok(s)
    })
}

/// A case label as part of a file name: letters, digits and `-` only.
fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn say(message: &str) {
    eprintln!("bench-harness: {message}");
}

/// A random password for the throwaway server (std's randomly seeded hasher; no RNG crate).
fn secret() -> String {
    (0..2)
        .map(|_| format!("{:016x}", RandomState::new().build_hasher().finish()))
        .collect()
}

/// `text` with the checkout's directory left out of paths (they read relative to the
/// repository) and the temporary directory written `$TMPDIR`, so a run folder says nothing
/// about the machine's layout.
fn portable(text: &str) -> String {
    let mut out = text.to_owned();
    if let Ok(dir) = std::env::current_dir() {
        out = out.replace(&format!("{}/", dir.display()), "");
    }
    let tmp = std::env::temp_dir();
    let tmp = tmp.to_string_lossy();
    let tmp = tmp.trim_end_matches('/');
    if !tmp.is_empty() {
        out = out.replace(&format!("{tmp}/"), "$TMPDIR/");
    }
    out
}

#[cfg(test)]
mod portable_tests {
    #[test]
    fn run_folders_hold_no_absolute_checkout_or_temporary_paths() {
        let here = std::env::current_dir().unwrap();
        let tmp = std::env::temp_dir();
        let text = format!(
            "{}/target/release/sluice --out {}/sluice-bench-1/x",
            here.display(),
            tmp.display().to_string().trim_end_matches('/')
        );
        assert_eq!(
            super::portable(&text),
            "target/release/sluice --out $TMPDIR/sluice-bench-1/x"
        );
    }
}
