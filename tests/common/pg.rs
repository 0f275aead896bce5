//! A throwaway PostgreSQL server per test: initdb into a temporary directory, start on a free
//! loopback port with durability off, SCRAM authentication, and stop it (`-m immediate`) on drop.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::hba::{self, AuthMethod, HbaRule};
use super::process::{run_with_timeout, server_user, Captured, RunAs, Watchdog};

/// Name of the bootstrap superuser.
const SUPERUSER: &str = "postgres";
/// initdb and server start are slow on a machine busy compiling; fail only when truly stuck.
const SLOW: Duration = Duration::from_secs(120);

/// A running PostgreSQL server owned by one test.
pub struct PgServer {
    // Declared before `dir` so that it is dropped (killed) before the directory goes away.
    watchdog: Option<Watchdog>,
    dir: tempfile::TempDir,
    bindir: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    password: String,
    overrides: Mutex<Vec<HbaRule>>,
}

impl PgServer {
    /// Starts a fresh server with the harness defaults. Panics with the server log if it fails.
    pub fn start() -> PgServer {
        Self::start_with(&[])
    }

    /// Starts a fresh server with extra `postgresql.conf` settings (`name`, `value` as written in
    /// the file, e.g. `("log_statement", "'all'")`).
    pub fn start_with(settings: &[(&str, &str)]) -> PgServer {
        let bindir = pg_bindir().to_path_buf();
        let run_as = server_user();
        let dir = tempfile::Builder::new()
            .prefix("sluice-pg-")
            .tempdir()
            .expect("cannot create a temporary directory for PostgreSQL");
        let password = random_secret();
        let mut server = PgServer {
            watchdog: None,
            dir,
            bindir,
            run_as,
            port: 0,
            password,
            overrides: Mutex::new(Vec::new()),
        };
        // Hand the directory over first so the watchdog (running as that user) can remove it
        // even if this process dies during initdb.
        server.give(server.dir.path());
        server.watchdog = Some(server.spawn_watchdog());
        server.init_cluster(settings);
        server.boot()
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's TCP address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The superuser's name.
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Directory holding the PostgreSQL binaries in use.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// `postgresql://USER@127.0.0.1:PORT/DB` (no password: it is passed separately).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgresql://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// The server log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// True when something accepts TCP connections on the server's port.
    pub fn accepts_connections(&self) -> bool {
        TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).is_ok()
    }

    /// Creates a database owned by the superuser.
    pub fn create_database(&self, name: &str) {
        self.psql_as_superuser(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(name)),
        );
    }

    /// Creates a login role with `password`, stored so that `method` really is what the server
    /// runs (MD5 passwords for `Md5`, SCRAM verifiers otherwise), and makes every connection as
    /// that role use `method`.
    pub fn create_role(&self, name: &str, password: &str, method: AuthMethod) {
        let encryption = match method {
            AuthMethod::Md5 => "md5",
            _ => "scram-sha-256",
        };
        self.psql_as_superuser(
            "postgres",
            &format!(
                "SET password_encryption = '{encryption}'; CREATE ROLE {} LOGIN PASSWORD {}",
                quote_ident(name),
                quote_literal(password)
            ),
        );
        if method != AuthMethod::ScramSha256 {
            self.set_auth(name, "all", method);
        }
    }

    /// Makes connections as `role` to `database` (either may be `all`) use `method`, then reloads
    /// the server and waits until new connections see the change. The latest call for a
    /// (role, database) pair wins; the superuser keeps SCRAM unless a rule names it.
    pub fn set_auth(&self, role: &str, database: &str, method: AuthMethod) {
        let rendered = {
            let mut overrides = self.overrides.lock().unwrap_or_else(|e| e.into_inner());
            overrides.retain(|r| !(r.role == role && r.database == database));
            overrides.insert(
                0,
                HbaRule {
                    database: database.to_string(),
                    role: role.to_string(),
                    method,
                },
            );
            hba::render(&overrides)
        };
        fs::write(self.data_dir().join("pg_hba.conf"), rendered).expect("cannot write pg_hba.conf");
        self.reload();
    }

    /// Writes pg_hba.conf as `lines` followed by the harness rules (overrides, then the SCRAM
    /// defaults) and reloads: for what [`set_auth`](Self::set_auth) cannot express, such as
    /// `hostssl` or `hostnossl ... reject` lines. A later `set_auth` call drops these lines.
    pub fn set_hba_lines(&self, lines: &[&str]) {
        let rendered = {
            let overrides = self.overrides.lock().unwrap_or_else(|e| e.into_inner());
            hba::render(&overrides)
        };
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&rendered);
        fs::write(self.data_dir().join("pg_hba.conf"), text).expect("cannot write pg_hba.conf");
        self.reload();
    }

    /// Re-reads the configuration files and waits until newly forked backends run with them:
    /// `pg_conf_load_time()` of a new connection changes once the postmaster has reloaded.
    pub fn reload(&self) {
        let before = self.psql_as_superuser("postgres", "SELECT pg_conf_load_time()");
        self.psql_as_superuser("postgres", "SELECT pg_reload_conf()");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.psql_as_superuser("postgres", "SELECT pg_conf_load_time()") == before {
            assert!(
                Instant::now() < deadline,
                "server did not reload its configuration:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `sql` as the superuser in `database` and returns its unaligned, tuples-only output
    /// without the final newline. Panics with psql's stderr if it fails.
    pub fn psql_as_superuser(&self, database: &str, sql: &str) -> String {
        match self.try_psql_as_superuser(database, sql) {
            Ok(out) => out,
            Err(err) => panic!("psql as superuser on {database} failed for `{sql}`:\n{err}"),
        }
    }

    /// Like [`psql_as_superuser`](Self::psql_as_superuser) but returns psql's stderr on failure.
    pub fn try_psql_as_superuser(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = self.psql_as(SUPERUSER, &self.password, database, sql);
        if out.success() {
            Ok(out.stdout.trim_end_matches('\n').to_string())
        } else {
            Err(out.stderr)
        }
    }

    /// Runs `sql` in `database` as `user` with `password` directly against the server.
    pub fn psql_as(&self, user: &str, password: &str, database: &str, sql: &str) -> Captured {
        let conninfo = format!(
            "host=127.0.0.1 port={} dbname={} user={} sslmode=disable",
            self.port,
            conninfo_value(database),
            conninfo_value(user)
        );
        super::client::psql(&conninfo, password, sql)
    }

    /// A tokio-postgres configuration for a direct connection as `user` to `database`.
    pub fn client_config(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(database)
            .connect_timeout(Duration::from_secs(10));
        config
    }

    /// A tokio-postgres configuration for a direct superuser connection to `database`.
    pub fn superuser_config(&self, database: &str) -> tokio_postgres::Config {
        self.client_config(SUPERUSER, &self.password, database)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A command for a PostgreSQL server binary, run as the server's OS user.
    fn server_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.current_dir(self.dir.path())
            .env_remove("PGDATA")
            .env("LC_ALL", "C");
        if let Some(user) = self.run_as {
            user.apply(&mut cmd);
        }
        cmd
    }

    /// Hands a path we created to the server's OS user.
    fn give(&self, path: &Path) {
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .unwrap_or_else(|e| panic!("cannot chown {} to postgres: {e}", path.display()));
        }
    }

    fn init_cluster(&self, settings: &[(&str, &str)]) {
        let root = self.dir.path();
        let pwfile = root.join("pwfile");
        fs::write(&pwfile, format!("{}\n", self.password)).expect("cannot write the password file");
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600)).expect("chmod pwfile");
        self.give(&pwfile);
        fs::create_dir(self.socket_dir()).expect("cannot create the socket directory");
        self.give(&self.socket_dir());

        let mut cmd = self.server_command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args([
                "--no-sync",
                "--no-instructions",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
            ])
            .args(["--locale=C", "--username", SUPERUSER])
            .arg(format!("--pwfile={}", pwfile.display()));
        let out = run_with_timeout(&mut cmd, SLOW);
        assert!(
            out.success(),
            "initdb failed ({}):\n{}\n{}",
            out.status,
            out.stdout,
            out.stderr
        );
        let _ = fs::remove_file(&pwfile);

        let mut conf = format!(
            "\n# integration-test harness\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nmax_connections = 300\n",
            self.socket_dir().display()
        );
        for (name, value) in settings {
            conf.push_str(&format!("{name} = {value}\n"));
        }
        let conf_path = self.data_dir().join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_path).expect("cannot read postgresql.conf");
        text.push_str(&conf);
        fs::write(&conf_path, text).expect("cannot write postgresql.conf");
        fs::write(self.data_dir().join("pg_hba.conf"), hba::render(&[]))
            .expect("write pg_hba.conf");
    }

    /// Starts the server on a free port, retrying when another process grabbed the port between
    /// our probe and the server's bind.
    fn boot(mut self) -> PgServer {
        for _ in 0..8 {
            self.port = free_port();
            let mut cmd = self.server_command("pg_ctl");
            cmd.args(["start", "-w", "-t", "90", "-D"])
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_path())
                .arg("-o")
                .arg(format!("-p {}", self.port));
            let out = run_with_timeout(&mut cmd, SLOW);
            if out.success() {
                return self;
            }
            let log = self.log();
            if !(log.contains("could not bind") || log.contains("already in use")) {
                panic!(
                    "PostgreSQL did not start ({}):\n{}{}\nserver log:\n{log}",
                    out.status, out.stdout, out.stderr
                );
            }
        }
        panic!(
            "PostgreSQL found no free port after 8 attempts:\n{}",
            self.log()
        );
    }

    /// Stops the server and removes its directory should this process die without unwinding.
    fn spawn_watchdog(&self) -> Watchdog {
        let cleanup = "\"$1\" stop -D \"$2\" -m immediate -w -t 30 >/dev/null 2>&1; rm -rf \"$3\"";
        let args = [
            self.bindir.join("pg_ctl").into_os_string(),
            self.data_dir().into_os_string(),
            self.dir.path().as_os_str().to_owned(),
        ];
        Watchdog::spawn(cleanup, &args, self.run_as)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.watchdog = None;
        if self.port == 0 {
            return;
        }
        let mut cmd = self.server_command("pg_ctl");
        cmd.args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"])
            .arg(self.data_dir());
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
        if !out.success() {
            eprintln!(
                "pg_ctl stop failed ({}): {}{}",
                out.status, out.stdout, out.stderr
            );
        }
        if std::thread::panicking() {
            eprintln!(
                "--- PostgreSQL log (port {}) ---\n{}",
                self.port,
                self.log()
            );
        }
    }
}

/// Finds the PostgreSQL 15+ server binaries: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`. Panics naming the Debian package when none is installed.
pub fn pg_bindir() -> &'static Path {
    static BINDIR: OnceLock<PathBuf> = OnceLock::new();
    BINDIR.get_or_init(|| {
        let from_pg_config = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        if let Some(dir) = from_pg_config.filter(|d| d.join("initdb").is_file()) {
            return dir;
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        match versions.pop() {
            Some((_, bin)) => bin,
            None => panic!(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install the \
                 Debian package `postgresql` (scripts/install-deps.sh does it)"
            ),
        }
    })
}

/// A port that was free a moment ago; callers retry if it is taken before they bind it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

/// A 32-hex-digit secret from std's randomly seeded hasher (no RNG crate needed for test data).
pub fn random_secret() -> String {
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(Instant::now().elapsed().as_nanos());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal (standard_conforming_strings is on).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Quotes a value for a libpq connection string.
pub fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
