//! Benchmark harness for sluice: runs a scenario against direct PostgreSQL, sluice and peers,
//! interleaved in rounds, and writes a run folder (commands, versions, raw output, summary).
#![forbid(unsafe_code)]

mod cli;
mod endpoint;
mod pgbench;
mod pgbench_select;
mod pgbouncer;
mod postgres;
mod proc;
mod report;
mod scratch;
mod sluice;
mod sluice_policy;
mod stats;

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
        Some("pgbench-select") => {
            cli::Options::parse(&args[1..]).and_then(|o| pgbench_select::run(&o))
        }
        Some("-h" | "--help") | None => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown scenario `{other}`\n{}", cli::USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-harness: {e}");
            ExitCode::FAILURE
        }
    }
}
