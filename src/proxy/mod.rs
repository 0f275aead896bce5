//! The data-path proxies and what they share: transport halves, shard signals, the snapshot.

pub mod io;
pub mod pg;
pub mod sessions;
pub mod signal;
pub mod state;
