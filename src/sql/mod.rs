//! SQL understanding for the policy engine: a PostgreSQL-exact lexer, statement splitting,
//! classification (fast keyword path, full `sqlparser` fallback), denylists over normalized
//! tokens, and audit fingerprints. Pure: no I/O anywhere in this module.

mod calls;
mod classify;
mod denylist;
mod derived;
mod fast;
mod full;
mod functions;
mod ident;
pub mod lexer;
mod normalize;
mod quick;
mod split;

#[cfg(test)]
mod tests;

pub use classify::{
    classify, relations, Classification, ClassifyOptions, ClassifyPath, StatementClass,
    StatementInfo,
};
pub use denylist::{Denylist, DenylistError};
pub use derived::{
    check_masked_uses, derived_cache_len, DERIVED_CACHE_CAP, QUERY_TEXT_FUNCTIONS, ROW_FUNCTIONS,
    STATISTICS_RELATIONS,
};
pub use full::{cache_len, CACHE_CAP};
pub use functions::{
    find_match as find_function_match, pattern_error as function_pattern_error,
    pattern_matches as function_pattern_matches, DEFAULT_ADMIN_FUNCTIONS, DEFAULT_WRITE_FUNCTIONS,
};
pub use ident::decode_unicode_escapes;
pub use lexer::{LexError, LexOptions, Lexer, StrKind, Token, TokenKind};
pub use normalize::{fingerprint, fingerprint_with, normalize, NormalizedTokens};
pub use split::{split_statements, split_statements_with, Splitter, StatementSpan};
