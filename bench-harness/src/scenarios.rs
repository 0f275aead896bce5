//! What each scenario runs: its cases (one pgbench invocation each, run against every target),
//! whether the servers offer TLS, and the tables and scripts it needs.

use std::fs;
use std::path::Path;

use crate::cli::{Options, Scenario};
use crate::idle::{self, IdleLoad};
use crate::pgbench::Load;

/// One load, run against every target in every round.
#[derive(Debug, Clone)]
pub struct Case {
    /// Name in reports: `prepared c=32`, `tls on`, ...
    pub label: String,
    /// The load.
    pub work: Work,
}

/// What drives a case.
#[derive(Debug, Clone)]
pub enum Work {
    /// A pgbench run.
    Pgbench(Load),
    /// Idle connections held by sluice-loadgen, with its script.
    Idle(IdleLoad, std::path::PathBuf),
}

impl Case {
    fn pgbench(label: String, load: Load) -> Case {
        Case {
            label,
            work: Work::Pgbench(load),
        }
    }

    /// The pgbench load, for the cases pgbench drives.
    pub fn load_mut(&mut self) -> Option<&mut Load> {
        match &mut self.work {
            Work::Pgbench(load) => Some(load),
            Work::Idle(..) => None,
        }
    }
}

/// Everything a scenario asks of the run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The cases, in run order within a round.
    pub cases: Vec<Case>,
    /// One line describing the workload, for the summary.
    pub workload: String,
    /// Whether PostgreSQL and pgbouncer serve TLS (sluice always can).
    pub tls: bool,
    /// The most clients any case opens at once.
    pub max_clients: u32,
    /// PostgreSQL's `max_connections`: every client through a session-mode target holds a
    /// server connection, pgbouncer keeps its pool's server connections open after its run,
    /// and sluice's catalog lookups take a few more.
    pub max_connections: u32,
    /// SQL run in database `bench` after `pgbench -i`.
    pub prepare_sql: Option<String>,
}

/// Rows in the table of the 100-row read.
pub const PEOPLE_ROWS: u32 = 10_000;

/// The table of the 100-row read: names, e-mail addresses, card numbers and SSNs (all made
/// up), and a free-text note with nothing to mask, so the detectors scan every field.
fn people_sql() -> String {
    format!(
        "CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, \
         card_number text NOT NULL, ssn text NOT NULL, note text NOT NULL);\n\
         INSERT INTO people SELECT i, 'Person ' || i, 'person' || i || '@example.com', \
         '4111 1111 1111 ' || lpad((i % 10000)::text, 4, '0'), \
         lpad((100 + i % 800)::text, 3, '0') || '-' || lpad((10 + i % 89)::text, 2, '0') || '-' \
         || lpad((1000 + i % 8999)::text, 4, '0'), \
         'customer since ' || (2000 + i % 25) || ', prefers the evening delivery slot' \
         FROM generate_series(1, {PEOPLE_ROWS}) AS i;\n\
         ANALYZE people;"
    )
}

/// The pgbench script of the 100-row read.
fn read_100_script() -> String {
    format!(
        "\\set a random(1, {})\n\
         SELECT id, name, email, card_number, ssn, note FROM people WHERE id BETWEEN :a AND :a + 99;\n",
        PEOPLE_ROWS - 99
    )
}

/// The scenario's spec; scripts are written into `scripts`.
pub fn spec(opts: &Options, scripts: &Path) -> Result<Spec, String> {
    let load = |clients: u32, protocol: &str| Load {
        clients,
        jobs: opts.jobs.min(clients),
        duration: opts.duration,
        protocol: protocol.to_string(),
        connect: false,
        script: None,
        tls: false,
    };
    let by_protocol = |clients: u32, with_clients: bool| -> Vec<Case> {
        opts.protocols
            .iter()
            .map(|p| {
                let label = if with_clients {
                    format!("{p} c={clients}")
                } else {
                    p.clone()
                };
                Case::pgbench(label, load(clients, p))
            })
            .collect()
    };
    let mut tls = false;
    let mut prepare_sql = None;
    let (cases, workload) = match opts.scenario {
        Scenario::PgbenchSelect | Scenario::Workers => (
            by_protocol(opts.clients, false),
            format!(
                "pgbench -n -S -c {} -j {} -T {} -M {{{}}} --log (scale {})",
                opts.clients,
                opts.jobs.min(opts.clients),
                opts.duration,
                opts.protocols.join(","),
                opts.scale
            ),
        ),
        Scenario::SelectOnly => (
            opts.clients_list
                .iter()
                .flat_map(|&c| by_protocol(c, true))
                .collect(),
            format!(
                "pgbench -n -S -c {{{}}} -j min(c,{}) -T {} -M {{{}}} --log (scale {})",
                join(&opts.clients_list),
                opts.jobs,
                opts.duration,
                opts.protocols.join(","),
                opts.scale
            ),
        ),
        Scenario::Connect => {
            tls = true;
            let mut cases = Vec::new();
            for tls_on in [false, true] {
                for mut case in by_protocol(opts.clients, false) {
                    if let Some(load) = case.load_mut() {
                        load.connect = true;
                        load.tls = tls_on;
                    }
                    case.label =
                        format!("{} tls {}", case.label, if tls_on { "on" } else { "off" });
                    cases.push(case);
                }
            }
            (
                cases,
                format!(
                    "pgbench -n -S -C -c {} -j {} -T {} -M {{{}}} --log, sslmode disable and \
                     require (scale {})",
                    opts.clients,
                    opts.jobs.min(opts.clients),
                    opts.duration,
                    opts.protocols.join(","),
                    opts.scale
                ),
            )
        }
        Scenario::Idle => {
            let script = scripts.join("idle.sql");
            fs::write(&script, idle::SCRIPT)
                .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
            let load = IdleLoad {
                connections: opts.connections,
                rate: opts.rate,
                duration: opts.duration,
            };
            let label = format!("{} connections, {} req/s", opts.connections, opts.rate);
            (
                vec![Case {
                    label,
                    work: Work::Idle(load, script),
                }],
                format!(
                    "sluice-loadgen pg -M prepared -c {} -j 2 -R {} -T {}s, one primary-key \
                     select of pgbench_accounts per request; resident memory of the target \
                     before and with every connection open",
                    opts.connections, opts.rate, opts.duration
                ),
            )
        }
        Scenario::Read100Masked => {
            let script = scripts.join("read-100.sql");
            fs::write(&script, read_100_script())
                .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
            prepare_sql = Some(people_sql());
            let cases = by_protocol(opts.clients, false)
                .into_iter()
                .map(|mut c| {
                    if let Some(load) = c.load_mut() {
                        load.script = Some(script.clone());
                    }
                    c
                })
                .collect();
            (
                cases,
                format!(
                    "pgbench -n -f read-100.sql -c {} -j {} -T {} -M {{{}}} --log: 100 rows of \
                     `people` ({PEOPLE_ROWS} rows of name, email, card_number, ssn, note) per \
                     transaction",
                    opts.clients,
                    opts.jobs.min(opts.clients),
                    opts.duration,
                    opts.protocols.join(",")
                ),
            )
        }
    };
    let max_clients = opts.client_counts().into_iter().max().unwrap_or(1);
    Ok(Spec {
        cases,
        workload,
        tls,
        max_clients,
        max_connections: (2 * max_clients + 50).max(200),
        prepare_sql,
    })
}

fn join(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(scenario: Scenario, args: &[&str]) -> Options {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Options::parse(scenario, &args).unwrap()
    }

    #[test]
    fn select_only_has_a_case_per_client_count_and_protocol() {
        let dir = std::env::temp_dir();
        let spec = spec(&opts(Scenario::SelectOnly, &[]), &dir).unwrap();
        let labels: Vec<&str> = spec.cases.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "simple c=1",
                "prepared c=1",
                "simple c=32",
                "prepared c=32",
                "simple c=256",
                "prepared c=256"
            ]
        );
        let mut first = spec.cases[0].clone();
        assert_eq!(first.load_mut().unwrap().jobs, 1);
        assert_eq!(spec.max_clients, 256);
        assert!(spec.max_connections > 256);
    }

    #[test]
    fn connect_runs_tls_off_then_on_with_a_connection_per_transaction() {
        let spec = spec(&opts(Scenario::Connect, &[]), &std::env::temp_dir()).unwrap();
        assert!(spec.tls);
        let labels: Vec<&str> = spec.cases.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["simple tls off", "simple tls on"]);
        let loads: Vec<Load> = spec
            .cases
            .iter()
            .map(|c| match &c.work {
                Work::Pgbench(load) => load.clone(),
                Work::Idle(..) => panic!("connect is a pgbench scenario"),
            })
            .collect();
        assert!(loads.iter().all(|l| l.connect));
        assert!(loads[1].tls && !loads[0].tls);
    }

    #[test]
    fn read_100_writes_its_script_and_table() {
        let dir = std::env::temp_dir().join(format!("bench-spec-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let spec = spec(&opts(Scenario::Read100Masked, &[]), &dir).unwrap();
        let mut case = spec.cases[0].clone();
        let script = case.load_mut().unwrap().script.clone().unwrap();
        let text = fs::read_to_string(&script).unwrap();
        assert!(text.contains("BETWEEN :a AND :a + 99"), "{text}");
        assert!(spec.prepare_sql.unwrap().contains("CREATE TABLE people"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn idle_holds_the_connections_with_sluice_loadgen() {
        let dir = std::env::temp_dir().join(format!("bench-idle-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let spec = spec(&opts(Scenario::Idle, &["--connections", "500"]), &dir).unwrap();
        assert_eq!(spec.cases.len(), 1);
        assert_eq!(spec.cases[0].label, "500 connections, 50 req/s");
        let Work::Idle(load, script) = &spec.cases[0].work else {
            panic!("idle is driven by sluice-loadgen")
        };
        assert_eq!(load.connections, 500);
        assert!(fs::read_to_string(script)
            .unwrap()
            .contains("{rand 1 100000}"));
        assert!(spec.max_connections >= 1050);
        fs::remove_dir_all(&dir).unwrap();
    }
}
