//! The SCRAM-SHA-256 client sluice uses towards its upstreams (RFC 5802 / RFC 7677, without
//! channel binding), with the salted-password keys cached per shard.
//!
//! Deriving the salted password takes `i` (4096 by default) HMAC-SHA-256 rounds, about a
//! millisecond of a shard's core for every upstream login: with agents that connect per task
//! it was the largest item of a login. The salt and iteration count belong to the stored
//! verifier and stay the same until the role's password is changed, so the keys derived from
//! (password, salt, iterations) are kept per shard thread and reused: a changed password or
//! a new verifier is simply a different key.

use std::cell::RefCell;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

/// Distinct (password, salt, iterations) entries a shard keeps: one per upstream role in
/// practice.
const CACHE_CAP: usize = 32;

/// A SCRAM-SHA-256 exchange in progress.
pub struct ScramClient {
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    state: State,
}

enum State {
    /// The client-first message was sent; waiting for the server's.
    First,
    /// The client-final message was sent; the server's signature is expected.
    Final {
        server_signature: [u8; 32],
    },
    Done,
}

/// Why the exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ScramError {
    /// The server's message does not parse or does not fit the exchange.
    #[error("invalid server message: {0}")]
    Invalid(&'static str),
    /// The server sent an `e=` error.
    #[error("server error: {0}")]
    Server(String),
    /// The server's signature is wrong: it does not know the password.
    #[error("the server's signature does not match")]
    BadSignature,
    /// No randomness for the nonce.
    #[error("no random nonce available")]
    Random,
}

impl ScramClient {
    /// Starts an exchange; [`message`](Self::message) is then the client-first message.
    pub fn new(password: &str) -> Result<ScramClient, ScramError> {
        let mut raw = [0u8; 18];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| ScramError::Random)?;
        Ok(Self::with_nonce(password, &B64.encode(raw)))
    }

    fn with_nonce(password: &str, nonce: &str) -> ScramClient {
        // PostgreSQL takes the user from the startup message and ignores `n=`.
        ScramClient {
            password: prepare(password),
            nonce: nonce.to_string(),
            client_first_bare: format!("n=,r={nonce}"),
            state: State::First,
        }
    }

    /// The client-first message (`n,,n=,r=NONCE`).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Takes the server-first message and returns the client-final message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, ScramError> {
        if !matches!(self.state, State::First) {
            return Err(ScramError::Invalid("server-first message out of order"));
        }
        let text = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::Invalid("server-first message is not UTF-8"))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(ScramError::Server(v.to_string())),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Invalid("no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Invalid(
                "the server's nonce does not extend ours",
            ));
        }
        let salt = B64
            .decode(salt.ok_or(ScramError::Invalid("no salt"))?)
            .map_err(|_| ScramError::Invalid("salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or(ScramError::Invalid("no iteration count"))?
            .parse()
            .map_err(|_| ScramError::Invalid("bad iteration count"))?;
        let iterations =
            NonZeroU32::new(iterations).ok_or(ScramError::Invalid("zero iterations"))?;
        let keys = keys(&self.password, &salt, iterations);

        // `biws` is base64 of the GS2 header `n,,`: no channel binding.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let stored_key = digest::digest(&digest::SHA256, &keys.client_key);
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let mut proof = keys.client_key;
        for (p, s) in proof.iter_mut().zip(signature.as_ref()) {
            *p ^= s;
        }
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &keys.server_key),
            auth_message.as_bytes(),
        );
        let mut expected = [0u8; 32];
        expected.copy_from_slice(server_signature.as_ref());
        self.state = State::Final {
            server_signature: expected,
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message: the server must prove it knows the password too.
    pub fn finish(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let State::Final { server_signature } = self.state else {
            return Err(ScramError::Invalid("server-final message out of order"));
        };
        let text = std::str::from_utf8(server_final)
            .map_err(|_| ScramError::Invalid("server-final message is not UTF-8"))?;
        let mut verifier = None;
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("v", v)) => verifier = Some(v),
                Some(("e", v)) => return Err(ScramError::Server(v.to_string())),
                _ => {}
            }
        }
        let given = B64
            .decode(verifier.ok_or(ScramError::Invalid("no verifier"))?)
            .map_err(|_| ScramError::Invalid("verifier is not base64"))?;
        // Compared without an early exit, so timing says nothing about where they differ.
        let differ = given.len() != server_signature.len()
            || given
                .iter()
                .zip(&server_signature)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differ {
            return Err(ScramError::BadSignature);
        }
        self.state = State::Done;
        Ok(())
    }
}

/// SASLprep of the password where it applies; PostgreSQL uses the raw bytes otherwise, and so
/// does this client.
fn prepare(password: &str) -> Vec<u8> {
    match stringprep::saslprep(password) {
        Ok(p) => p.into_owned().into_bytes(),
        Err(_) => password.as_bytes().to_vec(),
    }
}

/// The client and server keys of a salted password.
#[derive(Clone, Copy)]
struct Keys {
    client_key: [u8; 32],
    server_key: [u8; 32],
}

struct Entry {
    /// SHA-256 of the password, so the cache holds no copy of it.
    password: [u8; 32],
    salt: Vec<u8>,
    iterations: NonZeroU32,
    keys: Keys,
}

thread_local! {
    static CACHE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    #[cfg(test)]
    static DERIVATIONS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The keys for (password, salt, iterations): from this shard's cache, or derived (and kept,
/// replacing the oldest entry when full).
fn keys(password: &[u8], salt: &[u8], iterations: NonZeroU32) -> Keys {
    let mut id = [0u8; 32];
    id.copy_from_slice(digest::digest(&digest::SHA256, password).as_ref());
    let cached = CACHE.with_borrow(|cache| {
        cache
            .iter()
            .find(|e| e.password == id && e.salt == salt && e.iterations == iterations)
            .map(|e| e.keys)
    });
    if let Some(keys) = cached {
        return keys;
    }
    #[cfg(test)]
    DERIVATIONS.set(DERIVATIONS.get() + 1);
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password,
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let mut keys = Keys {
        client_key: [0; 32],
        server_key: [0; 32],
    };
    keys.client_key
        .copy_from_slice(hmac::sign(&key, b"Client Key").as_ref());
    keys.server_key
        .copy_from_slice(hmac::sign(&key, b"Server Key").as_ref());
    CACHE.with_borrow_mut(|cache| {
        if cache.len() >= CACHE_CAP {
            cache.remove(0);
        }
        cache.push(Entry {
            password: id,
            salt: salt.to_vec(),
            iterations,
            keys,
        });
    });
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677's example exchange, with PostgreSQL's empty user name in place of `user`
    // (which changes the proofs, so they are checked against an independent computation).
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    /// The RFC's own messages with `n=user`: the client proof and server signature match it.
    #[test]
    fn rfc_7677_example_exchange() {
        let mut c = ScramClient::with_nonce("pencil", NONCE);
        c.client_first_bare = format!("n=user,r={NONCE}");
        let fin = c.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.finish(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn a_wrong_server_signature_or_nonce_or_error_fails() {
        let mut c = ScramClient::with_nonce("pencil", NONCE);
        c.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert!(matches!(
            c.finish(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadSignature)
        ));
        let mut c = ScramClient::with_nonce("pencil", "other");
        assert!(c.client_final(SERVER_FIRST.as_bytes()).is_err());
        let mut c = ScramClient::with_nonce("pencil", NONCE);
        assert!(matches!(
            c.client_final(b"e=invalid-proof"),
            Err(ScramError::Server(_))
        ));
        let mut c = ScramClient::with_nonce("pencil", NONCE);
        assert!(c.finish(b"v=x").is_err(), "final before first");
        assert!(c
            .client_final(b"r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096")
            .is_err());
        assert!(c
            .client_final(b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0")
            .is_err());
    }

    #[test]
    fn keys_are_derived_once_per_password_salt_and_count() {
        let salt = b"salt-of-this-test";
        let n = NonZeroU32::new(64).unwrap();
        let before = DERIVATIONS.get();
        let a = keys(b"secret", salt, n);
        let b = keys(b"secret", salt, n);
        assert_eq!(DERIVATIONS.get(), before + 1);
        assert_eq!(a.client_key, b.client_key);
        // Another password, salt or count is another entry.
        let c = keys(b"other", salt, n);
        keys(b"secret", b"another salt", n);
        keys(b"secret", salt, NonZeroU32::new(65).unwrap());
        assert_eq!(DERIVATIONS.get(), before + 4);
        assert_ne!(a.client_key, c.client_key);
    }
}
