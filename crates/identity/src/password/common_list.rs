//! The embedded list of common and breached passwords (see `data/README.md` for its sources and
//! licences): about 145,000 entries, compressed into the binary so the check needs no network,
//! decompressed once on first use into one string with sorted line offsets, and searched by
//! binary search.

use std::io::Read;
use std::sync::OnceLock;

use flate2::read::GzDecoder;

/// The gzip-compressed list: one normalised (NFKC, lower-case) password per line, sorted by
/// byte order.
const COMPRESSED: &[u8] = include_bytes!("../../data/common-passwords.txt.gz");

/// The decompressed list.
struct List {
    text: String,
    /// Byte ranges of the entries in `text`, in sorted order.
    entries: Vec<(u32, u32)>,
}

impl List {
    fn get(&self, index: usize) -> &str {
        self.entries
            .get(index)
            .and_then(|(start, end)| self.text.get(*start as usize..*end as usize))
            .unwrap_or("")
    }

    fn contains(&self, key: &str) -> bool {
        let mut lo = 0;
        let mut hi = self.entries.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }
}

static LIST: OnceLock<List> = OnceLock::new();

fn list() -> &'static List {
    LIST.get_or_init(load)
}

/// Decompresses the embedded list. The bytes are fixed at build time and the crate's tests load
/// them, so the empty list returned if they were damaged cannot reach a release unnoticed.
fn load() -> List {
    let mut text = String::new();
    if GzDecoder::new(COMPRESSED)
        .read_to_string(&mut text)
        .is_err()
    {
        return List {
            text: String::new(),
            entries: Vec::new(),
        };
    }
    let mut entries = Vec::new();
    let mut start = 0usize;
    for line in text.split_inclusive('\n') {
        let end = start + line.trim_end_matches('\n').len();
        if end > start {
            if let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(end)) {
                entries.push((s, e));
            }
        }
        start += line.len();
    }
    // The file is sorted already (a test checks it); sorting again costs one linear pass over
    // sorted input and keeps the binary search right even for a hand-edited file.
    let entry = |r: &(u32, u32)| text.get(r.0 as usize..r.1 as usize).unwrap_or("");
    entries.sort_unstable_by(|a, b| entry(a).cmp(entry(b)));
    entries.dedup_by(|a, b| entry(a) == entry(b));
    List { text, entries }
}

/// Whether `password` (compared after NFKC and lower-casing) is on the list of common and
/// breached passwords.
pub fn is_common(password: &str) -> bool {
    contains_folded(&super::fold(password))
}

/// [`is_common`] for a password already in folded form.
pub(super) fn contains_folded(folded: &str) -> bool {
    list().contains(folded)
}

/// How many passwords the list holds. The first call decompresses it (some tens of
/// milliseconds), so a server may call this at start-up to keep that off the first sign-up.
pub fn common_list_len() -> usize {
    list().entries.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_file_is_large_sorted_and_normalised() {
        let mut text = String::new();
        GzDecoder::new(COMPRESSED)
            .read_to_string(&mut text)
            .expect("the embedded list decompresses");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 100_000, "{}", lines.len());
        assert_eq!(common_list_len(), lines.len());
        for pair in lines.windows(2) {
            assert!(pair[0] < pair[1], "not strictly sorted: {:?}", pair);
        }
        for line in &lines {
            assert!(!line.is_empty());
            assert_eq!(super::super::fold(line), *line, "not normalised: {line:?}");
        }
    }

    #[test]
    fn well_known_passwords_are_on_it() {
        for p in [
            "password",
            "123456",
            "qwerty",
            "password123",
            "Password123",
            "PASSWORD1234",
            "qwertyuiop12",
            "iloveyou1234",
            "1qaz2wsx3edc",
            "qwerty123456",
        ] {
            assert!(is_common(p), "{p}");
        }
    }

    #[test]
    fn full_width_forms_are_found_too() {
        // NFKC folds full-width "ｐａｓｓｗｏｒｄ" to "password".
        assert!(is_common(
            "\u{ff50}\u{ff41}\u{ff53}\u{ff53}\u{ff57}\u{ff4f}\u{ff52}\u{ff44}"
        ));
    }

    #[test]
    fn random_passphrases_and_edges_are_not_on_it() {
        for p in [
            "violet tractor anchors seldom",
            "Xq7!vR2#mP9@kL4$",
            "",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz~",
            "\u{0}",
        ] {
            assert!(!is_common(p), "{p}");
        }
    }
}
