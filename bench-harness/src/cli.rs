//! Command-line options (hand-parsed: the harness keeps its dependencies to std and serde_json).

use std::path::PathBuf;

/// Usage text.
pub const USAGE: &str = "usage: bench-harness SCENARIO [options]
scenarios:
  pgbench-select   pgbench -S at --clients, simple and prepared protocol
  select-only      pgbench -S at each of --clients-list (default 1,32,256), both protocols
  connect          a new connection per transaction (pgbench -C), TLS off and on
  read-100-masked  a 100-row read of personal data; sluice-policy masks three columns
  workers          select-only at --clients through sluice with each of --workers-list shards
  idle             --connections held open by sluice-loadgen with a trickle of --rate queries/s;
                   memory per client connection of each target
options:
  --duration SECS      seconds per pgbench run (default 20; 15 for the multi-case scenarios)
  --clients N          pgbench clients, -c (default 32; 8 for connect)
  --clients-list LIST  select-only: comma-separated client counts (default 1,32,256)
  --workers-list LIST  workers: comma-separated shard counts (default 1,2)
  --jobs N             pgbench threads, -j, at most the clients (default 2)
  --rounds N           rounds; each round runs every target once per case (default 2)
  --scale N            pgbench -i scale factor (default 10)
  --targets LIST       comma-separated, run in this order within each round:
                       direct,sluice,sluice-policy,sluice-audit,sluice-record,pgbouncer,pgpool
                       (default all; workers: direct and sluice-wN for each N); sluice is the
                       pass-through admin role, sluice-policy a role with statement rules and
                       masking, sluice-audit that role plus the audit trail and sluice-record
                       that role plus session recording, each as `sluice init` writes it (the
                       other gateway targets run without either), sluice-wN the
                       pass-through role on a gateway with N unpinned shards, sluice-epoll
                       the pass-through role on the legacy epoll driver instead of io_uring
  --protocols LIST     comma-separated: simple,prepared (default both; connect: simple)
  --sluice PATH        sluice binary (default target/release/sluice)
  --sluice-workers N   gateway shards of sluice, sluice-policy and sluice-audit (default 1: one
                       thread, like pgbouncer, on a machine whose cores also run PostgreSQL and
                       pgbench; 0 = one per core, pinned)
  --connections N      idle: connections held open (default 1000)
  --rate N             idle: queries per second over all of them (default 50)
  --loadgen PATH       sluice-loadgen binary (default: next to the sluice binary)
  --out DIR            run folder (default bench-harness/runs/<YYYY-MM-DD>-SCENARIO)
  --perf DIR           profile every gateway target with perf during its first-round runs and
                       write DIR/<target>-<case>.svg flamegraphs (and .folded stacks)
  --profile DIR        the same with the gateway's in-process sampler instead of perf: each
                       first-round run of a gateway target goes to a fresh gateway started with
                       SLUICE_PROFILE and stopped gracefully after it (needs a sluice binary
                       built with `--features profiler`)";

/// The fixed targets, in the default run order.
pub const TARGETS: &[&str] = &[
    "direct",
    "sluice",
    "sluice-policy",
    "sluice-audit",
    "sluice-record",
    "pgbouncer",
    "pgpool",
];

/// A named scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// pgbench's select-only script at one client count, both protocols.
    PgbenchSelect,
    /// Select-only at several client counts.
    SelectOnly,
    /// Connection per transaction, TLS off and on.
    Connect,
    /// A 100-row read of personal data, masked by the policy target.
    Read100Masked,
    /// Select-only through gateways with different shard counts.
    Workers,
    /// Many idle connections with a trickle of queries: memory per connection.
    Idle,
}

impl Scenario {
    /// The scenario of a command-line name.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Some(match name {
            "pgbench-select" => Scenario::PgbenchSelect,
            "select-only" => Scenario::SelectOnly,
            "connect" => Scenario::Connect,
            "read-100-masked" => Scenario::Read100Masked,
            "workers" => Scenario::Workers,
            "idle" => Scenario::Idle,
            _ => return None,
        })
    }

    /// The command-line name, also the run folder's suffix.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::PgbenchSelect => "pgbench-select",
            Scenario::SelectOnly => "select-only",
            Scenario::Connect => "connect",
            Scenario::Read100Masked => "read-100-masked",
            Scenario::Workers => "workers",
            Scenario::Idle => "idle",
        }
    }
}

/// Options of a scenario.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which scenario.
    pub scenario: Scenario,
    /// Seconds per run.
    pub duration: u32,
    /// Clients per run.
    pub clients: u32,
    /// select-only: the client counts.
    pub clients_list: Vec<u32>,
    /// workers: the shard counts.
    pub workers_list: Vec<u32>,
    /// pgbench threads (at most the clients of a run).
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
    /// Shards of the sluice, sluice-policy and sluice-audit targets; 0 means one per core,
    /// pinned.
    pub sluice_workers: u32,
    /// Output folder, if not the dated default.
    pub out: Option<PathBuf>,
    /// Where to write flamegraphs of the gateway targets, if profiling.
    pub perf: Option<PathBuf>,
    /// Where to write flamegraphs from the gateways' in-process sampler, if profiling so.
    pub profile: Option<PathBuf>,
    /// idle: connections held open.
    pub connections: u32,
    /// idle: queries per second over all connections.
    pub rate: u32,
    /// The sluice-loadgen binary.
    pub loadgen: PathBuf,
}

impl Options {
    /// Parses the arguments after the scenario name.
    pub fn parse(scenario: Scenario, args: &[String]) -> Result<Options, String> {
        let multi = scenario != Scenario::PgbenchSelect;
        let mut opts = Options {
            scenario,
            duration: if multi { 15 } else { 20 },
            clients: if scenario == Scenario::Connect { 8 } else { 32 },
            clients_list: vec![1, 32, 256],
            workers_list: vec![1, 2],
            jobs: 2,
            rounds: 2,
            scale: 10,
            targets: Vec::new(),
            protocols: if scenario == Scenario::Connect {
                vec!["simple".into()]
            } else {
                vec!["simple".into(), "prepared".into()]
            },
            sluice: default_sluice(),
            sluice_workers: 1,
            out: None,
            perf: None,
            profile: None,
            connections: 1000,
            rate: 50,
            loadgen: PathBuf::new(),
        };
        let mut loadgen = None;
        let mut targets = None;
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
                "--clients-list" => opts.clients_list = numbers(flag, &value()?)?,
                "--workers-list" => opts.workers_list = numbers(flag, &value()?)?,
                "--jobs" => opts.jobs = number(flag, &value()?)?,
                "--rounds" => opts.rounds = number(flag, &value()?)?,
                "--scale" => opts.scale = number(flag, &value()?)?,
                "--targets" => targets = Some(value()?),
                "--protocols" => opts.protocols = list(&value()?, &["simple", "prepared"])?,
                "--sluice" => opts.sluice = PathBuf::from(value()?),
                "--sluice-workers" => opts.sluice_workers = number(flag, &value()?)?,
                "--out" => opts.out = Some(PathBuf::from(value()?)),
                "--perf" => opts.perf = Some(PathBuf::from(value()?)),
                "--profile" => opts.profile = Some(PathBuf::from(value()?)),
                "--connections" => opts.connections = number(flag, &value()?)?,
                "--rate" => opts.rate = number(flag, &value()?)?,
                "--loadgen" => loadgen = Some(PathBuf::from(value()?)),
                other => return Err(format!("unknown option {other}\n{USAGE}")),
            }
        }
        if opts.perf.is_some() && opts.profile.is_some() {
            return Err("--perf and --profile each profile the first round: choose one".into());
        }
        opts.loadgen = loadgen.unwrap_or_else(|| crate::idle::default_loadgen(&opts.sluice));
        let workers_targets: Vec<String> = opts
            .workers_list
            .iter()
            .map(|n| format!("sluice-w{n}"))
            .collect();
        let mut allowed: Vec<&str> = TARGETS.to_vec();
        allowed.push("sluice-epoll");
        allowed.extend(workers_targets.iter().map(String::as_str));
        opts.targets = match targets {
            Some(t) => list(&t, &allowed)?,
            None if scenario == Scenario::Workers => std::iter::once("direct".to_string())
                .chain(workers_targets.iter().cloned())
                .collect(),
            None => TARGETS.iter().map(|t| t.to_string()).collect(),
        };
        Ok(opts)
    }

    /// Every client count a run of this scenario uses.
    pub fn client_counts(&self) -> Vec<u32> {
        match self.scenario {
            Scenario::SelectOnly => self.clients_list.clone(),
            Scenario::Idle => vec![self.connections],
            _ => vec![self.clients],
        }
    }
}

/// The shard count of a `sluice-wN` target.
pub fn workers_of(target: &str) -> Option<u32> {
    target.strip_prefix("sluice-w")?.parse().ok()
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

fn numbers(flag: &str, value: &str) -> Result<Vec<u32>, String> {
    let items = value
        .split(',')
        .map(|s| number(flag, s.trim()))
        .collect::<Result<Vec<u32>, String>>()?;
    if items.is_empty() {
        return Err(format!("{flag} wants at least one number"));
    }
    Ok(items)
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
        parse_for(Scenario::PgbenchSelect, args)
    }

    fn parse_for(scenario: Scenario, args: &[&str]) -> Result<Options, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Options::parse(scenario, &args)
    }

    #[test]
    fn default_targets_are_all_in_order() {
        let opts = parse(&[]).unwrap();
        assert_eq!(
            opts.targets,
            [
                "direct",
                "sluice",
                "sluice-policy",
                "sluice-audit",
                "sluice-record",
                "pgbouncer",
                "pgpool"
            ]
        );
    }

    #[test]
    fn targets_option_picks_and_orders() {
        let opts = parse(&["--targets", "sluice-policy, sluice"]).unwrap();
        assert_eq!(opts.targets, ["sluice-policy", "sluice"]);
        let opts = parse(&["--targets", "sluice-policy,sluice-audit"]).unwrap();
        assert_eq!(opts.targets, ["sluice-policy", "sluice-audit"]);
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

    #[test]
    fn workers_scenario_targets_direct_and_one_gateway_per_shard_count() {
        let opts = parse_for(Scenario::Workers, &["--workers-list", "1,2,4"]).unwrap();
        assert_eq!(
            opts.targets,
            ["direct", "sluice-w1", "sluice-w2", "sluice-w4"]
        );
        assert_eq!(workers_of("sluice-w4"), Some(4));
        assert_eq!(workers_of("sluice"), None);
        assert!(parse_for(Scenario::Workers, &["--targets", "sluice-w3"])
            .unwrap_err()
            .contains("unknown `sluice-w3`"));
    }

    #[test]
    fn select_only_runs_each_client_count() {
        let opts = parse_for(Scenario::SelectOnly, &[]).unwrap();
        assert_eq!(opts.client_counts(), [1, 32, 256]);
        let opts = parse_for(Scenario::SelectOnly, &["--clients-list", "4,64"]).unwrap();
        assert_eq!(opts.client_counts(), [4, 64]);
        assert!(parse_for(Scenario::SelectOnly, &["--clients-list", "4,x"]).is_err());
        assert_eq!(
            parse_for(Scenario::Connect, &[]).unwrap().protocols,
            ["simple"]
        );
    }

    #[test]
    fn profile_option_takes_a_folder_and_excludes_perf() {
        let opts = parse(&["--profile", "flamegraphs"]).unwrap();
        assert_eq!(opts.profile, Some(PathBuf::from("flamegraphs")));
        assert_eq!(opts.perf, None);
        let err = parse(&["--profile", "a", "--perf", "b"]).unwrap_err();
        assert!(err.contains("--perf and --profile"), "{err}");
        assert!(parse(&["--profile"]).unwrap_err().contains("needs a value"));
    }
}
