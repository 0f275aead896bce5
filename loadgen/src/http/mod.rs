//! HTTP/1.1 workloads.

pub mod client;
pub mod response;
pub mod url;
