//! Test harness: the real `sluice-loadgen` binary run with a deadline against a throwaway
//! PostgreSQL (the gateway's own `pgtemp`), its JSON report parsed.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
pub use sluice::setup::pgtemp::{random_hex, PgOptions, TempPostgres};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sluice-loadgen");
/// A run that takes longer than this is hung: it is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON report printed with `--json`.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}); status {}\nstdout:\n{}\nstderr:\n{}",
                self.status, self.stdout, self.stderr
            )
        })
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `sluice-loadgen pg --url URL ARGS... --json` as [`loadgen`] does.
pub fn pg_run(url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["pg", "--url", url];
    all.extend_from_slice(args);
    all.push("--json");
    loadgen(&all, env)
}

/// Runs the binary with `args` and libpq's environment variables unset unless given in `env`;
/// panics if it hangs or panics.
pub fn loadgen(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot start sluice-loadgen");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for sluice-loadgen") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice-loadgen {args:?} still running after {RUN_LIMIT:?}: killed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let run = Run {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "sluice-loadgen panicked:\n{}",
        run.stderr
    );
    run
}

/// Starts a throwaway server with extra settings; panics with the reason if it cannot.
pub fn start_pg(settings: &[(&str, &str)]) -> TempPostgres {
    let opts = PgOptions {
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..PgOptions::default()
    };
    TempPostgres::start(&opts).unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"))
}

/// `--url` for the superuser (password passed separately).
pub fn url(pg: &TempPostgres) -> String {
    format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port())
}

/// Runs SQL as the superuser.
pub fn psql(pg: &TempPostgres, sql: &str) -> String {
    pg.psql("postgres", sql)
        .unwrap_or_else(|e| panic!("psql `{sql}` failed: {e}"))
        .trim()
        .to_string()
}

/// A file in the system temporary directory readable by the PostgreSQL server user, removed on
/// drop.
pub struct SharedFile(pub PathBuf);

impl SharedFile {
    /// Writes `contents`; `private` files (TLS keys) are mode 0600 and owned by the server user.
    pub fn new(name: &str, contents: &str, private: bool) -> SharedFile {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("loadgen-{}-{name}", random_hex(6)));
        std::fs::write(&path, contents).expect("cannot write a temporary file");
        let mode = if private { 0o600 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        if private {
            if let Some((uid, gid)) = server_owner() {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown to postgres");
            }
        }
        SharedFile(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The OS user PostgreSQL runs as when the tests run as root.
fn server_owner() -> Option<(u32, u32)> {
    if Command::new("id").arg("-u").output().ok()?.stdout != b"0\n" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.first() == Some(&"postgres") && f.len() > 3 {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

/// Reads a number from a JSON report by path (`"errors.server.42P01"`); absent is 0.
pub fn num(v: &Value, path: &str) -> u64 {
    let mut cur = v;
    for key in path.split('.') {
        match cur.get(key) {
            Some(next) => cur = next,
            None => return 0,
        }
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{path} is not a count in {v}"))
}

/// A throwaway server that trusts every loopback connection: for tests about workloads rather
/// than authentication, where a SCRAM exchange per connection (slow in debug builds) buys
/// nothing. The hba file must outlive the server.
pub fn start_pg_trusting() -> (TempPostgres, SharedFile) {
    let hba = SharedFile::new(
        "trust-hba.conf",
        "local all all trust\nhost all all 127.0.0.1/32 trust\n",
        false,
    );
    let pg = start_pg(&[("hba_file", &hba.arg())]);
    (pg, hba)
}
