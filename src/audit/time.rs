//! RFC 3339 UTC timestamps with microseconds (`2026-11-23T17:00:00.123456Z`), computed with
//! the proleptic Gregorian civil-from-days arithmetic rather than a date crate.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `time` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` to `out`. Times before 1970 work too.
pub fn rfc3339_micros(time: SystemTime, out: &mut String) {
    let (secs, micros) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
        Err(e) => {
            // Before the epoch: floor to the whole second below, so the fraction stays positive.
            let d = e.duration();
            let (s, us) = (d.as_secs() as i64, d.subsec_micros());
            if us == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000 - us)
            }
        }
    };
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
}

/// The (year, month, day) of the day `days` after 1970-01-01, in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`: count in 400-year eras that start on
/// March 1st, so the leap day falls at the end of each year of the era).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year, [0, 365]
    let mp = (5 * doy + 2) / 153; // month, March = 0, [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: i64, micros: u32) -> String {
        let offset = Duration::from_secs(secs.unsigned_abs());
        let t = if secs >= 0 {
            UNIX_EPOCH + offset
        } else {
            UNIX_EPOCH - offset
        } + Duration::from_micros(u64::from(micros));
        let mut s = String::new();
        rfc3339_micros(t, &mut s);
        s
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_795_453_200, 123_456), "2026-11-23T17:00:00.123456Z");
        // Leap days: divisible by 400, by 4; 2100 is not a leap year.
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000000Z");
        assert_eq!(at(1_709_251_199, 999_999), "2024-02-29T23:59:59.999999Z");
        assert_eq!(at(4_107_542_400, 1), "2100-03-01T00:00:00.000001Z");
        assert_eq!(at(253_402_300_799, 0), "9999-12-31T23:59:59.000000Z");
    }

    #[test]
    fn before_the_epoch_floors_to_the_second_below() {
        assert_eq!(at(-1, 0), "1969-12-31T23:59:59.000000Z");
        // One microsecond before the epoch.
        let mut s = String::new();
        rfc3339_micros(UNIX_EPOCH - Duration::from_micros(1), &mut s);
        assert_eq!(s, "1969-12-31T23:59:59.999999Z");
    }

    /// Walks the calendar one day at a time with the textbook leap-year rule and checks every
    /// day from 1600 to 2500 against the arithmetic.
    #[test]
    fn every_day_matches_a_naive_calendar() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: i64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        // 1600-01-01 is 135140 days before 1970-01-01.
        let (mut y, mut m, mut d) = (1600i64, 1u32, 1u32);
        for days in -135_140..((2500 - 1970) * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
