//! The date of birth as the NHS design system asks for it: three fields (day, month, year),
//! numbers only, checked into one real date in the past.

use chrono::NaiveDate;

/// Why the three fields are not a date of birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateProblem {
    /// All three empty.
    Missing,
    /// Not a real date, in the future, or before 1900.
    Invalid,
}

/// The date the fields give, if it is a real date between 1900-01-01 and `today`.
pub fn parse(
    day: &str,
    month: &str,
    year: &str,
    today: NaiveDate,
) -> Result<NaiveDate, DateProblem> {
    let (day, month, year) = (day.trim(), month.trim(), year.trim());
    if day.is_empty() && month.is_empty() && year.is_empty() {
        return Err(DateProblem::Missing);
    }
    let number = |s: &str, max_len: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (Some(d), Some(m), Some(y)) = (number(day, 2), number(month, 2), number(year, 4)) else {
        return Err(DateProblem::Invalid);
    };
    let year = i32::try_from(y).map_err(|_| DateProblem::Invalid)?;
    let date = NaiveDate::from_ymd_opt(year, m, d).ok_or(DateProblem::Invalid)?;
    if year < 1900 || date > today {
        return Err(DateProblem::Invalid);
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default()
    }

    #[test]
    fn real_past_dates_are_accepted_with_or_without_leading_zeros() {
        let want = NaiveDate::from_ymd_opt(1984, 3, 5);
        assert_eq!(parse("5", "3", "1984", today()).ok(), want);
        assert_eq!(parse(" 05 ", "03", "1984", today()).ok(), want);
        assert_eq!(parse("1", "6", "2025", today()).ok(), Some(today()));
    }

    #[test]
    fn empty_impossible_future_and_odd_dates_are_refused() {
        assert_eq!(parse("", "", "", today()), Err(DateProblem::Missing));
        for (d, m, y) in [
            ("31", "2", "1984"),
            ("29", "2", "1983"),
            ("1", "13", "1984"),
            ("0", "1", "1984"),
            ("1", "1", "84"),
            ("2", "6", "2025"),
            ("1", "1", "1899"),
            ("1", "", "1984"),
            ("-1", "1", "1984"),
            ("1", "1", "19845"),
            ("１", "1", "1984"),
        ] {
            assert_eq!(
                parse(d, m, y, today()),
                Err(DateProblem::Invalid),
                "{d}/{m}/{y}"
            );
        }
        assert!(parse("29", "2", "1984", today()).is_ok());
    }
}
