//! An in-process sampling profiler, for hosts where `perf` cannot run (containers without
//! `perf_event_open`). Built only with the `profiler` feature.
//!
//! `ITIMER_PROF` sends SIGPROF to whichever thread of the process is using CPU, at the given
//! rate of CPU time; the handler unwinds that thread's stack (DWARF unwind tables through the
//! system unwinder, so no frame pointers are needed). At shutdown the samples are symbolized
//! and folded into `thread;frame;...;frame count` lines, the format the bench harness draws.
//!
//! Configured from the environment of `sluice serve` (see [`Settings`]), so neither the command
//! line nor the configuration file changes.

mod fold;
mod settings;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub use fold::{fold, fold_stack, folded_text};
pub use settings::{Settings, DEFAULT_HZ, FILE_VAR, HZ_VAR, MAX_HZ};

/// Samples whose innermost frame lies in these libraries are dropped. The vDSO's unwind tables
/// are wrong on some distributions, and unwinding from inside the unwinder itself could
/// deadlock; both are rare places for a gateway thread to be interrupted (a clock read, a
/// panic). libc is not skipped: a sample taken on return from a system call is the kernel
/// time of that call, and its Rust caller is what the profile is for.
const BLOCKLIST: &[&str] = &["vdso", "libgcc"];

/// What went wrong in the profiler. The gateway itself is never at fault here: each error is
/// the operator's settings or the host refusing the timer, signal handler or output file.
#[derive(Debug, thiserror::Error)]
pub enum ProfilerError {
    /// The sample rate is not a whole number in range.
    #[error("{HZ_VAR} must be a whole number of samples per second from 1 to {MAX_HZ}, not `{0}`")]
    Rate(String),
    /// The output file cannot be created or written.
    #[error("profile output {}: {source}", path.display())]
    Output {
        /// The file named by [`FILE_VAR`].
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// The timer or signal handler could not be installed, or samples could not be read back.
    #[error("sampling profiler: {0}")]
    Sampler(#[from] pprof::Error),
}

/// A running profiler; [`Sampler::finish`] writes its folded stacks.
pub struct Sampler {
    guard: pprof::ProfilerGuard<'static>,
    out: PathBuf,
}

/// What [`Sampler::finish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The folded-stack file.
    pub path: PathBuf,
    /// Samples in it.
    pub samples: u64,
    /// Distinct stacks in it.
    pub stacks: usize,
}

impl Sampler {
    /// Starts sampling the whole process at `settings.hz` per second of CPU time. The output
    /// file is created (empty) now, so a path that cannot be written fails at start rather
    /// than after a long run. Only one sampler can run in a process.
    pub fn start(settings: &Settings) -> Result<Sampler, ProfilerError> {
        write(&settings.out, "")?;
        let hz =
            i32::try_from(settings.hz).map_err(|_| ProfilerError::Rate(settings.hz.to_string()))?;
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(hz)
            .blocklist(BLOCKLIST)
            .build()?;
        Ok(Sampler {
            guard,
            out: settings.out.clone(),
        })
    }

    /// The file the stacks go to.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The samples so far, folded.
    pub fn folded(&self) -> Result<BTreeMap<String, u64>, ProfilerError> {
        Ok(fold(&self.guard.report().build()?))
    }

    /// Stops sampling and writes the folded stacks, heaviest first.
    pub fn finish(self) -> Result<Written, ProfilerError> {
        let folded = self.folded()?;
        drop(self.guard);
        write(&self.out, &folded_text(&folded))?;
        Ok(Written {
            path: self.out,
            samples: folded.values().sum(),
            stacks: folded.len(),
        })
    }
}

fn write(path: &Path, text: &str) -> Result<(), ProfilerError> {
    fs::write(path, text).map_err(|source| ProfilerError::Output {
        path: path.to_path_buf(),
        source,
    })
}
