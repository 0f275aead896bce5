//! The session recorder's `[recording]` section: where segments go, how big they grow, how long
//! they are kept, and what a full queue or a slow disk does.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::human;

/// What a session does when the recorder cannot keep up (queue full: disk full or too slow).
/// Never a silent loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RecordingOverflow {
    /// The session waits (without blocking its shard) until the recorder catches up.
    #[default]
    Block,
    /// The statement fails and the session ends with an error.
    Fail,
}

/// Session recordings: segment files of length-prefixed, checksummed records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingSection {
    /// Directory of the segment files and their session index.
    pub dir: PathBuf,
    /// A segment is closed and a new one started once it reaches this size.
    #[serde(default = "segment_bytes")]
    pub segment_bytes: u64,
    /// Segments older than this are deleted.
    #[serde(with = "human", default = "retention")]
    pub retention: Duration,
    /// How often written records are flushed and synced; a crash loses at most one interval.
    #[serde(with = "human", default = "flush_interval")]
    pub flush_interval: Duration,
    /// Result bytes (rows as the client received them) kept per statement; the rest is
    /// counted, not kept.
    #[serde(default = "max_statement_bytes")]
    pub max_statement_bytes: usize,
    /// Batches queued between the shards and the recorder thread.
    #[serde(default = "queue_capacity")]
    pub queue_capacity: usize,
    #[serde(default)]
    pub overflow: RecordingOverflow,
}

fn segment_bytes() -> u64 {
    64 << 20
}
fn retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn flush_interval() -> Duration {
    Duration::from_secs(1)
}
fn max_statement_bytes() -> usize {
    64 << 10
}
fn queue_capacity() -> usize {
    4096
}
