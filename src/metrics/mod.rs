//! Per-shard counters and latency histograms, collected on demand by the control plane and
//! exported as Prometheus text, as a JSON report, and as the table `sluice stats` prints.
//!
//! Recording is thread-local: each shard owns a [`ShardMetrics`] of plain cells and two HDR
//! histograms, and nothing on the data path takes a lock or touches an atomic. The control
//! plane asks each shard for a copy through a channel the shard polls from its timer loop
//! ([`collect`]) and merges the copies on its own thread.
//!
//! Units: statement latency is recorded in microseconds, gateway-added time in nanoseconds
//! (it is usually a few microseconds); both are exported in seconds (Prometheus) and
//! microseconds (JSON, table).

pub mod collect;
mod kinds;
pub mod prometheus;
mod report;
mod shard;
pub mod table;
mod timing;

pub use collect::{channels, Collector, StatsInbox};
pub use kinds::{
    action_name, action_slot, class_name, class_slot, Counter, ErrorKind, ACTION_SLOTS,
    CLASS_SLOTS, UNCLASSIFIED,
};
pub use report::{Bytes, Connections, Errors, Quantiles, ShardStats, Statements, StatsReport};
pub use shard::{ShardMetrics, ShardSnapshot, StatementCounts};
pub use timing::{Scale, Timing, ADDED, LATENCY};
