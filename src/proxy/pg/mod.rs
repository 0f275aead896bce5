//! The PostgreSQL session: client auth, upstream auth, relay, cancel.
