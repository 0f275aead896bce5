//! The PostgreSQL server under the benchmark: a throwaway cluster with durability off, SCRAM
//! authentication on loopback, stopped on drop (and by a watchdog if the harness is killed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{self, RunAs, Watchdog};
use crate::tls::Cert;

/// Name of the superuser the benchmark connects as.
pub const SUPERUSER: &str = "postgres";
const SLOW: Duration = Duration::from_secs(180);

/// A running server.
pub struct Postgres {
    _watchdog: Watchdog,
    bindir: PathBuf,
    dir: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    password: String,
}

impl Postgres {
    /// Creates a cluster in `dir` (which must not exist) and starts it on a free loopback port,
    /// serving TLS with `tls` when given.
    pub fn start(
        dir: PathBuf,
        password: &str,
        max_connections: u32,
        tls: Option<&Cert>,
    ) -> Result<Postgres, String> {
        let bindir = bindir()?;
        let run_as = proc::server_user()?;
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if let Some(user) = run_as {
            user.give(&dir)?;
        }
        // Runs as the invoking user (root included): signals the postmaster directly, so it works
        // whoever owns the data directory.
        let watchdog = Watchdog::spawn(
            "pid=$(head -n1 \"$1/postmaster.pid\" 2>/dev/null) && kill -QUIT \"$pid\"",
            &[dir.join("data")],
        )?;
        let mut pg = Postgres {
            _watchdog: watchdog,
            bindir,
            dir,
            run_as,
            port: 0,
            password: password.into(),
        };
        pg.init(max_connections, tls)?;
        pg.boot()?;
        Ok(pg)
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory of the PostgreSQL binaries.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// Runs SQL as the superuser.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut cmd = self.client("psql");
        cmd.args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            database,
            "-c",
            sql,
        ]);
        proc::run(&mut cmd, SLOW)?.ok("psql")
    }

    /// Creates database `bench` and fills it with `pgbench -i -s SCALE`, then vacuums it so that
    /// the measured runs can skip vacuuming (`-n`) through every target alike.
    pub fn pgbench_init(&self, scale: u32) -> Result<(), String> {
        self.psql("postgres", "CREATE DATABASE bench")?;
        let mut cmd = self.client("pgbench");
        cmd.args(["-i", "-q", "-s", &scale.to_string(), "bench"]);
        proc::run(&mut cmd, Duration::from_secs(600))?.ok("pgbench -i")?;
        self.psql("bench", "VACUUM ANALYZE")?;
        Ok(())
    }

    /// A client command (psql, pgbench) aimed at this server as the superuser.
    fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.env("PGPASSWORD", &self.password)
            .env("PGSSLMODE", "disable")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ]);
        cmd
    }

    fn server(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.current_dir(&self.dir).env("LC_ALL", "C");
        if let Some(user) = self.run_as {
            user.apply(&mut cmd);
        }
        cmd
    }

    fn init(&self, max_connections: u32, tls: Option<&Cert>) -> Result<(), String> {
        let pwfile = self.dir.join("pwfile");
        fs::write(&pwfile, format!("{}\n", self.password)).map_err(|e| format!("pwfile: {e}"))?;
        if let Some(user) = self.run_as {
            user.give(&pwfile)?;
        }
        let mut cmd = self.server("initdb");
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "--no-sync",
                "--no-instructions",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
            ])
            .args(["--locale=C", "--username", SUPERUSER])
            .arg(format!("--pwfile={}", pwfile.display()));
        proc::run(&mut cmd, SLOW)?.ok("initdb")?;
        let _ = fs::remove_file(&pwfile);
        let conf = self.dir.join("data/postgresql.conf");
        let mut text = fs::read_to_string(&conf).map_err(|e| format!("postgresql.conf: {e}"))?;
        text.push_str(&format!(
            "\n# benchmark harness\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = {max_connections}\nshared_buffers = '256MB'\nfsync = off\n\
             synchronous_commit = off\nfull_page_writes = off\n",
            self.dir.display()
        ));
        if let Some(cert) = tls {
            let own = cert.copy_for(&self.dir, self.run_as)?;
            text.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                own.cert.display(),
                own.key.display()
            ));
        }
        fs::write(&conf, text).map_err(|e| format!("postgresql.conf: {e}"))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Starts on a free port, retrying when the port was taken between probe and bind.
    fn boot(&mut self) -> Result<(), String> {
        for _ in 0..8 {
            self.port = proc::free_port()?;
            let mut cmd = self.server("pg_ctl");
            cmd.args(["start", "-w", "-t", "120", "-D"])
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .arg("-o")
                .arg(format!("-p {}", self.port));
            let out = proc::run(&mut cmd, SLOW)?;
            if out.status.success() {
                return Ok(());
            }
            let log = self.log();
            if !log.contains("could not bind") && !log.contains("already in use") {
                return Err(format!(
                    "PostgreSQL did not start:\n{}{}\n{log}",
                    out.stdout, out.stderr
                ));
            }
        }
        Err(format!("PostgreSQL found no free port:\n{}", self.log()))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.port == 0 {
            return;
        }
        let mut cmd = self.server("pg_ctl");
        cmd.args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"])
            .arg(self.dir.join("data"));
        if let Err(e) =
            proc::run(&mut cmd, Duration::from_secs(60)).and_then(|o| o.ok("pg_ctl stop"))
        {
            eprintln!("bench-harness: {e}");
        }
    }
}

/// The PostgreSQL binaries: `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn bindir() -> Result<PathBuf, String> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| d.join("initdb").is_file()) {
        return Ok(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "PostgreSQL server binaries not found: install the Debian package `postgresql` \
         (scripts/install-deps.sh --bench)"
            .to_string()
    })
}
