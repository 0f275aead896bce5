//! `sluice token inspect`: what a session token says, read offline without the key.
//!
//! Nothing here verifies a signature, so nothing here may ever feed a decision: the data path
//! uses [`super::TokenVerifier`] only. Every string taken from the token is escaped before it is
//! printed, because an unverified token can carry anything, terminal escape sequences included.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::claims::Claims;
use super::verify::MAX_TOKEN_LEN;

/// Why a token could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("the token is empty")]
    Empty,
    #[error("the token is {0} bytes long; sluice tokens are at most {MAX_TOKEN_LEN}")]
    TooLarge(usize),
    #[error("not a sluice token: expected three parts separated by `.`, found {0}")]
    Shape(usize),
    #[error("not a sluice token: the payload is not base64url")]
    Base64,
    #[error("not a sluice token: the payload is not sluice claims ({0})")]
    Claims(String),
}

/// A token's claims and how long it has left, as of the `now` it was inspected at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub claims: Claims,
    /// `exp - now` in seconds: negative once expired.
    pub remaining_seconds: i64,
}

/// Decodes the payload of a compact JWS **without checking its signature**.
pub fn decode_unverified(token: &str) -> Result<Claims, InspectError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(InspectError::Empty);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(InspectError::TooLarge(token.len()));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(InspectError::Shape(parts.len()));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .map_err(|_| InspectError::Base64)?;
    serde_json::from_slice(&payload).map_err(|e| InspectError::Claims(e.to_string()))
}

/// Decodes `token` (unverified) and measures its remaining lifetime at `now`.
pub fn inspect(token: &str, now: SystemTime) -> Result<Inspection, InspectError> {
    let claims = decode_unverified(token)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let exp = i64::try_from(claims.exp).unwrap_or(i64::MAX);
    Ok(Inspection {
        remaining_seconds: exp.saturating_sub(now),
        claims,
    })
}

impl Inspection {
    /// The claims as JSON, plus `remaining_seconds`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.claims).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "remaining_seconds".into(),
                serde_json::Value::from(self.remaining_seconds),
            );
        }
        value
    }

    /// A few aligned lines for people; the chain runs from the root to this token.
    pub fn render(&self) -> String {
        let c = &self.claims;
        let mut chain: Vec<String> = c
            .chain
            .iter()
            .map(|l| format!("{} ({})", escape_controls(&l.name), escape_controls(&l.jti)))
            .collect();
        chain.push(format!(
            "{} ({})",
            escape_controls(&c.sub),
            escape_controls(&c.jti)
        ));
        let lifetime = if self.remaining_seconds > 0 {
            format!(
                "expires in {}",
                format_span(self.remaining_seconds.unsigned_abs())
            )
        } else if self.remaining_seconds == 0 {
            "expired just now".to_owned()
        } else {
            format!(
                "expired {} ago",
                format_span(self.remaining_seconds.unsigned_abs())
            )
        };
        let mut rows = vec![
            ("subject", escape_controls(&c.sub)),
            ("token id", escape_controls(&c.jti)),
            ("issuer", escape_controls(&c.iss)),
            ("audience", escape_controls(&c.aud)),
            ("roles", list(&c.roles)),
            ("resources", list(&c.resources)),
            ("chain", chain.join(" -> ")),
            ("issued at", format_utc(c.iat)),
        ];
        if c.nbf != c.iat {
            rows.push(("not before", format_utc(c.nbf)));
        }
        rows.push(("expires at", format!("{} ({lifetime})", format_utc(c.exp))));
        let mut out = String::new();
        for (label, value) in rows {
            out.push_str(&format!("{label:<10}  {value}\n"));
        }
        out
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "(none)".to_owned();
    }
    escape_controls(&items.join(", "))
}

/// `text` with every control character escaped (`\n`, `\u{1b}`, ...), so that text from an
/// untrusted source cannot move the cursor, recolour or rewrite what a terminal shows.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss UTC` (proleptic Gregorian calendar).
pub fn format_utc(unix: u64) -> String {
    let secs = unix.min(super::MAX_TIMESTAMP);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from a day count (Howard Hinnant's algorithm, for days since 1970-01-01).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// A span in its two largest units: `4m 12s`, `3m`, `2h 5m`, `1d 3h`, `0s`.
pub fn format_span(secs: u64) -> String {
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let Some(first) = parts.iter().position(|(n, _)| *n > 0) else {
        return "0s".to_owned();
    };
    parts[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::identity::{ChainLink, IssueRequest, SigningKey, TokenIssuer, TokenSettings};

    fn issuer() -> TokenIssuer {
        let settings = TokenSettings {
            issuer: "sluice-test".into(),
            audience: "orders-gw".into(),
            leeway: Duration::ZERO,
        };
        TokenIssuer::new(&SigningKey::generate().unwrap(), &settings)
    }

    /// 2025-06-01 12:00:00 UTC.
    const T0: u64 = 1_748_779_200;

    fn child_token() -> (String, Claims) {
        let req = IssueRequest {
            subject: "report-subagent".into(),
            roles: vec!["reader".into()],
            resources: vec!["orders".into(), "billing".into()],
            ttl: Duration::from_secs(300),
            chain: vec![
                ChainLink {
                    jti: "ROOTJTI".into(),
                    name: "ci-root".into(),
                },
                ChainLink {
                    jti: "AGENTJTI".into(),
                    name: "agent".into(),
                },
            ],
        };
        issuer()
            .issue(&req, UNIX_EPOCH + Duration::from_secs(T0))
            .unwrap()
    }

    #[test]
    fn renders_a_delegated_token_root_first() {
        let (token, claims) = child_token();
        let now = UNIX_EPOCH + Duration::from_secs(T0 + 48);
        let i = inspect(&token, now).unwrap();
        assert_eq!(i.claims, claims);
        assert_eq!(i.remaining_seconds, 252);
        let text = i.render();
        let expected = format!(
            "subject     report-subagent\n\
             token id    {jti}\n\
             issuer      sluice-test\n\
             audience    orders-gw\n\
             roles       reader\n\
             resources   orders, billing\n\
             chain       ci-root (ROOTJTI) -> agent (AGENTJTI) -> report-subagent ({jti})\n\
             issued at   2025-06-01 12:00:00 UTC\n\
             expires at  2025-06-01 12:05:00 UTC (expires in 4m 12s)\n",
            jti = claims.jti
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn an_expired_token_says_how_long_ago() {
        let (token, _) = child_token();
        let now = UNIX_EPOCH + Duration::from_secs(T0 + 300 + 180);
        let i = inspect(&token, now).unwrap();
        assert_eq!(i.remaining_seconds, -180);
        assert!(i.render().contains("(expired 3m ago)"), "{}", i.render());
        let json = i.to_json();
        assert_eq!(json["remaining_seconds"], -180);
        assert_eq!(json["sub"], "report-subagent");
        assert_eq!(json["chain"][0]["name"], "ci-root");
    }

    #[test]
    fn malformed_tokens_are_refused_by_reason() {
        assert_eq!(decode_unverified("  "), Err(InspectError::Empty));
        assert_eq!(decode_unverified("abc"), Err(InspectError::Shape(1)));
        assert_eq!(decode_unverified("a.b.c.d"), Err(InspectError::Shape(4)));
        assert_eq!(decode_unverified("a.!!.c"), Err(InspectError::Base64));
        let not_claims = format!("a.{}.c", URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#));
        assert!(matches!(
            decode_unverified(&not_claims),
            Err(InspectError::Claims(_))
        ));
        let not_json = format!("a.{}.c", URL_SAFE_NO_PAD.encode(b"\xff\xfe"));
        assert!(matches!(
            decode_unverified(&not_json),
            Err(InspectError::Claims(_))
        ));
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            decode_unverified(&huge),
            Err(InspectError::TooLarge(MAX_TOKEN_LEN + 1))
        );
    }

    #[test]
    fn escapes_control_characters_from_the_token() {
        let (_, mut claims) = child_token();
        claims.sub = "evil\u{1b}[2Jname\n".into();
        let i = Inspection {
            claims,
            remaining_seconds: 0,
        };
        let text = i.render();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("evil\\u{1b}[2Jname\\n"), "{text}");
        assert!(text.contains("(expired just now)"), "{text}");
    }

    #[test]
    fn formats_times_and_spans() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(T0 + 3_661), "2025-06-01 13:01:01 UTC");
        assert_eq!(
            format_utc(crate::identity::MAX_TIMESTAMP),
            "9999-12-31 23:59:59 UTC"
        );
        assert_eq!(format_utc(u64::MAX), "9999-12-31 23:59:59 UTC");
        assert_eq!(format_span(0), "0s");
        assert_eq!(format_span(252), "4m 12s");
        assert_eq!(format_span(180), "3m");
        assert_eq!(format_span(3_601), "1h");
        assert_eq!(format_span(7_500), "2h 5m");
        assert_eq!(format_span(97_200), "1d 3h");
    }
}
