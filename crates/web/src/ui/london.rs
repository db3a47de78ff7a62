//! Dates as a person in the UK reads them: instants are stored in UTC, but "added 1 April"
//! must be the Europe/London date, which differs from the UTC date for the hour after midnight
//! in British Summer Time.

use chrono::{DateTime, NaiveDate, Utc};

/// The Europe/London calendar date at `instant`.
pub fn date(instant: DateTime<Utc>) -> NaiveDate {
    instant
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive()
}

/// `1 April 2025`: the Europe/London date at `instant`, as the NHS content guide writes dates.
pub fn long_date(instant: DateTime<Utc>) -> String {
    date(instant).format("%-d %B %Y").to_string()
}

/// `1 April 2025, 3:04pm`: the Europe/London date and time at `instant`.
pub fn date_time(instant: DateTime<Utc>) -> String {
    let local = instant.with_timezone(&chrono_tz::Europe::London);
    format!(
        "{}, {}",
        local.format("%-d %B %Y"),
        local.format("%-I:%M%P")
    )
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
    fn the_hour_after_midnight_in_summer_is_already_the_next_day_in_london() {
        assert_eq!(long_date(at("2025-06-30T22:59:59Z")), "30 June 2025");
        assert_eq!(long_date(at("2025-06-30T23:30:00Z")), "1 July 2025");
        assert_eq!(long_date(at("2025-12-31T23:30:00Z")), "31 December 2025");
        assert_eq!(long_date(at("2026-01-01T00:00:00Z")), "1 January 2026");
    }

    #[test]
    fn the_day_follows_the_clock_changes_at_one_utc() {
        // 2025: clocks went forward on 30 March and back on 26 October, at 01:00 UTC.
        assert_eq!(long_date(at("2025-03-29T23:30:00Z")), "29 March 2025");
        assert_eq!(long_date(at("2025-03-30T23:30:00Z")), "31 March 2025");
        assert_eq!(long_date(at("2025-10-25T23:30:00Z")), "26 October 2025");
        assert_eq!(long_date(at("2025-10-26T23:30:00Z")), "26 October 2025");
    }
}
