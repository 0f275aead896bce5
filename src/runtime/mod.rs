//! Thread-per-core shards, core pinning, listeners and snapshot swapping.
//!
//! The main thread binds every listener once per shard (SO_REUSEPORT, so the kernel spreads
//! connections across shards), prints the bound addresses, and starts one monoio runtime per shard
//! on its own thread, pinned to its own core. Shards share nothing mutable on the hot path: they
//! read an immutable [`Snapshot`] through an `ArcSwap`, and learn about shutdown by polling one
//! atomic flag from a timer (never from the data path). The same timer answers the control
//! plane's requests for the shard's statistics (see [`crate::metrics::collect`]); the control
//! plane itself runs on a thread of its own when `[admin]` is configured.

mod listen;
mod shard;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tracing::info;

use crate::admin::{self, AdminError, ControlPlane};
use crate::audit::{Audit, AuditError};
use crate::config::LoadedConfig;
use crate::identity::{Ledger, LedgerError};
use crate::proxy::sessions::SessionRegistry;
use crate::proxy::state::{CancelRegistry, Snapshot, StateError};

pub use listen::bind_listeners;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot start shard {shard}: {source}")]
    Shard {
        shard: usize,
        source: std::io::Error,
    },
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Set to ask every shard to drain and stop.
#[derive(Default)]
pub struct Shutdown(AtomicBool);

impl Shutdown {
    /// Asks the gateway to stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A started gateway: shard threads running, listeners bound.
pub struct Running {
    /// The bound address of each configured listener, in config order (port 0 resolved).
    pub addresses: Vec<std::net::SocketAddr>,
    /// The admin listener's address, when `[admin]` is configured.
    pub admin_address: Option<std::net::SocketAddr>,
    threads: Vec<std::thread::JoinHandle<Result<(), RuntimeError>>>,
    control: Option<ControlPlane>,
    audit: Audit,
    recorder: crate::record::Recorder,
}

/// Binds every listener, prints `listening <protocol> <address>` lines on stdout, and starts the
/// shards. Returns once the sockets are listening.
pub fn start(loaded: &LoadedConfig, shutdown: Arc<Shutdown>) -> Result<Running, RuntimeError> {
    crate::tls::config::install_default_provider();
    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::build(loaded)?));
    let config = &loaded.config;
    let workers = match config.gateway.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let bound = bind_listeners(&config.listeners, workers)?;
    let (collector, inboxes) = crate::metrics::channels(workers);
    let ledger = Ledger::open(
        config.identity.revocation_file.as_deref(),
        config.identity.max_ttl,
        std::time::SystemTime::now(),
    )?;
    if ledger.path().is_none() {
        tracing::warn!("identity.revocation_file is not set: revocations last until a restart");
    }
    let revocations = ledger.revocations();
    let sessions = Arc::new(SessionRegistry::default());
    let approvals = Arc::new(crate::approvals::Approvals::default());
    let webhook = crate::approvals::Webhook::new(
        config.approvals.webhook_url.as_deref(),
        config.approvals.webhook_ca_file.clone(),
        config.approvals.webhook_attempts,
    )
    .map_err(StateError::Webhook)?;
    let recorder = match &config.recording {
        Some(section) => crate::record::Recorder::start(section)
            .map_err(|e| StateError::Recording(e.to_string()))?,
        None => crate::record::Recorder::disabled(),
    };
    let audit = match &config.audit {
        Some(section) => Audit::start(section)?,
        None => Audit::disabled(),
    };
    let control = match &config.admin {
        Some(section) => {
            let issuer = config
                .identity
                .token_issuer()
                .map_err(|e| StateError::SigningKey(e.to_string()))?;
            let providers = if config.identity.providers.is_empty() {
                None
            } else {
                Some(Arc::new(
                    crate::identity::oidc::Providers::start(&config.identity)
                        .map_err(|e| StateError::Providers(e.to_string()))?,
                ))
            };
            let plane = admin::Plane {
                recorder: recorder.clone(),
                approvals: approvals.clone(),
                audit: audit.clone(),
                providers,
                snapshot: snapshot.clone(),
                issuer,
                ledger: std::cell::RefCell::new(ledger),
                sessions: sessions.clone(),
                limiter: std::cell::RefCell::new(admin::RateLimiter::new(
                    section.token_rate_per_minute,
                    section.token_burst,
                )),
            };
            let stop = shutdown.clone();
            Some(admin::start(section, collector, plane, move || {
                stop.requested()
            })?)
        }
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        for (l, addr) in config.listeners.iter().zip(&bound.addresses) {
            let _ = writeln!(out, "listening {} {addr}", l.protocol.name());
        }
        if let Some(c) = &control {
            let _ = writeln!(out, "listening {} {}", admin::PROTOCOL, c.address);
        }
        let _ = out.flush();
    }
    let cores = if config.gateway.pin_cores {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    info!(workers, pinned = !cores.is_empty(), "starting shards");
    let cancels = Arc::new(CancelRegistry::default());
    let mut threads = Vec::new();
    for ((id, sockets), stats) in bound.per_shard.into_iter().enumerate().zip(inboxes) {
        let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
        let shard = shard::Shard {
            id,
            core,
            sockets,
            snapshot: snapshot.clone(),
            cancels: cancels.clone(),
            shutdown: shutdown.clone(),
            drain_timeout: config.gateway.drain_timeout,
            stats,
            revocations: revocations.clone(),
            sessions: sessions.clone(),
            audit: audit.clone(),
            approvals: approvals.clone(),
            webhook: webhook.clone(),
            recorder: recorder.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("sluice-shard-{id}"))
            .spawn(move || shard.run())
            .map_err(|source| RuntimeError::Shard { shard: id, source })?;
        threads.push(handle);
    }
    Ok(Running {
        addresses: bound.addresses,
        admin_address: control.as_ref().map(|c| c.address),
        threads,
        control,
        audit,
        recorder,
    })
}

impl Running {
    /// Waits until every shard has drained and stopped.
    pub fn wait(self) -> Result<(), RuntimeError> {
        let mut first_error = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(RuntimeError::Shard {
                        shard: usize::MAX,
                        source: std::io::Error::other("a shard thread panicked"),
                    });
                }
            }
        }
        if let Some(control) = self.control {
            control.wait();
        }
        // Everything the sessions and the control plane recorded reaches the disk.
        self.audit.shutdown();
        self.recorder.shutdown();
        match first_error {
            Some(e) => Err(e),
            None => {
                info!("all shards stopped");
                Ok(())
            }
        }
    }
}

/// Runs the gateway until `shutdown` is requested and every shard has drained.
pub fn serve(loaded: &LoadedConfig, shutdown: Arc<Shutdown>) -> Result<(), RuntimeError> {
    start(loaded, shutdown)?.wait()
}
