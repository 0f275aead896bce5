//! Pgpool-II as a second peer: connection pooling in raw mode (no replication, no load
//! balancing) in front of the same server, SCRAM to clients and to the server from a
//! plaintext `pool_passwd`, one child process per client as Pgpool-II works.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::peer::Peer;
use crate::postgres::SUPERUSER;
use crate::proc;

/// Pgpool-II, started by [`Pgpool::start`].
pub struct Pgpool;

impl Pgpool {
    /// The pgpool binary, if installed (Debian package `pgpool2`).
    pub fn binary() -> Option<PathBuf> {
        crate::peer::binary("pgpool")
    }

    /// Writes `pgpool.conf`, `pool_hba.conf` and `pool_passwd` into `dir` and starts Pgpool-II
    /// in the foreground as the server user, with a child process for each of `clients`.
    pub fn start(
        bin: &Path,
        dir: &Path,
        pg_port: u16,
        password: &str,
        clients: u32,
    ) -> Result<Peer, String> {
        let run_as = proc::server_user()?;
        let port = proc::free_port()?;
        let pcp_port = proc::free_port()?;
        let conf = dir.join("pgpool.conf");
        let hba = dir.join("pool_hba.conf");
        let passwd = dir.join("pool_passwd");
        let d = dir.display();
        fs::write(
            &conf,
            format!(
                "backend_clustering_mode = 'raw'\n\
                 listen_addresses = '127.0.0.1'\nport = {port}\n\
                 unix_socket_directories = '{d}'\n\
                 pcp_listen_addresses = ''\npcp_port = {pcp_port}\npcp_socket_dir = '{d}'\n\
                 backend_hostname0 = '127.0.0.1'\nbackend_port0 = {pg_port}\n\
                 backend_weight0 = 1\nbackend_flag0 = 'DISALLOW_TO_FAILOVER'\n\
                 num_init_children = {children}\nmax_pool = 1\nconnection_cache = on\n\
                 enable_pool_hba = on\npool_passwd = '{passwd}'\n\
                 load_balance_mode = off\nhealth_check_period = 0\nsr_check_period = 0\n\
                 failover_on_backend_error = off\n\
                 logdir = '{d}'\npid_file_name = '{d}/pgpool.pid'\n\
                 log_destination = 'stderr'\n",
                children = clients + 8,
                passwd = passwd.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        fs::write(&hba, "host all all 127.0.0.1/32 scram-sha-256\n").map_err(|e| e.to_string())?;
        fs::write(&passwd, format!("{SUPERUSER}:TEXT{password}\n")).map_err(|e| e.to_string())?;
        if let Some(user) = run_as {
            for path in [dir, &conf, &hba, &passwd] {
                user.give(path)?;
            }
        }
        let log = dir.join("pgpool.log");
        let pcp = dir.join("pcp.conf");
        fs::write(&pcp, "").map_err(|e| e.to_string())?;
        let stderr = fs::File::create(&log).map_err(|e| e.to_string())?;
        if let Some(user) = run_as {
            user.give(&pcp)?;
            user.give(&log)?;
        }
        let mut cmd = Command::new(bin);
        cmd.arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-a")
            .arg(&hba)
            .arg("-F")
            .arg(&pcp)
            .current_dir(dir)
            .stderr(Stdio::from(stderr));
        Peer::spawn("pgpool", cmd, port, password, &log, Duration::from_secs(10))
    }
}
