//! One role's masking on one resource: column rules, detectors and the hash key together.

use super::{ColumnRules, Detectors, HashKey, MaskError, MaskStyle};

/// Everything the data path needs to mask a session's results.
#[derive(Clone, Debug, Default)]
pub struct MaskPolicy {
    rules: ColumnRules,
    detectors: Detectors,
    key: Option<HashKey>,
}

impl MaskPolicy {
    /// Checks that a rule using the `hash` style has a key to use.
    pub fn new(
        rules: ColumnRules,
        detectors: Detectors,
        key: Option<HashKey>,
    ) -> Result<Self, MaskError> {
        if key.is_none() && rules.uses(MaskStyle::Hash) {
            return Err(MaskError::MissingKey);
        }
        Ok(Self {
            rules,
            detectors,
            key,
        })
    }

    /// Whether anything is masked at all; when not, the proxy can skip every masking hook.
    pub fn is_active(&self) -> bool {
        !self.rules.is_empty() || self.detectors.any()
    }

    /// The column rules.
    pub fn rules(&self) -> &ColumnRules {
        &self.rules
    }

    /// The value detectors.
    pub fn detectors(&self) -> Detectors {
        self.detectors
    }

    /// The key for the `hash` style.
    pub fn key(&self) -> Option<&HashKey> {
        self.key.as_ref()
    }
}
