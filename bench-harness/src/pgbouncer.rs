//! PgBouncer as the peer baseline: session pooling in front of the same server, SCRAM to both
//! sides from a plaintext auth_file, sized so that no client ever waits for a pool slot.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::peer::Peer;
use crate::postgres::SUPERUSER;
use crate::proc;
use crate::tls::Cert;

/// pgbouncer, started by [`Pgbouncer::start`].
pub struct Pgbouncer;

impl Pgbouncer {
    /// The pgbouncer binary, if installed.
    pub fn binary() -> Option<PathBuf> {
        crate::peer::binary("pgbouncer")
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
    ) -> Result<Peer, String> {
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
        cmd.arg(&ini).current_dir(dir).stderr(Stdio::null());
        Peer::spawn(
            "pgbouncer",
            cmd,
            port,
            password,
            &dir.join("pgbouncer.log"),
            Duration::from_secs(5),
        )
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
