//! The admin API's JSON bodies, shared by the control plane that serves them and the
//! `sluice token` / `sluice sessions` commands that call them.
//!
//! Request bodies refuse unknown fields (a misspelt `ttl` must not silently mean "default");
//! response bodies tolerate them, so an older client keeps working against a newer gateway.

use serde::{Deserialize, Serialize};

pub use crate::identity::ChainLink;

/// `POST`: exchange an identity provider's token for a session token.
pub const TOKEN_EXCHANGE_PATH: &str = "/v1/token/exchange";
/// `POST`, bearer = parent token: mint a narrower child token.
pub const TOKEN_DELEGATE_PATH: &str = "/v1/token/delegate";
/// `POST`, bearer = caller token: revoke a token and everything derived from it.
pub const TOKEN_REVOKE_PATH: &str = "/v1/token/revoke";
/// `GET`, bearer = admin token: the live sessions.
pub const SESSIONS_PATH: &str = "/v1/sessions";

/// Body of [`TOKEN_EXCHANGE_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The identity provider's JWT (e.g. a CI job's OIDC token).
    pub id_token: String,
}

/// Body of [`TOKEN_DELEGATE_PATH`]. The child gets at most what the parent holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegateRequest {
    /// Name of the delegate, recorded in the chain and the audit trail.
    pub name: String,
    /// Roles for the child: each one the parent holds or weaker.
    pub roles: Vec<String>,
    /// Resources for the child: a subset of the parent's.
    pub resources: Vec<String>,
    /// Lifetime as a duration string (`5m`, see [`crate::config::parse_duration`]); absent
    /// means the gateway's default, and never past the parent's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// Body of [`TOKEN_REVOKE_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// `jti` of the token to revoke.
    pub token_id: String,
}

/// Answer of [`TOKEN_REVOKE_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeResponse {
    /// `jti` of the revoked token.
    pub revoked: String,
    /// When the revocation took effect, unix seconds.
    pub at: u64,
    /// Whether it had been revoked before.
    #[serde(default)]
    pub already: bool,
}

/// Answer of [`TOKEN_EXCHANGE_PATH`] and [`TOKEN_DELEGATE_PATH`]: the new token and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The session token (compact JWS).
    pub token: String,
    /// Its `jti`.
    pub token_id: String,
    /// Its `sub`.
    pub subject: String,
    pub roles: Vec<String>,
    pub resources: Vec<String>,
    /// Its `exp`, unix seconds.
    pub expires_at: u64,
    /// Its ancestors, root first; empty for a token from an exchange.
    #[serde(default)]
    pub chain: Vec<ChainLink>,
}

/// Answer of [`SESSIONS_PATH`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionEntry>,
}

/// One live session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// Session id, unique within the gateway process.
    pub session: u64,
    /// Shard (core) serving it.
    pub shard: usize,
    /// `jti` of the token it authenticated with.
    pub token_id: String,
    /// `sub` of that token.
    pub subject: String,
    /// That token's ancestors, root first.
    #[serde(default)]
    pub chain: Vec<ChainLink>,
    pub roles: Vec<String>,
    /// The resource it reaches (the PostgreSQL database name it asked for).
    pub resource: String,
    /// The client's free-form user name.
    pub user: String,
    /// The client's address, `ip:port`.
    pub client: String,
    /// When it authenticated, unix seconds.
    pub started_at: f64,
    /// Statements judged so far.
    pub statements: u64,
}

/// `GET`, bearer = an approver or admin token: pending and recent approval requests.
pub const APPROVALS_PATH: &str = "/v1/approvals";

/// Answer of [`APPROVALS_PATH`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalsResponse {
    /// Waiting, oldest first.
    pub pending: Vec<crate::approvals::Request>,
    /// Decided, timed out or withdrawn, newest first.
    pub recent: Vec<crate::approvals::Request>,
}

/// Body of `POST /v1/approvals/{id}/approve` and `.../deny` (may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Recorded with the decision and shown to the client on a denial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Approve also the same statement fingerprint by the same identity for this long (`10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

/// The path deciding approval `id`: `approve` or `deny`.
pub fn decision_path(id: &str, approve: bool) -> String {
    let verb = if approve { "approve" } else { "deny" };
    format!("{APPROVALS_PATH}/{id}/{verb}")
}

/// Body of every error answer, whatever the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code for scripts and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `snake_case`, stable across releases (e.g. `token_expired`, `scope_widening`).
    pub code: String,
    /// Human text; never echoes a token.
    pub message: String,
}

impl ErrorBody {
    /// An error body with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegate_request_omits_absent_ttl_and_refuses_unknown_fields() {
        let mut req = DelegateRequest {
            name: "report-subagent".into(),
            roles: vec!["reader".into()],
            resources: vec!["orders".into()],
            ttl: None,
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"name":"report-subagent","roles":["reader"],"resources":["orders"]}"#
        );
        req.ttl = Some("5m".into());
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.ends_with(r#","ttl":"5m"}"#), "{json}");
        assert_eq!(serde_json::from_str::<DelegateRequest>(&json).unwrap(), req);
        let typo = r#"{"name":"n","roles":[],"resources":[],"tll":"5m"}"#;
        assert!(serde_json::from_str::<DelegateRequest>(typo).is_err());
    }

    #[test]
    fn responses_tolerate_new_fields() {
        let json = r#"{"token":"t","token_id":"j","subject":"s","roles":["r"],
            "resources":["o"],"expires_at":7,"chain":[{"jti":"p","name":"root"}],"kid":"x"}"#;
        let r: TokenResponse = serde_json::from_str(json).unwrap();
        assert_eq!(r.chain[0].name, "root");
        assert_eq!(r.expires_at, 7);
    }

    #[test]
    fn error_body_shape() {
        let body = ErrorBody::new("token_expired", "the parent token has expired");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"token_expired","message":"the parent token has expired"}}"#
        );
    }
}
