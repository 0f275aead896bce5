//! Command-line options (hand-parsed: the harness keeps its dependencies to std and serde_json).

use std::path::PathBuf;

/// Usage text.
pub const USAGE: &str = "usage: bench-harness pgbench-select [options]
  --duration SECS      seconds per pgbench run (default 20)
  --clients N          pgbench clients, -c (default 32)
  --jobs N             pgbench threads, -j (default 2)
  --rounds N           rounds; each round runs every target once per protocol (default 2)
  --scale N            pgbench -i scale factor (default 10)
  --targets LIST       comma-separated, run in this order within each round:
                       direct,sluice,sluice-policy,pgbouncer (default all four); sluice is the
                       pass-through admin role, sluice-policy a role with statement rules and
                       masking (e.g. --targets sluice,sluice-policy compares just the two)
  --protocols LIST     comma-separated: simple,prepared (default both)
  --sluice PATH        sluice binary (default target/release/sluice)
  --sluice-workers N   gateway shards (default 1: one thread, like pgbouncer, on a machine whose
                       cores also run PostgreSQL and pgbench; 0 = one per core, pinned)
  --out DIR            run folder (default bench-harness/runs/<YYYY-MM-DD>-pgbench-select)";

/// Every target, in the default run order.
pub const TARGETS: &[&str] = &["direct", "sluice", "sluice-policy", "pgbouncer"];

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
            targets: TARGETS.iter().map(|t| t.to_string()).collect(),
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
                "--targets" => opts.targets = list(&value()?, TARGETS)?,
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
    if let Some(bad) = items.iter().find(|i| !allowed.contains(&i.as_str())) {
        return Err(format!(
            "unknown `{bad}`; choose from {}",
            allowed.join(", ")
        ));
    }
    // A repeated name would run that target twice per round under one report row.
    let repeated = items
        .iter()
        .enumerate()
        .find(|(i, item)| items[..*i].contains(item));
    if let Some((_, dup)) = repeated {
        return Err(format!("`{dup}` listed twice"));
    }
    if items.is_empty() {
        return Err("empty list".into());
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Options::parse(&args)
    }

    #[test]
    fn default_targets_are_all_four_in_order() {
        let opts = parse(&[]).unwrap();
        assert_eq!(
            opts.targets,
            ["direct", "sluice", "sluice-policy", "pgbouncer"]
        );
    }

    #[test]
    fn targets_option_picks_and_orders() {
        let opts = parse(&["--targets", "sluice-policy, sluice"]).unwrap();
        assert_eq!(opts.targets, ["sluice-policy", "sluice"]);
    }

    #[test]
    fn targets_option_rejects_unknown_repeated_and_empty() {
        assert!(parse(&["--targets", "sluice,policy"])
            .unwrap_err()
            .contains("unknown `policy`"));
        assert!(parse(&["--targets", "sluice,sluice"])
            .unwrap_err()
            .contains("listed twice"));
        assert!(parse(&["--targets", ","]).is_err());
        assert!(parse(&["--targets"]).unwrap_err().contains("needs a value"));
    }
}
