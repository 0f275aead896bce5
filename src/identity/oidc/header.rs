//! The JOSE header of a provider token, read before any signature work.
//!
//! The header is attacker-controlled. It may only choose among the algorithms sluice
//! implements (the provider's own allowlist is applied later) and name a key of the provider's
//! key set. Parameters that carry or point at keys (`jku`, `x5u`, `jwk`, `x5c`) are refused and
//! never followed; `crit` is refused since no extension is understood; `cty` (nested tokens)
//! and `b64` (unencoded payloads) change what is signed and are refused too. Certificate
//! thumbprints (`x5t`, `x5t#S256`, sent by GitHub Actions) and other informational parameters
//! are ignored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::alg;
use super::error::ExchangeError;
use super::json::{parse_object, StrictJsonError};

/// Parameters that carry or locate a key.
const KEY_BEARING: &[&str] = &["jku", "x5u", "jwk", "x5c"];
/// Parameters that change how the token must be processed.
const PROCESSING: &[&str] = &["cty", "b64", "zip", "enc"];

/// What the header may decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
}

/// Decodes and checks the base64url header segment.
pub(crate) fn parse(segment: &str) -> Result<Header, ExchangeError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| ExchangeError::Malformed)?;
    let map = parse_object(&bytes).map_err(json_error)?;
    // The algorithm is judged first so that `none` and HMAC always report as such.
    let alg = match map.get("alg") {
        Some(Value::String(a)) => alg::parse(a).ok_or(ExchangeError::UnsupportedAlgorithm)?,
        _ => return Err(ExchangeError::UnsupportedAlgorithm),
    };
    if map.contains_key("crit") {
        return Err(ExchangeError::CriticalHeader);
    }
    if KEY_BEARING.iter().any(|k| map.contains_key(*k)) {
        return Err(ExchangeError::KeyInHeader);
    }
    if PROCESSING.iter().any(|k| map.contains_key(*k)) {
        return Err(ExchangeError::UnsupportedHeader);
    }
    match map.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(ExchangeError::UnsupportedHeader),
    }
    let kid = match map.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(ExchangeError::Malformed),
    };
    Ok(Header { alg, kid })
}

pub(crate) fn json_error(e: StrictJsonError) -> ExchangeError {
    match e {
        StrictJsonError::Invalid => ExchangeError::Malformed,
        StrictJsonError::Duplicate => ExchangeError::DuplicateMember,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn accepts_what_providers_send() {
        let github = r#"{"typ":"JWT","alg":"RS256","x5t":"abc","kid":"k1"}"#;
        let h = parse(&seg(github)).unwrap();
        assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::RS256, Some("k1")));
        let h = parse(&seg(r#"{"alg":"EdDSA","x5t#S256":"x"}"#)).unwrap();
        assert_eq!((h.alg, h.kid), (Algorithm::EdDSA, None));
    }

    #[test]
    fn judges_each_header_problem_distinctly() {
        for (json, want) in [
            (r#"{"alg":"none"}"#, ExchangeError::UnsupportedAlgorithm),
            (
                r#"{"alg":"HS256","kid":"k"}"#,
                ExchangeError::UnsupportedAlgorithm,
            ),
            (r#"{"alg":"ES512"}"#, ExchangeError::UnsupportedAlgorithm),
            (r#"{"alg":["RS256"]}"#, ExchangeError::UnsupportedAlgorithm),
            (r#"{"typ":"JWT"}"#, ExchangeError::UnsupportedAlgorithm),
            (
                r#"{"alg":"RS256","crit":["exp"]}"#,
                ExchangeError::CriticalHeader,
            ),
            (
                r#"{"alg":"RS256","jku":"https://127.0.0.1/"}"#,
                ExchangeError::KeyInHeader,
            ),
            (
                r#"{"alg":"RS256","x5u":"https://127.0.0.1/"}"#,
                ExchangeError::KeyInHeader,
            ),
            (
                r#"{"alg":"RS256","jwk":{"kty":"RSA"}}"#,
                ExchangeError::KeyInHeader,
            ),
            (
                r#"{"alg":"RS256","x5c":["MIIB"]}"#,
                ExchangeError::KeyInHeader,
            ),
            (
                r#"{"alg":"RS256","cty":"JWT"}"#,
                ExchangeError::UnsupportedHeader,
            ),
            (
                r#"{"alg":"RS256","b64":false}"#,
                ExchangeError::UnsupportedHeader,
            ),
            (
                r#"{"alg":"RS256","typ":"at+jwt"}"#,
                ExchangeError::UnsupportedHeader,
            ),
            (r#"{"alg":"RS256","kid":7}"#, ExchangeError::Malformed),
            (
                r#"{"alg":"HS256","alg":"RS256"}"#,
                ExchangeError::DuplicateMember,
            ),
            (
                r#"{"alg":"RS256","kid":"a","kid":"b"}"#,
                ExchangeError::DuplicateMember,
            ),
            ("[1]", ExchangeError::Malformed),
        ] {
            assert_eq!(parse(&seg(json)), Err(want), "{json}");
        }
        assert_eq!(parse("!!"), Err(ExchangeError::Malformed));
    }
}
