//! Identity providers whose tokens the control plane exchanges for session tokens
//! (`[[identity.provider]]`), and the rules that map their claims to roles and resources
//! (`[[identity.provider.map]]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::human;

/// One OIDC identity provider (or CI job-token issuer).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// Name used in logs, audit events and errors.
    pub name: String,
    /// Required `iss` of its tokens, compared exactly.
    pub issuer: String,
    /// Required `aud` (a string equal to it, or an array containing it).
    pub audience: String,
    /// JWKS from a file, read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// JWKS from a URL (`https://`, or `http://` on a loopback address), fetched at start and
    /// every `jwks_refresh`; the last good key set is kept through a failed refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// CA bundle for an `https://` JWKS URL; the public web roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_ca_file: Option<PathBuf>,
    #[serde(with = "human", default = "jwks_refresh")]
    pub jwks_refresh: Duration,
    /// Signature algorithms accepted from this provider (RS256, ES256, EdDSA, ...); never HMAC
    /// or `none`.
    #[serde(default = "algorithms")]
    pub algorithms: Vec<String>,
    /// The claim that names the identity (becomes the session token's subject).
    #[serde(default = "subject_claim")]
    pub subject_claim: String,
    /// Longest lifetime (`exp - iat`) accepted for this provider's tokens.
    #[serde(with = "human", default = "max_token_lifetime")]
    pub max_token_lifetime: Duration,
    /// Claim rules, tried in order; the first that matches decides the grant.
    #[serde(rename = "map", default)]
    pub mappings: Vec<MappingSection>,
}

/// `when` the provider's claims match, grant `roles` on `resources` for at most `ttl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSection {
    /// A condition over the claims, e.g. `repository == "acme/api" and ref == "refs/heads/main"`.
    pub when: String,
    pub roles: Vec<String>,
    pub resources: Vec<String>,
    /// Lifetime of the session token; `identity.default_ttl` when absent. Never beyond the
    /// provider token's own expiry or `identity.max_ttl`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::model::human_opt"
    )]
    pub ttl: Option<Duration>,
}

fn jwks_refresh() -> Duration {
    Duration::from_secs(300)
}
fn algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}
fn subject_claim() -> String {
    "sub".into()
}
fn max_token_lifetime() -> Duration {
    Duration::from_secs(24 * 3600)
}
