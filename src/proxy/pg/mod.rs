//! The PostgreSQL session: client auth, upstream auth, relay, cancel.

pub mod audit;
pub mod catalog;
pub mod client;
pub mod error;
pub mod guarded;
pub mod hold;
pub mod inspect;
pub mod meter;
pub mod recording;
pub mod relay;
mod scram;
pub mod session;
pub mod upstream;

pub use session::serve;
