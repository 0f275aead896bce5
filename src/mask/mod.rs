//! Masking of values leaving the database: column rules, value detectors, and the rewriting of
//! DataRow, COPY, error and notification messages. Pure: no I/O, no catalog access (the proxy
//! resolves table OIDs to names and hands them in).

pub mod detect;

pub use detect::Detectors;
