//! Benchmark harness for sluice: runs a scenario against direct PostgreSQL, sluice and peers,
//! interleaved in rounds, and writes a run folder (commands, versions, raw output, summary).
#![forbid(unsafe_code)]

mod audit_trail;
mod chart;
mod cli;
mod endpoint;
mod flame;
mod idle;
mod inprocess;
mod peer;
mod perf;
mod pgbench;
mod pgbouncer;
mod pgpool;
mod postgres;
mod proc;
mod report;
mod run;
mod scenarios;
mod scratch;
mod sluice;
mod sluice_policy;
mod stats;
mod tls;
mod toml_section;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The workspace this harness belongs to (its parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("flamegraph") => perf::flamegraph_command(&args[1..]),
        Some("-h" | "--help") | None => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Some(name) => match cli::Scenario::from_name(name) {
            Some(scenario) => cli::Options::parse(scenario, &args[1..]).and_then(|o| run::run(&o)),
            None => Err(format!("unknown scenario `{name}`\n{}", cli::USAGE)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-harness: {e}");
            ExitCode::FAILURE
        }
    }
}
