//! Client connections: TCP with optional TLS, and address resolution.

pub mod tls;
pub mod transport;

use std::net::{SocketAddr, ToSocketAddrs};

pub use transport::{connect_tcp, Transport};

/// Resolves `host:port` once, before the run, so that no worker blocks on DNS.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolved to no address"))
}
