//! Dates as a person in the UK reads them: instants are stored in UTC, but "added 1 April"
//! must be the Europe/London date, which differs from the UTC date for the hour after midnight
//! in British Summer Time.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};

/// 01:00 UTC on the last Sunday of `month` in `year`: when UK clocks change.
fn change_instant(year: i32, month: u32) -> Option<DateTime<Utc>> {
    let first_of_next = NaiveDate::from_ymd_opt(year, month + 1, 1)?;
    let mut day = first_of_next.pred_opt()?;
    while day.weekday() != Weekday::Sun {
        day = day.pred_opt()?;
    }
    Some(Utc.from_utc_datetime(&day.and_hms_opt(1, 0, 0)?))
}

/// Whether British Summer Time is in force at `instant` (from 01:00 UTC on the last Sunday of
/// March to 01:00 UTC on the last Sunday of October).
pub fn is_summer_time(instant: DateTime<Utc>) -> bool {
    let year = instant.year();
    match (change_instant(year, 3), change_instant(year, 10)) {
        (Some(start), Some(end)) => instant >= start && instant < end,
        _ => false,
    }
}

/// The Europe/London calendar date at `instant`.
pub fn date(instant: DateTime<Utc>) -> NaiveDate {
    let offset = if is_summer_time(instant) {
        TimeDelta::hours(1)
    } else {
        TimeDelta::zero()
    };
    instant
        .checked_add_signed(offset)
        .unwrap_or(instant)
        .date_naive()
}

/// `1 April 2025`: the Europe/London date at `instant`, as the NHS content guide writes dates.
pub fn long_date(instant: DateTime<Utc>) -> String {
    date(instant).format("%-d %B %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn summer_time_runs_from_the_last_sunday_of_march_to_the_last_of_october_at_one_utc() {
        // 2025: clocks went forward on 30 March and back on 26 October.
        assert!(!is_summer_time(at("2025-03-30T00:59:59Z")));
        assert!(is_summer_time(at("2025-03-30T01:00:00Z")));
        assert!(is_summer_time(at("2025-10-26T00:59:59Z")));
        assert!(!is_summer_time(at("2025-10-26T01:00:00Z")));
        assert!(!is_summer_time(at("2025-01-15T12:00:00Z")));
    }

    #[test]
    fn the_hour_after_midnight_in_summer_is_already_the_next_day_in_london() {
        assert_eq!(long_date(at("2025-06-30T23:30:00Z")), "1 July 2025");
        assert_eq!(long_date(at("2025-12-31T23:30:00Z")), "31 December 2025");
        assert_eq!(long_date(at("2026-01-01T00:00:00Z")), "1 January 2026");
    }
}
