//! SQL understanding for the policy engine: a PostgreSQL-exact lexer, statement splitting,
//! classification (fast keyword path, full `sqlparser` fallback), denylists over normalized
//! tokens, and audit fingerprints. Pure: no I/O anywhere in this module.

mod calls;
mod classify;
mod denylist;
mod fast;
mod full;
mod functions;
mod ident;
pub mod lexer;
mod normalize;
mod split;

#[cfg(test)]
mod tests;

pub use classify::{
    classify, Classification, ClassifyOptions, ClassifyPath, StatementClass, StatementInfo,
};
pub use denylist::{Denylist, DenylistError};
pub use full::{cache_len, CACHE_CAP};
pub use functions::{DEFAULT_ADMIN_FUNCTIONS, DEFAULT_WRITE_FUNCTIONS};
pub use ident::decode_unicode_escapes;
pub use lexer::{LexError, LexOptions, Lexer, StrKind, Token, TokenKind};
pub use normalize::{fingerprint, fingerprint_with, normalize, NormalizedTokens};
pub use split::{split_statements, split_statements_with, Splitter, StatementSpan};
