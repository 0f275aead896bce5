//! The sluice gateway as a benchmark target: `sluice init` (plaintext loopback listener),
//! `sluice serve`, and a session token from `sluice token issue`, for the pass-through `admin`
//! role or for the role that carries the full policy, with or without the audit trail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::audit_trail;
use crate::endpoint::Endpoint;
use crate::proc::{self, Watchdog};
use crate::sluice_policy;

/// Environment variable that carries the upstream password to the gateway.
const PASSWORD_ENV: &str = "SLUICE_BENCH_UPSTREAM_PASSWORD";
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Which role a gateway target's token carries, and so what the gateway does per statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Role `admin` without rules: statements and rows pass through unexamined.
    PassThrough,
    /// Role [`sluice_policy::ROLE`]: classification, deny lists and masking on everything.
    Policy,
    /// The policy role plus the audit trail as `sluice init` writes it: one event per
    /// statement, written to a file in the gateway's directory.
    PolicyAudit,
    /// The policy role plus session recording as `sluice init` writes it (segment files in the
    /// gateway's directory), without the audit trail.
    PolicyRecord,
}

impl Profile {
    /// Target name in options and reports.
    pub fn target(self) -> &'static str {
        match self {
            Profile::PassThrough => "sluice",
            Profile::Policy => "sluice-policy",
            Profile::PolicyAudit => "sluice-audit",
            Profile::PolicyRecord => "sluice-record",
        }
    }

    /// Whether the gateway keeps init's `[recording]` section.
    pub fn recorded(self) -> bool {
        self == Profile::PolicyRecord
    }

    /// Whether the gateway keeps init's `[audit]` section.
    pub fn audited(self) -> bool {
        self == Profile::PolicyAudit
    }

    fn role(self) -> &'static str {
        match self {
            Profile::PassThrough => "admin",
            Profile::Policy | Profile::PolicyAudit | Profile::PolicyRecord => sluice_policy::ROLE,
        }
    }
}

/// A running gateway; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Sluice {
    _watchdog: Watchdog,
    child: Child,
    endpoint: Endpoint,
    admin_port: u16,
    audit_file: Option<PathBuf>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Sluice {
    /// Writes a configuration into `dir` for database `bench` on `pg_port`, starts the gateway
    /// and mints a token (the profile's role, resource bench, ttl 2h). Only
    /// [`Profile::PolicyAudit`] keeps init's audit trail (its file lands in `dir`); the other
    /// profiles run without one, as they did before init wrote it.
    /// `epoll` forces the legacy (epoll) driver instead of io_uring.
    /// `workers` 0 keeps init's default (one pinned shard per core); otherwise that many
    /// unpinned shards, so they share cores with PostgreSQL and pgbench the way pgbouncer does.
    /// `serve_env` is added to the environment of `sluice serve` only.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        bin: &Path,
        dir: &Path,
        pg_port: u16,
        password: &str,
        workers: u32,
        profile: Profile,
        epoll: bool,
        serve_env: &[(String, String)],
    ) -> Result<Sluice, String> {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it first with `cargo build --release -p sluice`",
                bin.display()
            ));
        }
        let config = dir.join("sluice.toml");
        let mut init = Command::new(bin);
        init.env(PASSWORD_ENV, password)
            .arg("init")
            .arg("--upstream")
            .arg(format!("postgresql://postgres@127.0.0.1:{pg_port}/bench"))
            .args([
                "--password-env",
                PASSWORD_ENV,
                "--listen",
                "127.0.0.1:0",
                "--out",
            ])
            .arg(dir)
            .args(["--resource", "bench", "--plaintext"]);
        proc::run(&mut init, CLI_TIMEOUT)?.ok("sluice init")?;
        let mut text = std::fs::read_to_string(&config)
            .map_err(|e| format!("reading {}: {e}", config.display()))?;
        if workers > 0 {
            text = text
                .replacen("workers = 0", &format!("workers = {workers}"), 1)
                .replacen("pin_cores = true", "pin_cores = false", 1);
        }
        let audit_file = if profile.audited() {
            Some(audit_trail::file_in(dir, &text)?)
        } else {
            text = audit_trail::without(&text);
            None
        };
        if !profile.recorded() {
            text = crate::toml_section::strip(
                &text,
                "recording",
                "# [recording] removed by bench-harness: only target sluice-record records.\n",
            );
        }
        if profile != Profile::PassThrough {
            text.push_str(&sluice_policy::role_toml("bench"));
        }
        // The admin listener, for the gateway's own statistics after the run.
        let admin_port = proc::free_port()?;
        text.push_str(&format!("\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n"));
        std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;

        let mut issue = Command::new(bin);
        issue
            .env(PASSWORD_ENV, password)
            .args(["token", "issue", "--config"])
            .arg(&config)
            .args([
                "--subject",
                "bench",
                "--role",
                profile.role(),
                "--resource",
                "bench",
                "--ttl",
                "2h",
            ]);
        let token = proc::run(&mut issue, CLI_TIMEOUT)?
            .ok("sluice token issue")?
            .trim()
            .to_string();
        if token.is_empty() {
            return Err("sluice token issue printed no token".into());
        }

        let mut serve = Command::new(bin);
        serve
            .env(PASSWORD_ENV, password)
            .env("RUST_LOG", "warn")
            .env("MONOIO_FORCE_LEGACY_DRIVER", if epoll { "1" } else { "0" })
            .envs(serve_env.iter().map(|(k, v)| (k, v)))
            .args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        proc::record(&serve);
        let mut child = serve
            .spawn()
            .map_err(|e| format!("cannot start sluice serve: {e}"))?;
        let watchdog = Watchdog::spawn(
            "kill -TERM \"$1\" 2>/dev/null; sleep 5; kill -KILL \"$1\" 2>/dev/null",
            &[child.id().to_string()],
        )?;
        let stderr = proc::drain(child.stderr.take());
        let lines = lines(child.stdout.take());
        let addr = match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                proc::stop_child(&mut child, Duration::from_secs(5));
                let err = stderr.join().unwrap_or_default();
                return Err(format!(
                    "sluice serve did not print `listening postgres ADDR`:\n{err}"
                ));
            }
        };
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("bad listen address `{addr}`"))?;
        let endpoint = Endpoint {
            name: profile.target().into(),
            port,
            dbname: "bench".into(),
            user: "bench".into(),
            password: token,
        };
        Ok(Sluice {
            _watchdog: watchdog,
            child,
            endpoint,
            admin_port,
            audit_file,
            stderr: Some(stderr),
        })
    }

    /// The current file of the gateway's audit trail, if it keeps one.
    pub fn audit_file(&self) -> Option<&Path> {
        self.audit_file.as_deref()
    }

    /// The gateway's `/v1/stats` document (per-shard counters and latency quantiles,
    /// including the time the gateway itself added), as JSON text.
    pub fn stats(&self) -> Result<String, String> {
        self.admin_get("/v1/stats")
    }

    /// The gateway's `/metrics` page (Prometheus text; the audit trail's counters among them
    /// when it keeps one).
    pub fn metrics(&self) -> Result<String, String> {
        self.admin_get("/metrics")
    }

    /// Checks through `/metrics` that the gateway runs with the audit trail exactly when its
    /// profile says so, so no target measures a trail it was not meant to have (or lacks one).
    pub fn check_audit(&self, profile: Profile) -> Result<(), String> {
        let on = audit_trail::counters(&self.metrics()?).is_some();
        match (profile.audited(), on) {
            (true, false) => {
                Err("the audit trail is not running (no audit series in /metrics)".into())
            }
            (false, true) => {
                Err("the audit trail is running but this target must run without it".into())
            }
            _ => Ok(()),
        }
    }

    /// The body of a GET to the admin listener.
    fn admin_get(&self, path: &str) -> Result<String, String> {
        use std::io::{Read, Write};
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.admin_port));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("admin listener: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes())
            .map_err(|e| format!("admin listener: {e}"))?;
        let mut response = String::new();
        s.read_to_string(&mut response)
            .map_err(|e| format!("admin listener: {e}"))?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or("admin listener: no HTTP body")?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!(
                "admin listener: GET {path}: {}",
                head.lines().next().unwrap_or("")
            ));
        }
        Ok(body.to_string())
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Names the target in reports (a gateway started for `sluice-w2` reports as that).
    pub fn rename(&mut self, name: &str) {
        self.endpoint.name = name.to_string();
    }

    /// Where clients connect.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Stops the gateway and returns what it logged.
    pub fn stop(mut self) -> String {
        proc::stop_child(&mut self.child, Duration::from_secs(15));
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        proc::stop_child(&mut self.child, Duration::from_secs(15));
    }
}

/// Sends the address of each `listening postgres ADDR` line; keeps draining stdout after that.
fn lines(pipe: Option<std::process::ChildStdout>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Some(pipe) = pipe else { return };
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(addr) = line.trim().strip_prefix("listening postgres ") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    rx
}
