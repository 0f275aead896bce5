//! Live sessions of every shard, for the control plane's `GET /v1/sessions`.
//!
//! The registry is process-wide and locked only when a session starts or ends and when the
//! control plane lists it; the one per-statement number a listing shows is an atomic that only
//! the session's own shard writes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::identity::Claims;

/// What a listing shows of one session.
pub struct SessionEntry {
    pub id: u64,
    pub shard: usize,
    pub claims: Arc<Claims>,
    pub resource: String,
    pub user: String,
    pub client: SocketAddr,
    pub started: SystemTime,
    pub statements: Arc<AtomicU64>,
}

/// Every live session.
pub struct SessionRegistry {
    next: AtomicU64,
    entries: Mutex<HashMap<u64, Arc<SessionEntry>>>,
}

impl Default for SessionRegistry {
    /// Session ids start at the process's start time in seconds, shifted left by 24 bits, so
    /// that ids stay unique across restarts (recordings and audit events outlive a process).
    fn default() -> Self {
        let secs = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        SessionRegistry {
            next: AtomicU64::new(secs << 24),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl SessionRegistry {
    /// A new process-unique session id (also used before a session is authenticated, so that
    /// the audit events of a refused connection carry one).
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Lists `entry` until the returned ticket is dropped.
    pub fn register(self: &Arc<Self>, entry: SessionEntry) -> SessionTicket {
        let id = entry.id;
        self.lock().insert(id, Arc::new(entry));
        SessionTicket {
            registry: self.clone(),
            id,
        }
    }

    /// The live sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<SessionEntry>> {
        let mut all: Vec<_> = self.lock().values().cloned().collect();
        all.sort_by_key(|e| e.id);
        all
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<SessionEntry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Keeps a session listed; dropping it removes the entry.
pub struct SessionTicket {
    registry: Arc<SessionRegistry>,
    id: u64,
}

impl Drop for SessionTicket {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}
