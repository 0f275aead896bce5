//! Checks serde cannot make: addresses, cross references, limits, and that secrets are reachable.
//! The statement policy's checks are in `validate_policy`.

use std::fmt;
use std::net::SocketAddr;

use super::model::Config;

/// One thing wrong with a configuration, located by its dotted key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Problems collected so far.
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

/// Every problem in `config` that does not depend on upstream secrets; key and certificate files
/// are checked too. Minting tokens needs no more than this.
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    gateway(config, &mut p);
    listeners(config, &mut p);
    admin(config, &mut p);
    identity(config, &mut p);
    resources(config, &mut p);
    roles(config, &mut p);
    audit(config, &mut p);
    recording(config, &mut p);
    approvals(config, &mut p);
    super::validate_policy::check(config, &mut p);
    super::validate_identity::check(config, &mut p);
    p.0
}

fn gateway(config: &Config, p: &mut Problems) {
    let g = &config.gateway;
    if !(1024..=1 << 30).contains(&g.max_message_bytes) {
        p.add(
            "gateway.max_message_bytes",
            "must be between 1024 and 1073741824",
        );
    }
    if g.workers > 1024 {
        p.add("gateway.workers", "must be at most 1024 (0 = one per core)");
    }
    if g.auth_timeout.is_zero() {
        p.add("gateway.auth_timeout", "must be greater than zero");
    }
}

fn listeners(config: &Config, p: &mut Problems) {
    if config.listeners.is_empty() {
        p.add("listener", "at least one [[listener]] is required");
    }
    for (i, l) in config.listeners.iter().enumerate() {
        let key = format!("listener[{i}]");
        let addr = match l.address.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.add(
                    format!("{key}.address"),
                    format!("`{}` is not an IP:port address", l.address),
                );
                None
            }
        };
        match (&l.tls_cert, &l.tls_key) {
            (Some(cert), Some(key_path)) => {
                for (name, path) in [("tls_cert", cert), ("tls_key", key_path)] {
                    if !path.is_file() {
                        p.add(
                            format!("{key}.{name}"),
                            format!("{} does not exist or is not a file", path.display()),
                        );
                    }
                }
            }
            (None, None) if !l.allow_plaintext => p.add(
                key.clone(),
                "has no tls_cert/tls_key and allow_plaintext is false: no client could connect",
            ),
            (None, None) => {}
            _ => p.add(key.clone(), "tls_cert and tls_key must be given together"),
        }
        if l.allow_plaintext && addr.is_some_and(|a| !a.ip().is_loopback()) {
            p.add(
                format!("{key}.allow_plaintext"),
                "is only allowed on a loopback address: session tokens would cross the network in the clear",
            );
        }
    }
}

fn admin(config: &Config, p: &mut Problems) {
    let Some(a) = &config.admin else {
        return;
    };
    let addr = match a.listen.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            p.add(
                "admin.listen",
                format!("`{}` is not an IP:port address", a.listen),
            );
            None
        }
    };
    match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => {
            for (name, path) in [("tls_cert", cert), ("tls_key", key)] {
                if !path.is_file() {
                    p.add(
                        format!("admin.{name}"),
                        format!("{} does not exist or is not a file", path.display()),
                    );
                }
            }
        }
        (None, None) => {
            if let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) {
                p.add(
                    "admin.listen",
                    format!(
                        "plaintext HTTP is only allowed on a loopback address, and {addr} is not \
                         one: listen on 127.0.0.1 or ::1, or set admin.tls_cert and admin.tls_key"
                    ),
                );
            }
        }
        _ => p.add("admin", "tls_cert and tls_key must be given together"),
    }
}

fn identity(config: &Config, p: &mut Problems) {
    let id = &config.identity;
    if id.issuer.trim().is_empty() {
        p.add("identity.issuer", "must not be empty");
    }
    if id.audience.trim().is_empty() {
        p.add("identity.audience", "must not be empty");
    }
    if !id.signing_key.is_file() {
        p.add(
            "identity.signing_key",
            format!(
                "{} does not exist (create one with `sluice keygen`)",
                id.signing_key.display()
            ),
        );
    }
    if id.default_ttl.is_zero() || id.max_ttl.is_zero() {
        p.add(
            "identity",
            "default_ttl and max_ttl must be greater than zero",
        );
    }
    if id.default_ttl > id.max_ttl {
        p.add("identity.default_ttl", "must not exceed identity.max_ttl");
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn resources(config: &Config, p: &mut Problems) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in config.resources.iter().enumerate() {
        let key = format!("resource[{i}]");
        if !valid_name(&r.name) {
            p.add(
                format!("{key}.name"),
                format!("`{}` must be 1-63 characters of A-Z a-z 0-9 _ - .", r.name),
            );
        } else if !seen.insert(r.name.as_str()) {
            p.add(
                format!("{key}.name"),
                format!("`{}` is defined twice", r.name),
            );
        }
        if r.host.trim().is_empty() {
            p.add(format!("{key}.host"), "must not be empty");
        }
        if r.port == 0 {
            p.add(format!("{key}.port"), "must not be 0");
        }
        if r.database.is_empty() || r.user.is_empty() {
            p.add(key.clone(), "database and user must not be empty");
        }
        if r.password_env.is_some() && r.password_file.is_some() {
            p.add(key.clone(), "give password_env or password_file, not both");
        }
        if let Some(ca) = &r.ca_file {
            if !ca.is_file() {
                p.add(
                    format!("{key}.ca_file"),
                    format!("{} does not exist or is not a file", ca.display()),
                );
            }
        }
    }
    if config.resources.is_empty() {
        p.add("resource", "at least one [[resource]] is required");
    }
}

fn roles(config: &Config, p: &mut Problems) {
    if config.roles.is_empty() {
        p.add("role", "at least one [role.NAME] is required");
    }
    for (name, role) in &config.roles {
        if !valid_name(name) {
            p.add(
                format!("role.{name}"),
                "role names must be 1-63 characters of A-Z a-z 0-9 _ - .",
            );
        }
        for r in &role.resources {
            if r != "*" && !config.resources.iter().any(|res| &res.name == r) {
                p.add(
                    format!("role.{name}.resources"),
                    format!("names unknown resource `{r}`"),
                );
            }
        }
    }
}

fn audit(config: &Config, p: &mut Problems) {
    let Some(a) = &config.audit else {
        return;
    };
    if a.file.is_none() && !a.stdout && !a.syslog {
        p.add(
            "audit",
            "has no output: set file, stdout = true or syslog = true",
        );
    }
    if let Some(file) = &a.file {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        if file.file_name().is_none() {
            p.add("audit.file", format!("{} names no file", file.display()));
        } else if !dir.is_dir() {
            p.add(
                "audit.file",
                format!("directory {} does not exist", dir.display()),
            );
        } else if file.exists() && !file.is_file() {
            p.add(
                "audit.file",
                format!("{} exists and is not a file", file.display()),
            );
        }
    }
    if a.max_file_bytes < 4096 {
        p.add("audit.max_file_bytes", "must be at least 4096");
    }
    if !(1..=1000).contains(&a.keep_files) {
        p.add("audit.keep_files", "must be between 1 and 1000");
    }
    if a.flush_interval.is_zero() || a.flush_interval > std::time::Duration::from_secs(60) {
        p.add(
            "audit.flush_interval",
            "must be greater than zero and at most 60s",
        );
    }
    if a.queue_capacity < 16 {
        p.add("audit.queue_capacity", "must be at least 16");
    }
}

fn recording(config: &Config, p: &mut Problems) {
    let Some(r) = &config.recording else {
        return;
    };
    if r.dir.exists() && !r.dir.is_dir() {
        p.add(
            "recording.dir",
            format!("{} exists and is not a directory", r.dir.display()),
        );
    }
    if r.segment_bytes < 64 << 10 {
        p.add("recording.segment_bytes", "must be at least 65536");
    }
    if r.retention < std::time::Duration::from_secs(60) {
        p.add("recording.retention", "must be at least 1m");
    }
    if r.flush_interval.is_zero() || r.flush_interval > std::time::Duration::from_secs(60) {
        p.add(
            "recording.flush_interval",
            "must be greater than zero and at most 60s",
        );
    }
    if r.queue_capacity < 16 {
        p.add("recording.queue_capacity", "must be at least 16");
    }
}

fn approvals(config: &Config, p: &mut Problems) {
    let a = &config.approvals;
    if a.timeout.is_zero() {
        p.add("approvals.timeout", "must be greater than zero");
    }
    if !(1..=10).contains(&a.webhook_attempts) {
        p.add("approvals.webhook_attempts", "must be between 1 and 10");
    }
    match &a.webhook_url {
        Some(url) => match crate::http_client::Url::parse(url) {
            Ok(u) if !u.https && !u.is_loopback_host() => p.add(
                "approvals.webhook_url",
                format!("`{url}`: http:// is only allowed to a loopback address; use https://"),
            ),
            Ok(_) => {}
            Err(e) => p.add("approvals.webhook_url", e.to_string()),
        },
        None if a.webhook_ca_file.is_some() => {
            p.add("approvals.webhook_ca_file", "is set but webhook_url is not")
        }
        None => {}
    }
    if let Some(ca) = a.webhook_ca_file.as_ref().filter(|f| !f.is_file()) {
        p.add(
            "approvals.webhook_ca_file",
            format!("{} does not exist or is not a file", ca.display()),
        );
    }
    for (name, role) in &config.roles {
        let Some(list) = &role.approve_resources else {
            continue;
        };
        let key = format!("role.{}.approve_resources", super::toml_key(name));
        if !role.approver {
            p.add(
                key.clone(),
                "is set but the role is not an approver (approver = true)",
            );
        }
        for r in list.iter().filter(|r| *r != "*") {
            if !config.resources.iter().any(|res| &res.name == r) {
                p.add(key.clone(), format!("resource `{r}` is not configured"));
            }
        }
    }
}

/// Problems with the upstream secrets: environment variables that are not set, password files
/// that do not exist. Only the serving process needs them, so only `serve` and `check-config`
/// look.
pub fn check_secrets(config: &Config) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    for (i, r) in config.resources.iter().enumerate() {
        let key = format!("resource[{i}]");
        match (&r.password_env, &r.password_file) {
            (Some(var), _) if std::env::var_os(var).is_none() => p.add(
                format!("{key}.password_env"),
                format!("environment variable {var} is not set"),
            ),
            (None, Some(file)) if !file.is_file() => p.add(
                format!("{key}.password_file"),
                format!("{} does not exist or is not a file", file.display()),
            ),
            _ => {}
        }
    }
    p.0
}
