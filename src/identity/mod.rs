//! Session tokens: minting and strict verification of gateway-signed EdDSA JWTs, and their
//! offline inspection for people (no key, no decisions).
//!
//! The gateway signs every session token with its own Ed25519 key. Verification never
//! trusts the token to say how it should be checked: the algorithm is fixed, key-bearing
//! headers are refused, and all time checks use the caller's clock.

mod claims;
mod delegate;
mod error;
mod header;
mod inspect;
mod issue;
mod keygen;
mod keys;
mod ledger;
pub mod oidc;
mod settings;
mod verify;

pub use claims::{ChainLink, Claims, MAX_TIMESTAMP};
pub use delegate::{delegate, DelegateError, DelegateRequest, DelegationRules, MAX_NAME_LEN};
pub use error::{IdentityError, TokenError};
pub use inspect::{
    decode_unverified, escape_controls, format_span, format_utc, inspect, InspectError, Inspection,
};
pub use issue::{IssueRequest, TokenIssuer};
pub use keygen::{keygen, KeygenError, KeygenOutput};
pub use keys::SigningKey;
pub use ledger::{Ledger, LedgerError, Revocations, Revoke, RevokedSet};
pub use settings::TokenSettings;
pub use verify::{TokenVerifier, MAX_TOKEN_LEN};
