//! Client-side helpers: tokio-postgres configurations and connections, and a `psql` runner, both
//! for talking to the gateway (database = resource, password = session token) or to PostgreSQL.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::pg::{conninfo_value, pg_bindir};
use super::process::{run_with_timeout, Captured};

/// psql against a local server or gateway answers in milliseconds; a minute means it hung.
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

/// A tokio-postgres configuration for the gateway at `addr`: the database name selects the
/// resource, `user` is a free label, the password is the session token. Use with `NoTls`.
pub fn gateway_config(
    addr: SocketAddr,
    resource: &str,
    user: &str,
    token: &str,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .dbname(resource)
        .user(user)
        .password(token)
        .connect_timeout(Duration::from_secs(10));
    config
}

/// Connects without TLS and drives the connection on a spawned task (needs a tokio runtime).
pub async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // The error, if any, surfaces to the caller through the client's next request.
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs `psql CONNINFO -c SQL` with `password` in PGPASSWORD: no psqlrc, unaligned tuples-only
/// output, stop on the first error. Panics only if psql cannot run or hangs.
pub fn psql(conninfo: &str, password: &str, sql: &str) -> Captured {
    let psql = pg_bindir().join("psql");
    let program = if psql.is_file() {
        psql.into_os_string()
    } else {
        "psql".into()
    };
    let mut cmd = Command::new(program);
    for var in [
        "PGHOST",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGSSLMODE",
        "PGSERVICE",
        "PGOPTIONS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "sluice-tests")
        .args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"])
        .arg(conninfo)
        .arg("-c")
        .arg(sql);
    run_with_timeout(&mut cmd, PSQL_TIMEOUT)
}

/// Runs `sql` through the gateway at `addr` with psql, as `user` with session `token` on
/// `resource`, with the given libpq `sslmode` (`disable`, `require`, ...).
pub fn psql_gateway(
    addr: SocketAddr,
    resource: &str,
    user: &str,
    token: &str,
    sslmode: &str,
    sql: &str,
) -> Captured {
    let conninfo = format!(
        "host={} port={} dbname={} user={} sslmode={sslmode}",
        addr.ip(),
        addr.port(),
        conninfo_value(resource),
        conninfo_value(user)
    );
    psql(&conninfo, token, sql)
}

/// An interactive psql session kept open across steps of a test: statements go to its stdin,
/// and its output lines (stdout and stderr) come back through a channel.
pub struct LivePsql {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl LivePsql {
    /// Starts psql against the gateway at `addr` with `token`, without TLS.
    pub fn start(addr: SocketAddr, resource: &str, user: &str, token: &str) -> LivePsql {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let psql = pg_bindir().join("psql");
        let program = if psql.is_file() {
            psql.into_os_string()
        } else {
            "psql".into()
        };
        let conninfo = format!(
            "host={} port={} dbname={} user={} sslmode=disable",
            addr.ip(),
            addr.port(),
            conninfo_value(resource),
            conninfo_value(user)
        );
        let mut child = Command::new(program)
            .env("PGPASSWORD", token)
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-X", "-q", "-A", "-t", "-w", "-n"])
            .arg(conninfo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start psql: {e}"));
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        for stream in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err) as Box<dyn std::io::Read + Send>,
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        LivePsql {
            child,
            stdin,
            lines,
        }
    }

    /// Sends one line of input.
    pub fn send(&mut self, sql: &str) {
        use std::io::Write;
        if let Some(stdin) = &mut self.stdin {
            // psql may already have exited; the output then tells why.
            let _ = writeln!(stdin, "{sql}");
            let _ = stdin.flush();
        }
    }

    /// Output lines until one contains `needle` (returned) or 10 s pass (`None`); every line
    /// seen is appended to `seen`.
    pub fn wait_for(&mut self, needle: &str, seen: &mut Vec<String>) -> Option<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

impl Drop for LivePsql {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
