//! Strict verification of session tokens against the gateway's public key.
//!
//! Order of checks: length cap, shape, header allowlist, key id, signature, then claims.
//! Nothing in the payload is parsed before the signature has been verified, and every time
//! check uses the caller's `now`, never the library's clock.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::claims::{ChainLink, Claims, MAX_TIMESTAMP};
use super::error::TokenError;
use super::header;
use super::keys::{thumbprint, SigningKey};
use super::settings::TokenSettings;

/// Longest token accepted, in bytes. Checked before any decoding so that a hostile client
/// cannot make the gateway base64-decode or parse megabytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies session tokens signed by one Ed25519 key.
pub struct TokenVerifier {
    key: DecodingKey,
    kid: String,
    settings: TokenSettings,
}

/// `aud` as it may appear on the wire. Only a string equal to our audience, or an array of
/// exactly one element equal to it, is accepted: a token addressed to several audiences could
/// be replayed against the other ones, and this gateway never issues such tokens.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Payload with every claim optional, so that an absent claim is reported by name.
/// The derived impl rejects duplicate members.
#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
    roles: Option<Vec<String>>,
    resources: Option<Vec<String>>,
    #[serde(default)]
    chain: Vec<ChainLink>,
}

impl TokenVerifier {
    /// A verifier for tokens signed by `key` (its public half is all that is kept).
    pub fn new(key: &SigningKey, settings: &TokenSettings) -> Self {
        Self::from_public_key(key.public_key_raw(), settings)
    }

    /// A verifier from a raw 32-byte Ed25519 public key.
    pub fn from_public_key(public: [u8; 32], settings: &TokenSettings) -> Self {
        TokenVerifier {
            // `from_ed_der` hands its bytes straight to ring as the raw public key.
            key: DecodingKey::from_ed_der(&public),
            kid: thumbprint(&public),
            settings: settings.clone(),
        }
    }

    /// Verify `token` as of `now` and return its claims.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if head.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(TokenError::Malformed);
        }

        let header = header::parse(head)?;
        if header.kid.is_some_and(|kid| kid != self.kid) {
            return Err(TokenError::UnknownKey);
        }

        // The algorithm is pinned here, not taken from the header.
        let message = &token[..head.len() + 1 + payload.len()];
        match jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &self.key,
            Algorithm::EdDSA,
        ) {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::InvalidSignature),
            // Only a signature segment that is not base64url gets here.
            Err(_) => return Err(TokenError::Malformed),
        }

        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let raw: RawClaims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        self.check(raw, now)
    }

    fn check(&self, raw: RawClaims, now: SystemTime) -> Result<Claims, TokenError> {
        let iss = raw.iss.ok_or(TokenError::MissingClaim("iss"))?;
        let aud = raw.aud.ok_or(TokenError::MissingClaim("aud"))?;
        let sub = non_empty(raw.sub, "sub")?;
        let exp = raw.exp.ok_or(TokenError::MissingClaim("exp"))?;
        let nbf = raw.nbf.ok_or(TokenError::MissingClaim("nbf"))?;
        let iat = raw.iat.ok_or(TokenError::MissingClaim("iat"))?;
        let jti = non_empty(raw.jti, "jti")?;
        let roles = raw.roles.ok_or(TokenError::MissingClaim("roles"))?;
        let resources = raw.resources.ok_or(TokenError::MissingClaim("resources"))?;
        if exp > MAX_TIMESTAMP || nbf > MAX_TIMESTAMP || iat > MAX_TIMESTAMP {
            return Err(TokenError::Malformed);
        }

        if iss != self.settings.issuer {
            return Err(TokenError::WrongIssuer);
        }
        let aud = match aud {
            Audience::One(a) => a,
            Audience::Many(mut list) if list.len() == 1 => list.remove(0),
            Audience::Many(_) => return Err(TokenError::WrongAudience),
        };
        if aud != self.settings.audience {
            return Err(TokenError::WrongAudience);
        }

        // A clock before 1970 can only make tokens look not-yet-valid, never extend them.
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let leeway = self.settings.leeway.as_secs();
        // RFC 7519: the current time must be strictly before `exp`.
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        let latest_start = now.saturating_add(leeway);
        if nbf > latest_start || iat > latest_start {
            return Err(TokenError::NotYetValid);
        }

        Ok(Claims {
            iss,
            aud,
            sub,
            exp,
            nbf,
            iat,
            jti,
            roles,
            resources,
            chain: raw.chain,
        })
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kid", &self.kid)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn non_empty(value: Option<String>, name: &'static str) -> Result<String, TokenError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(TokenError::MissingClaim(name))
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
