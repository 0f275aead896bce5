//! Durations on the command line: `10s`, `500ms`, `2m`, `1.5s`, or a bare number of seconds.

use std::time::Duration;

/// Longest duration accepted: far enough for any run, near enough that adding it to the clock
/// cannot overflow.
const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses a duration; used as a clap value parser.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale)
        .ok()
        .filter(|d| *d <= MAX)
        .ok_or_else(|| format!("{text:?} is out of range (at most 365 days)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        for bad in [
            "",
            "s",
            "ten",
            "5 parsecs",
            "-1s",
            "1e400",
            "400000000000",
            "366d",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
