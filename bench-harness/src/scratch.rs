//! A scratch directory for one harness run (server data, configs, pgbench logs), removed on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::proc::Watchdog;

/// A fresh directory under the system temp dir.
pub struct Scratch(PathBuf, Option<Watchdog>);

impl Scratch {
    /// Creates `$TMPDIR/sluice-bench-PID-NANOS`, readable by others so that the server user can
    /// reach the subdirectories handed to it.
    pub fn new() -> Result<Scratch, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("sluice-bench-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
        // Removes the directory if the harness is killed; waits for the servers' watchdogs first.
        let watchdog = Watchdog::spawn("sleep 3; rm -rf \"$1\"", &[&path])?;
        Ok(Scratch(path, Some(watchdog)))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Creates (if needed) and returns a subdirectory.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.0.join(name);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.1 = None;
        let _ = fs::remove_dir_all(&self.0);
    }
}
