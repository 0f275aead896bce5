//! Reading a config file from disk: parse, resolve relative paths, validate.

use std::path::{Path, PathBuf};

use super::model::Config;
use super::validate::{check_secrets, validate, Problem};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// A validated configuration with its paths made absolute.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: Config,
}

/// Loads, resolves and validates the file at `path`, including that the upstream secrets are
/// reachable: what `serve` and `check-config` need.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let loaded = load_without_secrets(path)?;
    let problems = check_secrets(&loaded.config);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        });
    }
    Ok(loaded)
}

/// Loads, resolves and validates the file at `path` without looking at upstream secrets: what
/// minting tokens needs.
pub fn load_without_secrets(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    resolve_paths(&mut config, &base);
    let problems = validate(&config);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        });
    }
    Ok(LoadedConfig {
        path: path.to_owned(),
        config,
    })
}

fn resolve_paths(config: &mut Config, base: &Path) {
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    fix(&mut config.identity.signing_key);
    config.identity.revocation_file.iter_mut().for_each(fix);
    for pr in &mut config.identity.providers {
        pr.jwks_file
            .iter_mut()
            .chain(pr.jwks_ca_file.iter_mut())
            .for_each(fix);
    }
    config.approvals.webhook_ca_file.iter_mut().for_each(fix);
    if let Some(r) = &mut config.recording {
        fix(&mut r.dir);
    }
    if let Some(a) = &mut config.audit {
        a.file.iter_mut().for_each(fix);
    }
    for l in &mut config.listeners {
        l.tls_cert
            .iter_mut()
            .chain(l.tls_key.iter_mut())
            .for_each(fix);
    }
    for r in &mut config.resources {
        r.password_file
            .iter_mut()
            .chain(r.ca_file.iter_mut())
            .for_each(fix);
    }
    if let Some(a) = &mut config.admin {
        a.tls_cert
            .iter_mut()
            .chain(a.tls_key.iter_mut())
            .for_each(fix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixture::{resource, HEAD};

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::write(dir.join("signing.key"), "placeholder").unwrap();
        let p = dir.join("sluice.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The shared head, the resources orders, and the rest.
    fn good() -> String {
        [HEAD, &resource("orders"), GOOD_REST].concat()
    }

    const GOOD_REST: &str = r#"
[role.reader]
resources = ["orders"]
"#;

    #[test]
    fn loads_a_minimal_config_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(&write(dir.path(), &good())).unwrap();
        let c = &loaded.config;
        assert_eq!(c.gateway.max_message_bytes, 16 << 20);
        assert_eq!(c.resources[0].port, 5432);
        assert_eq!(c.identity.signing_key, dir.path().join("signing.key"));
        assert!(c.roles["reader"].allows_resource("orders"));
        assert!(!c.roles["reader"].allows_resource("billing"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_location() {
        let dir = tempfile::tempdir().unwrap();
        let text = good().replace("user = \"app\"", "user = \"app\"\npasword_env = \"X\"");
        let err = load(&write(dir.path(), &text)).unwrap_err().to_string();
        assert!(err.contains("pasword_env"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn admin_plaintext_only_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let with = |admin: &str| good() + "\n[admin]\n" + admin + "\n";
        let ok = load(&write(dir.path(), &with("listen = \"127.0.0.1:9432\""))).unwrap();
        assert_eq!(ok.config.admin.unwrap().listen, "127.0.0.1:9432");
        load(&write(dir.path(), &with("listen = \"[::1]:9432\""))).unwrap();
        let err = load(&write(dir.path(), &with("listen = \"0.0.0.0:9432\"")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("admin.listen: plaintext HTTP is only allowed on a loopback address"),
            "{err}"
        );
        let err = load(&write(
            dir.path(),
            &with("listen = \"10.0.0.1:9432\"\ntls_cert = \"c.pem\""),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("admin: tls_cert and tls_key must be given together"),
            "{err}"
        );
        let err = load(&write(dir.path(), &with("listen = \"localhost:9432\"")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("admin.listen: `localhost:9432` is not an IP:port address"),
            "{err}"
        );
        // With TLS, any address; the files are resolved next to the config and must exist.
        std::fs::write(dir.path().join("c.pem"), "x").unwrap();
        std::fs::write(dir.path().join("k.pem"), "x").unwrap();
        let tls = with("listen = \"0.0.0.0:9432\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"");
        let loaded = load(&write(dir.path(), &tls)).unwrap();
        assert_eq!(
            loaded.config.admin.unwrap().tls_cert,
            Some(dir.path().join("c.pem"))
        );
    }

    #[test]
    fn bad_values_are_rejected_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = good()
            .replace("127.0.0.1:0", "0.0.0.0:6432")
            .replace("resources = [\"orders\"]", "resources = [\"nope\"]")
            + "\n[role.reader.rules.\"*\"]\ndeny_functions = [\"f*x\"]\n"
            + "\n[gateway]\nmax_message_bytes = 10\n";
        let err = load(&write(dir.path(), &text)).unwrap_err().to_string();
        for needle in [
            "listener[0].allow_plaintext",
            "role.reader.resources: names unknown resource `nope`",
            "gateway.max_message_bytes",
            "role.reader.rules.\"*\".deny_functions[0]: function pattern `f*x`",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
    }

    #[test]
    fn bad_durations_and_missing_secrets_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let text = good().replace(
            "signing_key = \"signing.key\"",
            "signing_key = \"signing.key\"\ndefault_ttl = \"15 parsecs\"",
        );
        let err = load(&write(dir.path(), &text)).unwrap_err().to_string();
        assert!(err.contains("unknown duration unit"), "{err}");
        let text = good().replace(
            "user = \"app\"",
            "user = \"app\"\npassword_env = \"SLUICE_TEST_SURELY_UNSET_VAR\"",
        );
        let err = load(&write(dir.path(), &text)).unwrap_err().to_string();
        assert!(
            err.contains("SLUICE_TEST_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
    }

    #[test]
    fn recording_and_approvals_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a-file"), "x").unwrap();
        let text = good()
            + "\n[recording]\ndir = \"rec\"\n\n[approvals]\ntimeout = \"1m\"\n\
               webhook_url = \"https://chat.example/hook\"\n";
        let loaded = load(&write(dir.path(), &text)).unwrap();
        assert_eq!(loaded.config.recording.unwrap().dir, dir.path().join("rec"));
        let bad = good()
            + "\n[recording]\ndir = \"a-file\"\nsegment_bytes = 10\nqueue_capacity = 0\n\
               flush_interval = \"0s\"\nretention = \"1s\"\n\n[approvals]\ntimeout = \"0s\"\n\
               webhook_url = \"http://chat.example/hook\"\nwebhook_attempts = 0\n\n\
               [role.oncall]\nresources = [\"orders\"]\napprove_resources = [\"billing\"]\n";
        let err = load(&write(dir.path(), &bad)).unwrap_err().to_string();
        for needle in [
            "recording.dir: ",
            "recording.segment_bytes: must be at least 65536",
            "recording.queue_capacity: must be at least 16",
            "recording.flush_interval: must be greater than zero",
            "recording.retention: must be at least 1m",
            "approvals.timeout: must be greater than zero",
            "approvals.webhook_url: `http://chat.example/hook`: http:// is only allowed to a loopback",
            "approvals.webhook_attempts: must be between 1 and 10",
            "role.oncall.approve_resources: is set but the role is not an approver",
            "role.oncall.approve_resources: resource `billing` is not configured",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
    }

    #[test]
    fn the_audit_section_is_resolved_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("log")).unwrap();
        let with = |audit: &str| good() + "\n[audit]\n" + audit + "\n";
        let loaded = load(&write(
            dir.path(),
            &with("file = \"log/audit.jsonl\"\nflush_interval = \"250ms\"\noverflow = \"fail\""),
        ))
        .unwrap();
        let a = loaded.config.audit.unwrap();
        assert_eq!(a.file, Some(dir.path().join("log/audit.jsonl")));
        assert_eq!(a.flush_interval, std::time::Duration::from_millis(250));
        assert_eq!(a.overflow, crate::config::Overflow::Fail);
        load(&write(dir.path(), &with("stdout = true"))).unwrap();

        let err = load(&write(
            dir.path(),
            &with(
                "file = \"nope/audit.jsonl\"\nqueue_capacity = 4\nkeep_files = 0\n\
                 flush_interval = \"2m\"\nmax_file_bytes = 100",
            ),
        ))
        .unwrap_err()
        .to_string();
        for needle in [
            "audit.file: directory",
            "audit.queue_capacity: must be at least 16",
            "audit.keep_files: must be between 1 and 1000",
            "audit.flush_interval: must be greater than zero and at most 60s",
            "audit.max_file_bytes: must be at least 4096",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
        let err = load(&write(dir.path(), &with("flush_interval = \"0s\"")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("audit: has no output"), "{err}");
        assert!(err.contains("audit.flush_interval"), "{err}");
        let err = load(&write(dir.path(), &with("file = \"log\"")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("audit.file:") && err.contains("is not a file"),
            "{err}"
        );
    }
}
