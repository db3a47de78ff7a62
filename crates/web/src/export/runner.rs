//! The task that runs an export a worker claimed ([`super::worker`]): for each type, scans the
//! store page by page ([`store::Store::scan`], up to the job's `transactionTime`) and appends
//! each resource, as stored, as one line of `{Type}-{n}.ndjson`, starting a new file every
//! `export_file_resources` resources. The next page is read while the last one is written, and
//! memory holds two pages at most, however large the export.
//!
//! The files of a claim are named for it in the job's folder: `{attempt}.{Type}-{n}.ndjson`,
//! served as `{Type}-{n}.ndjson`. A worker that takes over a job whose runner went quiet starts
//! the files again under names of its own, so a runner that was only slow never writes into
//! them: it stops at its next progress write, which fails because the record is no longer the
//! one it wrote (see [`super::job`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use store::{Compartment, ResourceVersion, ScanQuery, Store, StoreError};

use super::job::{Job, Level, OutputFile, Status, HEARTBEAT_SECS};

/// Resources read from the store per page.
const PAGE: usize = 1000;

/// The exports running in this process, each with its cancellation flag, and the bell that
/// wakes this process's worker.
#[derive(Debug, Default)]
pub struct Registry {
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
    wake: tokio::sync::Notify,
}

impl Registry {
    fn register(&self, id: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.running.lock().insert(id.to_string(), flag.clone());
        flag
    }

    /// Asks the export `id` to stop, if it runs in this process; false when it does not (it
    /// finished, or runs elsewhere).
    pub fn cancel(&self, id: &str) -> bool {
        match self.running.lock().get(id) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Whether the export `id` runs in this process.
    pub fn runs(&self, id: &str) -> bool {
        self.running.lock().contains_key(id)
    }

    /// How many exports run in this process.
    pub fn len(&self) -> usize {
        self.running.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells this process's worker to look for queued jobs now (one was just recorded).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Until [`Registry::wake`] is called (at once if it was since the last call).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Unregisters `id`; whether it was asked to stop meanwhile.
    fn finish(&self, id: &str) -> bool {
        self.running
            .lock()
            .remove(id)
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    }
}

/// What a running export needs besides its job.
#[derive(Clone)]
pub struct Runner {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    /// Where job folders go.
    pub dir: PathBuf,
    /// Resources per NDJSON file.
    pub file_resources: usize,
}

/// Why an export stopped before completing.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("cancelled")]
    Cancelled,
    /// The record is no longer the one this runner wrote: another worker took the job over, or
    /// it was removed.
    #[error("taken over by another worker, or removed")]
    Lost,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("writing the export files failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Runner {
    /// The folder of job `id`.
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Where claim `attempt` of job `id` keeps its file `name` (as the manifest names it).
    pub fn file_path(&self, id: &str, attempt: u32, name: &str) -> PathBuf {
        self.job_dir(id)
            .join(format!("{}{name}", claim_prefix(attempt)))
    }

    /// Runs `job` in the background; it was just claimed, and its record is `claimed`.
    pub fn start(&self, job: Job, claimed: String) {
        let flag = self.registry.register(&job.id);
        let runner = self.clone();
        tokio::spawn(async move {
            let (id, attempt) = (job.id.clone(), job.attempt);
            let outcome = runner.run(job, claimed, &flag).await;
            let cancelled = runner.registry.finish(&id);
            // Room for another job: the worker need not wait for its next look.
            runner.registry.wake();
            match outcome {
                _ if cancelled => runner.remove(&id).await,
                Err(Stop::Cancelled) => runner.remove(&id).await,
                Err(Stop::Lost) => {
                    runner.remove_attempt(&id, attempt).await;
                    tracing::info!(job = %id, "export stopped: another worker took it over, or it was removed");
                }
                Ok(()) => tracing::info!(job = %id, "export complete"),
                Err(e) => tracing::warn!(job = %id, error = %e, "export failed"),
            }
        });
    }

    /// Removes a job: its files, its record, its cancellation and its members.
    pub async fn remove(&self, id: &str) {
        let dir = self.job_dir(id);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(job = %id, error = %e, "could not remove an export's files");
            }
        }
        for key in [Job::key(id), Job::cancel_key(id), Job::members_key(id)] {
            if let Err(e) = self.store.state_delete(&key).await {
                tracing::warn!(job = %id, error = %e, "could not remove an export's record");
            }
        }
    }

    /// Removes the files of one claim (and the job's folder, if nothing else is left in it).
    async fn remove_attempt(&self, id: &str, attempt: u32) {
        self.remove_files(id, |name| name.starts_with(&claim_prefix(attempt)))
            .await;
        let _ = tokio::fs::remove_dir(self.job_dir(id)).await;
    }

    /// Removes the files of the job's earlier claims (best effort: a runner still writing them
    /// stops at its next progress write).
    async fn remove_other_attempts(&self, id: &str, attempt: u32) {
        self.remove_files(id, |name| !name.starts_with(&claim_prefix(attempt)))
            .await;
    }

    /// Removes the entries of job `id`'s folder whose names `matches` picks.
    async fn remove_files(&self, id: &str, matches: impl Fn(&str) -> bool) {
        let Ok(mut entries) = tokio::fs::read_dir(self.job_dir(id)).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name();
            if matches(&name.to_string_lossy()) {
                let path = entry.path();
                let removed = match entry.file_type().await {
                    Ok(t) if t.is_dir() => tokio::fs::remove_dir_all(&path).await,
                    _ => tokio::fs::remove_file(&path).await,
                };
                if let Err(e) = removed {
                    tracing::warn!(job = %id, error = %e, "could not remove an export file");
                }
            }
        }
    }

    /// Whose resources the job exports.
    async fn compartment(&self, job: &Job) -> Result<Option<Compartment>, Stop> {
        Ok(match &job.level {
            Level::System => None,
            Level::Patient => Some(Compartment::AnyPatient),
            Level::Group { id } => {
                let text = self
                    .store
                    .state_get(&Job::members_key(&job.id))
                    .await?
                    .ok_or_else(|| {
                        StoreError::Database(format!(
                            "the member list of Group/{id} recorded at kick-off is missing"
                        ))
                    })?;
                let members: Vec<String> = serde_json::from_str(&text).map_err(|e| {
                    StoreError::Database(format!("a Group export's member list is unreadable: {e}"))
                })?;
                Some(Compartment::Patients(members))
            }
        })
    }

    async fn run(&self, mut job: Job, claimed: String, flag: &AtomicBool) -> Result<(), Stop> {
        let mut record = claimed;
        if Job::cancelled(&*self.store, &job.id).await? {
            return Err(Stop::Cancelled);
        }
        self.remove_other_attempts(&job.id, job.attempt).await;
        let result = match self.compartment(&job).await {
            Ok(compartment) => self.export(&mut job, &mut record, compartment, flag).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                if Job::cancelled(&*self.store, &job.id).await? {
                    return Err(Stop::Cancelled);
                }
                job.status = Status::Complete;
                job.finished_at = Some(chrono::Utc::now());
                job.heartbeat = chrono::Utc::now();
                self.save(&job, &mut record).await
            }
            Err(e @ (Stop::Cancelled | Stop::Lost)) => Err(e),
            Err(e) => {
                // The partial files are useless; the record says what went wrong.
                self.remove_attempt(&job.id, job.attempt).await;
                if !Job::cancelled(&*self.store, &job.id).await.unwrap_or(false) {
                    job.status = Status::Failed;
                    job.error = Some(e.to_string());
                    job.output.clear();
                    job.finished_at = Some(chrono::Utc::now());
                    job.heartbeat = chrono::Utc::now();
                    match self.save(&job, &mut record).await {
                        Err(Stop::Lost) => return Err(Stop::Lost),
                        Err(save) => {
                            tracing::warn!(job = %job.id, error = %save, "could not record an export's failure")
                        }
                        Ok(()) => {}
                    }
                }
                Err(e)
            }
        }
    }

    /// Writes the job's record over `record` (the text this runner wrote last), which becomes
    /// the new text; [`Stop::Lost`] when the record changed meanwhile.
    async fn save(&self, job: &Job, record: &mut String) -> Result<(), Stop> {
        match job.swap(&*self.store, record).await? {
            Some(text) => {
                *record = text;
                Ok(())
            }
            None => Err(Stop::Lost),
        }
    }

    async fn export(
        &self,
        job: &mut Job,
        record: &mut String,
        compartment: Option<Compartment>,
        flag: &AtomicBool,
    ) -> Result<(), Stop> {
        let dir = self.job_dir(&job.id);
        tokio::fs::create_dir_all(&dir).await?;
        let mut last_beat = chrono::Utc::now();
        for index in 0..job.types.len() {
            let resource_type = job.types[index].clone();
            let mut files = Some(NdjsonFiles::new(
                &dir,
                &claim_prefix(job.attempt),
                &resource_type,
                self.file_resources,
            ));
            let mut query = ScanQuery {
                resource_types: vec![resource_type.clone()],
                updated_after: job.since,
                updated_until: Some(job.transaction_time),
                compartment: compartment.clone(),
                after: 0,
                limit: PAGE,
                access: None,
            };
            let mut page = self.store.scan(&query).await?;
            loop {
                if flag.load(Ordering::SeqCst) {
                    return Err(Stop::Cancelled);
                }
                let next_after = page.next_after;
                let resources = std::mem::take(&mut page.resources);
                let count = resources.len() as u64;
                let mut writer = files.take().ok_or_else(|| {
                    Stop::Io(std::io::Error::other(
                        "the export's file writer went missing",
                    ))
                })?;
                // This page is written while the next one is read.
                let write =
                    tokio::task::spawn_blocking(move || writer.write(resources).map(|()| writer));
                let store = &self.store;
                let query_ref = &mut query;
                let read = async move {
                    match next_after {
                        Some(after) => {
                            query_ref.after = after;
                            Some(store.scan(query_ref).await)
                        }
                        None => None,
                    }
                };
                let (written, next) = tokio::join!(write, read);
                files = Some(written.map_err(|e| std::io::Error::other(e.to_string()))??);
                job.written += count;
                let now = chrono::Utc::now();
                if now.signed_duration_since(last_beat).num_seconds() >= HEARTBEAT_SECS {
                    last_beat = now;
                    if Job::cancelled(&*self.store, &job.id).await? {
                        return Err(Stop::Cancelled);
                    }
                    job.heartbeat = now;
                    self.save(job, record).await?;
                }
                match next {
                    Some(next) => page = next?,
                    None => break,
                }
            }
            if let Some(writer) = files.take() {
                let done = tokio::task::spawn_blocking(move || writer.finish())
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))??;
                job.output.extend(done);
            }
            job.types_done = index + 1;
        }
        Ok(())
    }
}

/// How the files of claim `attempt` begin.
fn claim_prefix(attempt: u32) -> String {
    format!("{attempt}.")
}

/// The NDJSON files of one type, written on a blocking thread.
struct NdjsonFiles {
    dir: PathBuf,
    /// Put before each file's name on disk (the claim's, [`claim_prefix`]).
    prefix: String,
    resource_type: String,
    per_file: usize,
    current: Option<(OutputFile, BufWriter<File>)>,
    done: Vec<OutputFile>,
}

impl NdjsonFiles {
    fn new(dir: &Path, prefix: &str, resource_type: &str, per_file: usize) -> NdjsonFiles {
        NdjsonFiles {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            resource_type: resource_type.to_string(),
            per_file: per_file.max(1),
            current: None,
            done: Vec::new(),
        }
    }

    fn write(&mut self, resources: Vec<ResourceVersion>) -> std::io::Result<()> {
        for v in resources {
            let full = self
                .current
                .as_ref()
                .is_some_and(|(file, _)| file.count >= self.per_file as u64);
            if full {
                self.close()?;
            }
            if self.current.is_none() {
                let name = format!("{}-{}.ndjson", self.resource_type, self.done.len() + 1);
                let path = self.dir.join(format!("{}{name}", self.prefix));
                let writer = BufWriter::with_capacity(256 * 1024, File::create(path)?);
                let file = OutputFile {
                    resource_type: self.resource_type.clone(),
                    name,
                    count: 0,
                };
                self.current = Some((file, writer));
            }
            if let Some((file, writer)) = self.current.as_mut() {
                write_line(writer, &v.json)?;
                file.count += 1;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> std::io::Result<()> {
        if let Some((file, mut writer)) = self.current.take() {
            writer.flush()?;
            self.done.push(file);
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<Vec<OutputFile>> {
        self.close()?;
        Ok(self.done)
    }
}

/// One resource as one line. Stored JSON is compact (no line breaks outside strings, and JSON
/// strings escape theirs); should a stored text ever hold one, it is re-encoded compactly.
fn write_line(writer: &mut impl Write, json: &str) -> std::io::Result<()> {
    if json.contains('\n') || json.contains('\r') {
        let value: serde_json::Value = serde_json::from_str(json).map_err(std::io::Error::other)?;
        serde_json::to_writer(&mut *writer, &value).map_err(std::io::Error::other)?;
    } else {
        writer.write_all(json.as_bytes())?;
    }
    writer.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str) -> ResourceVersion {
        ResourceVersion {
            resource_type: "Patient".into(),
            id: id.into(),
            version_id: 1,
            last_updated: chrono::DateTime::from_timestamp_millis(0).unwrap_or_default(),
            deleted: false,
            json: format!("{{\"resourceType\":\"Patient\",\"id\":\"{id}\"}}"),
        }
    }

    #[test]
    fn files_split_after_the_limit_and_hold_one_resource_per_line() {
        let dir = std::env::temp_dir().join(format!(
            "portico-ndjson-{}",
            super::super::job::new_job_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = NdjsonFiles::new(&dir, "3.", "Patient", 2);
        files
            .write(vec![version("a"), version("b"), version("c")])
            .unwrap();
        files.write(vec![version("d"), version("e")]).unwrap();
        let out = files.finish().unwrap();
        let names: Vec<(&str, u64)> = out.iter().map(|f| (f.name.as_str(), f.count)).collect();
        assert_eq!(
            names,
            [
                ("Patient-1.ndjson", 2),
                ("Patient-2.ndjson", 2),
                ("Patient-3.ndjson", 1)
            ]
        );
        // On disk, the names carry the claim's prefix.
        let second = std::fs::read_to_string(dir.join("3.Patient-2.ndjson")).unwrap();
        assert!(!dir.join("Patient-2.ndjson").exists());
        assert_eq!(second, "{\"resourceType\":\"Patient\",\"id\":\"c\"}\n{\"resourceType\":\"Patient\",\"id\":\"d\"}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stored_text_with_a_line_break_is_re_encoded() {
        let mut out = Vec::new();
        write_line(&mut out, "{\n\"a\": 1}").unwrap();
        assert_eq!(out, b"{\"a\":1}\n");
    }
}
