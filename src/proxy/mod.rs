//! The data-path proxies.

pub mod pg;
