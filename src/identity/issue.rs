//! Minting session tokens with the gateway's key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::{SecureRandom as _, SystemRandom};

use super::claims::{ChainLink, Claims, MAX_TIMESTAMP};
use super::error::IdentityError;
use super::keys::SigningKey;
use super::settings::TokenSettings;

/// What a new token should say. Issuer, audience, times and `jti` are filled in by the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// The machine identity the token stands for; must not be empty.
    pub subject: String,
    /// Roles to grant.
    pub roles: Vec<String>,
    /// Resources the token may reach (`"*"` for all).
    pub resources: Vec<String>,
    /// Lifetime; at least one second, whole seconds (fractions are dropped).
    pub ttl: Duration,
    /// Delegation chain, root first; empty for a root token.
    pub chain: Vec<ChainLink>,
}

/// Signs session tokens. Cheap to share behind an `Arc`; holds a copy of the key.
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
    settings: TokenSettings,
    rng: SystemRandom,
}

impl TokenIssuer {
    /// An issuer signing with `key` and stamping `settings.issuer` / `settings.audience`.
    pub fn new(key: &SigningKey, settings: &TokenSettings) -> Self {
        TokenIssuer {
            // jsonwebtoken's EdDSA signer takes the PKCS#8 document, despite the name.
            key: EncodingKey::from_ed_der(key.pkcs8_der()),
            kid: key.key_id().to_owned(),
            settings: settings.clone(),
            rng: SystemRandom::new(),
        }
    }

    /// Mint a token valid from `now` for `req.ttl`. Returns the compact JWS and its claims.
    pub fn issue(
        &self,
        req: &IssueRequest,
        now: SystemTime,
    ) -> Result<(String, Claims), IdentityError> {
        if req.subject.is_empty() {
            return Err(IdentityError::InvalidRequest("subject is empty"));
        }
        let ttl = req.ttl.as_secs();
        if ttl == 0 {
            return Err(IdentityError::InvalidRequest(
                "ttl must be at least one second",
            ));
        }
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| IdentityError::ClockBeforeEpoch)?
            .as_secs();
        let exp = iat
            .checked_add(ttl)
            .filter(|exp| *exp <= MAX_TIMESTAMP)
            .ok_or(IdentityError::InvalidRequest("ttl too long"))?;

        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: req.subject.clone(),
            exp,
            nbf: iat,
            iat,
            jti: self.new_jti()?,
            roles: req.roles.clone(),
            resources: req.resources.clone(),
            chain: req.chain.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| IdentityError::Sign(e.to_string()))?;
        Ok((token, claims))
    }

    /// 128 random bits, base64url: unguessable, so a `jti` cannot be predicted to pre-empt
    /// or collide with a revocation. An id that would begin with `-` or `_` is drawn again, so
    /// that ids pass through command lines (`--id -R...` reads as a flag) and shell tools
    /// unharmed; that costs about a twentieth of one bit.
    fn new_jti(&self) -> Result<String, IdentityError> {
        let mut bytes = [0u8; 16];
        loop {
            self.rng
                .fill(&mut bytes)
                .map_err(|_| IdentityError::Sign("random source failed".into()))?;
            let id = URL_SAFE_NO_PAD.encode(bytes);
            if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                return Ok(id);
            }
        }
    }
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
