//! Predictable shapes that no list can enumerate: a password made of one repeated unit
//! (`aaaaaaaaaaaa`, `abcabcabcabc`, `passwordpassword`) or made entirely of runs of three or more
//! characters that follow each other in the alphabet, the digits or a keyboard row, forwards or
//! backwards, or repeat (`abcdefghijkl`, `123456789012`, `qwertyuiopas`, `abc123def456`).
//! Both work on the folded (NFKC, lower-case) password.

/// Orders in which consecutive characters make an obvious run.
const ORDERS: [&str; 5] = [
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    // The keyboard's number row, where 0 follows 9, and its shifted symbols.
    "1234567890",
    "!@#$%^&*()",
    // The letter rows, read on from one row to the next.
    "qwertyuiopasdfghjklzxcvbnm",
];

/// Shortest run that counts.
const MIN_RUN: usize = 3;

/// Whether `folded` is one shorter unit repeated two or more times.
pub(super) fn is_repetition(folded: &str) -> bool {
    let chars: Vec<char> = folded.chars().collect();
    let n = chars.len();
    (1..=n / 2).any(|unit| n % unit == 0 && (unit..n).all(|i| chars[i] == chars[i - unit]))
}

/// What fully covers a password made of runs, if something does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Runs {
    /// Only runs of one repeated character (`aaaabbbb1111`).
    Repeats,
    /// At least one run in order (`abc`, `321`, `qwe`).
    Sequences,
}

/// Whether `folded` splits entirely into runs of at least three characters, and of which kind.
/// Runs of repeated characters are preferred when both splits exist, since the caller reports
/// the more specific weakness.
pub(super) fn covering_runs(folded: &str) -> Option<Runs> {
    let chars: Vec<char> = folded.chars().collect();
    let n = chars.len();
    if n < MIN_RUN {
        return None;
    }
    // best[i]: the covering of chars[..i] found so far (Repeats beats Sequences).
    let mut best: Vec<Option<Runs>> = vec![None; n + 1];
    best[0] = Some(Runs::Repeats);
    for start in 0..n {
        let Some(before) = best[start] else { continue };
        let repeat_end = repeat_run_end(&chars, start);
        let sequence_end = sequence_run_end(&chars, start);
        let first_end = start + MIN_RUN;
        for (offset, slot) in best.iter_mut().skip(first_end).enumerate() {
            let end = first_end + offset;
            let run = if end <= repeat_end {
                Runs::Repeats
            } else if end <= sequence_end {
                Runs::Sequences
            } else {
                break;
            };
            let covering = if before == Runs::Repeats && run == Runs::Repeats {
                Runs::Repeats
            } else {
                Runs::Sequences
            };
            if *slot != Some(Runs::Repeats) {
                *slot = Some(covering);
            }
        }
    }
    best[n]
}

/// End (exclusive) of the run of one repeated character that starts at `start`.
fn repeat_run_end(chars: &[char], start: usize) -> usize {
    let mut end = start + 1;
    while end < chars.len() && chars[end] == chars[start] {
        end += 1;
    }
    end
}

/// End (exclusive) of the longest run in one of [`ORDERS`], forwards or backwards, that starts
/// at `start`.
fn sequence_run_end(chars: &[char], start: usize) -> usize {
    let mut longest = start + 1;
    for order in ORDERS {
        let position = |c: char| order.chars().position(|o| o == c);
        for forwards in [true, false] {
            let mut end = start + 1;
            while end < chars.len() {
                let step = match (position(chars[end - 1]), position(chars[end])) {
                    (Some(a), Some(b)) if forwards => b.checked_sub(a) == Some(1),
                    (Some(a), Some(b)) => a.checked_sub(b) == Some(1),
                    _ => false,
                };
                if !step {
                    break;
                }
                end += 1;
            }
            longest = longest.max(end);
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_of_a_unit() {
        for p in [
            "aaaaaaaaaaaa",
            "abcabcabcabc",
            "passwordpassword",
            "xx",
            "12121212",
        ] {
            assert!(is_repetition(p), "{p}");
        }
        // Not whole repetitions of one unit.
        for p in ["1212121212121", "abcabcabcabd", "aab", "a", ""] {
            assert!(!is_repetition(p), "{p}");
        }
    }

    #[test]
    fn sequences_are_found() {
        for p in [
            "abcdefghijkl",
            "zyxwvutsrqpo",
            "123456789012",
            "0987654321",
            "qwertyuiopas",
            "poiuytrewq",
            "abc123def456",
            "!@#$%^&*()",
            "7890qwerty",
            "aaabcdefffff",
        ] {
            assert_eq!(covering_runs(p), Some(Runs::Sequences), "{p}");
        }
    }

    #[test]
    fn runs_of_repeated_characters_are_repeats() {
        for p in ["aaaaaaaaaaaa", "aaabbbccc111", "1111aaaa2222"] {
            assert_eq!(covering_runs(p), Some(Runs::Repeats), "{p}");
        }
    }

    #[test]
    fn ordinary_passwords_are_not_runs() {
        for p in [
            "violet tractor anchors seldom",
            "abcdefghijkx",
            "xabcdefghijk",
            "ab12cd34ef56",
            "qwertyuiopaq",
            "Xq7!vR2#mP9@",
            "ab",
            "",
        ] {
            assert_eq!(covering_runs(p), None, "{p}");
        }
    }
}
