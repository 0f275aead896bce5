//! Statement policy: what each role may do on each resource, compiled once per configuration
//! snapshot and asked by the proxy about every query, Parse and result.
//!
//! Pure: no I/O. The proxy gets a [`SessionPolicy`] when a session starts
//! ([`PolicySet::session`]) and asks it to [`judge`](SessionPolicy::judge) each message's SQL
//! text, for the masking to apply ([`SessionPolicy::mask`]) and for the row limit
//! ([`SessionPolicy::max_rows`]).

mod key;
mod rule;
mod session;
mod set;
mod verdict;

#[cfg(test)]
mod tests;

pub use crate::config::DEFAULT_PROTECTED_SETTINGS;
pub use key::mask_key_from_signing_key;
pub use session::SessionPolicy;
pub use set::PolicySet;
pub use verdict::{Blocked, Verdict};
