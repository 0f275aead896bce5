//! The profiler's settings, read from the environment of `sluice serve`.

use std::ffi::OsString;
use std::path::PathBuf;

use super::ProfilerError;

/// Names the folded-stack file; profiling is on when it is set and not empty.
pub const FILE_VAR: &str = "SLUICE_PROFILE";
/// Samples per second of CPU time (default [`DEFAULT_HZ`]).
pub const HZ_VAR: &str = "SLUICE_PROFILE_HZ";
/// Off the round rates, so sampling does not beat in step with periodic work.
pub const DEFAULT_HZ: u32 = 99;
/// Above this the handler's unwinding becomes a visible share of the CPU it measures.
pub const MAX_HZ: u32 = 1000;

/// Where the profile goes and how often to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The folded-stack file, written at shutdown.
    pub out: PathBuf,
    /// Samples per second of CPU time.
    pub hz: u32,
}

impl Settings {
    /// The settings in this process's environment; `None` when profiling is not asked for.
    pub fn from_env() -> Result<Option<Settings>, ProfilerError> {
        Settings::parse(std::env::var_os(FILE_VAR), std::env::var_os(HZ_VAR))
    }

    /// The settings of the two variables' values. An empty file name counts as unset, so
    /// `SLUICE_PROFILE= sluice serve` turns profiling off; the rate is checked only when
    /// profiling is on.
    pub fn parse(
        file: Option<OsString>,
        hz: Option<OsString>,
    ) -> Result<Option<Settings>, ProfilerError> {
        let Some(file) = file.filter(|f| !f.is_empty()) else {
            return Ok(None);
        };
        let hz = match hz {
            None => DEFAULT_HZ,
            Some(raw) => {
                let text = raw.to_string_lossy();
                match text.trim().parse::<u32>() {
                    Ok(n) if (1..=MAX_HZ).contains(&n) => n,
                    _ => return Err(ProfilerError::Rate(text.into_owned())),
                }
            }
        };
        Ok(Some(Settings {
            out: PathBuf::from(file),
            hz,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(file: Option<&str>, hz: Option<&str>) -> Result<Option<Settings>, ProfilerError> {
        Settings::parse(file.map(OsString::from), hz.map(OsString::from))
    }

    #[test]
    fn unset_or_empty_file_turns_profiling_off() {
        assert_eq!(parse(None, None).unwrap(), None);
        assert_eq!(parse(Some(""), Some("not a number")).unwrap(), None);
    }

    #[test]
    fn file_alone_samples_at_the_default_rate() {
        assert_eq!(
            parse(Some("out.folded"), None).unwrap(),
            Some(Settings {
                out: PathBuf::from("out.folded"),
                hz: DEFAULT_HZ
            })
        );
    }

    #[test]
    fn rate_is_read_within_bounds() {
        let hz = |v: &str| parse(Some("p"), Some(v)).map(|s| s.map(|s| s.hz));
        assert_eq!(hz("199").unwrap(), Some(199));
        assert_eq!(hz(" 1000 ").unwrap(), Some(1000));
        assert_eq!(hz("1").unwrap(), Some(1));
        for bad in ["0", "1001", "-5", "99.5", "fast", ""] {
            let err = hz(bad).expect_err(bad).to_string();
            assert!(
                err.contains(HZ_VAR) && err.contains(&format!("`{bad}`")),
                "{err}"
            );
        }
    }
}
