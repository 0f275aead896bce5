//! A peer proxy as a benchmark target (pgbouncer, Pgpool-II): a server process run as the
//! server user in front of the benchmark database, stopped on drop (and by a watchdog if the
//! harness is killed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::postgres::SUPERUSER;
use crate::proc::{self, Watchdog};

/// A peer's binary: on the `PATH`, else in `/usr/sbin` (where Debian puts server daemons, often
/// not on a user's `PATH`).
pub fn binary(name: &str) -> Option<PathBuf> {
    let on_path = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    on_path.or_else(|| Some(Path::new("/usr/sbin").join(name)).filter(|p| p.is_file()))
}

/// A running peer.
pub struct Peer {
    _watchdog: Watchdog,
    child: Child,
    endpoint: Endpoint,
    log: PathBuf,
    grace: Duration,
}

impl Peer {
    /// Starts `cmd` (its configuration already written and handed to the server user) in the
    /// foreground as the server user; clients reach it as `name` on `port` with the superuser's
    /// `password`. `log` is where it writes its log; `grace` how long it gets after SIGTERM.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        port: u16,
        password: &str,
        log: &Path,
        grace: Duration,
    ) -> Result<Peer, String> {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        if let Some(user) = proc::server_user()? {
            user.apply(&mut cmd);
        }
        proc::record(&cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let watchdog = Watchdog::spawn("kill -KILL \"$1\" 2>/dev/null", &[child.id().to_string()])?;
        Ok(Peer {
            _watchdog: watchdog,
            child,
            endpoint: Endpoint {
                name: name.into(),
                port,
                dbname: "bench".into(),
                user: SUPERUSER.into(),
                password: password.into(),
            },
            log: log.to_path_buf(),
            grace,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where clients connect.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The log so far, for error messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // After a run no client is left: SIGTERM (pgbouncer's immediate shutdown, Pgpool-II's
        // smart one) ends it at once.
        proc::stop_child(&mut self.child, self.grace);
    }
}
