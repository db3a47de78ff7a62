//! The import journal: how far each input file has been imported, kept in the store's portal
//! state so that an import killed at any moment carries on where it stopped.
//!
//! It has two parts. Every batch transaction stores, with its resources, a record of the lines
//! it finishes ([`crate::batch_journal`]): whatever committed is known to have committed. And
//! per file, a record (written here, in the background) of the number of leading lines that are
//! done — committed, rejected, or deferred (their line numbers are recorded too, to be retried)
//! — and the byte offset after them: the compact form a rerun starts from, and what tells that a
//! file is imported completely. A file record is written only after the lines it covers are
//! finished, so it is never ahead of the data; when a run starts, the batch records committed
//! past it are folded in ([`load`]). Lines that wrote nothing durable may be read again by a
//! rerun; they come out the same (rejected again, or unchanged, because every write is a PUT to
//! the resource's stable id, [`crate::identity`]).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use store::{Store, StoreError};
use tokio::sync::mpsc;

use crate::batch_journal::{merge, BatchPart, BatchRecord, BATCH_PREFIX};
use crate::source::InputFile;

/// The journal's keys in the store's state: one per input file path.
pub const PREFIX: &str = "import/file/";

/// State writes in flight at once when many files' records change together.
const WRITE_CONCURRENCY: usize = 32;

/// A set of line numbers kept as sorted, disjoint, inclusive ranges: deferred lines usually come
/// in runs, and the journal stores this form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LineSet(Vec<(u64, u64)>);

impl LineSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> u64 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    pub fn contains(&self, line: u64) -> bool {
        let i = self.0.partition_point(|&(_, end)| end < line);
        self.0.get(i).is_some_and(|&(start, _)| start <= line)
    }

    pub fn insert(&mut self, line: u64) {
        let i = self
            .0
            .partition_point(|&(_, end)| end.saturating_add(1) < line);
        match self.0.get_mut(i) {
            Some(r) if r.0 <= line.saturating_add(1) => {
                r.0 = r.0.min(line);
                r.1 = r.1.max(line);
                // Joining the next range when the gap closed.
                if let Some(&(next_start, next_end)) = self.0.get(i + 1) {
                    if next_start <= self.0[i].1.saturating_add(1) {
                        self.0[i].1 = self.0[i].1.max(next_end);
                        self.0.remove(i + 1);
                    }
                }
            }
            _ => self.0.insert(i, (line, line)),
        }
    }

    /// Inserts every line of `start..=end` (nothing when `end < start`).
    pub fn insert_range(&mut self, start: u64, end: u64) {
        if end < start {
            return;
        }
        // The ranges that overlap or touch the new one become one.
        let i = self
            .0
            .partition_point(|&(_, e)| e.saturating_add(1) < start);
        let mut j = i;
        let (mut a, mut b) = (start, end);
        while let Some(&(s, e)) = self.0.get(j) {
            if s > end.saturating_add(1) {
                break;
            }
            a = a.min(s);
            b = b.max(e);
            j += 1;
        }
        self.0.splice(i..j, [(a, b)]);
    }

    pub fn remove(&mut self, line: u64) {
        let i = self.0.partition_point(|&(_, end)| end < line);
        let Some(&(start, end)) = self.0.get(i) else {
            return;
        };
        if line < start {
            return;
        }
        match (line == start, line == end) {
            (true, true) => {
                self.0.remove(i);
            }
            (true, false) => self.0[i].0 = line + 1,
            (false, true) => self.0[i].1 = line - 1,
            (false, false) => {
                self.0[i].1 = line - 1;
                self.0.insert(i + 1, (line + 1, end));
            }
        }
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }
}

/// What the journal knows about one input file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The file's path when it was recorded (for people reading the state).
    pub path: String,
    /// [`InputFile::fingerprint`] when recorded: a different one means a different file.
    pub fingerprint: String,
    /// Lines 1..=done are done.
    pub done: u64,
    /// The byte offset (in the uncompressed content) just after line `done`.
    pub offset: u64,
    /// The whole file has been read (`done` is its last line).
    #[serde(default)]
    pub read: bool,
    /// Lines waiting for a conditional reference to resolve; retried after everything else.
    #[serde(default)]
    pub deferred: LineSet,
}

impl FileRecord {
    pub fn fresh(file: &InputFile) -> Self {
        FileRecord {
            path: file.path.display().to_string(),
            fingerprint: file.fingerprint.clone(),
            ..FileRecord::default()
        }
    }

    /// Everything in the file is done: nothing left to read or retry.
    pub fn complete(&self) -> bool {
        self.read && self.deferred.is_empty()
    }
}

/// What the journal knows when a run starts.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Per file: its record, with the batch records committed since folded in.
    pub records: Vec<FileRecord>,
    /// Per file: first-pass lines past its record that are finished all the same (batches that
    /// committed after one that did not); the reader skips them.
    pub skip: Vec<LineSet>,
    /// Batch records of earlier runs that concern only this import's files: deleted once it has
    /// recorded everything they say.
    pub spent: Vec<String>,
}

/// The records of `files` as earlier runs left them (fresh ones where there is none, where the
/// file changed since, or where `again` asks to start over), with the batch records those runs
/// committed folded in ([`crate::batch_journal::merge`]). A record that folding moved is stored
/// at once, so that the batch records it came from can go.
pub async fn load(
    store: &dyn Store,
    files: &[InputFile],
    again: bool,
) -> Result<Loaded, StoreError> {
    let mut stored: HashMap<String, String> = if again {
        HashMap::new()
    } else {
        store.state_list(PREFIX).await?.into_iter().collect()
    };
    let index: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.journal_key.as_str(), i))
        .collect();
    let mut parts: Vec<Vec<BatchPart>> = vec![Vec::new(); files.len()];
    let mut spent = Vec::new();
    for (key, text) in store.state_list(BATCH_PREFIX).await? {
        let Some(record) = BatchRecord::parse(&text) else {
            continue;
        };
        let (mine, others): (Vec<BatchPart>, Vec<BatchPart>) = record
            .parts
            .into_iter()
            .partition(|p| index.contains_key(p.key.as_str()));
        if mine.is_empty() {
            continue;
        }
        if again {
            // Starting over: what earlier runs did must not count when this one is resumed.
            if others.is_empty() {
                store.state_delete(&key).await?;
            } else {
                store
                    .state_put(&key, &encode(&BatchRecord { parts: others })?)
                    .await?;
            }
            continue;
        }
        if others.is_empty() {
            spent.push(key);
        }
        for p in mine {
            if let Some(list) = index.get(p.key.as_str()).and_then(|&i| parts.get_mut(i)) {
                list.push(p);
            }
        }
    }
    let mut loaded = Loaded {
        spent,
        ..Loaded::default()
    };
    for (f, parts) in files.iter().zip(&parts) {
        let mut record = stored
            .remove(&f.journal_key)
            .and_then(|text| serde_json::from_str::<FileRecord>(&text).ok())
            .filter(|r| r.fingerprint == f.fingerprint)
            .unwrap_or_else(|| FileRecord::fresh(f));
        let same_file: Vec<&BatchPart> = parts
            .iter()
            .filter(|p| p.fingerprint == f.fingerprint)
            .collect();
        let before = record.clone();
        let skip = merge(&mut record, &same_file);
        if record != before {
            store.state_put(&f.journal_key, &encode(&record)?).await?;
        }
        loaded.records.push(record);
        loaded.skip.push(skip);
    }
    Ok(loaded)
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Database(format!("could not encode the import journal: {e}")))
}

/// File records to write, and batch records they make redundant (deleted once they are written).
struct Flush {
    records: Vec<(String, String)>,
    spent: Vec<String>,
}

/// Writes file records in the background, in order, then deletes the batch records they make
/// redundant. Nothing waits for it but the end of the import: the batch records already hold
/// what these records say.
pub struct JournalWriter {
    tx: Option<mpsc::UnboundedSender<Flush>>,
    task: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
}

impl JournalWriter {
    pub fn start(store: Arc<dyn Store>) -> JournalWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<Flush>();
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Everything waiting is written together; for a key, the latest record wins.
                let mut latest: HashMap<String, String> = first.records.into_iter().collect();
                let mut spent = first.spent;
                while let Ok(more) = rx.try_recv() {
                    latest.extend(more.records);
                    spent.extend(more.spent);
                }
                let store = &store;
                let mut writes = futures::stream::iter(latest)
                    .map(|(key, value)| async move { store.state_put(&key, &value).await })
                    .buffer_unordered(WRITE_CONCURRENCY);
                while let Some(r) = writes.next().await {
                    r.map_err(|e| {
                        StoreError::Database(format!("writing the import journal: {e}"))
                    })?;
                }
                let mut deletes = futures::stream::iter(spent)
                    .map(|key| async move { store.state_delete(&key).await })
                    .buffer_unordered(WRITE_CONCURRENCY);
                while let Some(r) = deletes.next().await {
                    r.map_err(|e| {
                        StoreError::Database(format!("tidying the import journal: {e}"))
                    })?;
                }
            }
            Ok(())
        });
        JournalWriter {
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// Queues `records`, then the deletion of `spent` batch records.
    pub fn write(&mut self, records: Vec<(String, String)>, spent: Vec<String>) {
        if records.is_empty() && spent.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx {
            // A closed channel means the task failed; `close` reports why.
            let _ = tx.send(Flush { records, spent });
        }
    }

    /// Writes what is queued and stops.
    pub async fn close(mut self) -> Result<(), StoreError> {
        self.tx.take();
        match self.task.take() {
            Some(task) => task.await.map_err(|e| {
                StoreError::Database(format!("the import journal writer stopped: {e}"))
            })?,
            None => Ok(()),
        }
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

    #[test]
    fn line_sets_merge_runs_and_split_on_removal() {
        let mut s = set(&[5, 3, 4, 10, 12, 11, 1]);
        assert_eq!(s.ranges(), &[(1, 1), (3, 5), (10, 12)]);
        assert_eq!(s.len(), 7);
        s.insert(2);
        assert_eq!(s.ranges(), &[(1, 5), (10, 12)]);
        s.remove(11);
        assert_eq!(s.ranges(), &[(1, 5), (10, 10), (12, 12)]);
        s.remove(1);
        s.remove(5);
        s.remove(7);
        assert_eq!(s.ranges(), &[(2, 4), (10, 10), (12, 12)]);
        assert!(s.contains(3) && !s.contains(5) && s.contains(12) && !s.contains(13));
        for l in [2, 3, 4, 10, 12] {
            s.remove(l);
        }
        assert!(s.is_empty());
    }

    #[test]
    fn line_sets_agree_with_a_plain_set() {
        // A deterministic pseudo-random walk of inserts and removals.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut s = LineSet::default();
        let mut plain = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let line = x % 60;
            match x % 5 {
                0 | 1 => {
                    s.remove(line);
                    plain.remove(&line);
                }
                2 => {
                    // A range, possibly empty (end before start).
                    let end = line + (x >> 8) % 6;
                    let start = line + (x >> 16) % 3;
                    s.insert_range(start, end);
                    plain.extend(start..=end);
                }
                _ => {
                    s.insert(line);
                    plain.insert(line);
                }
            }
            assert_eq!(s.len(), plain.len() as u64);
            for w in s.ranges().windows(2) {
                assert!(w[0].1 + 1 < w[1].0, "{:?}", s.ranges());
            }
        }
        for line in 0..70 {
            assert_eq!(s.contains(line), plain.contains(&line), "{line}");
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let r = FileRecord {
            path: "a.ndjson".into(),
            fingerprint: "1:2:ab".into(),
            done: 7,
            offset: 99,
            read: true,
            deferred: set(&[2, 3, 6]),
        };
        let text = serde_json::to_string(&r).expect("json");
        assert!(text.contains("\"deferred\":[[2,3],[6,6]]"), "{text}");
        assert_eq!(serde_json::from_str::<FileRecord>(&text).expect("parse"), r);
        assert!(!r.complete());
    }
}
