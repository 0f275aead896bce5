//! `sluice init`: a working starter configuration for one PostgreSQL upstream.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;

/// Arguments of `sluice init`.
#[derive(Args, Debug, Clone)]
pub struct InitArgs {
    /// The upstream, as postgresql://USER@HOST:PORT/DB (no password: see --password-env).
    #[arg(long)]
    pub upstream: String,
    /// Environment variable that will hold the upstream password when the gateway runs.
    #[arg(long)]
    pub password_env: String,
    /// Address of the gateway's PostgreSQL listener.
    #[arg(long)]
    pub listen: String,
    /// Directory to write sluice.toml, the signing key and the TLS certificate into.
    #[arg(long)]
    pub out: PathBuf,
    /// Name of the sluice resource (what clients put as the database name); default: DB.
    #[arg(long)]
    pub resource: Option<String>,
    /// Also accept plaintext clients (loopback listeners only).
    #[arg(long)]
    pub plaintext: bool,
}

/// Why `init` refused.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("--upstream: {0}")]
    Upstream(String),
    #[error("--listen: `{0}` is not an IP:port address")]
    Listen(String),
    #[error("--plaintext is only allowed with a loopback --listen address")]
    PlaintextNotLoopback,
    #[error("{0} already exists; choose another --out or remove it")]
    Exists(PathBuf),
    #[error("--password-env: `{0}` is not a valid environment variable name")]
    PasswordEnv(String),
    #[error(transparent)]
    Keygen(#[from] crate::identity::KeygenError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A parsed `postgresql://USER@HOST:PORT/DB` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub database: String,
}

/// Parses the upstream URL; a password in it is refused so that it never lands on disk.
pub fn parse_upstream(url: &str) -> Result<UpstreamUrl, InitError> {
    let bad = |m: &str| InitError::Upstream(m.to_owned());
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| bad("must start with postgresql://"))?;
    let (userinfo, rest) = rest
        .split_once('@')
        .ok_or_else(|| bad("must name a user: postgresql://USER@HOST:PORT/DB"))?;
    if userinfo.contains(':') {
        return Err(bad(
            "must not contain a password; pass it through the variable named by --password-env",
        ));
    }
    let (hostport, database) = rest
        .split_once('/')
        .ok_or_else(|| bad("must name a database: postgresql://USER@HOST:PORT/DB"))?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| bad("port must be a number from 1 to 65535"))?,
        ),
        _ => (hostport, 5432),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let database = database.split('?').next().unwrap_or_default();
    if userinfo.is_empty() || host.is_empty() || database.is_empty() || port == 0 {
        return Err(bad("expected postgresql://USER@HOST:PORT/DB"));
    }
    Ok(UpstreamUrl {
        user: userinfo.to_owned(),
        host: host.to_owned(),
        port,
        database: database.to_owned(),
    })
}

/// Writes the configuration and keys, and prints the next commands.
pub fn run(args: &InitArgs) -> Result<PathBuf, InitError> {
    let config_path = write(args)?;
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|_| InitError::Listen(args.listen.clone()))?;
    let upstream = parse_upstream(&args.upstream)?;
    let resource = args.resource.clone().unwrap_or(upstream.database);
    let cfg = config_path.display();
    eprintln!("wrote {cfg}");
    eprintln!();
    eprintln!("Next:");
    eprintln!("  export {}='<the upstream password>'", args.password_env);
    eprintln!("  sluice serve --config {cfg}");
    eprintln!(
        "  TOKEN=$(sluice token issue --config {cfg} --subject $USER --role reader --resource {resource})"
    );
    let port = match listen.port() {
        0 => "<the port `serve` prints>".to_owned(),
        p => p.to_string(),
    };
    eprintln!(
        "  PGPASSWORD=$TOKEN psql \"host={} port={port} dbname={resource} user=$USER sslmode=require\"",
        listen.ip(),
    );
    Ok(config_path)
}

/// Writes `OUT/sluice.toml` and the keys without printing anything; returns the config path.
pub fn write(args: &InitArgs) -> Result<PathBuf, InitError> {
    let upstream = parse_upstream(&args.upstream)?;
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|_| InitError::Listen(args.listen.clone()))?;
    if args.plaintext && !listen.ip().is_loopback() {
        return Err(InitError::PlaintextNotLoopback);
    }
    let env_ok = !args.password_env.is_empty()
        && args
            .password_env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !args.password_env.as_bytes()[0].is_ascii_digit();
    if !env_ok {
        return Err(InitError::PasswordEnv(args.password_env.clone()));
    }
    let config_path = args.out.join("sluice.toml");
    if config_path.exists() {
        return Err(InitError::Exists(config_path));
    }
    let hosts = vec![listen.ip().to_string()];
    crate::identity::keygen(&args.out, &hosts)?;
    let resource = args
        .resource
        .clone()
        .unwrap_or_else(|| upstream.database.clone());
    let text = render(args, &upstream, &resource, &listen);
    write_file(&config_path, &text)?;
    Ok(config_path)
}

fn write_file(path: &Path, text: &str) -> Result<(), InitError> {
    std::fs::write(path, text).map_err(|source| InitError::Write {
        path: path.to_owned(),
        source,
    })
}

fn quote(s: &str) -> String {
    // TOML basic strings share JSON's escaping rules for the characters that matter here.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn render(args: &InitArgs, up: &UpstreamUrl, resource: &str, listen: &SocketAddr) -> String {
    format!(
        r#"# sluice configuration written by `sluice init`. Paths are relative to this file.

[gateway]
workers = 0                    # shards; 0 = one per core
pin_cores = true
drain_timeout = "10s"          # how long running statements may finish on shutdown
max_message_bytes = 16777216   # largest client message accepted

[[listener]]
address = {listen}
protocol = "postgres"
tls_cert = "tls.crt"
tls_key = "tls.key"
allow_plaintext = {plaintext}

# The control plane's admin listener: Prometheus metrics at /metrics, per-shard statistics
# at /v1/stats (`sluice stats --gateway http://127.0.0.1:9432`), and the token API: exchange
# an identity provider's token, delegate to a child, revoke, list live sessions
# (`sluice token ...`, `sluice sessions`). Plaintext HTTP is allowed only on a loopback
# address; anywhere else give tls_cert and tls_key (HTTPS).
# [admin]
# listen = "127.0.0.1:9432"
# tls_cert = "tls.crt"
# tls_key = "tls.key"
# token_rate_per_minute = 60   # token requests per caller (client address, or token tree)
# token_burst = 20

[identity]
issuer = "sluice"
audience = "sluice"
signing_key = "signing.key"
default_ttl = "15m"
max_ttl = "24h"
leeway = "5s"
max_delegation_depth = 4            # links below a root token
revocation_file = "revocations.jsonl"  # revocations survive restarts

# Identity providers whose tokens `sluice token exchange` trades for session tokens. The
# first [[identity.provider.map]] whose `when` matches the token's claims decides the grant.
# [[identity.provider]]
# name = "ci"
# issuer = "https://token.actions.githubusercontent.com"
# audience = "sluice"
# jwks_url = "https://token.actions.githubusercontent.com/.well-known/jwks"
# jwks_refresh = "5m"
# algorithms = ["RS256"]
# [[identity.provider.map]]
# when = 'repository == "acme/api" and ref == "refs/heads/main"'
# roles = ["reader"]
# resources = [{resource}]
# ttl = "15m"

# The audit trail: one JSON line per connection, authentication, statement decision (by
# fingerprint: literals are never written), session end, token exchange, delegation and
# revocation, each with the whole identity chain. Written off the shard cores, flushed and
# synced every flush_interval (a crash loses at most that much). When the queue is full,
# overflow = "block" makes the session wait, "drop" drops and counts, "fail" ends the session.
[audit]
file = "audit.jsonl"
max_file_bytes = 67108864      # rotate at 64 MiB into audit.jsonl.1, .2, ...
keep_files = 8
flush_interval = "1s"
overflow = "block"
# stdout = true
# syslog = true                 # to /dev/log, facility authpriv

# Session recordings: every session's statements, parameters, decisions and results as the
# client received them (after masking), up to max_statement_bytes of rows per request, in
# checksummed segment files. `sluice sessions --config F --since 1h` lists them and
# `sluice replay --config F SESSION` prints one. overflow = "block" makes a session wait for a
# slow disk, "fail" ends it; nothing is dropped silently.
[recording]
dir = "recordings"
segment_bytes = 67108864       # a new segment at 64 MiB
retention = "7d"
flush_interval = "1s"
max_statement_bytes = 65536
overflow = "block"

[[resource]]
name = {resource}
kind = "postgres"
host = {host}
port = {port}
database = {database}
user = {user}
password_env = {env}           # read when the gateway starts; never written to disk
upstream_tls = "disable"       # or "verify-full" (with ca_file = "...")

# Roles name the resources they may reach. A role without rule tables ([role.NAME.rules.*])
# is unrestricted: every statement runs and nothing is masked. That is `admin`.
# `strength` orders roles for delegation: a token may hand its child one of its own roles or
# a weaker one. `admin = true` lets a role's tokens use the admin API (sessions, revoking any
# token).
[role.admin]
resources = ["*"]
strength = 100
admin = true

[role.reader]
resources = [{resource}]
strength = 10

# What `reader` may do on every resource it reaches ("*"; a table named after one resource
# gives that resource rules of its own). Each statement is classified and gets its class's
# action: "allow", "block" (the client gets SQLSTATE 42501 and the session stays usable) or
# "review" (needs a human's approval).
[role.reader.rules."*"]
read = "allow"          # SELECT, VALUES, TABLE, SHOW, FETCH, EXPLAIN without ANALYZE
transaction = "allow"   # BEGIN, COMMIT, ROLLBACK, SAVEPOINT
session = "allow"       # SET, RESET, LISTEN, DISCARD; protected settings stay blocked
copy_out = "allow"      # COPY ... TO STDOUT
write = "block"         # INSERT, UPDATE, DELETE, MERGE, SELECT FOR UPDATE, nextval(), ...
ddl = "block"           # CREATE, ALTER, DROP, TRUNCATE, COMMENT, SELECT INTO
admin = "block"         # roles, GRANT, ALTER SYSTEM, VACUUM, server files, dblink, ...
procedural = "block"    # DO, CALL: code the gateway cannot look into
unknown = "block"       # anything that cannot be classified with certainty
default = "block"       # every class not listed
# More checks a rule can make (all off here):
# require_where = true            # block UPDATE and DELETE without a WHERE clause
# max_rows = 10000                # cut each result set after this many rows
# deny_commands = ["TRUNCATE"]    # command prefixes, matched word by word
# deny_functions = ["pg_sleep"]   # function names; `prefix*` and `schema.name` work too
# deny_patterns = ["pg_authid"]   # SQL word sequences; case, spacing and comments ignored
# protected_settings = ["role"]   # settings SET/RESET may never change; the default list is
#                                 # role, session_authorization, session_characteristics,
#                                 # standard_conforming_strings, client_encoding,
#                                 # default_transaction_read_only, transaction_read_only,
#                                 # search_path

# A rule action "review" holds the statement until a human decides: the client gets a notice
# with the approval id and waits; tokens of a role with `approver = true` (not of the same
# identity chain) run `sluice approvals approve|deny ID`; after `approvals.timeout` it fails.
# [role.oncall]
# resources = [{resource}]
# approver = true
# [approvals]
# timeout = "5m"
# max_window = "1h"                # approve the same statement by the same identity for a while
# webhook_url = "https://chat.example/hooks/sluice"   # told of every new request

# What `reader` sees masked. Columns: `column`, `table.column` or `schema.table.column`
# (globs * and ? allowed) mapped to a style: "full" (****), "last4" (****1234), "hash"
# (stable keyed hash: equal values stay equal) or "null".
[role.reader.rules."*".mask]
columns = {{ card_number = "last4", email = "full", ssn = "full" }}
# Value detectors scan every value, error and notice for card numbers, emails, SSNs and
# secrets wherever they appear. All four run when any column is masked; `detectors = []`
# turns them off, a list picks some.
# detectors = ["cards", "emails", "ssns", "secrets"]
"#,
        listen = quote(&listen.to_string()),
        plaintext = args.plaintext,
        resource = quote(resource),
        host = quote(&up.host),
        port = up.port,
        database = quote(&up.database),
        user = quote(&up.user),
        env = quote(&args.password_env),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_urls() {
        let u = parse_upstream("postgresql://app@db:5433/orders").unwrap();
        assert_eq!(
            u,
            UpstreamUrl {
                user: "app".into(),
                host: "db".into(),
                port: 5433,
                database: "orders".into()
            }
        );
        assert_eq!(parse_upstream("postgres://a@h/d").unwrap().port, 5432);
        assert_eq!(
            parse_upstream("postgresql://a@[::1]:6000/d").unwrap().host,
            "::1"
        );
    }

    #[test]
    fn refuses_passwords_and_garbage() {
        assert!(parse_upstream("postgresql://app:secret@db/orders").is_err());
        assert!(parse_upstream("mysql://app@db/orders").is_err());
        assert!(parse_upstream("postgresql://db/orders").is_err());
        assert!(parse_upstream("postgresql://app@db:99999/orders").is_err());
        assert!(parse_upstream("postgresql://app@db:5432").is_err());
    }

    #[test]
    fn the_commented_admin_section_loads_once_uncommented() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("SLUICE_INIT_ADMIN_TEST_PW", "pw");
        let path = write(&InitArgs {
            upstream: "postgresql://app@127.0.0.1:5432/orders".into(),
            password_env: "SLUICE_INIT_ADMIN_TEST_PW".into(),
            listen: "127.0.0.1:0".into(),
            out: dir.path().join("gw"),
            resource: None,
            plaintext: true,
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(crate::config::load(&path).unwrap().config.admin.is_none());
        let enabled = text
            .replace("# [admin]\n", "[admin]\n")
            .replace(
                "# listen = \"127.0.0.1:9432\"",
                "listen = \"127.0.0.1:9432\"",
            )
            .replace("# tls_cert = ", "tls_cert = ")
            .replace("# tls_key = ", "tls_key = ");
        std::fs::write(&path, enabled).unwrap();
        let admin = crate::config::load(&path).unwrap().config.admin.unwrap();
        assert_eq!(admin.listen, "127.0.0.1:9432");
        assert!(admin.tls_cert.is_some_and(|c| c.is_file()));
    }

    #[test]
    fn writes_a_config_that_loads() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("gw");
        std::env::set_var("SLUICE_INIT_TEST_PW", "pw");
        let args = InitArgs {
            upstream: "postgresql://app@127.0.0.1:5432/orders".into(),
            password_env: "SLUICE_INIT_TEST_PW".into(),
            listen: "127.0.0.1:0".into(),
            out: out.clone(),
            resource: Some("shop".into()),
            plaintext: true,
        };
        let path = write(&args).unwrap();
        let loaded = crate::config::load(&path).unwrap();
        let r = loaded.resource("shop").unwrap();
        assert_eq!((r.database.as_str(), r.user.as_str()), ("orders", "app"));
        assert!(loaded.config.listeners[0].allow_plaintext);
        let key = crate::policy::mask_key_from_signing_key(&[1; 32]);
        let policy = crate::policy::PolicySet::compile(&loaded.config, Some(key)).unwrap();
        let session = |role: &str| policy.session(&[role.to_string()], "shop").unwrap();
        assert!(session("admin").unrestricted());
        let reader = session("reader");
        for sql in [
            "SELECT * FROM customers",
            "BEGIN",
            "SET application_name = 'x'",
        ] {
            assert!(reader.judge(sql, true).is_allow(), "{sql}");
        }
        for sql in [
            "DELETE FROM customers",
            "DROP TABLE customers",
            "DO $$ $$",
            "SET ROLE x",
        ] {
            assert!(!reader.judge(sql, true).is_allow(), "{sql}");
        }
        let mask = reader.mask();
        assert_eq!(
            mask.rules().style_for(None, "card_number"),
            Some(crate::mask::MaskStyle::Last4)
        );
        assert_eq!(mask.detectors(), crate::mask::Detectors::ALL);
        assert!(matches!(write(&args), Err(InitError::Exists(_))));
        let public = InitArgs {
            listen: "0.0.0.0:6432".into(),
            out: dir.path().join("other"),
            ..args
        };
        assert!(matches!(
            write(&public),
            Err(InitError::PlaintextNotLoopback)
        ));
    }
}
