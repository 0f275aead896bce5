//! The configuration as written in `sluice.toml`. Paths are relative to the file's directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::audit::AuditSection;
use super::duration::{format_duration, parse_duration};
use super::policy::{PolicySection, RuleSection};
use super::providers::ProviderSection;
use super::recording::RecordingSection;
use crate::identity::{IdentityError, SigningKey, TokenIssuer, TokenSettings};

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub gateway: GatewaySection,
    #[serde(rename = "listener", default)]
    pub listeners: Vec<ListenerSection>,
    pub identity: IdentitySection,
    #[serde(rename = "resource", default)]
    pub resources: Vec<ResourceSection>,
    #[serde(rename = "role", default)]
    pub roles: BTreeMap<String, RoleSection>,
    /// Process-wide statement-policy settings.
    #[serde(default, skip_serializing_if = "PolicySection::is_empty")]
    pub policy: PolicySection,
    /// The control plane's admin listener; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminSection>,
    /// The audit trail; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditSection>,
    /// How held statements wait for a human's approval.
    #[serde(default)]
    pub approvals: ApprovalsSection,
    /// Session recordings; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingSection>,
}

/// The control plane's HTTP listener (metrics and statistics for now).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// `IP:port`. Without `tls_cert`/`tls_key` the listener speaks plaintext HTTP, which is
    /// allowed only on a loopback address.
    pub listen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Token requests (exchange, delegate, revoke) each caller may make per minute.
    #[serde(default = "token_rate_per_minute")]
    pub token_rate_per_minute: u32,
    /// Token requests a caller may make at once before the rate applies.
    #[serde(default = "token_burst")]
    pub token_burst: u32,
}

impl AdminSection {
    /// A plaintext listener on `listen` (which must be a loopback address) with default limits.
    pub fn plaintext(listen: &str) -> AdminSection {
        AdminSection {
            listen: listen.into(),
            tls_cert: None,
            tls_key: None,
            token_rate_per_minute: token_rate_per_minute(),
            token_burst: token_burst(),
        }
    }
}

fn token_rate_per_minute() -> u32 {
    60
}
fn token_burst() -> u32 {
    20
}

/// Process-wide settings of the data plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Shards to run; 0 means one per available core.
    pub workers: usize,
    /// Pin each shard to its own core.
    pub pin_cores: bool,
    /// How long running statements may take to finish on shutdown.
    #[serde(with = "human")]
    pub drain_timeout: Duration,
    /// Largest frontend message accepted; larger ones end the session with a FATAL.
    pub max_message_bytes: usize,
    /// How long a client may take from connect to a completed authentication.
    #[serde(with = "human")]
    pub auth_timeout: Duration,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            workers: 0,
            pin_cores: true,
            drain_timeout: Duration::from_secs(10),
            max_message_bytes: 16 << 20,
            auth_timeout: Duration::from_secs(15),
        }
    }
}

/// Wire protocol spoken on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Postgres,
}

impl Protocol {
    /// The name used in config and in the `listening` line.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Postgres => "postgres",
        }
    }
}

/// One listening socket (bound once per shard with SO_REUSEPORT).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    pub address: String,
    pub protocol: Protocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Accept clients that do not ask for TLS; allowed only on loopback addresses.
    #[serde(default)]
    pub allow_plaintext: bool,
}

/// Session-token settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    pub issuer: String,
    pub audience: String,
    pub signing_key: PathBuf,
    #[serde(with = "human", default = "default_ttl")]
    pub default_ttl: Duration,
    #[serde(with = "human", default = "max_ttl")]
    pub max_ttl: Duration,
    #[serde(with = "human", default = "leeway")]
    pub leeway: Duration,
    /// Longest delegation chain below a root token (a root's child has depth 1).
    #[serde(default = "max_delegation_depth")]
    pub max_delegation_depth: usize,
    /// Where revocations are kept so that they survive a restart; in memory only when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_file: Option<PathBuf>,
    /// Identity providers whose tokens `POST /v1/token/exchange` accepts.
    #[serde(rename = "provider", default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderSection>,
}

fn max_delegation_depth() -> usize {
    4
}

impl IdentitySection {
    /// The settings tokens are minted and verified with.
    pub fn token_settings(&self) -> TokenSettings {
        TokenSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            leeway: self.leeway,
        }
    }

    /// An issuer with the configured signing key.
    pub fn token_issuer(&self) -> Result<TokenIssuer, IdentityError> {
        let key = SigningKey::load(&self.signing_key)?;
        Ok(TokenIssuer::new(&key, &self.token_settings()))
    }
}

fn default_ttl() -> Duration {
    Duration::from_secs(15 * 60)
}
fn max_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn leeway() -> Duration {
    Duration::from_secs(5)
}

/// What kind of upstream a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    #[default]
    Postgres,
}

/// How the gateway protects its connection to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTls {
    /// Plain TCP (loopback or a trusted network only).
    #[default]
    Disable,
    /// TLS; the server's certificate chain is verified against `ca_file` (or the public web roots
    /// when none is given) and its name against `host`. There is deliberately no unverified mode.
    VerifyFull,
}

/// A protected upstream, reached with a credential only the gateway holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSection {
    pub name: String,
    #[serde(default)]
    pub kind: ResourceKind,
    pub host: String,
    #[serde(default = "default_pg_port")]
    pub port: u16,
    pub database: String,
    pub user: String,
    /// Environment variable holding the upstream password, read at serve time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the upstream password (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub upstream_tls: UpstreamTls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(with = "human", default = "connect_timeout")]
    pub connect_timeout: Duration,
}

fn default_pg_port() -> u16 {
    5432
}
fn connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// What a role may reach, and what it may do there.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RoleSection {
    /// Resource names, or `*` for all.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Statement rules per resource name, or `*` for every resource without its own entry.
    /// A role without any is unrestricted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, RuleSection>,
    /// How strong the role is, for delegation: a token may hand its child one of its own
    /// roles, or a role of lower strength than one of them. Roles without a strength can only
    /// be handed on as themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<u32>,
    /// Tokens with this role may use the admin API (sessions, revoking any token).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
    /// Tokens with this role may approve or deny held statements.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approver: bool,
    /// The resources whose statements this role may approve (`*` for all); the role's own
    /// `resources` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_resources: Option<Vec<String>>,
}

impl RoleSection {
    /// Whether this role may approve statements on `resource`.
    pub fn approves(&self, resource: &str) -> bool {
        self.approver
            && self
                .approve_resources
                .as_ref()
                .unwrap_or(&self.resources)
                .iter()
                .any(|r| r == "*" || r == resource)
    }
}

/// Held statements (`review` rules).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsSection {
    /// How long a held statement waits before it fails as timed out.
    #[serde(with = "human")]
    pub timeout: Duration,
    /// The longest window an approval may cover (same statement fingerprint, same identity).
    #[serde(with = "human")]
    pub max_window: Duration,
    /// Told of every new request: an HTTP POST of the request as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// CA bundle for an `https://` webhook with a private CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_ca_file: Option<PathBuf>,
    /// Attempts of each webhook call (with a doubling pause from 1 s).
    pub webhook_attempts: u32,
}

impl Default for ApprovalsSection {
    fn default() -> Self {
        ApprovalsSection {
            timeout: Duration::from_secs(300),
            max_window: Duration::from_secs(3600),
            webhook_url: None,
            webhook_ca_file: None,
            webhook_attempts: 4,
        }
    }
}

impl RoleSection {
    /// Whether this role may connect to the named resource.
    pub fn allows_resource(&self, name: &str) -> bool {
        self.resources.iter().any(|r| r == "*" || r == name)
    }

    /// The rule table for `resource` and its key (the resource's own entry, else `*`); `None`
    /// when the role has no rule for it.
    pub fn rule_for(&self, resource: &str) -> Option<(&str, &RuleSection)> {
        self.rules
            .get_key_value(resource)
            .or_else(|| self.rules.get_key_value("*"))
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// Durations written as `10s`, `15m`, ... in the file.
pub(super) mod human {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Optional durations written as `10s`, `15m`, ... in the file.
pub(super) mod human_opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}
