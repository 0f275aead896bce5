//! The claims carried by a session token and the questions the data path asks of them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Latest timestamp a token may carry: 9999-12-31T23:59:59Z. Anything later is treated as
/// malformed so that converting it to a `SystemTime` can never overflow.
pub const MAX_TIMESTAMP: u64 = 253_402_300_799;

/// One ancestor in a delegation chain: its token id and its name (the ancestor's subject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    /// `jti` of the ancestor token.
    pub jti: String,
    /// The ancestor's subject (recorded in audit, never used for decisions).
    pub name: String,
}

/// The payload of a sluice session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the gateway that signed the token.
    pub iss: String,
    /// Audience: the gateway deployment the token is meant for.
    pub aud: String,
    /// Subject: the machine identity the token stands for.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Not valid before, unix seconds.
    pub nbf: u64,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Unique token id (128 random bits, base64url): the handle for revocation and audit.
    pub jti: String,
    /// Roles granted to the subject.
    pub roles: Vec<String>,
    /// Resources the token may reach; `"*"` means all of them.
    pub resources: Vec<String>,
    /// The ancestors this token was delegated from, root first; empty for a root token. The
    /// token's own link is (`jti`, `sub`).
    #[serde(default)]
    pub chain: Vec<ChainLink>,
}

impl Claims {
    /// Whether the token may reach the resource `name`: an exact match, or the wildcard `"*"`.
    pub fn allows_resource(&self, name: &str) -> bool {
        self.resources.iter().any(|r| r == "*" || r == name)
    }

    /// The instant the token stops being valid (leeway not included).
    pub fn expires_at(&self) -> SystemTime {
        let secs = self.exp.min(MAX_TIMESTAMP);
        UNIX_EPOCH + Duration::from_secs(secs)
    }
}

impl Claims {
    /// Tests: the claims of token `jti` (its subject too) whose ancestors are `chain` (each
    /// ancestor's name is its id), expiring at `exp`, with no roles or resources.
    #[cfg(test)]
    pub(crate) fn test_chain(jti: &str, chain: &[&str], exp: u64) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: jti.into(),
            exp,
            nbf: 0,
            iat: 0,
            jti: jti.into(),
            roles: vec![],
            resources: vec![],
            chain: chain
                .iter()
                .map(|j| ChainLink {
                    jti: j.to_string(),
                    name: j.to_string(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(resources: &[&str]) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "s".into(),
            exp: 100,
            nbf: 0,
            iat: 0,
            jti: "j".into(),
            roles: vec![],
            resources: resources.iter().map(|s| s.to_string()).collect(),
            chain: vec![],
        }
    }

    #[test]
    fn allows_resource_exact_or_wildcard() {
        let c = claims(&["orders", "billing"]);
        assert!(c.allows_resource("orders"));
        assert!(c.allows_resource("billing"));
        assert!(!c.allows_resource("Orders"));
        assert!(!c.allows_resource("order"));
        assert!(!c.allows_resource("*"));
        assert!(!c.allows_resource(""));
        assert!(claims(&["*"]).allows_resource("anything"));
        assert!(!claims(&[]).allows_resource("orders"));
    }

    #[test]
    fn expires_at_is_exp_and_never_overflows() {
        let mut c = claims(&[]);
        assert_eq!(c.expires_at(), UNIX_EPOCH + Duration::from_secs(100));
        c.exp = u64::MAX;
        assert_eq!(
            c.expires_at(),
            UNIX_EPOCH + Duration::from_secs(MAX_TIMESTAMP)
        );
    }

    #[test]
    fn chain_defaults_to_empty() {
        let json = r#"{"iss":"i","aud":"a","sub":"s","exp":1,"nbf":0,"iat":0,"jti":"j","roles":[],"resources":[]}"#;
        let c: Claims = serde_json::from_str(json).unwrap();
        assert!(c.chain.is_empty());
    }
}
