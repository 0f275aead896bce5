//! Errors raised while building masking configuration or plans.

/// Why masking configuration or a masking plan was rejected. Every variant is the gateway
/// operator's configuration at fault, except [`MaskError::Refused`], which is the client's
/// request that cannot be served with masking guaranteed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// A rule pattern was empty.
    #[error("empty masking rule pattern")]
    EmptyPattern,
    /// A rule pattern had more than `schema.table.column`.
    #[error("masking rule `{0}` has more than three dot-separated parts")]
    TooManyParts(String),
    /// A rule pattern had an empty part (`users..email`, `.email`).
    #[error("masking rule `{0}` has an empty part")]
    EmptyPart(String),
    /// A style name other than full, last4, hash or null.
    #[error("unknown masking style `{0}` (expected full, last4, hash or null)")]
    UnknownStyle(String),
    /// The hash style needs a key of at least this many bytes.
    #[error("masking hash key must be at least {min} bytes")]
    KeyTooShort {
        /// Minimum key length in bytes.
        min: usize,
    },
    /// Some rule uses the hash style but no key was configured.
    #[error("a masking rule uses the hash style but no hash key is configured")]
    MissingKey,
    /// The result cannot be masked in the form the client asked for; the reason is fixed
    /// text that is safe to show the client.
    #[error("result cannot be masked: {0}")]
    Refused(&'static str),
}
