//! Bulk import of FHIR data into the store (`portico import PATH`): NDJSON files (one resource
//! per line, as Bulk Data exports and Synthea write them), Bundles (collection, searchset,
//! transaction, batch, history), either compressed as `.gz`, or a folder of them.
//!
//! What it promises, and where each promise is kept:
//!
//! - **Idempotent.** Every resource is written with PUT semantics to an id fixed by one rule
//!   ([`identity`]), so importing the same data again writes nothing new: the store answers
//!   "unchanged" without a new version.
//! - **Order-free.** `Type/id` references are kept as they are (the store does not need the
//!   target to exist yet); Bundle-internal references are rewritten to the target entry's id;
//!   conditional references that match nothing yet wait until everything else is in
//!   ([`references`], [`pipeline`]).
//! - **Resumable.** The [`journal`] records, per file, how far the lines are durably done, and
//!   each batch transaction records the lines it commits ([`batch_journal`]); a run killed at any
//!   moment (`kill -9`) and started again ends with the same database as a run that was never
//!   interrupted.
//! - **Fast with flat memory.** A reader thread, worker threads for parsing, validation and
//!   index extraction, and batched transactions with several in flight, over bounded channels.
//! - **A bad line does not stop the rest.** It is reported as `path:line: reason` and counted
//!   in the [`summary`].

pub mod batch_journal;
pub mod bundle;
pub mod error;
pub mod identity;
pub mod journal;
pub mod pipeline;
pub mod prepare;
pub mod progress;
pub mod read;
pub mod references;
pub mod resolve;
pub mod source;
pub mod summary;
pub mod tracker;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::Store;

pub use error::{ImportError, Result};
use pipeline::{Pipeline, Sizing};
use progress::{Counters, Reporter, Style};
use read::{ReadJob, Select};
use resolve::Resolver;
pub use summary::{Counts, Summary};

/// Writes per store transaction: large enough that a commit's fixed cost is spread thin, small
/// enough that a failing batch is cheap to take apart.
pub const DEFAULT_BATCH: usize = 2000;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// A file or a folder.
    pub path: PathBuf,
    /// Import files again that an earlier run imported completely (otherwise they are skipped).
    pub again: bool,
    pub progress: Style,
    /// Writes per store transaction.
    pub batch: usize,
    /// Threads that prepare writes (default: one per core).
    pub workers: Option<usize>,
}

impl Options {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Options {
            path: path.into(),
            again: false,
            progress: Style::for_stderr(Duration::from_secs(5)),
            batch: DEFAULT_BATCH,
            workers: None,
        }
    }
}

/// Imports `options.path` into `store`. Rejected lines are reported on stderr as they come and
/// counted in the summary; an error means the import could not go on (a path that cannot be
/// read, a database that fails), and what was committed until then stays and is resumed from.
pub async fn import(store: Arc<dyn Store>, options: &Options) -> Result<Summary> {
    let started = Instant::now();
    let path = options.path.clone();
    let inputs = tokio::task::spawn_blocking(move || source::discover(&path))
        .await
        .map_err(|e| ImportError::Internal(format!("looking at the input: {e}")))??;
    let files = Arc::new(inputs.files);
    let loaded = journal::load(store.as_ref(), &files, options.again).await?;

    let mut summary = Summary {
        files: files.len(),
        files_ignored: inputs.ignored,
        ..Summary::default()
    };
    let mut jobs = Vec::new();
    let mut deferred = 0;
    for (i, (r, skip)) in loaded.records.iter().zip(&loaded.skip).enumerate() {
        if r.complete() {
            summary.files_already_imported += 1;
            continue;
        }
        summary.lines_resumed += r.done + skip.len();
        deferred += r.deferred.len();
        if !r.read {
            jobs.push(ReadJob {
                file: i,
                select: Select::From {
                    done: r.done,
                    offset: r.offset,
                    skip: skip.clone(),
                },
            });
        }
    }

    let counters = Arc::new(Counters::default());
    counters
        .bytes_total
        .store(files.iter().map(|f| f.size).sum(), Ordering::Relaxed);
    counters.deferred.store(deferred, Ordering::Relaxed);
    let reporter = Reporter::start(options.progress, counters);
    let workers = options.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    // SQLite has one writer: a few batches queued keep it busy. PostgreSQL writes batches in
    // parallel on separate connections.
    let max_in_flight = if store.backend() == "sqlite" { 3 } else { 4 };
    let sizing = Sizing {
        workers,
        batch: options.batch.max(1),
        max_in_flight,
    };
    let resolver = Arc::new(Resolver::new(
        store.clone(),
        tokio::runtime::Handle::current(),
    ));
    let mut pipeline = Pipeline::new(
        store,
        files.clone(),
        resolver,
        sizing,
        loaded,
        summary,
        &reporter,
        deferred,
    );
    if !jobs.is_empty() {
        pipeline.round(jobs, false, false).await?;
    }
    // Deferred lines are retried while each round imports some of them; then once more, when
    // what still matches nothing is rejected.
    let mut last = false;
    loop {
        let retries: Vec<ReadJob> = pipeline
            .tracker
            .deferred()
            .into_iter()
            .map(|(file, lines)| ReadJob {
                file,
                select: Select::Only(lines),
            })
            .collect();
        if retries.is_empty() {
            break;
        }
        pipeline.round(retries, true, last).await?;
        if last {
            break;
        }
        if pipeline.settled_in_round == 0 {
            last = true;
        }
    }
    let mut summary = pipeline.close().await?;
    reporter.finish();
    summary.finish(started.elapsed());
    Ok(summary)
}
