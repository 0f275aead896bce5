//! Getting started: `sluice init` (a starter configuration) and `sluice demo` (a throwaway
//! PostgreSQL with fake personal data behind a gateway).

pub mod demo;
pub mod init;
pub mod pgtemp;
