//! The signature algorithms accepted from identity providers, and which keys can verify them.
//! Only asymmetric algorithms exist here: HMAC and `none` cannot be configured or presented.

use jsonwebtoken::Algorithm;

/// What kind of key verifies an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// The algorithm named `name` (JOSE spelling, case-sensitive), if sluice verifies it.
pub(crate) fn parse(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Why `name` cannot be configured as a provider algorithm; `None` when it can.
pub fn algorithm_error(name: &str) -> Option<String> {
    if parse(name).is_some() {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    Some(if upper.starts_with("HS") || upper == "NONE" {
        format!("`{name}` is never accepted: provider tokens must be signed with a public-key algorithm")
    } else {
        format!("`{name}` is not a supported algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)")
    })
}

/// The JOSE name of an algorithm this module accepts.
pub(crate) fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        // Never produced by `parse`.
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => "HMAC",
    }
}

/// The key kind that verifies `alg`; `None` for HMAC, which is never used.
pub(crate) fn key_kind(alg: Algorithm) -> Option<KeyKind> {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Some(KeyKind::Rsa),
        Algorithm::ES256 => Some(KeyKind::P256),
        Algorithm::ES384 => Some(KeyKind::P384),
        Algorithm::EdDSA => Some(KeyKind::Ed25519),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_key_algorithms_parse() {
        for n in ["RS256", "PS512", "ES256", "ES384", "EdDSA"] {
            let alg = parse(n).unwrap();
            assert_eq!(name(alg), n);
            assert!(key_kind(alg).is_some());
            assert_eq!(algorithm_error(n), None);
        }
        for n in [
            "HS256", "HS512", "none", "None", "rs256", "ES512", "EDDSA", "",
        ] {
            assert_eq!(parse(n), None, "{n}");
            assert!(algorithm_error(n).is_some(), "{n}");
        }
        assert!(algorithm_error("HS256").unwrap().contains("never"));
        assert!(algorithm_error("none").unwrap().contains("never"));
    }
}
