//! The import journal: how far each input file has been imported, kept in the store's portal
//! state (`Store::state_put`) so that an import killed at any moment carries on where it stopped.
//!
//! Per file it records the number of leading lines that are done — committed, rejected, or
//! deferred (their line numbers are recorded too, to be retried) — and the byte offset after
//! them. A record is written only after the lines it covers are committed, so a rerun skips only
//! work that is durable; the lines between the last record and the kill are imported again and
//! come out unchanged, because every write is a PUT to the resource's stable id
//! ([`crate::identity`]).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use store::{Store, StoreError};
use tokio::sync::{mpsc, watch};

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

/// The records of `files` as earlier runs left them (fresh ones where there is none, where the
/// file changed since, or where `again` asks to start over).
pub async fn load(
    store: &dyn Store,
    files: &[InputFile],
    again: bool,
) -> Result<Vec<FileRecord>, StoreError> {
    let mut stored: HashMap<String, String> = if again {
        HashMap::new()
    } else {
        store.state_list(PREFIX).await?.into_iter().collect()
    };
    Ok(files
        .iter()
        .map(|f| {
            stored
                .remove(&f.journal_key)
                .and_then(|text| serde_json::from_str::<FileRecord>(&text).ok())
                .filter(|r| r.fingerprint == f.fingerprint)
                .unwrap_or_else(|| FileRecord::fresh(f))
        })
        .collect())
}

/// Records to write, and the position in the import they make durable.
struct Flush {
    upto: u64,
    records: Vec<(String, String)>,
}

/// Writes journal records in the background, in order, and tells how far they are durable.
pub struct JournalWriter {
    tx: Option<mpsc::UnboundedSender<Flush>>,
    /// The furthest position queued.
    queued: u64,
    durable: watch::Receiver<Result<u64, String>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl JournalWriter {
    pub fn start(store: Arc<dyn Store>) -> JournalWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<Flush>();
        let (durable_tx, durable) = watch::channel(Ok(0));
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Everything waiting is written together; for a key, the latest record wins.
                let mut upto = first.upto;
                let mut latest: HashMap<String, String> = first.records.into_iter().collect();
                while let Ok(more) = rx.try_recv() {
                    upto = upto.max(more.upto);
                    latest.extend(more.records);
                }
                let store = &store;
                let mut writes = futures::stream::iter(latest)
                    .map(|(key, value)| async move { store.state_put(&key, &value).await })
                    .buffer_unordered(WRITE_CONCURRENCY);
                let mut failed = None;
                while let Some(r) = writes.next().await {
                    if let Err(e) = r {
                        failed = Some(e);
                    }
                }
                if let Some(e) = failed {
                    let _ = durable_tx.send(Err(format!("writing the import journal: {e}")));
                    return;
                }
                durable_tx.send_modify(|d| {
                    if let Ok(n) = d {
                        *n = (*n).max(upto);
                    }
                });
            }
        });
        JournalWriter {
            tx: Some(tx),
            queued: 0,
            durable,
            task: Some(task),
        }
    }

    /// Queues `records`; once written, everything up to `upto` is durable. (Nothing to write
    /// still moves the durable position, once what is queued before it is written.)
    pub fn write(&mut self, upto: u64, records: Vec<(String, String)>) {
        if records.is_empty() && upto <= self.queued {
            return;
        }
        self.queued = self.queued.max(upto);
        if let Some(tx) = &self.tx {
            // A closed channel means the task failed; `wait` reports why.
            let _ = tx.send(Flush { upto, records });
        }
    }

    /// How far the journal is durable now.
    pub fn durable(&self) -> Result<u64, StoreError> {
        self.durable.borrow().clone().map_err(StoreError::Database)
    }

    /// Waits until everything up to `upto` is durable.
    pub async fn wait(&mut self, upto: u64) -> Result<u64, StoreError> {
        let reached = self
            .durable
            .wait_for(|d| d.as_ref().map_or(true, |n| *n >= upto))
            .await
            .map_err(|_| StoreError::Database("the import journal writer stopped".into()))?;
        reached.clone().map_err(StoreError::Database)
    }

    /// Writes what is queued and stops.
    pub async fn close(mut self) -> Result<(), StoreError> {
        self.tx.take();
        if let Some(task) = self.task.take() {
            task.await.map_err(|e| {
                StoreError::Database(format!("the import journal writer stopped: {e}"))
            })?;
        }
        self.durable().map(|_| ())
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
            if matches!(x % 3, 0) {
                s.remove(line);
                plain.remove(&line);
            } else {
                s.insert(line);
                plain.insert(line);
            }
            assert_eq!(s.len(), plain.len() as u64);
            for w in s.ranges().windows(2) {
                assert!(w[0].1 + 1 < w[1].0, "{:?}", s.ranges());
            }
        }
        for line in 0..60 {
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
