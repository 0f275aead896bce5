//! sluice-loadgen: drives PostgreSQL (simple or extended protocol) and HTTP/1.1 load against
//! sluice or a server directly, closed or open loop, and reports throughput, errors by kind and
//! HDR latency percentiles as text and JSON.
#![forbid(unsafe_code)]

mod cli;
mod conninfo;
mod driver;
mod duration;
mod http;
mod net;
mod pg;
mod report;
mod rng;
mod stats;

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _};
use clap::Parser as _;
use serde_json::{json, Value};

use cli::{Cli, Command, ConnArgs, HttpArgs, InitArgs, LoadArgs, PgArgs, SizeArgs};
use conninfo::{ConnInfo, TlsMode};
use driver::{Outcome, Plan};
use net::tls::TlsClient;
use pg::client::{query_value, PgTarget};
use pg::scenario::{init_statements, Scenario};
use pg::script::Script;
use pg::startup::{self, PgParams};
use stats::ErrorKind;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pg(args) => run_pg(args),
        Command::Init(args) => run_init(args),
        Command::Http(args) => run_http(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice-loadgen: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs set-up work (init, probes) on a small event loop of the main thread.
fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .context("cannot build the I/O runtime")?;
    Ok(rt.block_on(fut))
}

fn pg_params(conn: &ConnArgs) -> anyhow::Result<(PgParams, ConnInfo)> {
    let env =
        conninfo::from_env(|k| std::env::var(k).ok()).map_err(|e| anyhow!("environment: {e}"))?;
    let info = ConnInfo::resolve(conn.flags(), conn.url.as_deref(), env)
        .map_err(|e| anyhow!("connection settings: {e}"))?;
    let addr = net::resolve(&info.host, info.port).map_err(|e| anyhow!(e))?;
    let tls = match info.tls {
        TlsMode::Disable => None,
        TlsMode::Require | TlsMode::VerifyFull => {
            Some(TlsClient::new(&info.host, info.ca.as_deref())?)
        }
    };
    let params = PgParams {
        addr,
        user: info.user.clone(),
        password: info.password.clone(),
        database: info.database.clone(),
        tls,
    };
    Ok((params, info))
}

/// Creates and fills the scenario tables.
fn init_tables(params: &PgParams, sizes: &SizeArgs, timeout: Duration) -> anyhow::Result<()> {
    if sizes.rows < 100 || sizes.customers < 1 {
        bail!(
            "--rows must be at least 100 (read-100 reads 100 of them) and --customers at least 1"
        );
    }
    block_on(async {
        let mut s = monoio::time::timeout(timeout, startup::connect(params))
            .await
            .map_err(|_| anyhow!("init: connecting took longer than {timeout:?}"))?
            .map_err(|f| anyhow!("init: cannot connect ({}): {}", f.kind.label(), f.message))?;
        for sql in init_statements(sizes.rows, sizes.customers) {
            let short: String = sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
            monoio::time::timeout(timeout, query_value(&mut s, &sql))
                .await
                .map_err(|_| anyhow!("init: `{short} ...` took longer than {timeout:?}"))?
                .map_err(|f| {
                    anyhow!(
                        "init: `{short} ...` failed ({}): {}",
                        f.kind.label(),
                        f.message
                    )
                })?;
        }
        s.io.close().await;
        eprintln!(
            "sluice-loadgen init: loadgen_accounts ({} rows), loadgen_customers ({} rows), loadgen_events (empty)",
            sizes.rows, sizes.customers
        );
        Ok(())
    })?
}

/// Finds the key range of a scenario's table. A table that is missing or empty is an error; a
/// server that cannot be reached is not, here: the run then reports the same failures in full.
fn probe_keys(
    params: &PgParams,
    scenario: Scenario,
    timeout: Duration,
) -> anyhow::Result<Option<i64>> {
    block_on(async {
        let connected = monoio::time::timeout(timeout, startup::connect(params)).await;
        let Ok(Ok(mut s)) = connected else {
            return Ok(None);
        };
        let value = monoio::time::timeout(timeout, query_value(&mut s, scenario.probe())).await;
        s.io.close().await;
        let value = match value {
            Err(_) => return Ok(None),
            Ok(Err(f)) if f.kind == ErrorKind::Server(*b"42P01") => bail!(
                "the tables of scenario {} do not exist: run `sluice-loadgen init` first, or add --init",
                scenario.name()
            ),
            Ok(Err(f)) => bail!("cannot find the key range of {} ({}): {}", scenario.name(), f.kind.label(), f.message),
            Ok(Ok(v)) => v,
        };
        let keys: i64 = value.and_then(|v| v.parse().ok()).unwrap_or(0);
        if keys < scenario.min_keys() {
            bail!(
                "scenario {} needs at least {} rows in its table, found {keys}: run `sluice-loadgen init`",
                scenario.name(),
                scenario.min_keys()
            );
        }
        Ok(Some(keys))
    })?
}

fn run_init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let (params, _) = pg_params(&args.conn)?;
    init_tables(&params, &args.sizes, args.timeout)?;
    Ok(ExitCode::SUCCESS)
}

fn run_pg(args: PgArgs) -> anyhow::Result<ExitCode> {
    let plan = args.load.plan().map_err(|e| anyhow!(e))?;
    let (params, info) = pg_params(&args.conn)?;
    if args.init {
        init_tables(&params, &args.sizes, Duration::from_secs(300))?;
    }
    let (text, source) = match (&args.file, args.scenario) {
        (Some(path), _) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            format!("file {}", path.display()),
        ),
        (None, Some(scenario)) => {
            let keys = match probe_keys(&params, scenario, plan.connect_timeout.max(plan.timeout))?
            {
                Some(k) => k,
                None if scenario == Scenario::MaskRow => args.sizes.customers,
                None => args.sizes.rows,
            };
            (scenario.script(keys), scenario.name().to_string())
        }
        (None, None) => bail!("give a workload: --scenario NAME or --file PATH"),
    };
    let script = Script::parse(&text).with_context(|| format!("in {source}"))?;
    let protocol: pg::client::Protocol = args.protocol.into();
    let workload = json!({
        "kind": "pg",
        "target": format!("{}:{}", info.host, info.port),
        "database": info.database,
        "user": info.user,
        "tls": !matches!(info.tls, TlsMode::Disable),
        "protocol": protocol.name(),
        "scenario": args.scenario.map(Scenario::name),
        "file": args.file.as_ref().map(|p| p.display().to_string()),
        "statements": script.statements.len(),
    });
    let title = format!(
        "pg {source}, {} protocol, {}:{} database {} as {}{}",
        protocol.name(),
        info.host,
        info.port,
        info.database,
        info.user,
        if info.tls == TlsMode::Disable {
            ""
        } else {
            ", TLS"
        }
    );
    let target = PgTarget {
        params,
        script: Arc::new(script),
        protocol,
    };
    let outcome = driver::run(&plan, Arc::new(target))?;
    finish(outcome, &plan, &args.load, workload, &title)
}

fn run_http(args: HttpArgs) -> anyhow::Result<ExitCode> {
    let mut plan = args.load.plan().map_err(|e| anyhow!(e))?;
    let url = http::url::HttpUrl::parse(&args.url).map_err(|e| anyhow!(e))?;
    let body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone().into_bytes(),
        (None, Some(path)) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        (None, None) => Vec::new(),
    };
    let method = match &args.method {
        Some(m) => m.clone(),
        None if !body.is_empty() => "POST".into(),
        None => "GET".into(),
    };
    let request =
        http::client::encode_request(&method, &url, &args.headers, &body, !args.no_keepalive)
            .map_err(|e| anyhow!(e))?;
    let addr = net::resolve(&url.host, url.port).map_err(|e| anyhow!(e))?;
    let tls = match (url.tls, &args.tls_ca) {
        (true, ca) => Some(TlsClient::new(&url.host, ca.as_deref())?),
        (false, Some(_)) => bail!("--tls-ca is for https:// URLs"),
        (false, None) => None,
    };
    plan.per_request |= args.no_keepalive;
    let workload = json!({
        "kind": "http",
        "url": args.url,
        "method": method,
        "keep_alive": !args.no_keepalive,
        "body_bytes": body.len(),
    });
    let title = format!("http {method} {}", args.url);
    let target = http::client::HttpTarget {
        addr,
        tls,
        request,
        head: method == "HEAD",
    };
    let outcome = driver::run(&plan, Arc::new(target))?;
    finish(outcome, &plan, &args.load, workload, &title)
}

/// Prints and writes the reports; the exit code says whether anything succeeded: 0 yes (or
/// nothing was tried), 3 no request succeeded. 1 is a failure before the run, 2 a usage error.
fn finish(
    mut outcome: Outcome,
    plan: &Plan,
    load: &LoadArgs,
    workload: Value,
    title: &str,
) -> anyhow::Result<ExitCode> {
    let text = report::text(&outcome, plan, title);
    let json = report::json(&outcome, plan, workload);
    let rendered = serde_json::to_string_pretty(&json).context("cannot render the JSON report")?;
    if load.json {
        eprint!("{text}");
        println!("{rendered}");
    } else {
        print!("{text}");
    }
    if let Some(path) = &load.json_out {
        write_file(path, &rendered)?;
    }
    if let Some(path) = &load.hdr_log {
        let since = Instant::now().saturating_duration_since(outcome.measure_start);
        let started = SystemTime::now() - since;
        report::hdr_log(path, &mut outcome, started)?;
    }
    let s = &outcome.stats;
    Ok(if s.successes == 0 && s.error_total() > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, format!("{text}\n"))
        .with_context(|| format!("cannot write {}", path.display()))
}
