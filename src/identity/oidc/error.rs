//! Errors of provider-token exchange: start-up failures (the operator's side) and refusals of a
//! presented token (the caller's side, or a provider whose keys cannot be had).

use std::path::PathBuf;

/// Why the providers could not be set up. Messages name files and providers, never key bytes.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// A JWKS file could not be read.
    #[error("identity provider `{provider}`: cannot read {}: {source}", path.display())]
    Read {
        provider: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key set (file or fetched) is not usable.
    #[error("identity provider `{provider}`: {source}")]
    Jwks { provider: String, source: JwksError },
    /// Fetching a key set failed.
    #[error("identity provider `{provider}`: fetching {url}: {reason}")]
    Fetch {
        provider: String,
        url: String,
        reason: String,
    },
    /// A provider's settings are unusable (the configuration validation reports these too).
    #[error("identity provider `{provider}`: {reason}")]
    Config { provider: String, reason: String },
    /// No provider has this name.
    #[error("no identity provider named `{0}`")]
    NoSuchProvider(String),
    /// The named provider reads its keys from a file, which is only read at start.
    #[error("identity provider `{0}` has no JWKS URL to refresh from")]
    NotRefreshable(String),
}

/// Why a JWKS document is not usable.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum JwksError {
    #[error("JWKS is not a JSON object with a `keys` array: {0}")]
    Shape(String),
    #[error("JWKS has no usable signing key ({0})")]
    NoUsableKey(String),
}

/// Why a presented provider token was refused.
///
/// `Display` is short and safe to show to the caller: it never echoes the token or its claims.
/// [`ExchangeError::code`] is a stable machine-readable code for responses and audit events.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token")]
    Malformed,
    #[error("token has a duplicate JSON member")]
    DuplicateMember,
    /// `none`, HMAC, or an algorithm sluice does not implement.
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// A header parameter that demands understanding (`crit`).
    #[error("token header has critical parameters")]
    CriticalHeader,
    /// `jku`, `x5u`, `jwk` or `x5c`: keys are only ever taken from the provider's key set.
    #[error("token header names its own key")]
    KeyInHeader,
    /// Another header the gateway does not accept (`typ`, `cty`, `b64`).
    #[error("unsupported token header")]
    UnsupportedHeader,
    #[error("token issuer is not a configured identity provider")]
    UnknownIssuer,
    /// The algorithm is supported but not in this provider's `algorithms`.
    #[error("token algorithm not allowed for this identity provider")]
    AlgorithmNotAllowed,
    /// The provider's key set has never been fetched successfully.
    #[error("identity provider keys are unavailable")]
    KeysUnavailable,
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The token has no `kid` and several keys could have signed it.
    #[error("token names no key and the identity provider has several")]
    AmbiguousKey,
    /// The named key cannot verify this algorithm (wrong type or curve, `use`, `alg`).
    #[error("token key does not match its algorithm")]
    KeyMismatch,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token missing required claim {0}")]
    MissingClaim(String),
    /// A claim has the wrong JSON type or an out-of-range value.
    #[error("token claim {0} is invalid")]
    InvalidClaim(&'static str),
    #[error("token not valid for this audience")]
    WrongAudience,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("token lifetime exceeds the identity provider's limit")]
    LifetimeTooLong,
    #[error("no mapping rule matches the token")]
    NoMapping,
}

impl ExchangeError {
    /// A stable snake_case code for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::TooLarge => "token_too_large",
            ExchangeError::Malformed => "malformed_token",
            ExchangeError::DuplicateMember => "duplicate_member",
            ExchangeError::UnsupportedAlgorithm => "unsupported_algorithm",
            ExchangeError::CriticalHeader => "critical_header",
            ExchangeError::KeyInHeader => "key_in_header",
            ExchangeError::UnsupportedHeader => "unsupported_header",
            ExchangeError::UnknownIssuer => "unknown_issuer",
            ExchangeError::AlgorithmNotAllowed => "algorithm_not_allowed",
            ExchangeError::KeysUnavailable => "keys_unavailable",
            ExchangeError::UnknownKey => "unknown_key",
            ExchangeError::AmbiguousKey => "ambiguous_key",
            ExchangeError::KeyMismatch => "key_mismatch",
            ExchangeError::BadSignature => "bad_signature",
            ExchangeError::MissingClaim(_) => "missing_claim",
            ExchangeError::InvalidClaim(_) => "invalid_claim",
            ExchangeError::WrongAudience => "wrong_audience",
            ExchangeError::Expired => "expired",
            ExchangeError::NotYetValid => "not_yet_valid",
            ExchangeError::IssuedInFuture => "issued_in_future",
            ExchangeError::LifetimeTooLong => "lifetime_too_long",
            ExchangeError::NoMapping => "no_mapping",
        }
    }

    /// Whether the gateway's side is at fault (the caller may retry later), rather than the
    /// token.
    pub fn is_gateway_side(&self) -> bool {
        matches!(self, ExchangeError::KeysUnavailable)
    }
}
