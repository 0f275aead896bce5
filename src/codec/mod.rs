//! Sans-IO wire codecs: bytes in, frames out; no codec ever awaits I/O.

pub mod pg;
