//! Strict reading of a token's JOSE header, done before any signature work.
//!
//! The header is attacker-controlled, so it is read with an allowlist: `alg` must be
//! `EdDSA`, `typ` may only be `JWT`, `kid` may name our key, and nothing else is accepted.
//! Parameters that would point at other keys (`jku`, `jwk`, `x5u`, `x5c`) or demand
//! extensions (`crit`) are refused, never followed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::TokenError;

/// Header parameters the gateway understands; any other parameter rejects the token.
const ALLOWED: &[&str] = &["alg", "typ", "kid"];

/// The parts of the header that survive the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenHeader {
    pub(crate) kid: Option<String>,
}

/// Typed view used after the allowlist check; serde's derived impl refuses duplicate
/// members, which closes the "first vs last duplicate wins" parser differential.
#[derive(Deserialize)]
struct Typed {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Decode and check the base64url header segment of a compact JWS.
pub(crate) fn parse(segment: &str) -> Result<TokenHeader, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)?;
    let map: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;

    // The algorithm is judged first so that `alg: none` or HS256 always reports as such.
    match map.get("alg") {
        Some(Value::String(alg)) if alg == "EdDSA" => {}
        _ => return Err(TokenError::UnsupportedAlgorithm),
    }
    if map.keys().any(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(TokenError::UnsupportedHeader);
    }

    let typed: Typed = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if typed.alg != "EdDSA" {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    if typed.typ.as_deref().is_some_and(|t| t != "JWT") {
        return Err(TokenError::UnsupportedHeader);
    }
    Ok(TokenHeader { kid: typed.kid })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn accepts_minimal_and_full_headers() {
        assert_eq!(parse(&seg(r#"{"alg":"EdDSA"}"#)).unwrap().kid, None);
        let h = parse(&seg(r#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#)).unwrap();
        assert_eq!(h.kid.as_deref(), Some("k1"));
    }

    #[test]
    fn rejects_other_algorithms() {
        for alg in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"ES256"}"#,
            r#"{"alg":"eddsa"}"#,
            r#"{"alg":"Ed25519"}"#,
            r#"{"alg":["EdDSA"]}"#,
            r#"{"alg":null}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            assert_eq!(
                parse(&seg(alg)),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn rejects_key_bearing_and_critical_parameters() {
        for extra in [
            r#""crit":["exp"]"#,
            r#""jku":"https://127.0.0.1/jwks""#,
            r#""jwk":{"kty":"OKP"}"#,
            r#""x5u":"https://127.0.0.1/cert""#,
            r#""x5c":["MIIB"]"#,
            r#""cty":"JWT""#,
            r#""b64":false"#,
        ] {
            let json = format!(r#"{{"alg":"EdDSA",{extra}}}"#);
            assert_eq!(
                parse(&seg(&json)),
                Err(TokenError::UnsupportedHeader),
                "{json}"
            );
        }
    }

    #[test]
    fn rejects_wrong_typ_and_duplicates() {
        assert_eq!(
            parse(&seg(r#"{"alg":"EdDSA","typ":"at+jwt"}"#)),
            Err(TokenError::UnsupportedHeader)
        );
        assert_eq!(
            parse(&seg(r#"{"alg":"EdDSA","typ":7}"#)),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            parse(&seg(r#"{"alg":"HS256","alg":"EdDSA"}"#)),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            parse(&seg(r#"{"alg":"EdDSA","alg":"EdDSA"}"#)),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn rejects_bad_encoding() {
        assert_eq!(parse("!!!"), Err(TokenError::Malformed));
        assert_eq!(parse(&seg("[1,2]")), Err(TokenError::Malformed));
        assert_eq!(parse(&seg("not json")), Err(TokenError::Malformed));
        // Padded base64 is not base64url-without-padding.
        let padded = base64::engine::general_purpose::URL_SAFE.encode(r#"{"alg":"EdDSA" }"#);
        assert!(padded.ends_with('='));
        assert_eq!(parse(&padded), Err(TokenError::Malformed));
    }
}
