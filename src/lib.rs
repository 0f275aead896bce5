//! sluice: an identity-aware Layer 7 gateway for machine identities.
//!
//! Dependency direction: codec -> (sql, mask, identity, policy) -> proxy -> runtime -> main.
//! Codecs and policy never perform I/O.
#![forbid(unsafe_code)]

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod codec;
pub mod config;
pub mod http_client;
pub mod identity;
pub mod mask;
pub mod metrics;
pub mod offcore;
pub mod policy;
#[cfg(feature = "profiler")]
pub mod profiler;
pub mod proxy;
pub mod record;
pub mod runtime;
pub mod setup;
pub mod sql;
pub mod tls;
