//! PgBouncer as the peer baseline: session pooling in front of the same server, SCRAM to both
//! sides from a plaintext auth_file, sized so that no client ever waits for a pool slot.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::postgres::SUPERUSER;
use crate::proc::{self, Watchdog};
use crate::tls::Cert;

/// A running pgbouncer; stopped on drop.
pub struct Pgbouncer {
    _watchdog: Watchdog,
    child: Child,
    endpoint: Endpoint,
}

impl Pgbouncer {
    /// The pgbouncer binary, if installed.
    pub fn binary() -> Option<PathBuf> {
        let on_path = Command::new("sh")
            .args(["-c", "command -v pgbouncer"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        on_path.or_else(|| Some(PathBuf::from("/usr/sbin/pgbouncer")).filter(|p| p.is_file()))
    }

    /// Writes `pgbouncer.ini` and `userlist.txt` into `dir` and starts pgbouncer in the
    /// foreground as the server user.
    pub fn start(
        bin: &Path,
        dir: &Path,
        pg_port: u16,
        password: &str,
        clients: u32,
        tls: Option<&Cert>,
    ) -> Result<Pgbouncer, String> {
        let run_as = proc::server_user()?;
        let port = proc::free_port()?;
        let ini = dir.join("pgbouncer.ini");
        let userlist = dir.join("userlist.txt");
        fs::write(&userlist, format!("\"{SUPERUSER}\" \"{password}\"\n"))
            .map_err(|e| e.to_string())?;
        let client_tls = match tls {
            Some(cert) => {
                let own = cert.copy_for(dir, run_as)?;
                format!(
                    "client_tls_sslmode = allow\nclient_tls_cert_file = {}\nclient_tls_key_file = {}\n",
                    own.cert.display(),
                    own.key.display()
                )
            }
            None => "client_tls_sslmode = disable\n".to_string(),
        };
        fs::write(&ini, config(dir, port, pg_port, clients) + &client_tls)
            .map_err(|e| e.to_string())?;
        if let Some(user) = run_as {
            for path in [dir, &ini, &userlist] {
                user.give(path)?;
            }
        }
        let mut cmd = Command::new(bin);
        cmd.arg(&ini)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(user) = run_as {
            user.apply(&mut cmd);
        }
        proc::record(&cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start pgbouncer: {e}"))?;
        let watchdog = Watchdog::spawn("kill -KILL \"$1\" 2>/dev/null", &[child.id().to_string()])?;
        let endpoint = Endpoint {
            name: "pgbouncer".into(),
            port,
            dbname: "bench".into(),
            user: SUPERUSER.into(),
            password: password.into(),
        };
        Ok(Pgbouncer {
            _watchdog: watchdog,
            child,
            endpoint,
        })
    }

    /// The pgbouncer process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where clients connect.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The log so far, for error messages.
    pub fn log(dir: &Path) -> String {
        fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        // SIGTERM is pgbouncer's immediate shutdown: after a run there is nothing left to drain.
        proc::stop_child(&mut self.child, Duration::from_secs(5));
    }
}

fn config(dir: &Path, port: u16, pg_port: u16, clients: u32) -> String {
    let dir = dir.display();
    format!(
        "[databases]\n\
         bench = host=127.0.0.1 port={pg_port} dbname=bench\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = scram-sha-256\n\
         auth_file = {dir}/userlist.txt\n\
         pool_mode = session\n\
         max_client_conn = {max_client}\n\
         default_pool_size = {pool}\n\
         server_tls_sslmode = disable\n\
         ignore_startup_parameters = extra_float_digits\n\
         log_connections = 0\n\
         log_disconnections = 0\n\
         logfile = {dir}/pgbouncer.log\n\
         pidfile = {dir}/pgbouncer.pid\n",
        max_client = clients * 2 + 10,
        pool = clients + 8,
    )
}
