//! Identity-provider tokens (OIDC ID tokens, CI job tokens) exchanged for sluice grants.
//!
//! [`Providers`] holds each configured provider's key set (from a JWKS file, or a JWKS URL kept
//! fresh by a refresher thread), verifies a presented token with hardened checks against the
//! provider its `iss` names, and maps its claims to roles and resources by the provider's
//! [`Condition`] rules. Minting the session token is the caller's job.

mod alg;
mod claims;
mod error;
mod header;
mod json;
mod jwks;
mod providers;
mod refresh;
mod rules;
mod source;

pub use alg::algorithm_error;
pub use error::{ExchangeError, JwksError, OidcError};
pub use providers::{token_hash, Grant, Providers, MAX_PROVIDER_TOKEN_LEN};
pub use rules::{Condition, Literal, RuleError};

#[cfg(test)]
mod tests;
