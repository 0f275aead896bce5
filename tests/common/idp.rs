//! A test identity provider: Ed25519 keys the tests make, tokens they sign with them, and a
//! loopback HTTP server publishing the key set (JWKS), which the tests can rotate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{json, Value};

/// One signing key of the provider.
pub struct IdpKey {
    pub kid: String,
    pair: Ed25519KeyPair,
}

impl IdpKey {
    /// A fresh Ed25519 key named `kid`.
    pub fn generate(kid: &str) -> IdpKey {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        IdpKey {
            kid: kid.to_string(),
            pair: Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap(),
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref()),
        })
    }

    /// A compact JWS of `claims` with `header` (alg EdDSA and this key's kid unless given).
    pub fn sign_with_header(&self, mut header: Value, claims: &Value) -> String {
        let h = header.as_object_mut().unwrap();
        h.entry("alg").or_insert(json!("EdDSA"));
        h.entry("kid").or_insert(json!(self.kid));
        h.entry("typ").or_insert(json!("JWT"));
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.pair.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// A compact JWS of `claims` with the default header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(json!({}), claims)
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// CI-job-like claims: valid for ten minutes from now.
pub fn ci_claims(issuer: &str, audience: &str, repository: &str, git_ref: &str) -> Value {
    let t = now();
    json!({
        "iss": issuer, "aud": audience, "sub": format!("repo:{repository}:ref:{git_ref}"),
        "repository": repository, "ref": git_ref, "iat": t, "nbf": t, "exp": t + 600,
        "jti": format!("{:x}", rand_u64()),
    })
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Serves `GET /jwks` (any path, in fact) with the current key set until dropped.
pub struct JwksServer {
    pub addr: SocketAddr,
    body: Arc<Mutex<String>>,
    /// Requests served so far.
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl JwksServer {
    /// Starts serving `keys`.
    pub fn start(keys: &[&IdpKey]) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = JwksServer {
            addr,
            body: Arc::new(Mutex::new(String::new())),
            hits: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        server.publish(keys);
        let (body, hits, stop) = (
            server.body.clone(),
            server.hits.clone(),
            server.stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                let text = body.lock().unwrap().clone();
                hits.fetch_add(1, Ordering::AcqRel);
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        server
    }

    /// Replaces the published key set.
    pub fn publish(&self, keys: &[&IdpKey]) {
        let set = json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
        *self.body.lock().unwrap() = set.to_string();
    }

    /// The key set's URL.
    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Issuer of the test provider's tokens.
pub const ISSUER: &str = "https://ci.test";
/// Audience the gateway requires of them.
pub const AUDIENCE: &str = "sluice-gw";

/// An admin listener, a revocation file, and three roles of shrinking strength for delegation
/// chains on `resource`: `deployer` (reads, writes, DDL), `agent` (reads and writes) and the
/// `reader` that `sluice init` writes; `admin` is the admin role.
pub fn chain_roles(setup: &super::GatewaySetup, resource: &str) {
    setup.set("admin.listen", "127.0.0.1:0");
    setup.set("gateway.workers", 2);
    setup.set("gateway.pin_cores", false);
    setup.set("identity.revocation_file", "revocations.jsonl");
    setup.set("role.admin.admin", true);
    setup.set("role.admin.strength", 100);
    setup.set("role.reader.strength", 10);
    for (role, strength, write, ddl) in [
        ("deployer", 50, "allow", "allow"),
        ("agent", 30, "allow", "block"),
    ] {
        setup.set(&format!("role.{role}.resources"), vec![resource]);
        setup.set(&format!("role.{role}.strength"), strength);
        let rules = format!("role.{role}.rules.*");
        for (class, action) in [
            ("read", "allow"),
            ("transaction", "allow"),
            ("session", "allow"),
            ("write", write),
            ("ddl", ddl),
            ("default", "block"),
        ] {
            setup.set(&format!("{rules}.{class}"), action);
        }
    }
}

/// The test provider `ci` with its key set at `jwks_url`: the main branch of `acme/api` gets
/// `deployer` on `resource`, its other branches `reader`.
pub fn add_provider(setup: &super::GatewaySetup, jwks_url: &str, resource: &str) {
    setup.edit_config(|text| {
        format!(
            r#"{text}
[[identity.provider]]
name = "ci"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks_url = "{jwks_url}"
jwks_refresh = "1s"
algorithms = ["EdDSA"]

[[identity.provider.map]]
when = 'repository == "acme/api" and ref == "refs/heads/main"'
roles = ["deployer"]
resources = ["{resource}"]
ttl = "30m"

[[identity.provider.map]]
when = 'repository == "acme/api"'
roles = ["reader"]
resources = ["{resource}"]
ttl = "5m"
"#
        )
    });
}
