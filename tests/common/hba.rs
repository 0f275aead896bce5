//! The `pg_hba.conf` the throwaway server uses: loopback only, SCRAM by default, with per-role or
//! per-database overrides so tests can make the gateway meet md5, cleartext or trust upstreams.

use std::fmt::Write;

/// A client authentication method PostgreSQL can demand from a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No password asked.
    Trust,
    /// Cleartext password (`password` in pg_hba.conf).
    Password,
    /// MD5 challenge; the role's password must be stored as MD5 or PostgreSQL falls back to SCRAM.
    Md5,
    /// SCRAM-SHA-256, the default.
    ScramSha256,
}

impl AuthMethod {
    /// The keyword pg_hba.conf uses for this method.
    pub fn keyword(self) -> &'static str {
        match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Password => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
        }
    }
}

/// One override: connections to `database` as `role` (either may be `all`) use `method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRule {
    /// Database name, or `all`.
    pub database: String,
    /// Role name, or `all`.
    pub role: String,
    /// Method demanded.
    pub method: AuthMethod,
}

/// Renders the file: overrides first (PostgreSQL uses the first matching line), then the
/// SCRAM defaults for the unix socket and both loopback addresses.
pub fn render(overrides: &[HbaRule]) -> String {
    let mut out = String::from("# written by the integration-test harness\n");
    for rule in overrides {
        let (db, role) = (field(&rule.database), field(&rule.role));
        for addr in ["127.0.0.1/32", "::1/128"] {
            let _ = writeln!(out, "host {db} {role} {addr} {}", rule.method.keyword());
        }
    }
    out.push_str("local all all scram-sha-256\n");
    out.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
    out.push_str("host all all ::1/128 scram-sha-256\n");
    out
}

/// Quotes a name; `all` stays a bare keyword because a quoted "all" names a role called all.
fn field(name: &str) -> String {
    if name == "all" {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}
