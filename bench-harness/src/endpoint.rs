//! Where a benchmark client connects: one endpoint per target (direct, sluice, pgbouncer).

use std::process::Command;
use std::time::Duration;

use crate::proc;

/// Connection parameters of one target, all on 127.0.0.1 without TLS.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Target name in reports.
    pub name: String,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Database name (for sluice: the resource).
    pub dbname: String,
    /// User name (for sluice: a free label).
    pub user: String,
    /// Password (for sluice: the session token).
    pub password: String,
}

impl Endpoint {
    /// Adds host, port, user, password and `sslmode=disable` to a libpq client command.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("PGPASSWORD", &self.password)
            .env("PGSSLMODE", "disable")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
            ]);
    }

    /// Checks the target answers a query, retrying for up to `patience` while it comes up.
    pub fn probe(&self, psql: &std::path::Path, patience: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let mut cmd = Command::new(psql);
            self.apply(&mut cmd);
            cmd.env("PGCONNECT_TIMEOUT", "5").args([
                "-X",
                "-At",
                "-d",
                &self.dbname,
                "-c",
                "SELECT count(*) FROM pgbench_branches",
            ]);
            let out = proc::run(&mut cmd, Duration::from_secs(30))?;
            if out.status.success() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "{} does not answer queries: {}",
                    self.name,
                    out.stderr.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
