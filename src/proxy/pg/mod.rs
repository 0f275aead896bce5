//! The PostgreSQL session: client auth, upstream auth, relay, cancel.

pub mod client;
pub mod error;
pub mod relay;
pub mod session;
pub mod upstream;

pub use session::serve;
