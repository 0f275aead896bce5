//! First-run key material: the token signing key and a self-signed TLS certificate.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::error::IdentityError;
use super::keys::SigningKey;
use crate::tls::certgen::self_signed;
use crate::tls::config::TlsError;

/// File name of the token signing key inside the key directory.
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// File name of the TLS certificate inside the key directory.
pub const TLS_CERT_FILE: &str = "tls.crt";
/// File name of the TLS private key inside the key directory.
pub const TLS_KEY_FILE: &str = "tls.key";

/// Where [`keygen`] wrote its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeygenOutput {
    /// Ed25519 token signing key, PKCS#8 PEM, mode 0600.
    pub signing_key: PathBuf,
    /// Self-signed TLS certificate, PEM, mode 0644.
    pub tls_cert: PathBuf,
    /// TLS private key, PKCS#8 PEM, mode 0600.
    pub tls_key: PathBuf,
}

/// Why key generation stopped. Nothing is left half-written on error.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// A target file already exists; existing keys are never replaced.
    #[error("refusing to overwrite existing file {}", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// The directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// Directory.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// File.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// Generating the signing key failed.
    #[error(transparent)]
    Key(#[from] IdentityError),
    /// Generating the certificate failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Generate `DIR/signing.key`, `DIR/tls.crt` and `DIR/tls.key`.
///
/// Creates `dir` (mode 0700) if missing. Refuses to run if any of the three files exists.
/// The certificate covers `hosts` plus `localhost` and `127.0.0.1`.
pub fn keygen(dir: &Path, hosts: &[String]) -> Result<KeygenOutput, KeygenError> {
    let out = KeygenOutput {
        signing_key: dir.join(SIGNING_KEY_FILE),
        tls_cert: dir.join(TLS_CERT_FILE),
        tls_key: dir.join(TLS_KEY_FILE),
    };
    // Check everything first so a refusal leaves the directory exactly as it was.
    // `symlink_metadata` also catches dangling symlinks, which `exists()` would miss.
    for path in [&out.signing_key, &out.tls_cert, &out.tls_key] {
        if path.symlink_metadata().is_ok() {
            return Err(KeygenError::Exists { path: path.clone() });
        }
    }
    // Generate before touching the disk, so a generation failure writes nothing.
    let signing_pem = SigningKey::generate()?.to_pem();
    let (cert_pem, key_pem) = self_signed(hosts)?;

    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeygenError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;

    let files = [
        (&out.signing_key, signing_pem.as_str(), 0o600),
        (&out.tls_cert, cert_pem.as_str(), 0o644),
        (&out.tls_key, key_pem.as_str(), 0o600),
    ];
    for (i, (path, contents, mode)) in files.iter().enumerate() {
        if let Err(e) = write_new(path, contents, *mode) {
            // Remove what this call wrote; the failed file itself is removed only if we
            // created it (an `Exists` race means someone else owns it).
            let created = if matches!(e, KeygenError::Exists { .. }) {
                i
            } else {
                i + 1
            };
            for (done, _, _) in &files[..created] {
                let _ = std::fs::remove_file(done);
            }
            return Err(e);
        }
    }
    Ok(out)
}

/// Create `path` exclusively with `mode` and write `contents` to disk.
fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), KeygenError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeygenError::Exists {
                path: path.to_path_buf(),
            },
            _ => KeygenError::Write {
                path: path.to_path_buf(),
                source,
            },
        })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| KeygenError::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::tls::config::server_config;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_usable_files_with_tight_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("keys");
        let out = keygen(&dir, &["gw.test".into()]).unwrap();
        assert_eq!(out.signing_key, dir.join("signing.key"));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&out.signing_key), 0o600);
        assert_eq!(mode(&out.tls_key), 0o600);
        // The certificate is public; 0644 subject to the umask.
        assert_eq!(mode(&out.tls_cert) & 0o600, 0o600);
        SigningKey::load(&out.signing_key).unwrap();
        server_config(&out.tls_cert, &out.tls_key).unwrap();
    }

    #[test]
    fn refuses_to_overwrite_and_leaves_files_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("tls.crt");
        std::fs::write(&existing, "mine").unwrap();
        let err = keygen(tmp.path(), &[]).unwrap_err();
        assert!(matches!(&err, KeygenError::Exists { path } if *path == existing));
        assert!(err.to_string().contains("tls.crt"), "{err}");
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "mine");
        assert!(!tmp.path().join("signing.key").exists());
        assert!(!tmp.path().join("tls.key").exists());
    }

    #[test]
    fn second_run_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let first = keygen(tmp.path(), &[]).unwrap();
        let before = std::fs::read(&first.signing_key).unwrap();
        let err = keygen(tmp.path(), &[]).unwrap_err();
        assert!(matches!(err, KeygenError::Exists { .. }));
        assert_eq!(std::fs::read(&first.signing_key).unwrap(), before);
    }

    #[test]
    fn dangling_symlink_counts_as_existing() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), tmp.path().join("tls.key"))
            .unwrap();
        assert!(matches!(
            keygen(tmp.path(), &[]),
            Err(KeygenError::Exists { .. })
        ));
        assert!(!tmp.path().join("elsewhere").exists());
    }

    #[test]
    fn invalid_host_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("k");
        assert!(matches!(
            keygen(&dir, &["not a host".into()]),
            Err(KeygenError::Tls(TlsError::InvalidHost(_)))
        ));
        assert!(!dir.exists());
    }
}
