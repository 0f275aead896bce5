//! What every shard reads on the data path: an immutable snapshot of configuration, keys and TLS
//! settings (swapped whole by the control plane), plus the few process-wide registries.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::ServerName;

use crate::approvals::{Approvals, Webhook};
use crate::audit::Audit;
use crate::codec::pg::CancelRequest;
use crate::config::{Config, LoadedConfig, UpstreamTls};
use crate::identity::{Revocations, SigningKey, TokenVerifier};
use crate::metrics::ShardMetrics;
use crate::policy::{mask_key_from_signing_key, PolicySet};
use crate::proxy::pg::catalog::Catalog;
use crate::proxy::sessions::SessionRegistry;
use crate::proxy::signal::{Broadcast, Pulse};
use crate::record::Recorder;

/// Why a snapshot could not be built from a validated configuration.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("identity.signing_key: {0}")]
    SigningKey(String),
    #[error("listener[{index}]: {message}")]
    ListenerTls { index: usize, message: String },
    #[error("resource `{name}`: {message}")]
    Resource { name: String, message: String },
    #[error("policy: {}", .0.join("; "))]
    Policy(Vec<String>),
    #[error("{0}")]
    Providers(String),
    #[error("approvals.webhook_url: {0}")]
    Webhook(String),
    #[error("recording: {0}")]
    Recording(String),
}

/// A listener's client-facing settings.
pub struct ListenerState {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub allow_plaintext: bool,
}

/// Where and how the gateway reaches one upstream PostgreSQL.
pub struct UpstreamTarget {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Option<String>,
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub connect_timeout: Duration,
}

impl fmt::Debug for UpstreamTarget {
    // Never print the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

/// Everything a shard needs to judge and serve a connection, immutable once built.
pub struct Snapshot {
    pub config: Config,
    pub verifier: TokenVerifier,
    pub listeners: Vec<ListenerState>,
    pub upstreams: HashMap<String, Arc<UpstreamTarget>>,
    /// Every role's statement policy, compiled from `config`.
    pub policy: Arc<PolicySet>,
}

impl Snapshot {
    /// Reads keys, certificates and upstream secrets named by `loaded`.
    pub fn build(loaded: &LoadedConfig) -> Result<Snapshot, StateError> {
        let config = loaded.config.clone();
        let key = SigningKey::load(&config.identity.signing_key)
            .map_err(|e| StateError::SigningKey(e.to_string()))?;
        let verifier = TokenVerifier::new(&key, &config.identity.token_settings());
        let mask_key = mask_key_from_signing_key(key.secret_seed());
        let policy =
            Arc::new(PolicySet::compile(&config, Some(mask_key)).map_err(StateError::Policy)?);
        let mut listeners = Vec::new();
        for (index, l) in config.listeners.iter().enumerate() {
            let tls = match (&l.tls_cert, &l.tls_key) {
                (Some(cert), Some(key)) => {
                    Some(crate::tls::config::server_config(cert, key).map_err(|e| {
                        StateError::ListenerTls {
                            index,
                            message: e.to_string(),
                        }
                    })?)
                }
                _ => None,
            };
            listeners.push(ListenerState {
                tls,
                allow_plaintext: l.allow_plaintext,
            });
        }
        let mut upstreams = HashMap::new();
        for r in &config.resources {
            let err = |message: String| StateError::Resource {
                name: r.name.clone(),
                message,
            };
            let password = match (&r.password_env, &r.password_file) {
                (Some(var), _) => Some(
                    std::env::var(var)
                        .map_err(|_| err(format!("environment variable {var} is not set")))?,
                ),
                (None, Some(file)) => Some(
                    std::fs::read_to_string(file)
                        .map_err(|e| err(format!("cannot read {}: {e}", file.display())))?
                        .trim_end_matches(['\r', '\n'])
                        .to_owned(),
                ),
                (None, None) => None,
            };
            let tls = match r.upstream_tls {
                UpstreamTls::Disable => None,
                UpstreamTls::VerifyFull => {
                    let cfg = crate::tls::config::client_config(r.ca_file.as_deref())
                        .map_err(|e| err(e.to_string()))?;
                    let name = ServerName::try_from(r.host.clone())
                        .map_err(|_| err(format!("`{}` is not a valid TLS server name", r.host)))?;
                    Some((cfg, name))
                }
            };
            upstreams.insert(
                r.name.clone(),
                Arc::new(UpstreamTarget {
                    name: r.name.clone(),
                    host: r.host.clone(),
                    port: r.port,
                    database: r.database.clone(),
                    user: r.user.clone(),
                    password,
                    tls,
                    connect_timeout: r.connect_timeout,
                }),
            );
        }
        Ok(Snapshot {
            config,
            verifier,
            listeners,
            upstreams,
            policy,
        })
    }
}

/// A live session's cancel key, as handed to its client, mapped to the upstream's.
pub struct CancelEntry {
    pub secret: i32,
    pub target: Arc<UpstreamTarget>,
    pub upstream: CancelRequest,
}

/// Process-wide map from the keys sluice hands out to the upstream keys they stand for. A cancel
/// request may land on any shard, so this is shared; it is touched only at session start and end
/// and on cancel, never per message.
#[derive(Default)]
pub struct CancelRegistry {
    entries: Mutex<HashMap<i32, CancelEntry>>,
}

impl CancelRegistry {
    /// Registers a session and returns the key to hand to its client.
    pub fn register(&self, target: Arc<UpstreamTarget>, upstream: CancelRequest) -> CancelRequest {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let pid = random_i32() & 0x7fff_ffff;
            if pid == 0 || entries.contains_key(&pid) {
                continue;
            }
            let secret = random_i32();
            entries.insert(
                pid,
                CancelEntry {
                    secret,
                    target,
                    upstream,
                },
            );
            return CancelRequest { pid, secret };
        }
    }

    /// Forgets a session's key.
    pub fn remove(&self, pid: i32) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&pid);
    }

    /// The upstream key for a client's cancel request, if its pid and secret both match.
    pub fn lookup(&self, req: CancelRequest) -> Option<(Arc<UpstreamTarget>, CancelRequest)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.get(&req.pid)?;
        (e.secret == req.secret).then(|| (e.target.clone(), e.upstream))
    }

    /// How many sessions are registered (live sessions that reached the upstream).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Whether no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn random_i32() -> i32 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    // The system RNG does not fail on Linux once the process has started; fall back to the clock
    // rather than panic on the data path.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b = nanos.to_le_bytes();
    }
    i32::from_le_bytes(b)
}

/// Per-shard state, owned by the shard's thread.
pub struct ShardCtx {
    pub id: usize,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub cancels: Arc<CancelRegistry>,
    /// Fired when the gateway stops accepting: sessions end once idle.
    pub drain: Broadcast,
    /// Fired when the drain timeout has passed: sessions end now.
    pub force: Broadcast,
    /// Sessions currently open on this shard.
    pub live: Cell<usize>,
    /// Table and column names for masking, cached per resource.
    pub catalog: Catalog,
    /// This shard's counters and histograms.
    pub metrics: Rc<ShardMetrics>,
    /// Revoked tokens, published by the control plane.
    pub revocations: Arc<Revocations>,
    /// Fired by the shard's timer when the revocation set changed: each session checks its token.
    pub revoked: Pulse,
    /// Every shard's live sessions, for the control plane's listing.
    pub sessions: Arc<SessionRegistry>,
    /// The audit trail (disabled when not configured).
    pub audit: Audit,
    /// Statements held for approval, shared with the control plane.
    pub approvals: Arc<Approvals>,
    /// Fired by the shard's timer when an approval request was decided or ended.
    pub decided: Pulse,
    /// Told of new approval requests.
    pub webhook: Webhook,
    /// The session recorder (disabled when not configured).
    pub recorder: Recorder,
}
