//! Settings shared by the token issuer and verifier.

use std::time::Duration;

/// Who signs tokens, who they are for, and how much clock skew verification tolerates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// Value of `iss` in issued tokens; verification requires an exact match.
    pub issuer: String,
    /// Value of `aud` in issued tokens; verification requires an exact match.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (whole seconds; fractions are dropped).
    pub leeway: Duration,
}
