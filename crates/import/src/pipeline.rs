//! The import pipeline: a reader thread, worker threads that prepare the writes, and the
//! committer (here) that puts them in order into batched store transactions, several in flight,
//! and keeps the journal.
//!
//! ```text
//! reader ──chunks──▶ workers (parse, identity, references, validate, index) ──▶ committer ──▶ store
//! ```
//!
//! Every channel is bounded and the committer waits for a batch to commit before it takes more
//! than `max_in_flight`, so memory stays flat however large the input.
//!
//! **Resume exactly.** Each batch transaction carries the journal record of the lines it
//! finishes ([`crate::batch_journal`]), so a committed line is never written again by a rerun,
//! however it was killed: not even a line that writes one resource twice (a batch Bundle) makes
//! extra versions. The per-file records ([`crate::journal`]) follow in the background and are
//! waited for only at the end.
//!
//! **Same resource, input order.** Batches in flight commit in any order (in parallel on
//! PostgreSQL; on SQLite a failed batch is written again after later ones), so a write to a
//! resource that a batch not yet committed also writes waits until that batch has committed (see
//! [`Pipeline::add`]): the last line to write a resource wins, as in the input.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use store::{Store, StoreError, WriteOp, WriteOutcome};

use crate::batch_journal::{self, Cover, Parts};
use crate::error::{ImportError, Result};
use crate::journal::{JournalWriter, Loaded};
use crate::prepare::{self, Op, Outcome, Reject, UNREADABLE};
use crate::progress::Reporter;
use crate::read::{self, Chunk, Item, Place, ReadJob};
use crate::resolve::Resolver;
use crate::source::InputFile;
use crate::summary::Summary;
use crate::tracker::{Kind, State, Tracker};

/// How often a batch whose failure the database caused (not its content) is tried again, and
/// the wait before the first retry (doubled each time).
const RETRIES: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// How the pipeline is sized.
#[derive(Debug, Clone, Copy)]
pub struct Sizing {
    pub workers: usize,
    /// Writes per store transaction (a transaction Bundle larger than this is one on its own).
    pub batch: usize,
    pub max_in_flight: usize,
}

/// One prepared unit, as the workers hand it on.
enum Ready {
    Unit {
        place: Place,
        text: String,
        outcome: Outcome,
    },
    Broken {
        place: Place,
        reason: String,
    },
    End {
        file: usize,
        lines: u64,
        offset: u64,
    },
}

struct ReadyChunk {
    seq: u64,
    items: Vec<Ready>,
}

/// A unit in a batch: what is needed to report it, prepare it again, and mark it done.
struct BatchUnit {
    seq: u64,
    place: Place,
    kind: Kind,
    text: String,
    atomic: bool,
    keys: Vec<String>,
}

#[derive(Default)]
struct Batch {
    ops: Vec<WriteOp>,
    /// The resource type of each write, for the summary.
    types: Vec<String>,
    units: Vec<BatchUnit>,
}

/// A batch's journal record: stored under `key` with the batch's writes.
struct BatchJournal {
    key: String,
    parts: Parts,
    /// The last unit the record covers: once the file records are past it, it is redundant.
    last_seq: u64,
}

struct Done {
    types: Vec<String>,
    units: Vec<BatchUnit>,
    journal: BatchJournal,
    result: store::Result<Vec<WriteOutcome>>,
}

type InFlight = Pin<Box<dyn Future<Output = Result<Done>> + Send>>;

/// The committer's state across rounds (the first pass, then retries of deferred lines).
pub struct Pipeline<'a> {
    store: Arc<dyn Store>,
    files: Arc<Vec<InputFile>>,
    resolver: Arc<Resolver>,
    sizing: Sizing,
    pub tracker: Tracker,
    journal: JournalWriter,
    /// What the open batch finishes, for its journal record.
    cover: Cover,
    /// This run's name in batch record keys, and the number of the next batch.
    run: String,
    batches: u64,
    /// Batch records committed, by the last unit they cover: deleted once the file records are
    /// past it.
    committed: VecDeque<(u64, String)>,
    /// Batch records of earlier runs, deleted at the end.
    spent: Vec<String>,
    pub summary: Summary,
    reporter: &'a Reporter,
    /// Keys (`Type/id`) written by the open batch or a batch in flight, with how many units
    /// hold each.
    window: HashMap<String, u32>,
    batch: Batch,
    in_flight: FuturesUnordered<InFlight>,
    /// Lines waiting for a conditional reference.
    pub deferred: u64,
    /// Retried lines that were imported (or finally rejected) in the current round.
    pub settled_in_round: u64,
    /// The current round retries deferred lines; `last_round`: for the last time.
    retry: bool,
    last_round: bool,
}

impl<'a> Pipeline<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        files: Arc<Vec<InputFile>>,
        resolver: Arc<Resolver>,
        sizing: Sizing,
        loaded: Loaded,
        summary: Summary,
        reporter: &'a Reporter,
        deferred: u64,
    ) -> Self {
        let journal = JournalWriter::start(store.clone());
        let cover = Cover::new(&loaded.records);
        let tracker = Tracker::new(&files, loaded.records);
        reporter
            .counters()
            .bytes_done
            .store(tracker.bytes_done, Ordering::Relaxed);
        Pipeline {
            store,
            files,
            resolver,
            sizing,
            tracker,
            journal,
            cover,
            run: batch_journal::run_id(),
            batches: 0,
            committed: VecDeque::new(),
            spent: loaded.spent,
            summary,
            reporter,
            window: HashMap::new(),
            batch: Batch::default(),
            in_flight: FuturesUnordered::new(),
            deferred,
            settled_in_round: 0,
            retry: false,
            last_round: false,
        }
    }

    /// Reads `jobs` through the workers into the store, and waits until all of it is committed.
    /// `retry`: the jobs are deferred lines; `last_round`: ones still unresolved are rejected.
    pub async fn round(&mut self, jobs: Vec<ReadJob>, retry: bool, last_round: bool) -> Result<()> {
        self.retry = retry;
        self.last_round = last_round;
        self.settled_in_round = 0;
        let workers = self.sizing.workers.max(1);
        let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(workers * 2);
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<ReadyChunk>(workers * 2);
        let files = self.files.clone();
        let reader = std::thread::Builder::new()
            .name("import-reader".into())
            .spawn(move || read::read_all(&files, jobs, chunk_tx))
            .map_err(|e| ImportError::Internal(format!("starting the reader: {e}")))?;
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let mut threads = vec![reader];
        for i in 0..workers {
            let (rx, tx, resolver) = (chunk_rx.clone(), ready_tx.clone(), self.resolver.clone());
            let t = std::thread::Builder::new()
                .name(format!("import-worker-{i}"))
                .spawn(move || work(&rx, &tx, &resolver, last_round))
                .map_err(|e| ImportError::Internal(format!("starting a worker: {e}")))?;
            threads.push(t);
        }
        drop(ready_tx);

        let mut waiting: BTreeMap<u64, Vec<Ready>> = BTreeMap::new();
        let mut next = 0u64;
        loop {
            tokio::select! {
                biased;
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.on_done(done?).await?;
                }
                chunk = ready_rx.recv(), if self.in_flight.len() < self.sizing.max_in_flight => {
                    let Some(chunk) = chunk else { break };
                    waiting.insert(chunk.seq, chunk.items);
                    while let Some(items) = waiting.remove(&next) {
                        next += 1;
                        for item in items {
                            self.handle(item).await?;
                        }
                    }
                }
            }
        }
        if !waiting.is_empty() {
            return Err(ImportError::Internal(
                "a worker stopped before finishing its lines".into(),
            ));
        }
        let joined =
            tokio::task::spawn_blocking(move || threads.into_iter().all(|t| t.join().is_ok()))
                .await
                .unwrap_or(false);
        if !joined {
            return Err(ImportError::Internal(
                "a reader or worker thread panicked".into(),
            ));
        }
        self.drain().await
    }

    /// Takes one prepared unit, in input order.
    async fn handle(&mut self, item: Ready) -> Result<()> {
        let kind = if self.retry { Kind::Retry } else { Kind::Line };
        match item {
            Ready::End {
                file,
                lines,
                offset,
            } => {
                let place = Place {
                    file,
                    line: lines,
                    end_offset: offset,
                    source_pos: 0,
                };
                let seq = self.track(place, Kind::End { lines, offset });
                self.tracker.finish(seq, State::Done);
            }
            Ready::Broken { place, reason } => {
                self.reject(
                    &Reject {
                        line: place.line,
                        entry: None,
                        resource_type: UNREADABLE.into(),
                        reason,
                    },
                    place.file,
                );
                self.settle(place, kind);
            }
            Ready::Unit {
                place,
                text,
                outcome,
            } => match outcome {
                Outcome::Failed(e) => return Err(e.into()),
                Outcome::Rejected { reports, along } => {
                    self.rejected(place.file, &reports, &along);
                    self.settle(place, kind);
                }
                Outcome::Deferred { .. } => {
                    let seq = self.track(place, kind);
                    self.tracker.finish(seq, State::Deferred);
                    if kind == Kind::Line {
                        self.cover.parts().deferred(place.file, place.line);
                    }
                    if !self.retry {
                        self.deferred += 1;
                        self.reporter
                            .counters()
                            .deferred
                            .store(self.deferred, Ordering::Relaxed);
                    }
                }
                Outcome::Write {
                    atomic,
                    ops,
                    rejected,
                } => {
                    for r in &rejected {
                        self.reject(r, place.file);
                    }
                    if ops.is_empty() {
                        self.settle(place, kind);
                    } else {
                        self.add(place, kind, text, atomic, ops).await?;
                    }
                }
            },
        }
        Ok(())
    }

    /// Tracks a unit, and counts it in the open batch's journal record.
    fn track(&mut self, place: Place, kind: Kind) -> u64 {
        match kind {
            Kind::Line => self.cover.line(&place),
            Kind::End { lines, offset } => self.cover.end(place.file, lines, offset),
            Kind::Retry => {}
        }
        self.tracker.push(place, kind)
    }

    /// A unit that is done without writing anything.
    fn settle(&mut self, place: Place, kind: Kind) {
        let seq = self.track(place, kind);
        self.tracker.finish(seq, State::Done);
        if kind == Kind::Retry {
            self.cover.parts().retried(place.file, place.line);
        }
        self.settled(kind);
    }

    fn settled(&mut self, kind: Kind) {
        if kind == Kind::Retry {
            self.settled_in_round += 1;
            self.deferred = self.deferred.saturating_sub(1);
            self.reporter
                .counters()
                .deferred
                .store(self.deferred, Ordering::Relaxed);
        }
    }

    /// Adds a unit's writes to the batch. A write to a resource that the open batch or one in
    /// flight also writes waits until that batch has committed (see the module's notes).
    async fn add(
        &mut self,
        place: Place,
        kind: Kind,
        text: String,
        atomic: bool,
        ops: Vec<Op>,
    ) -> Result<()> {
        let keys: Vec<String> = ops.iter().map(|o| o.key.clone()).collect();
        if keys.iter().any(|k| self.window.contains_key(k)) {
            self.drain().await?;
        }
        let full = self.batch.ops.len() + ops.len() > self.sizing.batch;
        if full && !self.batch.ops.is_empty() {
            self.submit().await?;
        }
        let seq = self.track(place, kind);
        if kind == Kind::Retry {
            // Done once the batch commits, which is when this record is stored.
            self.cover.parts().retried(place.file, place.line);
        }
        for k in &keys {
            *self.window.entry(k.clone()).or_insert(0) += 1;
        }
        for op in ops {
            self.batch.types.push(op.resource_type);
            self.batch.ops.push(op.op);
        }
        self.batch.units.push(BatchUnit {
            seq,
            place,
            kind,
            text,
            atomic,
            keys,
        });
        if self.batch.ops.len() >= self.sizing.batch {
            self.submit().await?;
        }
        Ok(())
    }

    /// Sends the batch to the store, once fewer than `max_in_flight` are on their way.
    async fn submit(&mut self) -> Result<()> {
        if self.batch.ops.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= self.sizing.max_in_flight {
            match self.in_flight.next().await {
                Some(done) => self.on_done(done?).await?,
                None => break,
            }
        }
        let Batch {
            mut ops,
            types,
            units,
        } = std::mem::take(&mut self.batch);
        let journal = BatchJournal {
            key: batch_journal::batch_key(&self.run, self.batches),
            parts: self.cover.take(),
            last_seq: self.tracker.next_seq().saturating_sub(1),
        };
        self.batches += 1;
        ops.push(journal_op(&journal, &self.files)?);
        let store = self.store.clone();
        // A task of its own, so that the transaction reaches the store at once and proceeds
        // while the committer prepares the next batch.
        let task = tokio::spawn(async move { store.transaction(ops).await });
        self.in_flight.push(Box::pin(async move {
            let result = task
                .await
                .map_err(|e| ImportError::Internal(format!("a batch stopped: {e}")))?;
            Ok(Done {
                types,
                units,
                journal,
                result,
            })
        }));
        Ok(())
    }

    async fn on_done(&mut self, done: Done) -> Result<()> {
        let Done {
            types,
            units,
            journal,
            result,
        } = done;
        match result {
            Ok(outcomes) => {
                // The last outcome is the journal record's.
                for (outcome, resource_type) in outcomes.iter().zip(&types) {
                    self.summary.count_outcome(resource_type, outcome);
                }
                self.reporter
                    .counters()
                    .resources
                    .fetch_add(types.len() as u64, Ordering::Relaxed);
                for u in &units {
                    self.unit_done(u);
                }
                self.committed.push_back((journal.last_seq, journal.key));
            }
            Err(e) => self.recover(&units, journal, e).await?,
        }
        for u in &units {
            self.release(&u.keys);
        }
        self.flush_journal();
        Ok(())
    }

    fn unit_done(&mut self, u: &BatchUnit) {
        self.tracker.finish(u.seq, State::Done);
        if u.kind == Kind::Retry {
            self.summary.deferred_then_imported += 1;
        }
        self.settled(u.kind);
    }

    /// The keys of a unit whose batch is over (committed, or given up).
    fn release(&mut self, keys: &[String]) {
        for k in keys {
            if let Some(n) = self.window.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    self.window.remove(k);
                }
            }
        }
    }

    /// A batch failed: its units are prepared again from their text and written without the
    /// writes that fail, one failure at a time, so that the rest still lands — with the batch's
    /// journal record, adjusted for units that now wait for a reference.
    async fn recover(
        &mut self,
        units: &[BatchUnit],
        mut journal: BatchJournal,
        first: StoreError,
    ) -> Result<()> {
        if matches!(first.root(), StoreError::Unavailable) {
            return Err(first.into());
        }
        let resolver = self.resolver.clone();
        let last_round = self.last_round;
        let texts: Vec<(String, u64)> = units
            .iter()
            .map(|u| (u.text.clone(), u.place.line))
            .collect();
        let prepared = tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .map(|(text, line)| prepare::prepare(&resolver, text, *line, last_round))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ImportError::Internal(format!("preparing a failed batch again: {e}")))?;

        // The units still to write, each with its remaining writes.
        let mut work: Vec<(&BatchUnit, Vec<Op>)> = Vec::new();
        for (u, outcome) in units.iter().zip(prepared) {
            match outcome {
                // Entries refused the first time were reported then.
                Outcome::Write { ops, .. } if !ops.is_empty() => work.push((u, ops)),
                Outcome::Write { .. } => self.unit_done(u),
                Outcome::Rejected { reports, along } => {
                    self.rejected(u.place.file, &reports, &along);
                    self.unit_done(u);
                }
                Outcome::Deferred { .. } => {
                    self.tracker.finish(u.seq, State::Deferred);
                    match u.kind {
                        Kind::Line => journal.parts.deferred(u.place.file, u.place.line),
                        Kind::Retry => journal.parts.not_retried(u.place.file, u.place.line),
                        Kind::End { .. } => {}
                    }
                }
                Outcome::Failed(e) => return Err(e.into()),
            }
        }
        let mut transient_failures = 0u32;
        while !work.is_empty() {
            let mut ops = Vec::new();
            let mut owners = Vec::new();
            for (i, (_, unit_ops)) in work.iter().enumerate() {
                for (j, op) in unit_ops.iter().enumerate() {
                    ops.push(op.op.clone());
                    owners.push((i, j));
                }
            }
            let n = ops.len();
            ops.push(journal_op(&journal, &self.files)?);
            let error = match self.store.transaction(ops).await {
                Ok(outcomes) => {
                    for (outcome, &(i, j)) in outcomes.iter().zip(&owners) {
                        if let Some((_, unit_ops)) = work.get(i) {
                            if let Some(op) = unit_ops.get(j) {
                                self.summary.count_outcome(&op.resource_type, outcome);
                            }
                        }
                    }
                    self.reporter
                        .counters()
                        .resources
                        .fetch_add(n as u64, Ordering::Relaxed);
                    for (u, _) in std::mem::take(&mut work) {
                        self.unit_done(u);
                    }
                    self.committed.push_back((journal.last_seq, journal.key));
                    break;
                }
                Err(e) => e,
            };
            let root = error.root();
            if matches!(root, StoreError::Unavailable) {
                return Err(error.into());
            }
            let index = match &error {
                StoreError::Entry { index, .. } => Some(*index),
                _ if n == 1 => Some(0),
                _ => None,
            };
            let transient = matches!(root, StoreError::Database(_) | StoreError::Conflict(_));
            if transient || index.is_none() {
                transient_failures += 1;
                if transient_failures <= RETRIES {
                    let wait = FIRST_BACKOFF * 2u32.pow(transient_failures - 1);
                    tracing::warn!(error = %error, "an import batch failed; retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                if index.is_none() {
                    return Err(error.into());
                }
            }
            // The write at `index` is refused; the rest is tried again without it.
            let Some(&(i, j)) = index.and_then(|x| owners.get(x)) else {
                return Err(error.into());
            };
            transient_failures = 0;
            let reason = prepare::store_reason(&error);
            let atomic = work.get(i).is_some_and(|(u, _)| u.atomic);
            if atomic {
                let (u, unit_ops) = work.remove(i);
                let failing = unit_ops.get(j);
                let report = Reject {
                    line: u.place.line,
                    entry: failing.and_then(|o| o.entry),
                    resource_type: failing
                        .map(|o| o.resource_type.clone())
                        .unwrap_or_else(|| UNREADABLE.into()),
                    reason: format!("{reason} (so the whole transaction is refused)"),
                };
                let along: Vec<String> = unit_ops
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != j)
                    .map(|(_, o)| o.resource_type.clone())
                    .collect();
                self.rejected(u.place.file, &[report], &along);
                self.unit_done(u);
            } else if let Some((u, unit_ops)) = work.get_mut(i) {
                let op = unit_ops.remove(j);
                let report = Reject {
                    line: u.place.line,
                    entry: op.entry,
                    resource_type: op.resource_type,
                    reason,
                };
                let file = u.place.file;
                self.rejected(file, &[report], &[]);
                if unit_ops.is_empty() {
                    let (u, _) = work.remove(i);
                    self.unit_done(u);
                }
            }
        }
        Ok(())
    }

    /// Reports and counts rejected units or entries.
    fn rejected(&mut self, file: usize, reports: &[Reject], along: &[String]) {
        for r in reports {
            self.reject(r, file);
        }
        for t in along {
            self.summary.count_rejected(t);
        }
        let n = (reports.len() + along.len()) as u64;
        let c = self.reporter.counters();
        c.resources.fetch_add(n, Ordering::Relaxed);
        c.rejected.fetch_add(n, Ordering::Relaxed);
    }

    /// Prints `path:line: reason` and counts the rejection (progress counters aside).
    fn reject(&mut self, r: &Reject, file: usize) {
        let path = self
            .files
            .get(file)
            .map(|f| f.shown().to_string())
            .unwrap_or_default();
        let message = format!("{path}:{}: {}", r.line, r.message());
        self.reporter.line(&message);
        self.summary.list_rejection(message);
        self.summary.count_rejected(&r.resource_type);
    }

    /// Queues the file records that moved (written in the background), and the deletion of
    /// the batch records they make redundant.
    fn flush_journal(&mut self) {
        let advanced = self.tracker.advance();
        self.reporter
            .counters()
            .bytes_done
            .store(self.tracker.bytes_done, Ordering::Relaxed);
        let mut spent = Vec::new();
        while self
            .committed
            .front()
            .is_some_and(|(last, _)| *last < advanced.upto)
        {
            if let Some((_, key)) = self.committed.pop_front() {
                spent.push(key);
            }
        }
        self.journal.write(advanced.records, spent);
    }

    /// Commits everything taken so far.
    async fn drain(&mut self) -> Result<()> {
        self.submit().await?;
        while let Some(done) = self.in_flight.next().await {
            self.on_done(done?).await?;
        }
        self.flush_journal();
        Ok(())
    }

    /// Writes the journal's last records and deletes the batch records of earlier runs that
    /// they make redundant; the summary is the pipeline's result.
    pub async fn close(mut self) -> Result<Summary> {
        self.flush_journal();
        let spent = std::mem::take(&mut self.spent);
        self.journal.write(Vec::new(), spent);
        self.journal.close().await?;
        Ok(self.summary)
    }
}

/// The journal record of a batch, as a write of the batch.
fn journal_op(journal: &BatchJournal, files: &[InputFile]) -> Result<WriteOp> {
    let value = serde_json::to_string(&journal.parts.record(files))
        .map_err(|e| ImportError::Internal(format!("encoding a batch's journal record: {e}")))?;
    Ok(WriteOp::PutState {
        key: journal.key.clone(),
        value,
    })
}

/// A worker: prepares every unit of every chunk it takes, until the reader is done.
fn work(
    chunks: &Mutex<Receiver<Chunk>>,
    out: &tokio::sync::mpsc::Sender<ReadyChunk>,
    resolver: &Resolver,
    last_round: bool,
) {
    loop {
        let chunk = match chunks.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(chunk) = chunk else { return };
        let items = chunk
            .items
            .into_iter()
            .map(|item| match item {
                Item::Unit { place, text } => {
                    let outcome = prepare::prepare(resolver, &text, place.line, last_round);
                    Ready::Unit {
                        place,
                        text,
                        outcome,
                    }
                }
                Item::Broken { place, reason } => Ready::Broken { place, reason },
                Item::End {
                    file,
                    lines,
                    offset,
                } => Ready::End {
                    file,
                    lines,
                    offset,
                },
            })
            .collect();
        if out
            .blocking_send(ReadyChunk {
                seq: chunk.seq,
                items,
            })
            .is_err()
        {
            return;
        }
    }
}
