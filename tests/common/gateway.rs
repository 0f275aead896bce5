//! The real `sluice` binary under test: writing a configuration with `sluice init`, editing it,
//! minting tokens with `sluice token issue`, and running `sluice serve` as a child process.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::pg::PgServer;
use super::process::{run_with_timeout, Captured, Watchdog};

/// Path of the gateway binary cargo built for these tests.
pub const SLUICE_BIN: &str = env!("CARGO_BIN_EXE_sluice");
/// Name of the environment variable that carries the upstream password to the gateway.
pub const PASSWORD_ENV: &str = "SLUICE_TEST_UPSTREAM_PASSWORD";
/// A debug build on a busy machine can take a while to bind; longer than this is a failure.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// One-shot CLI commands (init, token issue, check-config).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `sluice ARGS` with extra environment variables and returns what it printed.
pub fn sluice(args: &[&str], env: &[(String, String)]) -> Captured {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, CLI_TIMEOUT)
}

/// Mints a session token with `sluice token issue` for the configuration in `config_dir`.
/// `env` must hold whatever the configuration reads from the environment (the upstream password).
pub fn issue_token(
    config_dir: &Path,
    env: &[(String, String)],
    subject: &str,
    roles: &[&str],
    resources: &[&str],
    ttl: &str,
) -> String {
    let config = config_dir.join("sluice.toml");
    let mut args = vec![
        "token",
        "issue",
        "--config",
        path_str(&config),
        "--subject",
        subject,
    ];
    for role in roles {
        args.extend(["--role", role]);
    }
    for resource in resources {
        args.extend(["--resource", resource]);
    }
    args.extend(["--ttl", ttl]);
    let out = sluice(&args, env);
    assert!(
        out.success(),
        "sluice token issue failed ({}):\n{}",
        out.status,
        out.stderr
    );
    let token = out.stdout.trim().to_string();
    assert!(
        !token.is_empty(),
        "sluice token issue printed no token; stderr:\n{}",
        out.stderr
    );
    token
}

/// What `sluice init` is asked to write.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Upstream user the gateway logs in as.
    pub user: String,
    /// That user's password, handed to the gateway through [`PASSWORD_ENV`].
    pub password: String,
    /// Upstream database.
    pub database: String,
    /// Name of the sluice resource (the database name clients connect to).
    pub resource: String,
    /// Pass `--plaintext` (accept clients without TLS on the loopback listener).
    pub plaintext: bool,
}

/// A gateway configuration directory made by `sluice init`, plus the environment it needs.
pub struct GatewaySetup {
    dir: tempfile::TempDir,
    resource: String,
    env: Vec<(String, String)>,
}

impl GatewaySetup {
    /// A plaintext-loopback gateway in front of `database` as the superuser; the resource has
    /// the database's name.
    pub fn new(pg: &PgServer, database: &str) -> GatewaySetup {
        Self::init(
            pg,
            InitOptions {
                user: pg.superuser().to_string(),
                password: pg.password().to_string(),
                database: database.to_string(),
                resource: database.to_string(),
                plaintext: true,
            },
        )
    }

    /// Runs `sluice init` with `opts` into a fresh temporary directory, listening on
    /// 127.0.0.1:0. Panics with sluice's output if init fails.
    pub fn init(pg: &PgServer, opts: InitOptions) -> GatewaySetup {
        let dir = tempfile::Builder::new()
            .prefix("sluice-gw-")
            .tempdir()
            .expect("cannot create a temporary directory for the gateway");
        let upstream = pg.url(&opts.user, &opts.database);
        let out_dir = path_str(dir.path()).to_string();
        let mut args = vec![
            "init",
            "--upstream",
            &upstream,
            "--password-env",
            PASSWORD_ENV,
            "--listen",
            "127.0.0.1:0",
            "--out",
            &out_dir,
            "--resource",
            &opts.resource,
        ];
        if opts.plaintext {
            args.push("--plaintext");
        }
        let env = vec![(PASSWORD_ENV.to_string(), opts.password.clone())];
        let out = sluice(&args, &env);
        assert!(
            out.success(),
            "sluice init failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            out.stdout,
            out.stderr
        );
        GatewaySetup {
            dir,
            resource: opts.resource,
            env,
        }
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file, `DIR/sluice.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sluice.toml")
    }

    /// The resource name clients use as database name.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Environment variables the gateway and CLI need (the upstream password).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Adds or replaces an environment variable for every later sluice command of this setup.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// The configuration file's current text.
    pub fn config_text(&self) -> String {
        fs::read_to_string(self.config_path()).expect("cannot read sluice.toml")
    }

    /// Rewrites the configuration file with `edit(current text)`.
    pub fn edit_config(&self, edit: impl FnOnce(&str) -> String) {
        let text = edit(&self.config_text());
        fs::write(self.config_path(), text).expect("cannot write sluice.toml");
    }

    /// Sets a key by dotted path, creating missing tables; a numeric segment indexes an array of
    /// tables. Examples: `set("gateway.max_message_bytes", 1024)`,
    /// `set("listener.0.allow_plaintext", false)`, `set("role.reader.resources", vec!["orders"])`.
    /// Comments in the file are not kept.
    pub fn set(&self, path: &str, value: impl Into<toml::Value>) {
        let value = value.into();
        self.edit_table(path, move |table, key| {
            table.insert(key.to_string(), value);
        });
    }

    /// Removes a key by dotted path (see [`set`](Self::set)); missing keys are ignored.
    pub fn remove(&self, path: &str) {
        self.edit_table(path, |table, key| {
            table.remove(key);
        });
    }

    fn edit_table(&self, path: &str, edit: impl FnOnce(&mut toml::Table, &str)) {
        let mut doc: toml::Table = toml::from_str(&self.config_text())
            .unwrap_or_else(|e| panic!("sluice.toml does not parse: {e}"));
        let segments: Vec<&str> = path.split('.').collect();
        let (key, parents) = segments.split_last().expect("empty config path");
        let mut table = &mut doc;
        let mut i = 0;
        while i < parents.len() {
            let segment = parents[i];
            let entry = table
                .entry(segment.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => {
                    i += 1;
                    t
                }
                toml::Value::Array(items) => {
                    // An array of tables (`[[listener]]`): the next segment is the index.
                    let index: usize = parents
                        .get(i + 1)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("`{segment}` is an array: index it in `{path}`"));
                    i += 2;
                    match items.get_mut(index) {
                        Some(toml::Value::Table(t)) => t,
                        _ => panic!("`{segment}.{index}` is not a table in `{path}`"),
                    }
                }
                _ => panic!("`{segment}` is not a table in `{path}`"),
            };
        }
        edit(table, key);
        fs::write(self.config_path(), doc.to_string()).expect("cannot write sluice.toml");
    }

    /// Mints a session token for this gateway.
    pub fn issue_token(
        &self,
        subject: &str,
        roles: &[&str],
        resources: &[&str],
        ttl: &str,
    ) -> String {
        issue_token(self.dir(), &self.env, subject, roles, resources, ttl)
    }

    /// Runs `sluice check-config` on this configuration.
    pub fn check_config(&self) -> Captured {
        let config = self.config_path();
        sluice(&["check-config", "--config", path_str(&config)], &self.env)
    }

    /// Starts `sluice serve` on this configuration and waits until it listens.
    pub fn start(&self) -> Gateway {
        Gateway::start(self.dir(), &self.env)
    }
}

/// A running `sluice serve`, killed on drop.
pub struct Gateway {
    // Declared first so that the watchdog is gone before the child is killed and reaped.
    watchdog: Option<Watchdog>,
    child: Child,
    addrs: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
}

impl Gateway {
    /// Runs `sluice serve --config DIR/sluice.toml` with `env` added, and waits until it has
    /// printed one `listening postgres ADDR` line per configured listener (and the
    /// `listening admin ADDR` line when `[admin]` is configured). Panics with the gateway's
    /// stderr if it exits or takes too long.
    pub fn start(config_dir: &Path, env: &[(String, String)]) -> Gateway {
        let config = config_dir.join("sluice.toml");
        let listeners = count_listeners(&config);
        let wants_admin = has_admin(&config);
        let mut cmd = Command::new(SLUICE_BIN);
        cmd.args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SLUICE_BIN}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(
            child.stderr.take().expect("stderr is piped"),
            Arc::clone(&stderr),
        );
        let lines = forward_lines(child.stdout.take().expect("stdout is piped"));
        let watchdog = Watchdog::spawn(
            "kill -TERM \"$1\" 2>/dev/null; sleep 5; kill -KILL \"$1\" 2>/dev/null",
            &[child.id().to_string()],
            None,
        );
        let mut gateway = Gateway {
            watchdog: Some(watchdog),
            child,
            addrs: Vec::new(),
            admin: None,
            stderr,
        };

        let deadline = Instant::now() + START_TIMEOUT;
        while gateway.addrs.len() < listeners || (wants_admin && gateway.admin.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.trim().strip_prefix("listening postgres ") {
                        let addr = addr.parse().unwrap_or_else(|e| {
                            panic!("bad address in `{line}`: {e}\nstderr:\n{}", gateway.stderr())
                        });
                        gateway.addrs.push(addr);
                    } else if let Some(addr) = line.trim().strip_prefix("listening admin ") {
                        gateway.admin = Some(addr.parse().unwrap_or_else(|e| {
                            panic!("bad address in `{line}`: {e}\nstderr:\n{}", gateway.stderr())
                        }));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "sluice serve printed {} of {listeners} `listening` lines within {START_TIMEOUT:?}; \
                     stderr:\n{}",
                    gateway.addrs.len(),
                    gateway.stderr()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = gateway.wait_exit(Duration::from_secs(5));
                    panic!(
                        "sluice serve closed stdout before listening (exit: {status:?}); stderr:\n{}",
                        gateway.stderr()
                    );
                }
            }
        }
        gateway
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The admin listener's address; panics when `[admin]` is not configured.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .expect("the gateway has no admin listener: set admin.listen before starting it")
    }

    /// Every listener's address, in the order printed.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the gateway has written to stderr so far (its logs).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends SIGTERM (graceful drain) without waiting.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT without waiting.
    pub fn sigint(&self) {
        self.signal("INT");
    }

    /// Kills the gateway with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the gateway to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.watchdog = None;
        self.kill();
        if thread::panicking() {
            eprintln!(
                "--- sluice serve stderr (pid {}) ---\n{}",
                self.pid(),
                self.stderr()
            );
        }
    }
}

/// How many `[[listener]]` tables the configuration has (1 if it cannot be read).
fn count_listeners(config: &Path) -> usize {
    fs::read_to_string(config)
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
        .and_then(|doc| {
            doc.get("listener")
                .and_then(|l| l.as_array())
                .map(|a| a.len())
        })
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Whether the configuration has an `[admin]` table.
fn has_admin(config: &Path) -> bool {
    fs::read_to_string(config)
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
        .is_some_and(|doc| doc.contains_key("admin"))
}

/// Appends everything read from `pipe` to `sink` until EOF.
fn collect(mut pipe: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]);
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&text);
        }
    });
}

/// Sends each line read from `pipe` to the returned channel, and keeps draining after the
/// receiver is gone so the child never blocks on a full pipe.
fn forward_lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(line) => {
                    let _ = tx.send(line);
                }
                Err(_) => break,
            }
        }
    });
    rx
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
