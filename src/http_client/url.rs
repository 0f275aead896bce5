//! `http://` and `https://` URLs as the client needs them: scheme, host, port and request
//! target. Anything a request line or `Host` header could be confused by is refused.

use std::net::IpAddr;

use super::HttpClientError;

/// A parsed absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Host name or IP address, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub target: String,
}

impl Url {
    /// Parses `http[s]://HOST[:PORT][/PATH][?QUERY]`. User info, fragments, whitespace and
    /// control characters are refused.
    pub fn parse(url: &str) -> Result<Url, HttpClientError> {
        let bad = |m: &str| HttpClientError::Url(format!("`{url}`: {m}"));
        let (https, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(bad("must start with http:// or https://"));
        };
        if rest
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b >= 0x80)
        {
            return Err(bad("must be plain ASCII without spaces"));
        }
        if rest.contains('#') {
            return Err(bad("must not have a fragment"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return Err(bad("must not carry user information"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| bad("port must be a number from 1 to 65535"))?,
            ),
            _ => (authority, if https { 443 } else { 80 }),
        };
        let host = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
                .ok_or_else(|| bad("bracketed host must be an IPv6 address"))?,
            None if host.contains([':', '[', ']']) => {
                return Err(bad("IPv6 addresses must be written in brackets"))
            }
            None => host,
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        Ok(Url {
            https,
            host: host.to_owned(),
            port,
            target,
        })
    }

    /// Whether the host is a loopback IP literal or `localhost`. Resolved addresses are
    /// checked again at connect time.
    pub fn is_loopback_host(&self) -> bool {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => self.host.eq_ignore_ascii_case("localhost"),
        }
    }

    /// `host:port` as the `Host` header and error messages write it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_targets() {
        let u = Url::parse("https://token.actions.githubusercontent.com/.well-known/jwks").unwrap();
        assert!(u.https);
        assert_eq!(u.host, "token.actions.githubusercontent.com");
        assert_eq!(u.port, 443);
        assert_eq!(u.target, "/.well-known/jwks");
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.target.as_str()), (8080, "/"));
        let u = Url::parse("http://[::1]:9/a?b=c").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 9, "/a?b=c")
        );
        assert_eq!(u.authority(), "[::1]:9");
        assert_eq!(u.to_string(), "http://[::1]:9/a?b=c");
        assert_eq!(Url::parse("http://h?x").unwrap().target, "/?x");
    }

    #[test]
    fn refuses_what_a_request_line_could_be_confused_by() {
        for bad in [
            "ftp://x/",
            "x:1",
            "http://",
            "http://:80/",
            "http://u:p@h/",
            "http://h:0/",
            "http://h:99999/",
            "http://h/a b",
            "http://h/a\r\nX: y",
            "http://h/#frag",
            "http://::1/",
            "http://[nothost]/",
            "http://h/\u{e9}",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn knows_loopback_hosts() {
        for (url, lo) in [
            ("http://127.0.0.1/", true),
            ("http://127.8.0.1/", true),
            ("http://[::1]/", true),
            ("http://localhost:1/", true),
            ("http://10.0.0.1/", false),
            ("http://example.com/", false),
            ("http://localhost.example.com/", false),
        ] {
            assert_eq!(Url::parse(url).unwrap().is_loopback_host(), lo, "{url}");
        }
    }
}
