//! Resource ids: deterministic, unique within one output, and different for different seeds.
//!
//! Every id is named by a key: the resource type, a scope (the shared part, a patient, or a
//! clinic schedule) and a number within it. [`IdStyle::Hashed`] encrypts the key with a keyed
//! 128-bit Feistel permutation and writes it as a UUID: a permutation never maps two keys to one
//! id, so ids cannot collide within an output, and another seed gives unrelated ids, so regions
//! generated with different seeds can be loaded side by side. [`IdStyle::Readable`] spells the
//! key out (`pat-0001`, `pat-0001-obs-3`) for the demo, where people type ids into `curl`.

use crate::kind::Kind;
use crate::rng::{mix, scramble};

/// How ids are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdStyle {
    /// UUID-formatted, derived from the seed and the key: for NDJSON output.
    #[default]
    Hashed,
    /// Short and readable (`pat-0001-obs-3`): for the demo.
    Readable,
}

/// Tags for keys that are not "the n-th resource of a type in a scope".
const TAG_SLOT: u64 = 200;

#[derive(Debug, Clone)]
pub(crate) struct Ids {
    style: IdStyle,
    keys: [u64; 4],
}

impl Ids {
    pub(crate) fn new(seed: u64, style: IdStyle) -> Ids {
        let mut keys = [0u64; 4];
        for (i, k) in keys.iter_mut().enumerate() {
            *k = mix(seed, 0x1D5 + i as u64);
        }
        Ids { style, keys }
    }

    fn hashed(&self, hi: u64, lo: u64) -> String {
        let (mut l, mut r) = (hi, lo);
        for k in self.keys {
            let f = scramble(r ^ k);
            (l, r) = (r, l ^ f);
        }
        let v = (u128::from(l) << 64) | u128::from(r);
        let h = format!("{v:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    /// The `n`-th resource of its type in the shared part; `slug` names it readably and must be
    /// unique within its type.
    pub(crate) fn shared(&self, kind: Kind, n: u64, slug: impl FnOnce() -> String) -> String {
        match self.style {
            IdStyle::Hashed => self.hashed(kind.tag() << 56, n),
            IdStyle::Readable => slug(),
        }
    }

    /// The Patient resource of patient `index` (0-based).
    pub(crate) fn patient(&self, index: u64) -> String {
        match self.style {
            IdStyle::Hashed => self.hashed((Kind::Patient.tag() << 56) | (index + 1), 0),
            IdStyle::Readable => format!("pat-{:04}", index + 1),
        }
    }

    /// The `n`-th resource of `kind` in patient `index`'s record (n from 1).
    pub(crate) fn in_record(&self, kind: Kind, index: u64, n: u64) -> String {
        match self.style {
            IdStyle::Hashed => self.hashed((kind.tag() << 56) | (index + 1), n),
            IdStyle::Readable => format!("pat-{:04}-{}-{n}", index + 1, kind.short()),
        }
    }

    /// The slot at `position` of schedule number `schedule`: the same id whether the shared part
    /// writes it free or a patient's record writes it busy. `label` is its readable form.
    pub(crate) fn slot(
        &self,
        schedule: usize,
        position: i64,
        label: impl FnOnce() -> String,
    ) -> String {
        match self.style {
            IdStyle::Hashed => self.hashed((TAG_SLOT << 56) | schedule as u64, position as u64),
            IdStyle::Readable => label(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hashed_ids_are_uuid_shaped_valid_fhir_ids_and_distinct() {
        let ids = Ids::new(42, IdStyle::Hashed);
        let mut seen = HashSet::new();
        for i in 0..2_000 {
            for id in [
                ids.patient(i),
                ids.in_record(Kind::Observation, i, 1),
                ids.in_record(Kind::Observation, i, 2),
                ids.in_record(Kind::Condition, i, 1),
                ids.shared(Kind::Slot, i, String::new),
                ids.slot(3, i as i64, String::new),
            ] {
                assert!(fhir::types::is_valid_id(&id), "{id}");
                assert_eq!(id.len(), 36);
                assert!(seen.insert(id));
            }
        }
    }

    #[test]
    fn another_seed_gives_other_ids() {
        let a = Ids::new(1, IdStyle::Hashed);
        let b = Ids::new(2, IdStyle::Hashed);
        assert_ne!(a.patient(0), b.patient(0));
        assert_eq!(a.patient(0), Ids::new(1, IdStyle::Hashed).patient(0));
    }

    #[test]
    fn readable_ids_spell_out_the_key() {
        let ids = Ids::new(1, IdStyle::Readable);
        assert_eq!(ids.patient(0), "pat-0001");
        assert_eq!(ids.in_record(Kind::Observation, 0, 3), "pat-0001-obs-3");
    }
}
