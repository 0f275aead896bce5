//! The TOML configuration model and its validation.
//!
//! Parsing rejects unknown keys (`deny_unknown_fields`) and reports the key's location; validation
//! then checks what serde cannot (addresses, cross references, secrets being readable) and reports
//! every problem at once, each with the dotted path of the offending key.

mod duration;
mod load;
mod model;
mod validate;

pub use duration::{format_duration, parse_duration};
pub use load::{load, load_without_secrets, ConfigError, LoadedConfig};
pub use model::{
    Config, GatewaySection, IdentitySection, ListenerSection, Protocol, ResourceKind,
    ResourceSection, RoleSection, UpstreamTls,
};
pub use validate::Problem;

impl LoadedConfig {
    /// The named resource, if configured.
    pub fn resource(&self, name: &str) -> Option<&ResourceSection> {
        self.config.resources.iter().find(|r| r.name == name)
    }
}
