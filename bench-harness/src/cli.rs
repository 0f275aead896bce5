//! Command-line options (hand-parsed: the harness keeps its dependencies to std and serde_json).

use std::path::PathBuf;

/// Usage text.
pub const USAGE: &str = "usage: bench-harness pgbench-select [options]
  --duration SECS      seconds per pgbench run (default 20)
  --clients N          pgbench clients, -c (default 32)
  --jobs N             pgbench threads, -j (default 2)
  --rounds N           rounds; each round runs every target once per protocol (default 2)
  --scale N            pgbench -i scale factor (default 10)
  --targets LIST       comma-separated: direct,sluice,pgbouncer (default all three)
  --protocols LIST     comma-separated: simple,prepared (default both)
  --sluice PATH        sluice binary (default target/release/sluice)
  --sluice-workers N   gateway shards (default 1: one thread, like pgbouncer, on a machine whose
                       cores also run PostgreSQL and pgbench; 0 = one per core, pinned)
  --out DIR            run folder (default bench-harness/runs/<YYYY-MM-DD>-pgbench-select)";

/// Options of the pgbench-select scenario.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds per run.
    pub duration: u32,
    /// Clients per run.
    pub clients: u32,
    /// pgbench threads.
    pub jobs: u32,
    /// Rounds.
    pub rounds: u32,
    /// pgbench scale factor.
    pub scale: u32,
    /// Targets in run order.
    pub targets: Vec<String>,
    /// Protocols in run order.
    pub protocols: Vec<String>,
    /// The sluice binary.
    pub sluice: PathBuf,
    /// Gateway shards; 0 means one per core, pinned.
    pub sluice_workers: u32,
    /// Output folder, if not the dated default.
    pub out: Option<PathBuf>,
}

impl Options {
    /// Parses the arguments after the scenario name.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut opts = Options {
            duration: 20,
            clients: 32,
            jobs: 2,
            rounds: 2,
            scale: 10,
            targets: vec!["direct".into(), "sluice".into(), "pgbouncer".into()],
            protocols: vec!["simple".into(), "prepared".into()],
            sluice: default_sluice(),
            sluice_workers: 1,
            out: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--duration" => opts.duration = number(flag, &value()?)?,
                "--clients" => opts.clients = number(flag, &value()?)?,
                "--jobs" => opts.jobs = number(flag, &value()?)?,
                "--rounds" => opts.rounds = number(flag, &value()?)?,
                "--scale" => opts.scale = number(flag, &value()?)?,
                "--targets" => opts.targets = list(&value()?, &["direct", "sluice", "pgbouncer"])?,
                "--protocols" => opts.protocols = list(&value()?, &["simple", "prepared"])?,
                "--sluice" => opts.sluice = PathBuf::from(value()?),
                "--sluice-workers" => opts.sluice_workers = number(flag, &value()?)?,
                "--out" => opts.out = Some(PathBuf::from(value()?)),
                other => return Err(format!("unknown option {other}\n{USAGE}")),
            }
        }
        if opts.jobs > opts.clients {
            return Err("--jobs cannot exceed --clients".into());
        }
        Ok(opts)
    }
}

/// `$CARGO_TARGET_DIR/release/sluice`, else `target/release/sluice` of this workspace.
fn default_sluice() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join("release").join("sluice")
}

fn number(flag: &str, value: &str) -> Result<u32, String> {
    value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag} wants a positive integer, got `{value}`"))
}

fn list(value: &str, allowed: &[&str]) -> Result<Vec<String>, String> {
    let items: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    match items.iter().find(|i| !allowed.contains(&i.as_str())) {
        Some(bad) => Err(format!(
            "unknown `{bad}`; choose from {}",
            allowed.join(", ")
        )),
        None if items.is_empty() => Err("empty list".into()),
        None => Ok(items),
    }
}
