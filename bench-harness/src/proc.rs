//! Child processes: commands with deadlines that are logged for `commands.txt`, the OS user the
//! PostgreSQL tools run as, and watchdogs that clean up if the harness dies without unwinding.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// What a finished command printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Stdout when the command succeeded, otherwise an error holding both streams.
    pub fn ok(self, what: &str) -> Result<String, String> {
        if self.status.success() {
            Ok(self.stdout)
        } else {
            Err(format!(
                "{what} failed ({}):\n{}{}",
                self.status, self.stdout, self.stderr
            ))
        }
    }
}

/// Every command the harness ran, in order, for `commands.txt`.
static COMMANDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records `cmd` as it will run, with secrets in the environment redacted.
pub fn record(cmd: &Command) {
    let line = describe(cmd);
    COMMANDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(line);
}

/// All commands recorded so far.
pub fn recorded() -> Vec<String> {
    COMMANDS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Renders a command as a shell line: environment assignments, program, quoted arguments.
pub fn describe(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        let value = match value {
            Some(_) if key.contains("PASSWORD") => "<redacted>".to_string(),
            Some(v) => quote(v),
            None => continue,
        };
        parts.push(format!("{key}={value}"));
    }
    parts.push(quote(cmd.get_program()));
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain && !s.is_empty() {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Runs `cmd` with stdin closed, capturing output; kills it and errors after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    record(cmd);
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} still running after {timeout:?}; killed"));
            }
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Reads a pipe to its end on a thread so the child never stalls on a full pipe.
pub fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A numeric OS identity to run a child as.
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl RunAs {
    /// Makes `cmd` run under this identity.
    pub fn apply(self, cmd: &mut Command) -> &mut Command {
        cmd.uid(self.uid).gid(self.gid)
    }

    /// Hands a path to this identity.
    pub fn give(self, path: &std::path::Path) -> Result<(), String> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|e| format!("cannot chown {}: {e}", path.display()))
    }
}

/// The identity PostgreSQL and pgbouncer must run as: ourselves unless we are root, the
/// `postgres` OS user if we are (both refuse to run as root).
pub fn server_user() -> Result<Option<RunAs>, String> {
    static USER: OnceLock<Result<Option<RunAs>, String>> = OnceLock::new();
    USER.get_or_init(|| {
        if id(&["-u"]) != Some(0) {
            return Ok(None);
        }
        match (id(&["-u", "postgres"]), id(&["-g", "postgres"])) {
            (Some(uid), Some(gid)) => Ok(Some(RunAs { uid, gid })),
            _ => Err(
                "running as root but there is no `postgres` OS user to run the servers as; \
                      install the Debian package `postgresql` (scripts/install-deps.sh --bench)"
                    .to_string(),
            ),
        }
    })
    .clone()
}

fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())?
}

/// A `sh` loop, in its own process group, that waits for the harness process to disappear and
/// then runs a cleanup script (`$1`, `$2`, ... are `args`). It covers Ctrl-C and kills, where
/// destructors never run: servers started in their own session would otherwise live on.
pub struct Watchdog(Child);

impl Watchdog {
    /// Starts the watchdog.
    pub fn spawn<S: AsRef<OsStr>>(cleanup: &str, args: &[S]) -> Result<Watchdog, String> {
        let script = format!(
            "owner=\"$1\"; shift; while [ -d \"/proc/$owner\" ]; do sleep 1; done; {cleanup}"
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("bench-watchdog")
            .arg(std::process::id().to_string())
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(Watchdog)
            .map_err(|e| format!("cannot start a watchdog: {e}"))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// Sends a signal by name to a process with kill(1) (the crate forbids unsafe code).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILL; always reaps the child.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(None) = child.try_wait() {
        signal(child.id(), "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot bind a loopback port: {e}"))
}
