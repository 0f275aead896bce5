//! TLS: rustls configuration (ring provider) and the glue that runs it over monoio sockets.

pub mod certgen;
pub mod config;
