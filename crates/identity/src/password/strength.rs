//! Which new passwords are refused (NIST SP 800-63B § 3.1.1.2, OWASP ASVS 5.0 V6.2).
//!
//! The rules are the ones that measurably stop guessing: a minimum length, a maximum that still
//! allows long passphrases, a list of passwords known from breaches, and no personal
//! information, repetition or sequences. There are deliberately no composition rules ("must
//! contain a digit and a symbol"): NIST and ASVS forbid them because they push people to
//! predictable substitutions (`Password1!`) without making passwords harder to guess.

use std::fmt;

use super::common_list::contains_folded;
use super::fold;
use super::patterns::{covering_runs, is_repetition, Runs};

/// Fewest characters (Unicode code points after NFKC) a password may have.
pub const MIN_CHARS: usize = 12;
/// Most characters a password may have; enough for any passphrase, and a bound on the work a
/// sign-in can ask of the server.
pub const MAX_CHARS: usize = 128;
/// Personal-information words shorter than this are not checked: refusing every password that
/// contains "ann" or "li" would refuse good passwords and protect nothing.
const MIN_CONTEXT_CHARS: usize = 4;

/// Why a password was refused. `Display` gives the sentence to show the person, which says
/// what to do and never repeats the password or the personal information it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Fewer than [`MIN_CHARS`] characters.
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    TooLong,
    /// On the list of common and breached passwords.
    Common,
    /// A listed password with digits, punctuation or spaces added before or after it
    /// (`iloveyou2024!`), which is among the first things attackers try.
    CommonWithAdditions,
    /// Contains the username, a name or the email address given as context.
    ContainsPersonalInfo,
    /// One character or word repeated.
    Repetitive,
    /// Made of runs like `abcd`, `4321` or `qwerty`.
    Sequence,
}

impl Weakness {
    /// The message for the person choosing the password.
    pub fn message(&self) -> &'static str {
        match self {
            Weakness::TooShort => "Use at least 12 characters. A few unrelated words make a long password that is easy to remember.",
            Weakness::TooLong => "Use at most 128 characters.",
            Weakness::Common => "This password is too common: it appears in lists of breached passwords. Choose another.",
            Weakness::CommonWithAdditions => "This password is a common password with numbers or symbols added, which attackers try early. Choose another.",
            Weakness::ContainsPersonalInfo => "Do not use your name, username or email address in your password.",
            Weakness::Repetitive => "Avoid repeated characters or words, such as \"aaaa\" or \"abcabc\". Choose a less predictable password.",
            Weakness::Sequence => "Avoid sequences such as \"abcd\", \"1234\" or \"qwerty\". Choose a less predictable password.",
        }
    }
}

impl fmt::Display for Weakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Checks a new password against Portico's rules; `context` holds the person's username, email
/// address (or its local part) and names, which the password must not contain (words of at least
/// four characters, ignoring case; an email address or a name with spaces is also checked part by
/// part). Returns the first rule broken, in the order: length, personal information, common
/// list, repetition, sequences.
pub fn check_strength(password: &str, context: &[&str]) -> Result<(), Weakness> {
    let folded = fold(password);
    let chars = folded.chars().count();
    if chars < MIN_CHARS {
        return Err(Weakness::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(Weakness::TooLong);
    }
    if contains_context(&folded, context) {
        return Err(Weakness::ContainsPersonalInfo);
    }
    if contains_folded(&folded) {
        return Err(Weakness::Common);
    }
    if is_common_with_additions(&folded) {
        return Err(Weakness::CommonWithAdditions);
    }
    if is_repetition(&folded) {
        return Err(Weakness::Repetitive);
    }
    match covering_runs(&folded) {
        Some(Runs::Repeats) => Err(Weakness::Repetitive),
        Some(Runs::Sequences) => Err(Weakness::Sequence),
        None => Ok(()),
    }
}

/// Whether the password, stripped of leading and trailing digits, punctuation and spaces, is a
/// listed password of at least four characters.
fn is_common_with_additions(folded: &str) -> bool {
    let core = folded.trim_matches(|c: char| {
        c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace()
    });
    core.len() != folded.len() && core.chars().count() >= 4 && contains_folded(core)
}

/// Whether `folded` contains any context word, or any part of one, of at least
/// [`MIN_CONTEXT_CHARS`] characters.
fn contains_context(folded: &str, context: &[&str]) -> bool {
    context.iter().any(|item| {
        let item = fold(item);
        let whole = item.trim();
        std::iter::once(whole)
            .chain(item.split(|c: char| !c.is_alphanumeric()))
            .filter(|word| word.chars().count() >= MIN_CONTEXT_CHARS)
            .any(|word| folded.contains(word))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRONG: &str = "violet tractor anchors seldom";

    #[test]
    fn length_limits_count_characters_not_bytes() {
        assert_eq!(check_strength("Xq7!vR2#mP9", &[]), Err(Weakness::TooShort));
        assert_eq!(check_strength("Xq7!vR2#mP9@", &[]), Ok(()));
        // Twelve two-byte characters are twelve characters.
        assert_eq!(check_strength("ŧħłøßđŋæœþðə", &[]), Ok(()));
        assert_eq!(check_strength("ŧħłøßđŋæœþð", &[]), Err(Weakness::TooShort));
        // NFKC first: the ligature "ﬀ" is two characters.
        assert_eq!(check_strength("ŧħłøßđŋæœþ\u{fb00}", &[]), Ok(()));
        let long: String = STRONG.chars().cycle().take(MAX_CHARS).collect();
        assert_eq!(check_strength(&long, &[]), Ok(()));
        let too_long: String = STRONG.chars().cycle().take(MAX_CHARS + 1).collect();
        assert_eq!(check_strength(&too_long, &[]), Err(Weakness::TooLong));
        assert_eq!(check_strength("", &[]), Err(Weakness::TooShort));
    }

    #[test]
    fn listed_passwords_are_refused_in_any_case() {
        for p in [
            "password1234",
            "PASSWORD1234",
            "qwertyuiop12",
            "1qaz2wsx3edc",
            "Qwerty123456",
        ] {
            assert_eq!(check_strength(p, &[]), Err(Weakness::Common), "{p}");
        }
    }

    #[test]
    fn listed_passwords_with_digits_or_symbols_added_are_refused() {
        for p in [
            "iloveyou2024!!",
            "!!monkey123456",
            "Dragon 1234567",
            "sunshine.2024",
        ] {
            assert_eq!(
                check_strength(p, &[]),
                Err(Weakness::CommonWithAdditions),
                "{p}"
            );
        }
    }

    #[test]
    fn strong_passwords_pass() {
        for p in [
            STRONG,
            "Xq7!vR2#mP9@kL4$",
            "correct-battery-orbit-7",
            "mÿ ñéw pässwörd ïs løng",
        ] {
            assert_eq!(
                check_strength(p, &["jane.smith@example.org", "Jane Smith"]),
                Ok(()),
                "{p}"
            );
        }
    }

    #[test]
    fn personal_information_is_refused() {
        let context = ["jsmith84", "jane.smith@example.org", "Jane Smith"];
        for p in [
            "my name is Jane Brown!",
            "SMITH family garden",
            "jsmith84 is my login",
            "garden.example.org!",
        ] {
            assert_eq!(
                check_strength(p, &context),
                Err(Weakness::ContainsPersonalInfo),
                "{p}"
            );
        }
    }

    #[test]
    fn short_context_words_are_ignored() {
        assert_eq!(
            check_strength("annual violet tractor", &["Ann", "Li"]),
            Ok(())
        );
        assert_eq!(check_strength("annual violet tractor", &["Anna"]), Ok(()));
        assert_eq!(
            check_strength("annabel violet tractor", &["Anna"]),
            Err(Weakness::ContainsPersonalInfo)
        );
        assert_eq!(check_strength(STRONG, &["", "   ", "@."]), Ok(()));
    }

    #[test]
    fn repetition_and_sequences_are_refused() {
        assert_eq!(
            check_strength("kkkkkkkkkkkkkkkk", &[]),
            Err(Weakness::Repetitive)
        );
        assert_eq!(
            check_strength("blueblueblueblue", &[]),
            Err(Weakness::Repetitive)
        );
        assert_eq!(
            check_strength("xxxxyyyyzzzz7777", &[]),
            Err(Weakness::Repetitive)
        );
        assert_eq!(
            check_strength("mnopqrstuvwxyz", &[]),
            Err(Weakness::Sequence)
        );
        assert_eq!(
            check_strength("lmnop98765vwxyz", &[]),
            Err(Weakness::Sequence)
        );
    }

    #[test]
    fn no_composition_rules() {
        // All lower-case letters and spaces, no digit or symbol: fine.
        assert_eq!(check_strength("purple lantern harbour", &[]), Ok(()));
        // All digits but random: fine by length (a list would catch common ones).
        assert_eq!(check_strength("830472915563", &[]), Ok(()));
    }

    #[test]
    fn messages_say_what_to_do() {
        assert!(Weakness::TooShort
            .to_string()
            .contains(&MIN_CHARS.to_string()));
        assert!(Weakness::TooLong
            .to_string()
            .contains(&MAX_CHARS.to_string()));
        assert_eq!(
            Weakness::Common.to_string(),
            "This password is too common: it appears in lists of breached passwords. Choose another."
        );
        let all = [
            Weakness::TooShort,
            Weakness::TooLong,
            Weakness::Common,
            Weakness::CommonWithAdditions,
            Weakness::ContainsPersonalInfo,
            Weakness::Repetitive,
            Weakness::Sequence,
        ];
        let mut seen = std::collections::HashSet::new();
        for w in all {
            assert!(w.message().ends_with('.'));
            assert!(seen.insert(w.message()), "duplicate message for {w:?}");
        }
    }
}
