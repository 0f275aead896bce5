//! PostgreSQL workloads over the wire protocol.

pub mod client;
pub mod scenario;
pub mod script;
pub mod startup;
pub mod wire;
