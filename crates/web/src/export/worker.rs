//! The export worker every serving process runs: it claims export jobs from the database —
//! queued ones, and running ones whose heartbeat stopped (their server died) — and runs them
//! ([`super::runner`]). Any number of servers on one database share the jobs, and each job runs
//! in exactly one of them at a time.
//!
//! A claim is a compare-and-put of the job's record ([`store::Store::state_compare_and_put`],
//! an atomic conditional write on either database): from the text just read to the same job
//! marked running, with the next attempt number and this worker's name. Of workers racing for
//! one job, one swap succeeds and the others find the record changed. A runner keeps writing
//! the record the same way, so one that went quiet and was taken over stops at its next write.
//!
//! The worker looks for work every [`WorkerOptions::poll`], and at once when this process
//! records a job ([`super::runner::Registry::wake`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use store::{Store, StoreError};
use tokio::sync::watch;

use super::job::{self, Job, Status};
use super::runner::Runner;
use crate::AppState;

/// How a worker looks for work.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// How often the database is asked for claimable jobs.
    pub poll: Duration,
    /// A running job whose heartbeat is this old (seconds) is taken over.
    pub stale_secs: i64,
    /// Most exports this process runs at once (more wait for this or another server).
    pub max_running: usize,
    /// After this many claims that each went stale, a job is failed instead of taken over.
    pub max_attempts: u32,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            poll: Duration::from_secs(1),
            stale_secs: job::STALE_SECS,
            max_running: 4,
            max_attempts: job::MAX_ATTEMPTS,
        }
    }
}

/// One process's export worker.
#[derive(Clone)]
pub struct Worker {
    /// This worker's name in the job records it claims.
    name: Arc<str>,
    runner: Runner,
    options: WorkerOptions,
}

/// Stops the worker's loop when dropped (exports it started run on until they end).
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops looking for work and waits for the loop to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Worker {
    pub fn new(state: &AppState, options: WorkerOptions) -> Worker {
        let name = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        Worker {
            name: name.into(),
            runner: state.export_runner(),
            options,
        }
    }

    /// This worker's name, as its claims record it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Looks for work every [`WorkerOptions::poll`] (and when woken) until the handle stops it.
    pub fn spawn(self) -> WorkerHandle {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = self.claim().await {
                    tracing::warn!(error = %e, "looking for export jobs failed; trying again");
                }
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = self.runner.registry.woken() => {}
                    _ = tokio::time::sleep(self.options.poll) => {}
                }
                if *stopped.borrow() {
                    break;
                }
            }
        });
        WorkerHandle {
            stop,
            task: Some(task),
        }
    }

    /// One look for work: claims what this process has room for and starts it; answers the ids
    /// of the jobs claimed.
    pub async fn claim(&self) -> Result<Vec<String>, StoreError> {
        let store: &dyn Store = &*self.runner.store;
        let mut claimed = Vec::new();
        for (key, text) in store.state_list(job::KEY_PREFIX).await? {
            if self.runner.registry.len() >= self.options.max_running {
                break;
            }
            let Ok(found) = Job::parse(&text) else {
                continue;
            };
            let now = Utc::now();
            let stale = found.is_stale_after(now, self.options.stale_secs);
            if !(found.status == Status::Queued || stale) || self.runner.registry.runs(&found.id) {
                continue;
            }
            if stale && found.attempt >= self.options.max_attempts {
                self.give_up(&found, &text).await?;
                continue;
            }
            let job = Job {
                status: Status::Running,
                attempt: found.attempt + 1,
                worker: Some(self.name.to_string()),
                heartbeat: now,
                written: 0,
                types_done: 0,
                output: Vec::new(),
                error: None,
                ..found
            };
            let new_text = job.to_text()?;
            if store
                .state_compare_and_put(&key, Some(&text), &new_text)
                .await?
            {
                tracing::info!(job = %job.id, attempt = job.attempt, "export claimed");
                claimed.push(job.id.clone());
                self.runner.start(job, new_text);
            }
        }
        Ok(claimed)
    }

    /// Fails a job that went stale on every claim it was given.
    async fn give_up(&self, found: &Job, text: &str) -> Result<(), StoreError> {
        let now = Utc::now();
        let failed = Job {
            status: Status::Failed,
            error: Some(format!(
                "the export was started {} times and each time the server running it stopped before it finished; start a new export",
                found.attempt
            )),
            output: Vec::new(),
            finished_at: Some(now),
            heartbeat: now,
            ..found.clone()
        };
        if failed.swap(&*self.runner.store, text).await?.is_some() {
            let _ = tokio::fs::remove_dir_all(self.runner.job_dir(&found.id)).await;
            tracing::warn!(job = %found.id, attempts = found.attempt, "export failed: its servers kept stopping");
        }
        Ok(())
    }
}

/// Removes job `id` if nobody is running it: finished, queued, or running on a server that
/// stopped (claimed first, so that no worker starts it meanwhile). One running on a live server
/// is left to its runner, which sees the cancellation at its next progress write. Answers
/// whether it was removed.
pub async fn remove_unless_running(
    runner: &Runner,
    id: &str,
    stale_secs: i64,
) -> Result<bool, StoreError> {
    let store: &dyn Store = &*runner.store;
    // A claim may slip in between reading and swapping; then look again.
    for _ in 0..3 {
        let Some((found, text)) = Job::load_text(store, id).await? else {
            return Ok(true);
        };
        let removable = match found.status {
            Status::Complete | Status::Failed => true,
            Status::Queued => true,
            Status::Running => found.is_stale_after(Utc::now(), stale_secs),
        };
        if !removable {
            return Ok(false);
        }
        if found.is_pending() {
            let claim = Job {
                status: Status::Running,
                worker: Some("cancellation".into()),
                heartbeat: Utc::now(),
                ..found
            };
            if claim.swap(store, &text).await?.is_none() {
                continue;
            }
        }
        runner.remove(id).await;
        return Ok(true);
    }
    Ok(false)
}
