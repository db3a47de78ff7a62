//! Short random codes that people read and type: recovery codes and invitation codes.
//!
//! The alphabet leaves out the characters that are easily confused on paper or in SMS fonts
//! (0/O, 1/I/L), so 31 symbols remain; 12 of them carry 12 × log2(31) ≈ 59.4 bits. Codes are
//! shown in groups of four separated by dashes and accepted in any case, with or without the
//! dashes and spaces.

use rand::Rng;

/// The symbols of a code, in upper case: digits 2-9 and the letters without I, L and O.
pub(crate) const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Characters in one group of a displayed code.
const GROUP: usize = 4;

/// A new code of `len` symbols drawn uniformly from [`ALPHABET`] with the operating system's
/// generator, without separators.
pub(crate) fn generate(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// `raw` in groups of four joined by `-`, e.g. `7KQF-2M9X-P4HT`.
pub(crate) fn group(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    chars
        .chunks(GROUP)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The canonical form of a typed code: separators (spaces, dashes of any kind) removed, upper
/// case, and exactly `len` symbols of [`ALPHABET`]; None for anything else, so a typo can be
/// answered without a database lookup.
pub(crate) fn normalise(input: &str, len: usize) -> Option<String> {
    let mut out = String::with_capacity(len);
    for c in input.chars() {
        if c.is_whitespace() || is_dash(c) {
            continue;
        }
        let upper = c.to_ascii_uppercase();
        if !upper.is_ascii() || !ALPHABET.contains(&(upper as u8)) {
            return None;
        }
        if out.len() == len {
            return None;
        }
        out.push(upper);
    }
    (out.len() == len).then_some(out)
}

/// Hyphen-minus and the Unicode dashes that word processors and phones substitute for it.
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_has_no_confusable_symbols_and_no_repeats() {
        for bad in b"01ILO" {
            assert!(!ALPHABET.contains(bad), "{}", char::from(*bad));
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALPHABET.len());
    }

    #[test]
    fn generated_codes_use_only_the_alphabet_and_every_symbol_appears() {
        let many: String = (0..200).map(|_| generate(12)).collect();
        assert!(many.bytes().all(|b| ALPHABET.contains(&b)));
        for symbol in ALPHABET {
            assert!(many.as_bytes().contains(symbol), "{}", char::from(*symbol));
        }
        assert_eq!(generate(12).len(), 12);
    }

    #[test]
    fn groups_of_four() {
        assert_eq!(group("7KQF2M9XP4HT"), "7KQF-2M9X-P4HT");
        assert_eq!(group("ABCDE"), "ABCD-E");
        assert_eq!(group(""), "");
    }

    #[test]
    fn normalise_accepts_case_spaces_and_dashes() {
        let want = Some("7KQF2M9XP4HT".to_string());
        assert_eq!(normalise("7KQF-2M9X-P4HT", 12), want);
        assert_eq!(normalise("7kqf 2m9x p4ht", 12), want);
        assert_eq!(normalise(" 7kqf\u{2013}2m9x\u{2014}p4ht\n", 12), want);
        assert_eq!(normalise("7KQF2M9XP4HT", 12), want);
    }

    #[test]
    fn normalise_refuses_wrong_length_and_foreign_symbols() {
        assert_eq!(normalise("7KQF-2M9X-P4H", 12), None);
        assert_eq!(normalise("7KQF-2M9X-P4HTA", 12), None);
        assert_eq!(normalise("7KQF-2M9X-P4H0", 12), None); // zero is not a symbol
        assert_eq!(normalise("7KQF-2M9X-P4HO", 12), None); // nor is O
        assert_eq!(normalise("7KQF-2M9X-P4Hé", 12), None);
        assert_eq!(normalise("", 12), None);
        assert_eq!(normalise("----", 12), None);
    }
}
