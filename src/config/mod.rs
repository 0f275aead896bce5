//! The TOML configuration model and its validation.
//!
//! Parsing rejects unknown keys (`deny_unknown_fields`) and reports the key's location; validation
//! then checks what serde cannot (addresses, cross references, secrets being readable) and reports
//! every problem at once, each with the dotted path of the offending key.

mod audit;
mod duration;
#[cfg(test)]
pub(crate) mod fixture;
mod load;
mod model;
mod policy;
mod providers;
mod recording;
mod validate;
mod validate_identity;
mod validate_policy;

pub use audit::{AuditSection, Overflow};
pub use duration::{format_duration, parse_duration};
pub use load::{load, load_without_secrets, ConfigError, LoadedConfig};
pub use model::{
    AdminSection, ApprovalsSection, Config, GatewaySection, IdentitySection, ListenerSection,
    Protocol, ResourceKind, ResourceSection, RoleSection, UpstreamTls,
};
pub use policy::{
    class_key, rule_path, toml_key, Action, Detector, MaskSection, PolicySection, RuleSection,
    CLASSES, DEFAULT_PROTECTED_SETTINGS,
};
pub use providers::{MappingSection, ProviderSection};
pub use recording::{RecordingOverflow, RecordingSection};
pub use validate::Problem;
pub use validate_policy::validate_policy;

impl LoadedConfig {
    /// The named resource, if configured.
    pub fn resource(&self, name: &str) -> Option<&ResourceSection> {
        self.config.resources.iter().find(|r| r.name == name)
    }
}
