//! The part of the journal that commits with the data: every batch transaction also stores a
//! [`BatchRecord`] (a [`store::WriteOp::PutState`] under [`BATCH_PREFIX`]) saying which lines of
//! which files the batch finishes. The journal can therefore never lag the resources it
//! describes: a batch that committed is known to have committed, and a rerun never writes its
//! lines again (which would make new versions wherever one line, e.g. a batch Bundle, writes the
//! same resource twice).
//!
//! Batches commit in any order (several are in flight; on PostgreSQL they commit in parallel), so
//! a batch record says only what its own batch finishes: a [`Span`] of first-pass lines (every
//! line after the previous batch's span of the file, up to the last line taken into this batch,
//! including lines that wrote nothing: rejected, deferred, blank), the deferred lines among them,
//! and the deferred lines retried and now done. The spans of a file's batches tile it without
//! gaps, so on resume [`merge`] folds the spans that follow the file's record into it; spans
//! after a batch that never committed are lines to skip.
//!
//! The per-file records of [`crate::journal`] are still written in the background as the done
//! prefix moves; once one is durable past a batch, that batch's record says nothing new and is
//! deleted.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::journal::{FileRecord, LineSet};
use crate::read::Place;
use crate::source::InputFile;

/// Keys of batch records in the store's state: `import/batch/<run>/<batch number>`.
pub const BATCH_PREFIX: &str = "import/batch/";

/// First-pass lines `from..=to` of a file are finished; `offset` is the byte offset just after
/// line `to`; `read`: `to` is the file's last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub from: u64,
    pub to: u64,
    pub offset: u64,
    #[serde(default)]
    pub read: bool,
}

/// What one batch finishes in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPart {
    /// The file's journal key ([`InputFile::journal_key`]).
    pub key: String,
    /// The file's fingerprint: a part of another version of the file is ignored.
    pub fingerprint: String,
    #[serde(default)]
    pub span: Option<Span>,
    /// Lines of the span waiting for a conditional reference.
    #[serde(default)]
    pub deferred: LineSet,
    /// Deferred lines retried and now done (imported or finally rejected).
    #[serde(default)]
    pub retried: LineSet,
}

/// What one batch transaction stores about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub parts: Vec<BatchPart>,
}

impl BatchRecord {
    pub fn parse(text: &str) -> Option<BatchRecord> {
        serde_json::from_str(text).ok()
    }
}

/// A name for this run's batch records, different from every earlier run's.
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}

/// The key of batch `n` of run `run`.
pub fn batch_key(run: &str, n: u64) -> String {
    format!("{BATCH_PREFIX}{run}/{n:010}")
}

/// Folds the batch parts of one file into its record (`parts` already of the record's
/// fingerprint), and answers the first-pass lines past the record that are finished all the
/// same: batches that committed after one that did not.
pub fn merge(record: &mut FileRecord, parts: &[&BatchPart]) -> LineSet {
    // Deferred lines the record covers already are as the record says (they may have been
    // retried since); those past it are added.
    let recorded = record.done;
    for p in parts {
        for &(a, b) in p.deferred.ranges() {
            if b > recorded {
                record.deferred.insert_range(a.max(recorded + 1), b);
            }
        }
    }
    let mut spans: Vec<Span> = parts.iter().filter_map(|p| p.span).collect();
    spans.sort_by_key(|s| (s.from, s.to));
    let mut skip = LineSet::default();
    for s in spans {
        if s.from <= record.done.saturating_add(1) {
            if s.to >= record.done {
                record.done = s.to;
                record.offset = s.offset;
                record.read |= s.read;
            }
        } else {
            skip.insert_range(s.from, s.to);
        }
    }
    // A retried line that is done stays done.
    for p in parts {
        for &(a, b) in p.retried.ranges() {
            for line in a..=b {
                record.deferred.remove(line);
            }
        }
    }
    skip
}

/// What the batch being assembled finishes, per file index.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    files: BTreeMap<usize, Part>,
}

#[derive(Debug, Clone, Default)]
struct Part {
    span: Option<Span>,
    deferred: LineSet,
    retried: LineSet,
}

impl Parts {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// A deferred line is done after all (retried successfully, or finally rejected).
    pub fn retried(&mut self, file: usize, line: u64) {
        self.files.entry(file).or_default().retried.insert(line);
    }

    /// A retried line turned out to wait again.
    pub fn not_retried(&mut self, file: usize, line: u64) {
        if let Some(p) = self.files.get_mut(&file) {
            p.retried.remove(line);
        }
    }

    /// A first-pass line of the batch's span waits for a conditional reference.
    pub fn deferred(&mut self, file: usize, line: u64) {
        self.files.entry(file).or_default().deferred.insert(line);
    }

    /// The record stored with the batch.
    pub fn record(&self, files: &[InputFile]) -> BatchRecord {
        let parts = self
            .files
            .iter()
            .filter_map(|(&i, p)| {
                let f = files.get(i)?;
                Some(BatchPart {
                    key: f.journal_key.clone(),
                    fingerprint: f.fingerprint.clone(),
                    span: p.span,
                    deferred: p.deferred.clone(),
                    retried: p.retried.clone(),
                })
            })
            .collect();
        BatchRecord { parts }
    }

    fn span(&mut self, file: usize, from: u64) -> &mut Span {
        self.files
            .entry(file)
            .or_default()
            .span
            .get_or_insert(Span {
                from,
                to: from.saturating_sub(1),
                offset: 0,
                read: false,
            })
    }
}

/// The open batch's parts, and where each file's next span starts.
#[derive(Debug)]
pub struct Cover {
    next_from: Vec<u64>,
    open: Parts,
}

impl Cover {
    /// Spans start after what `records` hold as done.
    pub fn new(records: &[FileRecord]) -> Cover {
        Cover {
            next_from: records.iter().map(|r| r.done.saturating_add(1)).collect(),
            open: Parts::default(),
        }
    }

    fn from(&self, file: usize) -> u64 {
        self.next_from.get(file).copied().unwrap_or(1)
    }

    /// A first-pass line is taken (into the batch, or settled without writing).
    pub fn line(&mut self, place: &Place) {
        let from = self.from(place.file);
        let span = self.open.span(place.file, from);
        span.to = span.to.max(place.line);
        span.offset = span.offset.max(place.end_offset);
    }

    /// A file ends after `lines` lines, at `offset`.
    pub fn end(&mut self, file: usize, lines: u64, offset: u64) {
        let from = self.from(file);
        let span = self.open.span(file, from);
        span.to = span.to.max(lines);
        span.offset = span.offset.max(offset);
        span.read = true;
    }

    pub fn parts(&mut self) -> &mut Parts {
        &mut self.open
    }

    /// Closes the open parts for a batch: each file's next span starts after them.
    pub fn take(&mut self) -> Parts {
        let parts = std::mem::take(&mut self.open);
        for (&file, p) in &parts.files {
            if let (Some(span), Some(next)) = (p.span, self.next_from.get_mut(file)) {
                *next = (*next).max(span.to.saturating_add(1));
            }
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(lines: &[u64]) -> LineSet {
        let mut s = LineSet::default();
        for &l in lines {
            s.insert(l);
        }
        s
    }

    fn record(done: u64, offset: u64, deferred: &[u64]) -> FileRecord {
        FileRecord {
            path: "a.ndjson".into(),
            fingerprint: "fp".into(),
            done,
            offset,
            read: false,
            deferred: set(deferred),
        }
    }

    fn part(span: Option<(u64, u64, bool)>, deferred: &[u64], retried: &[u64]) -> BatchPart {
        BatchPart {
            key: "import/file/a".into(),
            fingerprint: "fp".into(),
            span: span.map(|(from, to, read)| Span {
                from,
                to,
                offset: to * 10,
                read,
            }),
            deferred: set(deferred),
            retried: set(retried),
        }
    }

    #[test]
    fn spans_that_follow_the_record_fold_into_it_in_any_order() {
        let mut r = record(4, 40, &[]);
        let (a, b, c) = (
            part(Some((5, 9, false)), &[], &[]),
            part(Some((10, 12, false)), &[11], &[]),
            part(Some((13, 15, true)), &[], &[]),
        );
        let skip = merge(&mut r, &[&c, &a, &b]);
        assert!(skip.is_empty(), "{skip:?}");
        assert_eq!((r.done, r.offset, r.read), (15, 150, true));
        assert_eq!(r.deferred.ranges(), &[(11, 11)]);
        assert!(!r.complete(), "line 11 still waits");
    }

    #[test]
    fn spans_after_a_batch_that_did_not_commit_are_skipped_not_folded() {
        let mut r = record(4, 40, &[]);
        // 5..=9 never committed; 10..=12 and 16..=20 did, 13..=15 did not.
        let parts = [
            part(Some((10, 12, false)), &[12], &[]),
            part(Some((16, 20, true)), &[], &[]),
        ];
        let skip = merge(&mut r, &parts.iter().collect::<Vec<_>>());
        assert_eq!((r.done, r.offset, r.read), (4, 40, false));
        assert_eq!(skip.ranges(), &[(10, 12), (16, 20)]);
        assert_eq!(r.deferred.ranges(), &[(12, 12)], "a skipped line may wait");
    }

    #[test]
    fn what_the_record_covers_already_is_left_as_the_record_says() {
        // The record is past the parts: line 3 was deferred in the first pass, then retried and
        // done (the record no longer lists it), and 7 still waits.
        let mut r = record(20, 200, &[7]);
        let parts = [
            part(Some((1, 10, false)), &[3, 7], &[]),
            part(Some((11, 20, true)), &[], &[]),
        ];
        let skip = merge(&mut r, &parts.iter().collect::<Vec<_>>());
        assert!(skip.is_empty());
        assert_eq!((r.done, r.offset), (20, 200));
        assert!(
            r.read,
            "the span that reached the end says the file was read"
        );
        assert_eq!(r.deferred.ranges(), &[(7, 7)]);
    }

    #[test]
    fn retried_lines_leave_the_deferred_set_wherever_they_were_deferred() {
        let mut r = record(10, 100, &[2, 5]);
        let parts = [
            part(Some((11, 14, true)), &[12, 13], &[]),
            part(None, &[], &[5, 13]),
        ];
        merge(&mut r, &parts.iter().collect::<Vec<_>>());
        assert_eq!(r.deferred.ranges(), &[(2, 2), (12, 12)]);
        assert_eq!((r.done, r.read), (14, true));
    }

    #[test]
    fn an_end_with_no_lines_after_the_record_marks_the_file_read() {
        let mut r = record(6, 60, &[]);
        let end_only = part(Some((7, 6, true)), &[], &[]);
        merge(&mut r, &[&end_only]);
        assert_eq!((r.done, r.offset, r.read), (6, 60, true));
        assert!(r.complete());
    }

    #[test]
    fn cover_tiles_each_file_with_spans_from_batch_to_batch() {
        let mut cover = Cover::new(&[record(4, 40, &[]), record(0, 0, &[])]);
        let at = |file: usize, line: u64| Place {
            file,
            line,
            end_offset: line * 10,
            source_pos: 0,
        };
        cover.line(&at(0, 5));
        cover.line(&at(0, 7));
        cover.parts().deferred(0, 7);
        let first = cover.take().record(&[]);
        assert!(first.parts.is_empty(), "no files known: nothing named");
        cover.line(&at(0, 9));
        cover.end(0, 10, 100);
        cover.line(&at(1, 1));
        let files: Vec<InputFile> = (0..2)
            .map(|i| InputFile {
                path: format!("f{i}").into(),
                layout: crate::source::Layout::Ndjson,
                gzip: false,
                size: 1,
                fingerprint: format!("fp{i}"),
                journal_key: format!("import/file/{i}"),
            })
            .collect();
        let second = cover.take().record(&files);
        let spans: Vec<Option<Span>> = second.parts.iter().map(|p| p.span).collect();
        assert_eq!(
            spans,
            [
                Some(Span {
                    from: 8,
                    to: 10,
                    offset: 100,
                    read: true
                }),
                Some(Span {
                    from: 1,
                    to: 1,
                    offset: 10,
                    read: false
                })
            ]
        );
        assert_eq!(second.parts[1].key, "import/file/1");
        let text = serde_json::to_string(&second).expect("json");
        assert_eq!(BatchRecord::parse(&text), Some(second));
    }
}
