//! A throwaway PostgreSQL server from the local server binaries, for the demo and the benchmarks:
//! initdb into a fresh directory, start on a free loopback port with SCRAM authentication, stop
//! and remove everything on drop. PostgreSQL refuses to run as root, so as root the server runs
//! as the `postgres` OS user.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Why a throwaway server could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum PgTempError {
    #[error("PostgreSQL server binaries not found (looked for initdb under /usr/lib/postgresql/*/bin and via pg_config); install them with `apt-get install postgresql` (Debian package `postgresql`)")]
    NoBinaries,
    #[error("running as root, but there is no `postgres` OS user to run the server as")]
    NoPostgresUser,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} failed: {output}")]
    Command { what: String, output: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PgTempError {
    let what = what.into();
    move |source| PgTempError::Io { what, source }
}

/// Finds the newest PostgreSQL server binary directory.
pub fn find_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    bin.join("initdb").is_file().then_some(bin)
}

/// A running throwaway server. Dropping it stops the server and deletes its files.
pub struct TempPostgres {
    root: PathBuf,
    bindir: PathBuf,
    port: u16,
    password: String,
    owner: Option<(u32, u32)>,
}

/// Settings for [`TempPostgres::start`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub max_connections: u32,
    /// Extra `-c name=value` settings.
    pub settings: Vec<(String, String)>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 100,
            settings: Vec::new(),
        }
    }
}

impl TempPostgres {
    /// initdb and start a server on a free loopback port.
    pub fn start(opts: &PgOptions) -> Result<TempPostgres, PgTempError> {
        let bindir = find_bindir().ok_or(PgTempError::NoBinaries)?;
        let root = std::env::temp_dir().join(format!("sluice-pg-{}", random_hex(8)));
        fs::create_dir_all(&root).map_err(io(format!("creating {}", root.display())))?;
        let running_as_root = fs::metadata(&root).map(|m| m.uid() == 0).unwrap_or(false);
        let owner = if running_as_root {
            Some(postgres_user().ok_or(PgTempError::NoPostgresUser)?)
        } else {
            None
        };
        let mut pg = TempPostgres {
            root,
            bindir,
            port: 0,
            password: random_hex(16),
            owner,
        };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&pg.root, Some(uid), Some(gid))
                .map_err(io("handing the data directory to the postgres user"))?;
        }
        let pwfile = pg.root.join("pwfile");
        fs::write(&pwfile, &pg.password).map_err(io("writing the password file"))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                .map_err(io("handing the password file to the postgres user"))?;
        }
        let data = pg.root.join("data");
        let mut initdb = pg.server_command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(&mut initdb, "initdb")?;
        let _ = fs::remove_file(&pwfile);

        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port().map_err(io("finding a free port"))?;
            let mut options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                pg.port,
                pg.root.display(),
                opts.max_connections
            );
            for (k, v) in &opts.settings {
                options.push_str(&format!(" -c {k}={v}"));
            }
            let mut start = pg.server_command("pg_ctl");
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.root.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]);
            match run(&mut start, "pg_ctl start") {
                Ok(_) => return Ok(pg),
                Err(e) => {
                    last = format!(
                        "{e}\nserver log:\n{}",
                        fs::read_to_string(pg.root.join("server.log")).unwrap_or_default()
                    );
                }
            }
        }
        Err(PgTempError::Command {
            what: "starting PostgreSQL".into(),
            output: last,
        })
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's (`postgres`) password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server binary directory in use.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// Runs SQL as the superuser in `db` with psql and returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, PgTempError> {
        let mut cmd = Command::new(self.bindir.join("psql"));
        cmd.args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
        .env("PGPASSWORD", &self.password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(io("starting psql"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .map_err(io("sending SQL to psql"))?;
        }
        let out = child.wait_with_output().map_err(io("running psql"))?;
        check(out, "psql").map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    fn server_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.current_dir(&self.root)
            .stdin(Stdio::null())
            .env_remove("PGDATA");
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let mut stop = self.server_command("pg_ctl");
        stop.arg("-D")
            .arg(self.root.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, PgTempError> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(io(format!("running {what}")))?;
    check(out, what)
}

fn check(out: Output, what: &str) -> Result<Output, PgTempError> {
    if out.status.success() {
        return Ok(out);
    }
    Err(PgTempError::Command {
        what: what.into(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

fn postgres_user() -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&"postgres") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Random lowercase hex of `bytes` bytes, from the system RNG.
pub fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; bytes];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
