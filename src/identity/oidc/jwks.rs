//! JSON Web Key Sets (RFC 7517) of identity providers: the public keys their tokens are
//! verified with, and the choice of key for one token.
//!
//! Only signature keys of the types the accepted algorithms need are kept: RSA (at least 2048
//! bits), EC on P-256 or P-384, and OKP Ed25519. Symmetric (`oct`) keys are dropped on sight, so
//! no provider secret can ever be used as an HMAC key. Keys of other types are skipped rather
//! than refused, since a provider may publish keys sluice has no use for.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::alg::{key_kind, name, KeyKind};
use super::error::{ExchangeError, JwksError};
use super::json::{parse_object, StrictJsonError};

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (ring's limit).
const MAX_RSA_BITS: usize = 8192;

/// One usable public key.
struct Jwk {
    kid: Option<String>,
    kind: KeyKind,
    /// Its `alg` member, if any: then it verifies that algorithm only.
    alg: Option<String>,
    /// `use` is `sig` or absent, and `key_ops` (if any) includes `verify`.
    for_signatures: bool,
    key: DecodingKey,
}

/// A provider's keys.
pub(crate) struct KeySet {
    keys: Vec<Jwk>,
    /// Why entries were skipped, for the log.
    pub(crate) skipped: Vec<String>,
}

impl KeySet {
    /// Parses a JWKS document. Entries that are not usable are skipped (and said why); a
    /// document without any usable signature key is an error.
    pub(crate) fn parse(bytes: &[u8]) -> Result<KeySet, JwksError> {
        let doc = parse_object(bytes).map_err(|e| {
            JwksError::Shape(match e {
                StrictJsonError::Invalid => "not a JSON object".into(),
                StrictJsonError::Duplicate => "duplicate JSON member".into(),
            })
        })?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::Shape("no `keys` array".into()));
        };
        let mut set = KeySet {
            keys: Vec::new(),
            skipped: Vec::new(),
        };
        for (i, entry) in entries.iter().enumerate() {
            let label = entry
                .get("kid")
                .and_then(Value::as_str)
                .map_or_else(|| format!("key {i}"), |k| format!("key `{k}`"));
            match entry.as_object().ok_or("not an object").and_then(parse_key) {
                Ok(Some(jwk)) => set.keys.push(jwk),
                Ok(None) => {}
                Err(why) => set.skipped.push(format!("{label}: {why}")),
            }
        }
        if !set.keys.iter().any(|k| k.for_signatures) {
            let why = if set.skipped.is_empty() {
                "no RSA, EC or OKP signature keys".to_owned()
            } else {
                set.skipped.join("; ")
            };
            return Err(JwksError::NoUsableKey(why));
        }
        Ok(set)
    }

    /// Number of keys kept.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys that may verify a token signed with `alg` naming `kid`.
    ///
    /// A `kid` must name a key of the set; a token without one is accepted only when exactly
    /// one key fits the algorithm, so that no token can pick among keys by omission.
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<&DecodingKey>, ExchangeError> {
        let kind = key_kind(alg).ok_or(ExchangeError::UnsupportedAlgorithm)?;
        let fits = |k: &&Jwk| {
            k.for_signatures && k.kind == kind && k.alg.as_deref().is_none_or(|a| a == name(alg))
        };
        let keys: Vec<&Jwk> = match kid {
            Some(kid) => {
                let named: Vec<&Jwk> = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect();
                if named.is_empty() {
                    return Err(ExchangeError::UnknownKey);
                }
                let fitting: Vec<&Jwk> = named.into_iter().filter(fits).collect();
                if fitting.is_empty() {
                    return Err(ExchangeError::KeyMismatch);
                }
                fitting
            }
            None => {
                let fitting: Vec<&Jwk> = self.keys.iter().filter(fits).collect();
                match fitting.len() {
                    0 => return Err(ExchangeError::UnknownKey),
                    1 => fitting,
                    _ => return Err(ExchangeError::AmbiguousKey),
                }
            }
        };
        Ok(keys.into_iter().map(|k| &k.key).collect())
    }
}

/// One JWK: `Ok(None)` for a symmetric key (ignored silently), `Err` for one that is skipped.
fn parse_key(m: &Map<String, Value>) -> Result<Option<Jwk>, &'static str> {
    let text = |name: &str| m.get(name).and_then(Value::as_str);
    let kid = match m.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err("`kid` is not a string"),
    };
    let alg = match m.get("alg") {
        None => None,
        Some(Value::String(a)) => Some(a.clone()),
        Some(_) => return Err("`alg` is not a string"),
    };
    let use_sig = match m.get("use") {
        None => true,
        Some(Value::String(u)) => u == "sig",
        Some(_) => return Err("`use` is not a string"),
    };
    let verify_op = match m.get("key_ops") {
        None => true,
        Some(Value::Array(ops)) => ops.iter().any(|o| o.as_str() == Some("verify")),
        Some(_) => return Err("`key_ops` is not an array"),
    };
    let b64 = |name: &str| -> Result<Vec<u8>, &'static str> {
        let v = text(name).ok_or("a key member is missing or not a string")?;
        URL_SAFE_NO_PAD
            .decode(v)
            .map_err(|_| "a key member is not base64url")
    };
    let (kind, key) = match text("kty") {
        Some("oct") => return Ok(None),
        Some("RSA") => {
            let n = b64("n")?;
            let e = b64("e")?;
            let first = n.iter().position(|&b| b != 0).unwrap_or(n.len());
            let bits =
                (n.len() - first) * 8 - n.get(first).map_or(0, |b| b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err("RSA modulus shorter than 2048 bits");
            }
            if bits > MAX_RSA_BITS {
                return Err("RSA modulus longer than 8192 bits");
            }
            if e.is_empty() || e.len() > 8 {
                return Err("RSA exponent out of range");
            }
            let key = DecodingKey::from_rsa_components(
                text("n").unwrap_or_default(),
                text("e").unwrap_or_default(),
            )
            .map_err(|_| "RSA key is not usable")?;
            (KeyKind::Rsa, key)
        }
        Some("EC") => {
            let (kind, len) = match text("crv") {
                Some("P-256") => (KeyKind::P256, 32),
                Some("P-384") => (KeyKind::P384, 48),
                _ => return Err("EC curve is not P-256 or P-384"),
            };
            if b64("x")?.len() != len || b64("y")?.len() != len {
                return Err("EC coordinates have the wrong length for the curve");
            }
            let key = DecodingKey::from_ec_components(
                text("x").unwrap_or_default(),
                text("y").unwrap_or_default(),
            )
            .map_err(|_| "EC key is not usable")?;
            (kind, key)
        }
        Some("OKP") => {
            if text("crv") != Some("Ed25519") {
                return Err("OKP curve is not Ed25519");
            }
            if b64("x")?.len() != 32 {
                return Err("Ed25519 key is not 32 bytes");
            }
            let key = DecodingKey::from_ed_components(text("x").unwrap_or_default())
                .map_err(|_| "Ed25519 key is not usable")?;
            (KeyKind::Ed25519, key)
        }
        Some(_) => return Err("unsupported key type"),
        None => return Err("no `kty`"),
    };
    Ok(Some(Jwk {
        kid,
        kind,
        alg,
        for_signatures: use_sig && verify_op,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_JWKS: &str = include_str!("testdata/rs256.jwks.json");
    const SMALL_RSA_JWKS: &str = include_str!("testdata/rsa1024.jwks.json");
    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn okp(extra: &str) -> String {
        format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"{X}"{extra}}}]}}"#)
    }

    #[test]
    fn keeps_rsa_ec_and_okp_keys() {
        let set = KeySet::parse(RSA_JWKS.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(
            set.select(Some("rsa-1"), Algorithm::RS256).unwrap().len(),
            1
        );
        let ec = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"ec","x":"{P256_X}","y":"{P256_Y}"}}]}}"#
        );
        let set = KeySet::parse(ec.as_bytes()).unwrap();
        assert_eq!(set.select(Some("ec"), Algorithm::ES256).unwrap().len(), 1);
        // The P-256 key cannot verify ES384, nor an RSA algorithm.
        assert_eq!(
            set.select(Some("ec"), Algorithm::ES384).err(),
            Some(ExchangeError::KeyMismatch)
        );
        assert_eq!(
            set.select(Some("ec"), Algorithm::RS256).err(),
            Some(ExchangeError::KeyMismatch)
        );
        let set = KeySet::parse(okp("").as_bytes()).unwrap();
        assert_eq!(set.select(Some("ed"), Algorithm::EdDSA).unwrap().len(), 1);
    }

    #[test]
    fn refuses_rsa_moduli_below_2048_bits() {
        match KeySet::parse(SMALL_RSA_JWKS.as_bytes()) {
            Err(JwksError::NoUsableKey(why)) => assert!(why.contains("2048"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn ignores_symmetric_keys_entirely() {
        let doc = format!(
            r#"{{"keys":[{{"kty":"oct","kid":"ed","k":"c2VjcmV0"}},
                        {{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"{X}"}}]}}"#
        );
        let set = KeySet::parse(doc.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.skipped.is_empty());
        let only_oct = r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#;
        assert!(matches!(
            KeySet::parse(only_oct.as_bytes()),
            Err(JwksError::NoUsableKey(_))
        ));
    }

    #[test]
    fn keys_for_other_uses_or_algorithms_are_not_used() {
        let doc = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"enc","use":"enc","x":"{X}"}},
                        {{"kty":"OKP","crv":"Ed25519","kid":"ops","key_ops":["encrypt"],"x":"{X}"}},
                        {{"kty":"OKP","crv":"Ed25519","kid":"other","alg":"ES256","x":"{X}"}},
                        {{"kty":"OKP","crv":"Ed25519","kid":"good","alg":"EdDSA","use":"sig","x":"{X}"}}]}}"#
        );
        let set = KeySet::parse(doc.as_bytes()).unwrap();
        for kid in ["enc", "ops", "other"] {
            assert_eq!(
                set.select(Some(kid), Algorithm::EdDSA).err(),
                Some(ExchangeError::KeyMismatch),
                "{kid}"
            );
        }
        assert_eq!(set.select(Some("good"), Algorithm::EdDSA).unwrap().len(), 1);
        // Only `good` fits EdDSA, so a token without kid may use it.
        assert_eq!(set.select(None, Algorithm::EdDSA).unwrap().len(), 1);
        assert_eq!(
            set.select(Some("nope"), Algorithm::EdDSA).err(),
            Some(ExchangeError::UnknownKey)
        );
    }

    #[test]
    fn a_token_without_kid_needs_exactly_one_candidate() {
        let two = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"a","x":"{X}"}},
                        {{"kty":"OKP","crv":"Ed25519","kid":"b","x":"{X}"}}]}}"#
        );
        let set = KeySet::parse(two.as_bytes()).unwrap();
        assert_eq!(
            set.select(None, Algorithm::EdDSA).err(),
            Some(ExchangeError::AmbiguousKey)
        );
        assert_eq!(
            set.select(None, Algorithm::RS256).err(),
            Some(ExchangeError::UnknownKey)
        );
    }

    #[test]
    fn skips_what_it_cannot_use_and_says_why() {
        let doc = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-521","kid":"big","x":"AA","y":"AA"}},
                        {{"kty":"EC","crv":"P-256","kid":"short","x":"AAAA","y":"AAAA"}},
                        {{"kty":"OKP","crv":"X25519","kid":"dh","x":"{X}"}},
                        {{"kty":"OKP","crv":"Ed25519","kid":"pad","x":"{X}="}},
                        {{"kty":"XYZ"}}, 7,
                        {{"kty":"OKP","crv":"Ed25519","kid":"ok","x":"{X}"}}]}}"#
        );
        let set = KeySet::parse(doc.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped.len(), 6, "{:?}", set.skipped);
        assert!(set.skipped[0].starts_with("key `big`"), "{:?}", set.skipped);
    }

    #[test]
    fn refuses_documents_of_the_wrong_shape() {
        for doc in [
            &b"[]"[..],
            b"{}",
            b"{\"keys\":{}}",
            b"not json",
            b"{\"keys\":[],\"keys\":[]}",
        ] {
            assert!(matches!(KeySet::parse(doc), Err(JwksError::Shape(_))));
        }
        assert!(matches!(
            KeySet::parse(b"{\"keys\":[]}"),
            Err(JwksError::NoUsableKey(_))
        ));
    }
}
