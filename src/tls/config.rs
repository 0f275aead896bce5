//! rustls server and client configurations, always on the ring crypto provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Failures while building TLS configurations or generating certificates.
///
/// File errors name the file; key-file errors never quote the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// File that was read.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// A certificate file is not valid PEM.
    #[error("invalid PEM in certificate file {}: {source}", path.display())]
    CertPem {
        /// File that was read.
        path: PathBuf,
        /// What the PEM reader objected to.
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("no PEM CERTIFICATE block in {}", path.display())]
    NoCertificates {
        /// File that was read.
        path: PathBuf,
    },
    /// A key file holds no usable private key.
    #[error(
        "no usable private key in {} (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)",
        path.display()
    )]
    NoPrivateKey {
        /// File that was read.
        path: PathBuf,
    },
    /// rustls refused the certificate and key pair (for example, they do not match).
    #[error("certificate {} and key {} rejected: {source}", cert.display(), key.display())]
    CertKey {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// rustls refused a CA certificate.
    #[error("CA file {} has an unusable certificate: {source}", path.display())]
    BadCa {
        /// CA file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// rustls refused the protocol or provider set-up.
    #[error("TLS configuration rejected: {0}")]
    Config(rustls::Error),
    /// A host name given for a certificate is neither an IP address nor a valid DNS name.
    #[error("invalid host name for a certificate: {0:?}")]
    InvalidHost(String),
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    CertGen(rcgen::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Install ring as the process-wide default rustls provider.
///
/// Idempotent: an already-installed provider (ours or another) is left in place, because
/// every configuration built here names its provider explicitly anyway.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A server configuration from a PEM certificate chain and a PEM private key.
///
/// TLS 1.2 and 1.3 with rustls's safe defaults; clients are not asked for certificates.
pub fn server_config(
    cert_pem_path: &Path,
    key_pem_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(cert_pem_path)?;
    let key = read_key(key_pem_path)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::CertKey {
            cert: cert_pem_path.to_path_buf(),
            key: key_pem_path.to_path_buf(),
            source,
        })?;
    Ok(Arc::new(config))
}

/// A client configuration that verifies servers against `ca_file` if given, otherwise
/// against the bundled Web PKI roots.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|source| TlsError::BadCa {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::CertPem {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    // The PEM reader's error detail is dropped: it may quote bytes of the key.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::NoPrivateKey {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use rustls::{ClientConnection, Connection, ProtocolVersion, ServerConnection};
    use rustls_pki_types::ServerName;

    use super::*;
    use crate::tls::certgen::self_signed;

    struct Files {
        _dir: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
    }

    fn write_cert(hosts: &[&str]) -> Files {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let (cert_pem, key_pem) = self_signed(&hosts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        Files {
            _dir: dir,
            cert,
            key,
        }
    }

    /// Move every pending TLS record from `from` to `to`; returns the bytes moved.
    fn transfer(from: &mut Connection, to: &mut Connection) -> Result<usize, rustls::Error> {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            to.read_tls(&mut rd).unwrap();
            to.process_new_packets()?;
        }
        Ok(buf.len())
    }

    /// Pump records both ways until neither side has anything to send.
    fn pump(client: &mut Connection, server: &mut Connection) -> Result<(), rustls::Error> {
        for _ in 0..16 {
            if transfer(client, server)? + transfer(server, client)? == 0 {
                return Ok(());
            }
        }
        panic!("handshake did not settle");
    }

    fn connect(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
        name: &str,
    ) -> (Connection, Connection) {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let c = ClientConnection::new(client, name).unwrap();
        let s = ServerConnection::new(server).unwrap();
        (Connection::Client(c), Connection::Server(s))
    }

    #[test]
    fn tls13_handshake_and_data_in_memory() {
        let files = write_cert(&["gw.test", "10.1.2.3"]);
        let server = server_config(&files.cert, &files.key).unwrap();
        let client = client_config(Some(&files.cert)).unwrap();
        for name in ["localhost", "127.0.0.1", "gw.test", "10.1.2.3"] {
            let (mut c, mut s) = connect(client.clone(), server.clone(), name);
            pump(&mut c, &mut s).unwrap();
            assert!(!c.is_handshaking() && !s.is_handshaking(), "{name}");
            assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));

            c.writer().write_all(b"ping").unwrap();
            pump(&mut c, &mut s).unwrap();
            let mut got = [0u8; 4];
            s.reader().read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");

            s.writer().write_all(b"pong!").unwrap();
            pump(&mut c, &mut s).unwrap();
            let mut got = [0u8; 5];
            c.reader().read_exact(&mut got).unwrap();
            assert_eq!(&got, b"pong!");
        }
    }

    #[test]
    fn wrong_name_fails_verification() {
        let files = write_cert(&[]);
        let server = server_config(&files.cert, &files.key).unwrap();
        let client = client_config(Some(&files.cert)).unwrap();
        let (mut c, mut s) = connect(client, server, "other.test");
        let err = pump(&mut c, &mut s).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn web_pki_roots_do_not_trust_self_signed() {
        let files = write_cert(&[]);
        let server = server_config(&files.cert, &files.key).unwrap();
        let client = client_config(None).unwrap();
        let (mut c, mut s) = connect(client, server, "localhost");
        let err = pump(&mut c, &mut s).unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        );
    }

    #[test]
    fn errors_name_the_file() {
        let files = write_cert(&[]);
        let dir = files.cert.parent().unwrap();
        let missing = dir.join("nope.crt");
        let err = server_config(&missing, &files.key).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }));
        assert!(err.to_string().contains("nope.crt"), "{err}");

        // Certificate and key swapped: each file lacks what it should hold.
        let err = server_config(&files.key, &files.key).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificates { .. }), "{err}");
        assert!(err.to_string().contains("tls.key"), "{err}");
        let err = server_config(&files.cert, &files.cert).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
        assert!(err.to_string().contains("tls.crt"), "{err}");

        // A key that belongs to another certificate.
        let other = write_cert(&[]);
        let err = server_config(&files.cert, &other.key).unwrap_err();
        assert!(matches!(err, TlsError::CertKey { .. }), "{err}");

        let err = client_config(Some(&files.key)).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificates { .. }), "{err}");

        let broken = dir.join("broken.crt");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let err = client_config(Some(&broken)).unwrap_err();
        assert!(matches!(err, TlsError::CertPem { .. }), "{err}");
        assert!(err.to_string().contains("broken.crt"), "{err}");
    }

    #[test]
    fn install_default_provider_is_idempotent() {
        install_default_provider();
        install_default_provider();
        assert!(CryptoProvider::get_default().is_some());
    }
}
