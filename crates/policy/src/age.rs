//! A person's age in whole years, as English law counts it.

use chrono::{Datelike, NaiveDate};

/// Completed years between `birth` and `today`; `None` when `birth` is after `today` (bad data).
///
/// A birthday counts from its start. Someone born on 29 February has their birthday on 1 March in
/// a common year (as in England): comparing (month, day) pairs gives exactly that, because
/// 28 February comes before (2, 29) and 1 March after it.
pub fn age_in_years(birth: NaiveDate, today: NaiveDate) -> Option<u32> {
    if birth > today {
        return None;
    }
    let years = today.year() - birth.year();
    let before_birthday = (today.month(), today.day()) < (birth.month(), birth.day());
    u32::try_from(years - i32::from(before_birthday)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn age_turns_on_the_birthday_itself() {
        assert_eq!(age_in_years(d(2010, 6, 15), d(2021, 6, 14)), Some(10));
        assert_eq!(age_in_years(d(2010, 6, 15), d(2021, 6, 15)), Some(11));
    }

    #[test]
    fn newborn_is_zero() {
        assert_eq!(age_in_years(d(2024, 3, 1), d(2024, 3, 1)), Some(0));
    }

    #[test]
    fn leap_day_birthday_is_first_of_march_in_common_years() {
        let birth = d(2008, 2, 29);
        assert_eq!(age_in_years(birth, d(2019, 2, 28)), Some(10));
        assert_eq!(age_in_years(birth, d(2019, 3, 1)), Some(11));
    }

    #[test]
    fn leap_day_birthday_is_leap_day_in_leap_years() {
        let birth = d(2008, 2, 29);
        assert_eq!(age_in_years(birth, d(2024, 2, 28)), Some(15));
        assert_eq!(age_in_years(birth, d(2024, 2, 29)), Some(16));
    }

    #[test]
    fn birth_in_the_future_has_no_age() {
        assert_eq!(age_in_years(d(2030, 1, 1), d(2024, 1, 1)), None);
    }
}
