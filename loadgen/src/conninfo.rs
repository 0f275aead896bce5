//! PostgreSQL connection settings from flags, a `postgres://` URL and libpq's environment
//! variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`,
//! `PGSSLROOTCERT`), in that order of precedence: a flag beats the URL, the URL beats the
//! environment.

use std::path::PathBuf;

/// TLS towards the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS is required; the certificate is verified only if a CA file is given (as with libpq's
    /// `sslmode=require`).
    Require,
    /// TLS is required and the certificate is verified against the CA file, host name included.
    VerifyFull,
}

/// Settings taken from a URL; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlParts {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub tls: Option<TlsMode>,
    pub ca: Option<PathBuf>,
}

/// Final connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub tls: TlsMode,
    pub ca: Option<PathBuf>,
}

/// Parses `postgres://[user[:password]@][host][:port][/dbname][?sslmode=..&sslrootcert=..]`.
pub fn parse_url(url: &str) -> Result<UrlParts, String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| "the URL must start with postgres:// or postgresql://".to_string())?;
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let mut parts = UrlParts::default();
    let hostport = match authority.rsplit_once('@') {
        Some((creds, hp)) => {
            let (user, password) = match creds.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (creds, None),
            };
            if !user.is_empty() {
                parts.user = Some(decode(user)?);
            }
            parts.password = password.map(decode).transpose()?;
            hp
        }
        None => authority,
    };
    if hostport.contains(',') {
        return Err("several hosts in one URL are not supported".into());
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6.find(']').ok_or("unclosed [ in the URL host")?;
        (&v6[..end], v6[end + 1..].strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if !host.is_empty() {
        parts.host = Some(decode(host)?);
    }
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        parts.port = Some(parse_port(p)?);
    }
    if !path.is_empty() {
        parts.database = Some(decode(path)?);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value)?;
        match key {
            "sslmode" => {
                parts.tls = Some(match value.as_str() {
                    "disable" => TlsMode::Disable,
                    "require" => TlsMode::Require,
                    "verify-ca" | "verify-full" => TlsMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not supported (use disable, require or verify-full)"
                        ))
                    }
                })
            }
            "sslrootcert" => parts.ca = Some(PathBuf::from(value)),
            "user" => parts.user = Some(value),
            "password" => parts.password = Some(value),
            "dbname" => parts.database = Some(value),
            "host" => parts.host = Some(value),
            "port" => parts.port = Some(parse_port(&value)?),
            "application_name" | "connect_timeout" => {}
            other => return Err(format!("URL parameter {other:?} is not supported")),
        }
    }
    Ok(parts)
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("invalid port {p:?}"))
}

/// Percent-decoding of a URL component.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// Settings from libpq's environment variables, read through `var`.
pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<UrlParts, String> {
    let tls = match var("PGSSLMODE").as_deref() {
        None => None,
        Some("disable" | "allow" | "prefer") => Some(TlsMode::Disable),
        Some("require") => Some(TlsMode::Require),
        Some("verify-ca" | "verify-full") => Some(TlsMode::VerifyFull),
        Some(other) => return Err(format!("PGSSLMODE={other} is not a known sslmode")),
    };
    Ok(UrlParts {
        host: var("PGHOST").filter(|h| !h.is_empty()),
        port: var("PGPORT")
            .filter(|p| !p.is_empty())
            .map(|p| parse_port(&p).map_err(|e| format!("PGPORT: {e}")))
            .transpose()?,
        user: var("PGUSER").filter(|u| !u.is_empty()),
        password: var("PGPASSWORD"),
        database: var("PGDATABASE").filter(|d| !d.is_empty()),
        tls,
        ca: var("PGSSLROOTCERT")
            .filter(|c| !c.is_empty())
            .map(PathBuf::from),
    })
}

impl ConnInfo {
    /// Combines flags, the URL and the environment with the defaults (127.0.0.1, 5432, user
    /// `postgres`, database named after the user).
    pub fn resolve(flags: UrlParts, url: Option<&str>, env: UrlParts) -> Result<ConnInfo, String> {
        let from_url = url.map(parse_url).transpose()?.unwrap_or_default();
        let user = flags
            .user
            .or(from_url.user)
            .or(env.user)
            .unwrap_or_else(|| "postgres".into());
        let tls = flags
            .tls
            .or(from_url.tls)
            .or(env.tls)
            .unwrap_or(TlsMode::Disable);
        let ca = flags.ca.or(from_url.ca).or(env.ca);
        if tls == TlsMode::VerifyFull && ca.is_none() {
            return Err("--tls verify-full needs a CA file (--tls-ca or sslrootcert=)".into());
        }
        if tls == TlsMode::Disable && ca.is_some() {
            return Err("a CA file was given but TLS is disabled: add --tls require".into());
        }
        Ok(ConnInfo {
            host: flags
                .host
                .or(from_url.host)
                .or(env.host)
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: flags.port.or(from_url.port).or(env.port).unwrap_or(5432),
            database: flags
                .database
                .or(from_url.database)
                .or(env.database)
                .unwrap_or_else(|| user.clone()),
            password: flags.password.or(from_url.password).or(env.password),
            user,
            tls,
            ca,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let p = parse_url(
            "postgresql://app%40x:p%3Ass@db.local:6432/orders?sslmode=require&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(
            p,
            UrlParts {
                host: Some("db.local".into()),
                port: Some(6432),
                user: Some("app@x".into()),
                password: Some("p:ss".into()),
                database: Some("orders".into()),
                tls: Some(TlsMode::Require),
                ca: Some(PathBuf::from("/ca.pem")),
            }
        );
    }

    #[test]
    fn sparse_and_ipv6_urls() {
        assert_eq!(parse_url("postgres://").unwrap(), UrlParts::default());
        let p = parse_url("postgres://[::1]:5433/db").unwrap();
        assert_eq!((p.host.as_deref(), p.port), (Some("::1"), Some(5433)));
        let p = parse_url("postgres://u@/d?host=127.0.0.2&port=7").unwrap();
        assert_eq!(
            (p.host.as_deref(), p.port, p.user.as_deref()),
            (Some("127.0.0.2"), Some(7), Some("u"))
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in [
            "mysql://x",
            "postgres://h:notaport/db",
            "postgres://h:0/db",
            "postgres://a,b/db",
            "postgres://h/db?sslmode=prefer",
            "postgres://h/db?nope=1",
            "postgres://h/d%zz",
            "postgres://[::1/db",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_beat_the_url_and_the_url_beats_the_environment() {
        let flags = UrlParts {
            port: Some(1111),
            ..Default::default()
        };
        let env = UrlParts {
            password: Some("envpw".into()),
            host: Some("envhost".into()),
            database: Some("envdb".into()),
            ..Default::default()
        };
        let c = ConnInfo::resolve(flags, Some("postgres://u:urlpw@h:2222/d"), env.clone()).unwrap();
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.user.as_str(),
                c.database.as_str()
            ),
            ("h", 1111, "u", "d")
        );
        assert_eq!(c.password.as_deref(), Some("urlpw"));
        let c = ConnInfo::resolve(UrlParts::default(), None, env).unwrap();
        assert_eq!(c.password.as_deref(), Some("envpw"));
        assert_eq!(
            (
                c.host.as_str(),
                c.user.as_str(),
                c.database.as_str(),
                c.port
            ),
            ("envhost", "postgres", "envdb", 5432)
        );
        let c = ConnInfo::resolve(UrlParts::default(), None, UrlParts::default()).unwrap();
        assert_eq!(
            (
                c.host.as_str(),
                c.user.as_str(),
                c.database.as_str(),
                c.port
            ),
            ("127.0.0.1", "postgres", "postgres", 5432)
        );
    }

    #[test]
    fn environment_variables_are_read_like_libpq() {
        let vars = |k: &str| {
            match k {
                "PGHOST" => Some("db"),
                "PGPORT" => Some("6543"),
                "PGSSLMODE" => Some("require"),
                _ => None,
            }
            .map(String::from)
        };
        let e = from_env(vars).unwrap();
        assert_eq!(
            (e.host.as_deref(), e.port, e.tls),
            (Some("db"), Some(6543), Some(TlsMode::Require))
        );
        assert!(from_env(|k| (k == "PGPORT").then(|| "x".to_string())).is_err());
        assert!(from_env(|k| (k == "PGSSLMODE").then(|| "sometimes".to_string())).is_err());
    }

    #[test]
    fn tls_settings_must_agree() {
        let verify = UrlParts {
            tls: Some(TlsMode::VerifyFull),
            ..Default::default()
        };
        assert!(ConnInfo::resolve(verify, None, UrlParts::default()).is_err());
        assert!(ConnInfo::resolve(
            UrlParts::default(),
            Some("postgres://h/d?sslrootcert=/x"),
            UrlParts::default()
        )
        .is_err());
    }
}
