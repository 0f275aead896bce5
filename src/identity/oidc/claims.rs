//! Checks of a provider token's registered claims once its signature has verified: audience,
//! expiry, not-before, issue time and lifetime, all against the caller's clock with the
//! configured leeway.

use serde_json::{Map, Value};

use super::error::ExchangeError;
use crate::identity::MAX_TIMESTAMP;

/// What the time checks need from the provider's settings.
pub(crate) struct TimeRules {
    pub(crate) leeway: u64,
    pub(crate) max_lifetime: u64,
}

/// `exp` of a token whose claims pass every check.
pub(crate) fn check(
    claims: &Map<String, Value>,
    audience: &str,
    rules: &TimeRules,
    now: u64,
) -> Result<u64, ExchangeError> {
    match claims.get("aud") {
        None => return Err(ExchangeError::MissingClaim("aud".into())),
        Some(Value::String(a)) if a == audience => {}
        Some(Value::String(_)) => return Err(ExchangeError::WrongAudience),
        Some(Value::Array(list)) => {
            if !list.iter().all(Value::is_string) {
                return Err(ExchangeError::InvalidClaim("aud"));
            }
            if !list.iter().any(|a| a.as_str() == Some(audience)) {
                return Err(ExchangeError::WrongAudience);
            }
        }
        Some(_) => return Err(ExchangeError::InvalidClaim("aud")),
    }
    let exp = timestamp(claims, "exp")?.ok_or_else(|| ExchangeError::MissingClaim("exp".into()))?;
    let iat = timestamp(claims, "iat")?.ok_or_else(|| ExchangeError::MissingClaim("iat".into()))?;
    let nbf = timestamp(claims, "nbf")?;

    // RFC 7519: the current time must be before `exp`.
    if now >= exp.saturating_add(rules.leeway) {
        return Err(ExchangeError::Expired);
    }
    let latest_start = now.saturating_add(rules.leeway);
    if nbf.is_some_and(|nbf| nbf > latest_start) {
        return Err(ExchangeError::NotYetValid);
    }
    if iat > latest_start {
        return Err(ExchangeError::IssuedInFuture);
    }
    if exp <= iat {
        return Err(ExchangeError::InvalidClaim("exp"));
    }
    if exp - iat > rules.max_lifetime {
        return Err(ExchangeError::LifetimeTooLong);
    }
    Ok(exp)
}

/// A NumericDate claim: a non-negative integer no later than year 9999.
fn timestamp(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, ExchangeError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|&t| t <= MAX_TIMESTAMP)
            .map(Some)
            .ok_or(ExchangeError::InvalidClaim(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const RULES: TimeRules = TimeRules {
        leeway: 5,
        max_lifetime: 3600,
    };

    fn run(json: &str) -> Result<u64, ExchangeError> {
        check(&serde_json::from_str(json).unwrap(), "sluice", &RULES, NOW)
    }

    fn with(aud: &str, exp: &str, iat: &str, nbf: &str) -> String {
        let mut parts = vec![];
        for (k, v) in [("aud", aud), ("exp", exp), ("iat", iat), ("nbf", nbf)] {
            if !v.is_empty() {
                parts.push(format!("\"{k}\":{v}"));
            }
        }
        format!("{{{}}}", parts.join(","))
    }

    #[test]
    fn audience_is_a_string_equal_to_ours_or_an_array_holding_it() {
        let ok = |aud: &str| run(&with(aud, "1700000300", "1699999990", ""));
        assert_eq!(ok(r#""sluice""#), Ok(1_700_000_300));
        assert_eq!(ok(r#"["other","sluice"]"#), Ok(1_700_000_300));
        assert_eq!(ok(r#""other""#), Err(ExchangeError::WrongAudience));
        assert_eq!(ok(r#"["other","x"]"#), Err(ExchangeError::WrongAudience));
        assert_eq!(ok("[]"), Err(ExchangeError::WrongAudience));
        assert_eq!(
            ok(r#"["sluice",1]"#),
            Err(ExchangeError::InvalidClaim("aud"))
        );
        assert_eq!(ok("7"), Err(ExchangeError::InvalidClaim("aud")));
        assert_eq!(
            run(&with("", "1700000300", "1699999990", "")),
            Err(ExchangeError::MissingClaim("aud".into()))
        );
    }

    #[test]
    fn times_are_checked_with_leeway() {
        let t = |exp: u64, iat: u64, nbf: &str| {
            run(&with(
                r#""sluice""#,
                &exp.to_string(),
                &iat.to_string(),
                nbf,
            ))
        };
        // Expired, but within the leeway, and just beyond it.
        assert!(t(NOW - 4, NOW - 60, "").is_ok());
        assert_eq!(t(NOW - 5, NOW - 60, ""), Err(ExchangeError::Expired));
        let nbf = |n: u64| t(NOW + 60, NOW, &n.to_string());
        assert!(nbf(NOW + 5).is_ok());
        assert_eq!(nbf(NOW + 6), Err(ExchangeError::NotYetValid));
        assert!(t(NOW + 60, NOW + 5, "").is_ok());
        assert_eq!(
            t(NOW + 600, NOW + 6, ""),
            Err(ExchangeError::IssuedInFuture)
        );
        // Exactly the longest lifetime, and one second more.
        assert!(t(NOW + 3000, NOW - 600, "").is_ok());
        assert_eq!(
            t(NOW + 3001, NOW - 600, ""),
            Err(ExchangeError::LifetimeTooLong)
        );
        assert_eq!(
            t(NOW + 3, NOW + 3, ""),
            Err(ExchangeError::InvalidClaim("exp"))
        );
    }

    #[test]
    fn exp_and_iat_are_required_integers() {
        let aud = r#""sluice""#;
        assert_eq!(
            run(&with(aud, "", "1", "")),
            Err(ExchangeError::MissingClaim("exp".into()))
        );
        assert_eq!(
            run(&with(aud, "1700000100", "", "")),
            Err(ExchangeError::MissingClaim("iat".into()))
        );
        for bad in [
            r#""1700000100""#,
            "1700000100.5",
            "-1",
            "253402300800",
            "null",
        ] {
            assert_eq!(
                run(&with(aud, bad, "1699999999", "")),
                Err(ExchangeError::InvalidClaim("exp")),
                "{bad}"
            );
        }
        assert_eq!(
            run(&with(aud, "1700000100", "1699999999", "\"soon\"")),
            Err(ExchangeError::InvalidClaim("nbf"))
        );
    }
}
