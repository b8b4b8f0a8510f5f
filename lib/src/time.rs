//! RFC 3339 timestamps to and from Unix seconds, without a date library.
//!
//! Only what recipes and OCI configs need: whole seconds, a `Z` or `±HH:MM` offset on
//! input, always `Z` on output. Conversion uses Howard Hinnant's days-from-civil
//! algorithm (proleptic Gregorian calendar). Pure: nothing here reads the clock.

/// Seconds in one day.
const DAY: i64 = 86_400;

/// Parses `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS±HH:MM` into seconds since
/// 1970-01-01T00:00:00Z (negative before 1970).
///
/// `T`/`Z` may also be lowercase, as RFC 3339 allows. Fractional seconds are rejected
/// (an image epoch is a whole second), as are leap seconds (`:60`) and any field out
/// of range (`2023-02-29`, `24:00:00`).
///
/// # Errors
/// A message saying what is wrong with `s`, suitable for a diagnostic.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    let expected = "expected `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS+HH:MM`";
    if !s.is_ascii() {
        return Err(format!(
            "`{s}` is not an RFC 3339 timestamp (non-ASCII characters): {expected}"
        ));
    }
    if b.len() < 20 {
        return Err(format!(
            "`{s}` is too short for an RFC 3339 timestamp: {expected}"
        ));
    }
    let sep = |i: usize, want: &[u8]| want.contains(&b[i]);
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return Err(format!("`{s}` is not an RFC 3339 timestamp: {expected}"));
    }
    let num = |from: usize, to: usize, what: &str| -> Result<i64, String> {
        let part = &s[from..to];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse::<i64>()
                .map_err(|e| format!("{what} `{part}` in `{s}`: {e}"))
        } else {
            Err(format!(
                "{what} `{part}` in `{s}` is not a number: {expected}"
            ))
        }
    };
    let year = num(0, 4, "year")?;
    let month = num(5, 7, "month")?;
    let day = num(8, 10, "day")?;
    let hour = num(11, 13, "hour")?;
    let minute = num(14, 16, "minute")?;
    let second = num(17, 19, "second")?;

    let offset = match &b[19..] {
        [b'Z' | b'z'] => 0,
        [b'.', ..] => {
            return Err(format!(
                "`{s}` has fractional seconds; an epoch is a whole second, e.g. `{}Z`",
                &s[..19]
            ));
        }
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let oh = num(20, 22, "offset hour")?;
            let om = num(23, 25, "offset minute")?;
            if oh > 23 || om > 59 {
                return Err(format!("offset `{}` in `{s}` is out of range", &s[19..]));
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => {
            return Err(format!(
                "`{s}` ends in `{}` where a `Z` or `±HH:MM` offset was expected",
                &s[19..]
            ));
        }
    };

    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} in `{s}` is out of range 01-12"));
    }
    let dim = days_in_month(year, month);
    if day < 1 || day > dim {
        return Err(format!(
            "day {day:02} in `{s}` is out of range: {year:04}-{month:02} has {dim} days"
        ));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("time `{}` in `{s}` is out of range", &s[11..19]));
    }
    let days = days_from_civil(year, month, day);
    Ok(days * DAY + hour * 3600 + minute * 60 + second - offset)
}

/// Formats seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
///
/// Years outside 0000–9999 are written with more digits or a sign and do not parse back.
#[must_use]
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1–12, `day` 1–31).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> i64 {
        match parse_rfc3339(s) {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match parse_rfc3339(s) {
            Ok(v) => panic!("{s} parsed as {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn epoch_and_known_values() {
        assert_eq!(ok("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ok("2000-01-01T00:00:00Z"), 946_684_800);
        assert_eq!(ok("2026-11-01T00:00:00Z"), 1_793_491_200);
        assert_eq!(ok("2038-01-19T03:14:07Z"), i64::from(i32::MAX));
        assert_eq!(ok("1969-12-31T23:59:59Z"), -1);
        assert_eq!(ok("1900-01-01T00:00:00Z"), -2_208_988_800);
        assert_eq!(ok("0000-01-01T00:00:00Z"), -62_167_219_200);
        assert_eq!(ok("9999-12-31T23:59:59Z"), 253_402_300_799);
        assert_eq!(ok("2024-05-06t07:08:09z"), ok("2024-05-06T07:08:09Z"));
    }

    #[test]
    fn leap_years() {
        assert_eq!(ok("2024-02-29T00:00:00Z"), 1_709_164_800);
        assert_eq!(ok("2000-02-29T12:00:00Z"), 951_825_600);
        assert_eq!(
            ok("2024-03-01T00:00:00Z") - ok("2024-02-28T00:00:00Z"),
            2 * DAY
        );
        assert_eq!(ok("2023-03-01T00:00:00Z") - ok("2023-02-28T00:00:00Z"), DAY);
        assert!(err("2023-02-29T00:00:00Z").contains("28 days"));
        assert!(err("1900-02-29T00:00:00Z").contains("28 days"));
        assert!(err("2024-04-31T00:00:00Z").contains("30 days"));
    }

    #[test]
    fn offsets() {
        let utc = ok("2026-11-01T00:00:00Z");
        assert_eq!(ok("2026-11-01T02:00:00+02:00"), utc);
        assert_eq!(ok("2026-10-31T19:30:00-04:30"), utc);
        assert_eq!(ok("2026-11-01T00:00:00+00:00"), utc);
        assert_eq!(ok("2026-11-01T00:00:00-00:00"), utc);
        assert!(err("2026-11-01T00:00:00+24:00").contains("offset"));
        assert!(err("2026-11-01T00:00:00+02:60").contains("offset"));
        assert!(err("2026-11-01T00:00:00+0200").contains("ends in"));
    }

    #[test]
    fn invalid_input() {
        assert!(err("").contains("too short"));
        assert!(err("2026-11-01").contains("too short"));
        assert!(err("2026-11-01 00:00:00Z").contains("not an RFC 3339"));
        assert!(err("2026/11/01T00:00:00Z").contains("not an RFC 3339"));
        assert!(err("2026-11-01T00:00:00.5Z").contains("fractional"));
        assert!(err("2026-11-01T00:00:00").contains("too short"));
        assert!(err("2026-11-01T00:00:00ZZ").contains("ends in"));
        assert!(err("2026-13-01T00:00:00Z").contains("month"));
        assert!(err("2026-00-01T00:00:00Z").contains("month"));
        assert!(err("2026-11-00T00:00:00Z").contains("day"));
        assert!(err("2026-11-01T24:00:00Z").contains("out of range"));
        assert!(err("2026-11-01T23:60:00Z").contains("out of range"));
        assert!(err("2016-12-31T23:59:60Z").contains("out of range"));
        assert!(err("2026-1a-01T00:00:00Z").contains("not a number"));
        assert!(err("+026-11-01T00:00:00Z").contains("not a number"));
        assert!(err("-1970-01-01T00:00:00Z").contains("not an RFC 3339"));
        // Non-ASCII must not panic on a char boundary.
        assert!(parse_rfc3339("2026-11-01T00:00:00é").is_err());
        assert!(parse_rfc3339("é026-11-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("2026-11-01T00:00:0éZ").is_err());
    }

    #[test]
    fn format() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_793_491_200), "2026-11-01T00:00:00Z");
        assert_eq!(format_rfc3339(-62_167_219_200), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn round_trip() {
        let mut t = -62_167_219_200; // 0000-01-01
        while t < 253_402_300_799 {
            assert_eq!(ok(&format_rfc3339(t)), t, "{t}");
            t += 7_777_777; // about 90 days, walks through every month and leap year
        }
        for days in -800_000..800_000_i64 {
            if days % 997 == 0 {
                let (y, m, d) = civil_from_days(days);
                assert_eq!(days_from_civil(y, m, d), days);
            }
        }
    }
}
