//! The NHS number: ten digits, the last a Modulus 11 check digit.
//!
//! Parse, don't validate: once a value is an [`NhsNumber`], it is valid. This is the one copy of
//! the rule: the demo data, the store's contract suite and the load tools all use it.

use std::fmt;

/// Why a text is not an NHS number; the message says what is wrong and what is needed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NhsNumberError(String);

type Result<T> = std::result::Result<T, NhsNumberError>;

/// The FHIR identifier system of NHS numbers.
pub const SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

impl NhsNumber {
    /// Accepts ten digits, optionally grouped by spaces or hyphens as people write them
    /// (`943 476 5919`, `943-476-5919`).
    pub fn parse(input: &str) -> Result<NhsNumber> {
        let digits: Vec<u8> = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .map(|c| {
                c.to_digit(10).map(|d| d as u8).ok_or_else(|| {
                    NhsNumberError(
                        "an NHS number has only digits (and optional spaces); found another character"
                            .into(),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let digits: [u8; 10] = digits.as_slice().try_into().map_err(|_| {
            NhsNumberError(format!(
                "an NHS number has 10 digits, this has {}",
                digits.len()
            ))
        })?;
        match check_digit(&digits[..9]) {
            None => Err(NhsNumberError(
                "not a valid NHS number: its first nine digits give a Modulus 11 check digit of 10, which is never issued"
                    .into(),
            )),
            Some(expected) if expected != digits[9] => Err(NhsNumberError(format!(
                "not a valid NHS number: the check digit is {}, the Modulus 11 check needs {expected}",
                digits[9]
            ))),
            Some(_) => Ok(NhsNumber(digits)),
        }
    }

    /// The test-range number `999` followed by the six digits of `serial` (taken modulo
    /// 1,000,000) and its check digit; None for the one in eleven whose check digit would be 10.
    /// Callers drawing random serials simply draw again.
    pub fn in_test_range(serial: u32) -> Option<NhsNumber> {
        let mut digits = [9u8; 10];
        let mut rest = serial % 1_000_000;
        for d in digits[3..9].iter_mut().rev() {
            *d = (rest % 10) as u8;
            rest /= 10;
        }
        digits[9] = check_digit(&digits[..9])?;
        Some(NhsNumber(digits))
    }

    /// Whether the number is in 999 000 0000–999 999 9999, never issued to real people: test
    /// data uses only these.
    pub fn is_test_number(&self) -> bool {
        self.0[..3] == [9, 9, 9]
    }

    /// The ten digits, as stored in FHIR identifiers.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// Grouped 3-3-4 for people to read, e.g. `943 476 5919`.
    pub fn formatted(&self) -> String {
        let d = self.digits();
        format!("{} {} {}", &d[..3], &d[3..6], &d[6..])
    }

    /// The FHIR `Identifier` for this number.
    pub fn identifier(&self) -> serde_json::Value {
        serde_json::json!({ "system": SYSTEM, "value": self.digits() })
    }
}

/// Modulus 11: weights 10 down to 2 on the first nine digits; the check digit is 11 minus the
/// remainder, 11 counting as 0. None when that gives 10: such numbers are never issued.
pub fn check_digit(first_nine: &[u8]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10u32).rev())
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        n => Some(n as u8),
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits())
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NhsNumber({})", self.digits())
    }
}

impl std::str::FromStr for NhsNumber {
    type Err = NhsNumberError;

    fn from_str(s: &str) -> Result<Self> {
        NhsNumber::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(input: &str) -> String {
        match NhsNumber::parse(input) {
            Ok(n) => panic!("{input} was accepted as {n:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_the_published_example_and_test_numbers() {
        // The example on the NHS Data Dictionary page.
        assert_eq!(
            NhsNumber::parse("9434765919").map(|n| n.digits()).ok(),
            Some("9434765919".into())
        );
        assert_eq!(
            NhsNumber::parse("9990000018").map(|n| n.digits()).ok(),
            Some("9990000018".into())
        );
        // Remainder 0: 11 - 0 = 11 counts as check digit 0.
        assert!(NhsNumber::parse("9990000050").is_ok());
        assert!(NhsNumber::parse("4010232137").is_ok());
    }

    #[test]
    fn accepts_spaces_and_hyphens_between_groups() {
        let n = NhsNumber::parse(" 943 476 5919 ").expect("spaced");
        assert_eq!(n.digits(), "9434765919");
        assert_eq!(n.formatted(), "943 476 5919");
        assert_eq!(NhsNumber::parse("943-476-5919").ok(), Some(n));
    }

    #[test]
    fn rejects_a_wrong_check_digit_and_says_which_is_needed() {
        let message = rejection("9434765918");
        assert!(message.contains("check digit is 8"), "{message}");
        assert!(message.contains("needs 9"), "{message}");
        assert!(NhsNumber::parse("9990000019").is_err());
    }

    #[test]
    fn rejects_numbers_whose_check_digit_would_be_ten() {
        // 123456789: 10+18+24+28+30+30+28+24+18 = 210, 210 % 11 = 1, 11 - 1 = 10.
        let message = rejection("1234567890");
        assert!(message.contains("check digit of 10"), "{message}");
        assert!(NhsNumber::parse("1234567891").is_err());
    }

    #[test]
    fn rejects_wrong_lengths_and_letters() {
        assert!(rejection("943476591").contains("has 9"));
        assert!(rejection("94347659190").contains("has 11"));
        assert!(rejection("").contains("has 0"));
        assert!(rejection("943476591X").contains("only digits"));
        assert!(rejection("９４３４７６５９１９").contains("only digits"));
    }

    #[test]
    fn test_range_numbers_are_valid_and_skip_check_digit_ten() {
        assert_eq!(
            NhsNumber::in_test_range(1).map(|n| n.digits()),
            Some("9990000018".into())
        );
        let valid: Vec<NhsNumber> = (0..1000).filter_map(NhsNumber::in_test_range).collect();
        assert!(
            valid.len() > 850 && valid.len() < 950,
            "about one in eleven is skipped"
        );
        for n in &valid {
            assert!(n.is_test_number(), "{n}");
            assert_eq!(NhsNumber::parse(&n.digits()).ok(), Some(*n));
        }
    }

    #[test]
    fn identifier_uses_the_nhs_number_system() {
        let n = NhsNumber::parse("9990000018").expect("valid");
        assert_eq!(
            n.identifier(),
            serde_json::json!({"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"})
        );
    }
}
