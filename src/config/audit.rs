//! The audit trail's `[audit]` section: where events go, how often they reach the disk, and
//! what a full queue does.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::human;

/// What a session does when the audit queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// The session waits (without blocking its shard) until the writer catches up.
    #[default]
    Block,
    /// The event is dropped and counted (`audit_events_dropped`).
    Drop,
    /// The request that produced the event fails, and the session ends.
    Fail,
}

/// Audit events as JSON lines.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// The current file; rotated files get `.1`, `.2`, ... appended (`.1` newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Rotate once the file reaches this size.
    #[serde(default = "max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotated files kept.
    #[serde(default = "keep_files")]
    pub keep_files: usize,
    /// How often written events are flushed to the file and synced; a crash loses at most
    /// the events of one interval.
    #[serde(with = "human", default = "flush_interval")]
    pub flush_interval: Duration,
    /// Events queued between the shards and the writer thread. The queue is allocated at
    /// start, about 210 bytes per event: the default takes about 14 MB.
    #[serde(default = "queue_capacity")]
    pub queue_capacity: usize,
    #[serde(default)]
    pub overflow: Overflow,
    /// Also write every event to standard output.
    #[serde(default)]
    pub stdout: bool,
    /// Also send every event to the local syslog socket (`/dev/log`).
    #[serde(default)]
    pub syslog: bool,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            file: None,
            max_file_bytes: max_file_bytes(),
            keep_files: keep_files(),
            flush_interval: flush_interval(),
            queue_capacity: queue_capacity(),
            overflow: Overflow::Block,
            stdout: false,
            syslog: false,
        }
    }
}

fn max_file_bytes() -> u64 {
    64 << 20
}
fn keep_files() -> usize {
    8
}
fn flush_interval() -> Duration {
    Duration::from_secs(1)
}
fn queue_capacity() -> usize {
    65_536
}
