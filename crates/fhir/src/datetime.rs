//! FHIR date, dateTime, instant and time: the one place their formats and their meaning as a
//! range of instants are defined.
//!
//! A value with reduced precision covers a range: `2024` is every instant of 2024, `2024-03-01`
//! every instant of that day. Ranges are inclusive epoch milliseconds in UTC. Values without a
//! time zone (dates) are read as UTC.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

/// Inclusive range of epoch milliseconds a FHIR date-like value covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub low: i64,
    pub high: i64,
}

impl Range {
    pub fn instant(ms: i64) -> Self {
        Range { low: ms, high: ms }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Year,
    Month,
    Day,
    Minute,
    Second,
    Millis,
}

/// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`; returns the date's first day and its precision.
fn parse_date_part(s: &str) -> Option<(NaiveDate, Precision)> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    match b.len() {
        4 if digits(0..4) => Some((
            NaiveDate::from_ymd_opt(s.parse().ok()?, 1, 1)?,
            Precision::Year,
        )),
        7 if digits(0..4) && b[4] == b'-' && digits(5..7) => Some((
            NaiveDate::from_ymd_opt(s[0..4].parse().ok()?, s[5..7].parse().ok()?, 1)?,
            Precision::Month,
        )),
        10 if digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10) => {
            Some((
                NaiveDate::from_ymd_opt(
                    s[0..4].parse().ok()?,
                    s[5..7].parse().ok()?,
                    s[8..10].parse().ok()?,
                )?,
                Precision::Day,
            ))
        }
        _ => None,
    }
}

/// Parses `hh:mm:ss(.f+)?` or, when `allow_minutes`, `hh:mm`.
fn parse_time_part(s: &str, allow_minutes: bool) -> Option<(NaiveTime, Precision)> {
    let b = s.as_bytes();
    let two = |i: usize| -> Option<u32> {
        if b.len() >= i + 2 && b[i].is_ascii_digit() && b[i + 1].is_ascii_digit() {
            Some(((b[i] - b'0') * 10 + (b[i + 1] - b'0')) as u32)
        } else {
            None
        }
    };
    let h = two(0)?;
    if b.get(2) != Some(&b':') {
        return None;
    }
    let m = two(3)?;
    if b.len() == 5 {
        return if allow_minutes {
            Some((NaiveTime::from_hms_opt(h, m, 0)?, Precision::Minute))
        } else {
            None
        };
    }
    if b.get(5) != Some(&b':') {
        return None;
    }
    let sec = two(6)?;
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let sec = sec.min(59); // a leap second is stored as :59
    if b.len() == 8 {
        return Some((NaiveTime::from_hms_opt(h, m, sec)?, Precision::Second));
    }
    if b[8] != b'.' || b.len() == 9 || !b[9..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let frac = &s[9..];
    let millis: u32 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    Some((
        NaiveTime::from_hms_milli_opt(h, m, sec, millis)?,
        Precision::Millis,
    ))
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    if s == "Z" {
        return FixedOffset::east_opt(0);
    }
    let b = s.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i32 = s[1..3].parse().ok()?;
    let m: i32 = s[4..6].parse().ok()?;
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// A parsed FHIR date, dateTime or instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FhirDateTime {
    pub range: Range,
    pub precision: Precision,
    pub has_time: bool,
}

fn date_range(d: NaiveDate, p: Precision) -> Option<Range> {
    let start = d.and_hms_opt(0, 0, 0)?.and_utc();
    let end = match p {
        Precision::Year => NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)?,
        Precision::Month => {
            if d.month() == 12 {
                NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)?
            }
        }
        _ => d.succ_opt()?,
    }
    .and_hms_opt(0, 0, 0)?
    .and_utc();
    Some(Range {
        low: start.timestamp_millis(),
        high: end.timestamp_millis() - 1,
    })
}

fn parse_general(s: &str, allow_minutes: bool) -> Option<FhirDateTime> {
    match s.split_once('T') {
        None => {
            let (d, p) = parse_date_part(s)?;
            Some(FhirDateTime {
                range: date_range(d, p)?,
                precision: p,
                has_time: false,
            })
        }
        Some((date, rest)) => {
            let (d, dp) = parse_date_part(date)?;
            if dp != Precision::Day {
                return None;
            }
            let tz_at = rest.find(['Z', '+', '-']).filter(|&i| i >= 5)?;
            let (time, tz) = rest.split_at(tz_at);
            let (t, p) = parse_time_part(time, allow_minutes)?;
            let off = parse_offset(tz)?;
            let dt: DateTime<FixedOffset> = off.from_local_datetime(&d.and_time(t)).single()?;
            let low = dt.with_timezone(&Utc).timestamp_millis();
            let width = match p {
                Precision::Minute => 60_000 - 1,
                Precision::Second => 999,
                _ => 0,
            };
            Some(FhirDateTime {
                range: Range {
                    low,
                    high: low + width,
                },
                precision: p,
                has_time: true,
            })
        }
    }
}

/// `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<FhirDateTime> {
    let (d, p) = parse_date_part(s)?;
    Some(FhirDateTime {
        range: date_range(d, p)?,
        precision: p,
        has_time: false,
    })
}

/// `dateTime`: a date, or a date and time to the second with a time zone.
pub fn parse_datetime(s: &str) -> Option<FhirDateTime> {
    parse_general(s, false)
}

/// `instant`: date and time to the second (or finer) with a time zone.
pub fn parse_instant(s: &str) -> Option<FhirDateTime> {
    parse_general(s, false).filter(|v| v.has_time)
}

/// `time`: `hh:mm:ss(.f+)?`.
pub fn is_time(s: &str) -> bool {
    parse_time_part(s, false).is_some()
}

/// A date value in a search (`birthdate=ge2020-01`): any dateTime, and `hh:mm` without seconds.
pub fn parse_search_value(s: &str) -> Option<FhirDateTime> {
    parse_general(s, true)
}

/// Formats an instant as FHIR `instant` in UTC with milliseconds.
pub fn format_instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The current instant, truncated to milliseconds (what the store keeps).
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Adds a whole number of days to an epoch-millisecond instant.
pub fn add_days(ms: i64, days: i64) -> i64 {
    ms + Duration::days(days).num_milliseconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn year_covers_the_whole_year() {
        let v = parse_date("2024").unwrap();
        assert_eq!(v.range.low, ms("2024-01-01T00:00:00Z"));
        assert_eq!(v.range.high, ms("2025-01-01T00:00:00Z") - 1);
    }

    #[test]
    fn month_covers_the_whole_month_including_december() {
        let v = parse_date("2023-12").unwrap();
        assert_eq!(v.range.low, ms("2023-12-01T00:00:00Z"));
        assert_eq!(v.range.high, ms("2024-01-01T00:00:00Z") - 1);
        let feb = parse_date("2024-02").unwrap();
        assert_eq!(feb.range.high, ms("2024-03-01T00:00:00Z") - 1);
    }

    #[test]
    fn datetime_needs_a_zone_when_it_has_a_time() {
        assert!(parse_datetime("2024-03-01T10:00:00").is_none());
        assert!(parse_datetime("2024-03-01T10:00:00Z").is_some());
        let v = parse_datetime("2024-03-01T10:00:00+01:00").unwrap();
        assert_eq!(v.range.low, ms("2024-03-01T09:00:00Z"));
        assert_eq!(v.range.high, ms("2024-03-01T09:00:00Z") + 999);
    }

    #[test]
    fn malformed_values_are_rejected() {
        for bad in [
            "",
            "24",
            "2024-13",
            "2024-02-30",
            "2024-1-01",
            "2024-01-01T",
            "2024-01-01T25:00:00Z",
            "2024-01-01T10:00Z",
            "2024-01-01 10:00:00Z",
            "abcd",
            "2024-01-01T10:00:00.Z",
        ] {
            assert!(parse_datetime(bad).is_none(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn instant_requires_time() {
        assert!(parse_instant("2024-01-01").is_none());
        let v = parse_instant("2024-01-01T00:00:00.123Z").unwrap();
        assert_eq!(v.range.low, ms("2024-01-01T00:00:00.123Z"));
    }

    #[test]
    fn search_values_may_stop_at_minutes() {
        let v = parse_search_value("2024-01-01T10:30Z").unwrap();
        assert_eq!(v.range.low, ms("2024-01-01T10:30:00Z"));
        assert_eq!(v.range.high, ms("2024-01-01T10:31:00Z") - 1);
    }

    #[test]
    fn times() {
        assert!(is_time("10:00:00"));
        assert!(is_time("23:59:59.5"));
        assert!(!is_time("24:00:00"));
        assert!(!is_time("10:00"));
    }
}
