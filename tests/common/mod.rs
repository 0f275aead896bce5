//! Integration-test harness: a throwaway PostgreSQL server, the real `sluice` binary with a
//! configuration written by `sluice init`, session tokens, and clients (tokio-postgres, psql).
//! Every file in `tests/` includes it with `mod common;` and uses what it needs.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod client;
pub mod extended;
pub mod gateway;
pub mod hba;
pub mod idp;
pub mod pg;
pub mod policy;
pub mod process;
pub mod rawpg;
pub mod stack;

pub use client::{connect, gateway_config, psql, psql_gateway};
pub use gateway::{
    issue_token, sluice, Gateway, GatewaySetup, InitOptions, PASSWORD_ENV, SLUICE_BIN,
};
pub use hba::AuthMethod;
pub use pg::PgServer;
pub use process::Captured;
pub use rawpg::RawConn;
pub use stack::{closes_within, eventually, Stack, DB, LABEL};
