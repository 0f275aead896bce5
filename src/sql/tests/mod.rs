//! Tests of the SQL module: lexer constructs, statement splitting, classification, denylists,
//! fingerprints, and property tests.

mod classify;
mod denylist;
mod lexer;
mod props;
mod quick;
