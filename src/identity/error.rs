//! Errors of the identity module: gateway-side failures and client-facing token rejections.

use std::path::PathBuf;

/// A failure on the gateway's side: key material, clock, or an invalid issue request.
///
/// Messages name files but never print key bytes.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The system random source failed while generating a key.
    #[error("could not generate an Ed25519 key")]
    KeyGeneration,
    /// Key material given in memory is not usable.
    #[error("invalid signing key: {0}")]
    InvalidKey(&'static str),
    /// The key file could not be read.
    #[error("cannot read signing key file {}: {source}", path.display())]
    KeyFileRead {
        /// File that was read.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The key file was read but does not hold a usable key.
    #[error("signing key file {} is not usable: {reason}", path.display())]
    KeyFileInvalid {
        /// File that was read.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The issue request cannot be turned into a token.
    #[error("invalid token request: {0}")]
    InvalidRequest(&'static str),
    /// The clock handed to the issuer is before 1970.
    #[error("clock is before the Unix epoch")]
    ClockBeforeEpoch,
    /// The JWT library failed to sign.
    #[error("could not sign token: {0}")]
    Sign(String),
}

/// Why a presented token was refused.
///
/// The messages are short, safe to show to the client, and never echo token contents.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a compact JWS, bad base64, bad JSON, wrong claim types or out-of-range times.
    #[error("malformed token")]
    Malformed,
    /// Longer than [`crate::identity::MAX_TOKEN_LEN`]; refused before any decoding.
    #[error("token too large")]
    TooLarge,
    /// Header `alg` is anything but `EdDSA` (including `none` and HMAC algorithms).
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// Header carries a parameter the gateway does not accept (`crit`, `jku`, `jwk`, `x5u`,
    /// `x5c`, any unknown parameter) or a `typ` other than `JWT`.
    #[error("unsupported token header")]
    UnsupportedHeader,
    /// Header `kid` names a key this gateway does not hold.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify with the gateway's public key.
    #[error("invalid token signature")]
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not this gateway.
    #[error("token not issued by this gateway")]
    WrongIssuer,
    /// `aud` is not this gateway's audience.
    #[error("token not valid for this audience")]
    WrongAudience,
    /// A required claim is absent or empty.
    #[error("token missing required claim {0}")]
    MissingClaim(&'static str),
}
