//! The control plane: one thread of its own (never a shard) running the admin HTTP listener.
//!
//! Today it serves the gateway's statistics: `GET /metrics` (Prometheus text) and
//! `GET /v1/stats` (JSON, per shard and merged). Each request asks every shard for a snapshot
//! through [`crate::metrics::collect`] and merges the answers here, off the shards' cores.
//! The listener speaks plaintext HTTP on a loopback address, or HTTPS on any address with
//! `admin.tls_cert` and `admin.tls_key`. The token-authenticated admin API (token exchange,
//! delegation, revocation, approvals) will be served by this same thread.

pub mod api;
pub mod client;
mod http;
mod limit;
mod routes;
mod server;
pub mod session_table;
mod tokens;

pub use limit::RateLimiter;
pub use tokens::Plane;

use std::net::SocketAddr;
use std::rc::Rc;
use std::thread::JoinHandle;

use monoio::{LegacyDriver, RuntimeBuilder};
use tracing::{info, warn};

use crate::config::AdminSection;
use crate::metrics::Collector;

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin.listen: cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("admin TLS: {0}")]
    Tls(String),
    #[error("cannot start the control plane thread: {0}")]
    Thread(std::io::Error),
}

/// A running control plane.
pub struct ControlPlane {
    /// The admin listener's bound address (port 0 resolved).
    pub address: SocketAddr,
    /// Whether it speaks HTTPS.
    pub tls: bool,
    thread: JoinHandle<()>,
}

impl ControlPlane {
    /// Waits for the thread to stop (after `stopped` turned true).
    pub fn wait(self) {
        if self.thread.join().is_err() {
            warn!("the control plane thread panicked");
        }
    }
}

/// Binds the admin listener and starts the control-plane thread; it stops accepting once
/// `stopped` returns true.
pub fn start(
    section: &AdminSection,
    collector: Collector,
    plane: Plane,
    stopped: impl Fn() -> bool + Send + 'static,
) -> Result<ControlPlane, AdminError> {
    let bind_err = |source| AdminError::Bind {
        address: section.listen.clone(),
        source,
    };
    let requested: SocketAddr = section
        .listen
        .parse()
        .map_err(|_| bind_err(std::io::Error::other("not an IP:port address")))?;
    let tls = match (&section.tls_cert, &section.tls_key) {
        (Some(cert), Some(key)) => Some(
            crate::tls::config::server_config(cert, key)
                .map_err(|e| AdminError::Tls(e.to_string()))?,
        ),
        _ => None,
    };
    let socket = std::net::TcpListener::bind(requested).map_err(bind_err)?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    let address = socket.local_addr().map_err(bind_err)?;
    let https = tls.is_some();
    let thread = std::thread::Builder::new()
        .name("sluice-control".into())
        .spawn(move || {
            // epoll is plenty for a handful of admin connections, and needs no io_uring.
            let runtime = RuntimeBuilder::<LegacyDriver>::new().enable_timer().build();
            let mut runtime = match runtime {
                Ok(rt) => rt,
                Err(e) => return warn!(error = %e, "cannot start the control plane runtime"),
            };
            runtime.block_on(async move {
                let listener = match monoio::net::TcpListener::from_std(socket) {
                    Ok(l) => l,
                    Err(e) => return warn!(error = %e, "cannot use the admin listener"),
                };
                info!(%address, tls = https, "admin listener started");
                let shared = Rc::new(server::Shared {
                    tls,
                    collector,
                    active: Default::default(),
                    plane,
                });
                server::accept_loop(listener, shared, stopped).await;
                // Let connections in flight finish their answer.
                monoio::time::sleep(std::time::Duration::from_millis(20)).await;
            });
        })
        .map_err(AdminError::Thread)?;
    Ok(ControlPlane {
        address,
        tls: https,
        thread,
    })
}

/// The `listening` line's protocol name for the admin listener.
pub const PROTOCOL: &str = "admin";
