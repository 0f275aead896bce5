//! A self-signed certificate for the TLS cases: PostgreSQL and pgbouncer serve it, clients
//! connect with `sslmode=require` (encrypted, not verified), the same for every target.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{self, RunAs};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Cert {
    /// Certificate file.
    pub cert: PathBuf,
    /// Private key file (mode 0600).
    pub key: PathBuf,
}

impl Cert {
    /// Makes a P-256 key and a certificate for `localhost` valid for two days in `dir`.
    pub fn self_signed(dir: &Path) -> Result<Cert, String> {
        let cert = Cert {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        };
        let mut cmd = Command::new("openssl");
        cmd.args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-subj", "/CN=localhost", "-days", "2", "-keyout"])
            .arg(&cert.key)
            .arg("-out")
            .arg(&cert.cert);
        proc::run(&mut cmd, Duration::from_secs(60))?.ok("openssl req (is openssl installed?)")?;
        Ok(cert)
    }

    /// A copy in `dir` owned by `owner` (the servers refuse a key others can read or that
    /// belongs to someone else).
    pub fn copy_for(&self, dir: &Path, owner: Option<RunAs>) -> Result<Cert, String> {
        let copy = Cert {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        };
        for (from, to, mode) in [
            (&self.cert, &copy.cert, 0o644),
            (&self.key, &copy.key, 0o600),
        ] {
            fs::copy(from, to).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
            fs::set_permissions(to, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("cannot chmod {}: {e}", to.display()))?;
            if let Some(user) = owner {
                user.give(to)?;
            }
        }
        Ok(copy)
    }
}
