//! The gateway's Ed25519 signing key: generation, PEM (PKCS#8) encoding and loading.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::PrivatePkcs8KeyDer;

use super::error::IdentityError;

/// An Ed25519 private key held as its PKCS#8 document.
///
/// `Debug` shows only the key id, so the key can sit inside logged structs safely.
#[derive(Clone)]
pub struct SigningKey {
    pkcs8: Vec<u8>,
    seed: [u8; 32],
    public: [u8; 32],
    kid: String,
}

impl SigningKey {
    /// Generate a fresh key from the system random source.
    pub fn generate() -> Result<SigningKey, IdentityError> {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| IdentityError::KeyGeneration)?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Build from a PKCS#8 DER document (v1 as written by OpenSSL, or v2).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, IdentityError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| IdentityError::InvalidKey("not an Ed25519 PKCS#8 key"))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(SigningKey {
            pkcs8: der.to_vec(),
            seed: seed_of(der).ok_or(IdentityError::InvalidKey("not an Ed25519 PKCS#8 key"))?,
            public,
            kid: thumbprint(&public),
        })
    }

    /// Parse a PEM `PRIVATE KEY` (PKCS#8) block holding an Ed25519 key.
    pub fn from_pem(pem: &str) -> Result<SigningKey, IdentityError> {
        // The PEM error detail is dropped on purpose: it can quote bytes of the key.
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| IdentityError::InvalidKey("no PEM \"PRIVATE KEY\" (PKCS#8) block"))?;
        Self::from_pkcs8_der(der.secret_pkcs8_der())
    }

    /// Encode as a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn to_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.pkcs8);
        let mut out = String::with_capacity(b64.len() + 64);
        out.push_str("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            // Base64 output is ASCII, so every chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        out
    }

    /// Read a PEM key file. Errors name the file and never print key bytes.
    pub fn load(path: &Path) -> Result<SigningKey, IdentityError> {
        let text = std::fs::read_to_string(path).map_err(|source| IdentityError::KeyFileRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&text).map_err(|e| match e {
            IdentityError::InvalidKey(reason) => IdentityError::KeyFileInvalid {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key_raw(&self) -> [u8; 32] {
        self.public
    }

    /// Key id: the RFC 7638 JWK thumbprint of the public key (base64url SHA-256).
    ///
    /// Issued tokens carry it as `kid`, so a future key rotation can pick the right key.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    pub(crate) fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The 32-byte Ed25519 secret seed, for deriving other gateway secrets from the one key
    /// (the masking hash key). Must never be logged or sent anywhere.
    pub(crate) fn secret_seed(&self) -> &[u8; 32] {
        &self.seed
    }
}

/// The seed inside an Ed25519 PKCS#8 document (v1 or v2): the OCTET STRING wrapped in the
/// `privateKey` OCTET STRING (`04 22 04 20 <32 bytes>`), which follows the fixed version and
/// algorithm fields near the start. `None` if it is not there.
fn seed_of(der: &[u8]) -> Option<[u8; 32]> {
    const MARKER: [u8; 4] = [0x04, 0x22, 0x04, 0x20];
    let head = der.get(..24.min(der.len()))?;
    let at = head.windows(MARKER.len()).position(|w| w == MARKER)? + MARKER.len();
    der.get(at..at + 32)?.try_into().ok()
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over the canonical JWK members
/// (`crv`, `kty`, `x` in lexicographic order, no whitespace).
pub(crate) fn thumbprint(public: &[u8; 32]) -> String {
    let jwk = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(back.public_key_raw(), key.public_key_raw());
        assert_eq!(back.key_id(), key.key_id());
    }

    #[test]
    fn generated_keys_differ() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.public_key_raw(), b.public_key_raw());
    }

    #[test]
    fn accepts_openssl_style_pkcs8_v1() {
        // PKCS#8 v1 as `openssl genpkey -algorithm ed25519` writes it, holding the RFC 8032
        // test vector 1 private key.
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
                   -----END PRIVATE KEY-----\n";
        let key = SigningKey::from_pem(pem).unwrap();
        // The matching public key from the same test vector.
        assert_eq!(
            hex(&key.public_key_raw()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex(key.secret_seed()),
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
        );
    }

    #[test]
    fn the_seed_of_a_generated_key_rebuilds_it() {
        let key = SigningKey::generate().unwrap();
        let pair = Ed25519KeyPair::from_seed_unchecked(key.secret_seed()).unwrap();
        assert_eq!(pair.public_key().as_ref(), key.public_key_raw());
    }

    #[test]
    fn rejects_non_ed25519_and_garbage() {
        assert!(matches!(
            SigningKey::from_pem("hello"),
            Err(IdentityError::InvalidKey(_))
        ));
        // A P-256 PKCS#8 key is valid PEM but the wrong algorithm.
        let p256 = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(matches!(
            SigningKey::from_pem(&p256),
            Err(IdentityError::InvalidKey("not an Ed25519 PKCS#8 key"))
        ));
    }

    #[test]
    fn load_errors_name_the_file_and_hide_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.key");
        let err = SigningKey::load(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.key"), "{err}");

        let bad = dir.path().join("bad.key");
        let secretish =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n";
        std::fs::write(&bad, secretish).unwrap();
        let err = SigningKey::load(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.key"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");

        let good = dir.path().join("good.key");
        let key = SigningKey::generate().unwrap();
        std::fs::write(&good, key.to_pem()).unwrap();
        assert_eq!(
            SigningKey::load(&good).unwrap().public_key_raw(),
            key.public_key_raw()
        );
    }

    #[test]
    fn debug_does_not_print_key_material() {
        let key = SigningKey::generate().unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains(key.key_id()));
        assert!(!dbg.contains(&STANDARD.encode(key.pkcs8_der())));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
