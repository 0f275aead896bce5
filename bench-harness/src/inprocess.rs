//! Profiling a gateway with its own in-process sampler (`--profile DIR`), where perf cannot
//! run: a fresh gateway is started with `SLUICE_PROFILE` set for one load run, stopped
//! gracefully (it writes its folded stacks as it exits), and the stacks are drawn with the
//! same code as perf's. Needs a sluice binary built with `--features profiler`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::endpoint::Endpoint;
use crate::flame;
use crate::sluice::Sluice;

/// The gateway's variables (see sluice's `profiler` module).
const FILE_VAR: &str = "SLUICE_PROFILE";
const HZ_VAR: &str = "SLUICE_PROFILE_HZ";
/// Samples per second of CPU time: the sampler's default, off the round rates.
const FREQUENCY: u32 = 99;

/// A gateway that samples itself for one load run.
pub struct Sampled {
    gateway: Sluice,
    folded: PathBuf,
    dir: PathBuf,
    name: String,
}

impl Sampled {
    /// Starts a gateway through `start`, handing it the environment that makes it write
    /// `dir/name.folded` when it stops.
    pub fn start(
        dir: &Path,
        name: &str,
        start: impl FnOnce(&[(String, String)]) -> Result<Sluice, String>,
    ) -> Result<Sampled, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let dir = std::path::absolute(dir)
            .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
        let folded = dir.join(format!("{name}.folded"));
        // A file left by an earlier run must not pass for this one's.
        match fs::remove_file(&folded) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {e}", folded.display()))
            }
            _ => {}
        }
        let env = [
            (FILE_VAR.to_string(), folded.display().to_string()),
            (HZ_VAR.to_string(), FREQUENCY.to_string()),
        ];
        Ok(Sampled {
            gateway: start(&env)?,
            folded,
            dir,
            name: name.to_string(),
        })
    }

    /// Where clients reach the sampled gateway.
    pub fn endpoint(&self) -> &Endpoint {
        self.gateway.endpoint()
    }

    /// The sampled gateway's process id.
    pub fn pid(&self) -> u32 {
        self.gateway.pid()
    }

    /// Stops the gateway with SIGTERM (it drains, then writes its stacks), and draws
    /// `dir/name.svg`; returns the SVG's path and what the gateway logged.
    pub fn finish(self, target: &str, case: &str) -> (Result<PathBuf, String>, String) {
        let log = self.gateway.stop();
        let drawn = fs::read_to_string(&self.folded)
            .map_err(|e| missing(&self.folded, &e, &log))
            .and_then(|text| parse_folded(&text))
            .and_then(|folded| {
                if folded.is_empty() {
                    return Err(format!(
                        "{} is empty: the gateway took no samples, or was killed before it wrote \
                         them (it writes them after its drain)",
                        self.folded.display()
                    ));
                }
                let svg = self.dir.join(format!("{}.svg", self.name));
                fs::write(&svg, flame::svg(&folded, &format!("{target}, {case}")))
                    .map(|()| svg.clone())
                    .map_err(|e| format!("cannot write {}: {e}", svg.display()))
            });
        (drawn, log)
    }
}

/// Why the folded file did not appear, as far as the gateway's log tells.
fn missing(path: &Path, err: &std::io::Error, log: &str) -> String {
    let why = if log.contains("without the `profiler` feature") {
        "the sluice binary has no in-process profiler"
    } else {
        "the gateway did not start its profiler (is the sluice binary built with it?)"
    };
    format!(
        "no profile at {} ({err}): {why}; build it with \
         `cargo build --release -p sluice --features profiler`",
        path.display()
    )
}

/// Folded-stack text (`frame;frame;... count` per line) back into stacks and counts; lines of
/// the same stack add up.
pub fn parse_folded(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut folded = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = line
            .rsplit_once(' ')
            .and_then(|(stack, n)| Some((stack, n.parse::<u64>().ok()?)))
            .filter(|(stack, _)| !stack.is_empty());
        let Some((stack, n)) = parsed else {
            return Err(format!(
                "folded stacks, line {}: expected `frame;frame;... COUNT`, got `{line}`",
                i + 1
            ));
        };
        *folded.entry(stack.to_string()).or_insert(0) += n;
    }
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_text_reads_back_as_written() {
        let folded = BTreeMap::from([
            ("sluice-shard-0;run;pump".to_string(), 7),
            ("sluice-shard-0;run;fn with spaces<T>".to_string(), 2),
            ("main".to_string(), 1),
        ]);
        assert_eq!(parse_folded(&flame::folded_text(&folded)), Ok(folded));
    }

    #[test]
    fn repeated_stacks_add_up_and_blank_lines_are_skipped() {
        let folded = parse_folded("t;a 2\n\nt;a 3\nt;b 1\n").unwrap();
        assert_eq!(folded.get("t;a"), Some(&5));
        assert_eq!(folded.len(), 2);
        assert_eq!(parse_folded(""), Ok(BTreeMap::new()));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        for bad in ["t;a 2\nt;b", "t;a x", " 4", "t;a -1"] {
            let err = parse_folded(bad).expect_err(bad);
            assert!(err.contains("line "), "{err}");
        }
    }

    #[test]
    fn a_missing_profile_says_how_to_build_the_profiler() {
        let err = std::io::Error::from(std::io::ErrorKind::NotFound);
        let plain = missing(Path::new("/x/a.folded"), &err, "");
        assert!(plain.contains("--features profiler"), "{plain}");
        let told = missing(
            Path::new("/x/a.folded"),
            &err,
            "WARN SLUICE_PROFILE is set but this sluice was built without the `profiler` feature",
        );
        assert!(told.contains("has no in-process profiler"), "{told}");
    }
}
