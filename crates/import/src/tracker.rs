//! Which lines are done, in input order, so that the journal only ever records a prefix of every
//! file that is entirely durable — however the batches holding those lines commit (several are in
//! flight at once, and on PostgreSQL they may commit in any order).

use std::collections::VecDeque;

use crate::journal::FileRecord;
use crate::read::Place;
use crate::source::InputFile;

/// What a tracked unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A line read in order: done, it moves the file's mark past it.
    Line,
    /// A deferred line retried: done, it leaves the file's deferred set.
    Retry,
    /// The end of a file: `lines` lines, ending at `offset`.
    End { lines: u64, offset: u64 },
}

/// How a unit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    /// Committed or rejected.
    Done,
    /// Waiting for a conditional reference: retried after the rest.
    Deferred,
}

#[derive(Debug)]
struct Slot {
    place: Place,
    kind: Kind,
    state: State,
}

/// What [`Tracker::advance`] moved.
#[derive(Debug, Default)]
pub struct Advanced {
    /// Every unit before this sequence number is done and in `records`.
    pub upto: u64,
    /// `(journal key, record JSON)` of every file whose record changed.
    pub records: Vec<(String, String)>,
}

pub struct Tracker {
    records: Vec<FileRecord>,
    keys: Vec<String>,
    sizes: Vec<u64>,
    /// Bytes of the files before each file.
    before: Vec<u64>,
    dirty: Vec<bool>,
    window: VecDeque<Slot>,
    /// The sequence number of `window[0]`.
    base: u64,
    /// Bytes of input passed, for the progress estimate.
    pub bytes_done: u64,
}

impl Tracker {
    pub fn new(files: &[InputFile], records: Vec<FileRecord>) -> Tracker {
        let mut before = Vec::with_capacity(files.len());
        let mut sum = 0;
        for f in files {
            before.push(sum);
            sum += f.size;
        }
        // Files already read through count as passed.
        let bytes_done = files
            .iter()
            .zip(&records)
            .filter(|(_, r)| r.read)
            .map(|(f, _)| f.size)
            .sum();
        Tracker {
            keys: files.iter().map(|f| f.journal_key.clone()).collect(),
            sizes: files.iter().map(|f| f.size).collect(),
            dirty: vec![false; files.len()],
            records,
            before,
            window: VecDeque::new(),
            base: 0,
            bytes_done,
        }
    }

    pub fn record(&self, file: usize) -> Option<&FileRecord> {
        self.records.get(file)
    }

    /// Tracks a unit; its sequence number is for [`Tracker::finish`].
    pub fn push(&mut self, place: Place, kind: Kind) -> u64 {
        self.window.push_back(Slot {
            place,
            kind,
            state: State::Pending,
        });
        self.base + self.window.len() as u64 - 1
    }

    pub fn finish(&mut self, seq: u64, state: State) {
        if let Some(i) = seq.checked_sub(self.base) {
            if let Some(slot) = self.window.get_mut(i as usize) {
                slot.state = state;
            }
        }
    }

    /// The sequence number the next unit gets: every unit before it has been pushed.
    pub fn next_seq(&self) -> u64 {
        self.base + self.window.len() as u64
    }

    /// Takes the finished units at the front into the files' records.
    pub fn advance(&mut self) -> Advanced {
        while let Some(slot) = self.window.front() {
            if slot.state == State::Pending {
                break;
            }
            let Some(slot) = self.window.pop_front() else {
                break;
            };
            self.base += 1;
            self.apply(&slot);
        }
        let mut records = Vec::new();
        for (i, dirty) in self.dirty.iter_mut().enumerate() {
            if std::mem::take(dirty) {
                if let (Some(key), Some(r)) = (self.keys.get(i), self.records.get(i)) {
                    if let Ok(json) = serde_json::to_string(r) {
                        records.push((key.clone(), json));
                    }
                }
            }
        }
        Advanced {
            upto: self.base,
            records,
        }
    }

    fn apply(&mut self, slot: &Slot) {
        let f = slot.place.file;
        let Some(r) = self.records.get_mut(f) else {
            return;
        };
        let before = self.before.get(f).copied().unwrap_or(0);
        match (slot.kind, slot.state) {
            (Kind::Line, state) => {
                if state == State::Deferred {
                    r.deferred.insert(slot.place.line);
                }
                r.done = r.done.max(slot.place.line);
                r.offset = r.offset.max(slot.place.end_offset);
                self.bytes_done = self.bytes_done.max(before + slot.place.source_pos);
            }
            (Kind::Retry, State::Done) => r.deferred.remove(slot.place.line),
            (Kind::Retry, _) => return,
            (Kind::End { lines, offset }, _) => {
                r.done = r.done.max(lines);
                r.offset = r.offset.max(offset);
                r.read = true;
                let size = self.sizes.get(f).copied().unwrap_or(0);
                self.bytes_done = self.bytes_done.max(before + size);
            }
        }
        if let Some(d) = self.dirty.get_mut(f) {
            *d = true;
        }
    }

    /// Files with deferred lines, and those lines.
    pub fn deferred(&self) -> Vec<(usize, crate::journal::LineSet)> {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.deferred.is_empty())
            .map(|(i, r)| (i, r.deferred.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(n: usize) -> Vec<InputFile> {
        (0..n)
            .map(|i| InputFile {
                path: format!("f{i}.ndjson").into(),
                layout: crate::source::Layout::Ndjson,
                gzip: false,
                size: 100,
                fingerprint: format!("fp{i}"),
                journal_key: format!("import/file/{i}"),
            })
            .collect()
    }

    fn at(file: usize, line: u64) -> Place {
        Place {
            file,
            line,
            end_offset: line * 10,
            source_pos: line * 10,
        }
    }

    #[test]
    fn only_a_finished_prefix_is_recorded() {
        let fs = files(2);
        let mut t = Tracker::new(&fs, fs.iter().map(FileRecord::fresh).collect());
        let a = t.push(at(0, 1), Kind::Line);
        let b = t.push(at(0, 2), Kind::Line);
        let c = t.push(at(0, 4), Kind::Line);
        t.finish(b, State::Done);
        t.finish(c, State::Deferred);
        let adv = t.advance();
        assert_eq!(adv.upto, 0);
        assert!(adv.records.is_empty());
        t.finish(a, State::Done);
        let adv = t.advance();
        assert_eq!(adv.upto, 3);
        assert_eq!(adv.records.len(), 1);
        let r = t.record(0).expect("record");
        assert_eq!((r.done, r.offset), (4, 40));
        assert!(r.deferred.contains(4) && !r.read);
        assert_eq!(t.bytes_done, 40);
    }

    #[test]
    fn a_file_is_complete_when_read_and_its_deferred_lines_are_done() {
        let fs = files(1);
        let mut t = Tracker::new(&fs, fs.iter().map(FileRecord::fresh).collect());
        let a = t.push(at(0, 1), Kind::Line);
        t.finish(a, State::Deferred);
        let e = t.push(
            at(0, 0),
            Kind::End {
                lines: 3,
                offset: 30,
            },
        );
        t.finish(e, State::Done);
        t.advance();
        assert!(!t.record(0).expect("record").complete());
        assert_eq!(t.deferred().len(), 1);
        let r = t.push(at(0, 1), Kind::Retry);
        t.finish(r, State::Deferred);
        t.advance();
        assert!(!t.record(0).expect("record").complete());
        let r = t.push(at(0, 1), Kind::Retry);
        t.finish(r, State::Done);
        let adv = t.advance();
        assert_eq!(adv.records.len(), 1);
        assert!(t.record(0).expect("record").complete());
        assert!(t.deferred().is_empty());
        assert_eq!(t.bytes_done, 100);
    }
}
