//! Dates and clinic times. Clinic times are Europe/London wall-clock times written as FHIR
//! instants with their UTC offset; days are numbered from a fixed Monday so that slot positions
//! are plain integers.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// Day 0 of the slot-position numbering: a Monday.
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 3).unwrap_or(NaiveDate::MIN)
}

/// Days since the epoch (negative before it).
pub(crate) fn day_number(date: NaiveDate) -> i64 {
    (date - epoch()).num_days()
}

pub(crate) fn from_day_number(n: i64) -> NaiveDate {
    epoch() + Duration::days(n)
}

/// Monday = 0 … Sunday = 6.
pub(crate) fn weekday_index(date: NaiveDate) -> u32 {
    date.weekday().num_days_from_monday()
}

pub(crate) fn is_working_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Europe/London's offset on a date, for daytime clinic times: British Summer Time runs from the
/// last Sunday of March to the last Sunday of October.
pub(crate) fn london_offset(date: NaiveDate) -> &'static str {
    let last_sunday = |month: u32| -> NaiveDate {
        let first_of_next = NaiveDate::from_ymd_opt(date.year(), month + 1, 1).unwrap_or(date);
        let mut d = first_of_next - Duration::days(1);
        while d.weekday() != Weekday::Sun {
            d -= Duration::days(1);
        }
        d
    };
    if date >= last_sunday(3) && date < last_sunday(10) {
        "+01:00"
    } else {
        "+00:00"
    }
}

/// A Europe/London wall-clock time as a FHIR instant with its offset. Minutes past midnight
/// beyond a day roll into the next day.
pub(crate) fn at(date: NaiveDate, minutes_after_midnight: u32) -> String {
    let date = date + Duration::days(i64::from(minutes_after_midnight / (24 * 60)));
    let m = minutes_after_midnight % (24 * 60);
    format!(
        "{}T{:02}:{:02}:00{}",
        date.format("%Y-%m-%d"),
        m / 60,
        m % 60,
        london_offset(date)
    )
}

pub(crate) fn ymd(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Whole years from `birth` to `on`.
pub(crate) fn age_on(birth: NaiveDate, on: NaiveDate) -> i64 {
    let mut years = i64::from(on.year() - birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

/// `years` years (of 365.25 days) as days.
pub(crate) fn years(years: f64) -> Duration {
    Duration::days((years * 365.25).round() as i64)
}

/// How many years from `a` to `b` (fractional; negative if b is before a).
pub(crate) fn years_between(a: NaiveDate, b: NaiveDate) -> f64 {
    (b - a).num_days() as f64 / 365.25
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn clinic_times_carry_the_london_offset() {
        assert_eq!(
            at(day(2025, 1, 15), 9 * 60 + 30),
            "2025-01-15T09:30:00+00:00"
        );
        assert_eq!(
            at(day(2025, 7, 15), 9 * 60 + 30),
            "2025-07-15T09:30:00+01:00"
        );
        // 2025: BST from Sunday 30 March to Sunday 26 October.
        assert_eq!(london_offset(day(2025, 3, 29)), "+00:00");
        assert_eq!(london_offset(day(2025, 3, 30)), "+01:00");
        assert_eq!(london_offset(day(2025, 10, 25)), "+01:00");
        assert_eq!(london_offset(day(2025, 10, 26)), "+00:00");
    }

    #[test]
    fn day_numbers_round_trip_and_start_on_a_monday() {
        for d in [day(1990, 2, 1), day(2000, 1, 3), day(2031, 12, 31)] {
            assert_eq!(from_day_number(day_number(d)), d);
        }
        assert_eq!(weekday_index(from_day_number(0)), 0);
        assert_eq!(weekday_index(from_day_number(-1)), 6);
    }

    #[test]
    fn ages_count_whole_birthdays() {
        assert_eq!(age_on(day(2000, 6, 2), day(2025, 6, 1)), 24);
        assert_eq!(age_on(day(2000, 6, 2), day(2025, 6, 2)), 25);
    }
}
