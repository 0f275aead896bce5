//! Session tokens: minting and strict verification of gateway-signed EdDSA JWTs.
//!
//! The gateway signs every session token with its own Ed25519 key. Verification never
//! trusts the token to say how it should be checked: the algorithm is fixed, key-bearing
//! headers are refused, and all time checks use the caller's clock.

mod claims;
mod error;
mod header;
mod issue;
mod keygen;
mod keys;
pub mod oidc;
mod settings;
mod verify;

pub use claims::{ChainLink, Claims, MAX_TIMESTAMP};
pub use error::{IdentityError, TokenError};
pub use issue::{IssueRequest, TokenIssuer};
pub use keygen::{keygen, KeygenError, KeygenOutput};
pub use keys::SigningKey;
pub use settings::TokenSettings;
pub use verify::{TokenVerifier, MAX_TOKEN_LEN};
