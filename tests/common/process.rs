//! Child processes for the harness: commands with deadlines, the OS user the PostgreSQL server
//! runs as, and watchdogs that clean up after a test process that died without unwinding.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// What a finished command printed, and how it exited.
#[derive(Debug)]
pub struct Captured {
    /// Exit status of the command.
    pub status: ExitStatus,
    /// Everything written to stdout, lossily decoded as UTF-8.
    pub stdout: String,
    /// Everything written to stderr, lossily decoded as UTF-8.
    pub stderr: String,
}

impl Captured {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `cmd` to completion with stdin closed, capturing its output. Panics if it cannot be
/// started or if it is still running after `timeout` (it is killed first), so a hung client or
/// server shows up as a clear failure instead of a stuck test.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Captured {
    let description = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr.join().unwrap_or_default();
                panic!("{description} still running after {timeout:?}; killed it. stderr:\n{err}");
            }
            Err(e) => panic!("waiting for {description}: {e}"),
        }
    };
    Captured {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads a pipe to its end on a thread, so that neither pipe can fill and stall the child.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A numeric OS identity to run a child process as.
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl RunAs {
    /// Makes `cmd` run under this identity (std drops supplementary groups when root sets a uid).
    pub fn apply(self, cmd: &mut Command) -> &mut Command {
        cmd.uid(self.uid).gid(self.gid)
    }
}

/// The identity PostgreSQL server processes must run as: `None` when this process is not root
/// (they run as ourselves), the `postgres` OS user when it is, because initdb and postgres refuse
/// to run as root.
pub fn server_user() -> Option<RunAs> {
    static USER: OnceLock<Option<RunAs>> = OnceLock::new();
    *USER.get_or_init(|| {
        if id(&["-u"]) != Some(0) {
            return None;
        }
        match (id(&["-u", "postgres"]), id(&["-g", "postgres"])) {
            (Some(uid), Some(gid)) => Some(RunAs { uid, gid }),
            _ => panic!(
                "running as root, but there is no OS user `postgres` to run the throwaway \
                 PostgreSQL server as; install the Debian package `postgresql` (it creates that \
                 user), e.g. with scripts/install-deps.sh"
            ),
        }
    })
}

/// Asks `id(1)` for a number; std has no safe way to read the effective uid.
fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A small shell loop that waits for this test process to disappear and then runs a cleanup
/// script. Destructors do the normal cleanup; the watchdog covers a test process killed by a
/// timeout or a signal, so that no server outlives it. It runs in its own process group so that
/// a signal sent to the test's group does not take it down before it has done its job.
pub struct Watchdog(Child);

impl Watchdog {
    /// Starts the watchdog. `cleanup` is a `sh` script that sees `args` as `$1`, `$2`, ...
    pub fn spawn<S: AsRef<OsStr>>(cleanup: &str, args: &[S], run_as: Option<RunAs>) -> Watchdog {
        let script = format!(
            "owner=\"$1\"; shift; while [ -d \"/proc/$owner\" ]; do sleep 1; done; {cleanup}"
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("sluice-watchdog")
            .arg(std::process::id().to_string())
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some(user) = run_as {
            user.apply(&mut cmd);
        }
        Watchdog(cmd.spawn().expect("cannot start the cleanup watchdog (sh)"))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Kill the whole group so its `sleep` does not linger as an orphan.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
