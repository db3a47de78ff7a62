//! An export job as the store keeps it: one JSON document in the server state under
//! `export/<job id>`, written `queued` at kick-off, then claimed by one server's worker
//! ([`super::worker`]) and written by the task that runs the export (its progress, at least every
//! [`HEARTBEAT_SECS`], and its outcome). Every server instance on the database sees it, so a
//! status poll may reach any of them.
//!
//! Every write after the kick-off is a compare-and-put from the text last read or written
//! ([`store::Store::state_compare_and_put`]): whoever changed the record since (another worker
//! that took over a job whose heartbeat stopped) wins, and the loser stops.
//!
//! Cancelling writes a second key, `export-cancel/<job id>`, which the running task never
//! writes: a progress update racing the cancellation cannot undo it. A Group export's members,
//! fixed at kick-off, are a third key, `export-members/<job id>`, so that the record that is
//! rewritten every second stays small.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store::{Store, StoreError};

/// Prefix of job keys in the server state.
pub const KEY_PREFIX: &str = "export/";
/// Prefix of cancellation keys.
pub const CANCEL_PREFIX: &str = "export-cancel/";
/// Prefix of the keys holding a Group export's member patients.
pub const MEMBERS_PREFIX: &str = "export-members/";
/// How often a running export records its progress (and checks for a cancellation).
pub const HEARTBEAT_SECS: i64 = 1;
/// A running job whose progress has not moved for this long has lost the process that ran it
/// (stopped or restarted): another server's worker takes it over.
pub const STALE_SECS: i64 = 120;
/// A job is taken over at most this many times; then it is failed (something in it may stop the
/// servers that run it).
pub const MAX_ATTEMPTS: u32 = 3;

/// Whose data the export holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "lowercase")]
pub enum Level {
    /// `/fhir/$export`: every resource of the types asked for.
    System,
    /// `/fhir/Patient/$export`: the compartments of all patients.
    Patient,
    /// `/fhir/Group/{id}/$export`: the compartments of the group's member patients.
    Group { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Recorded, waiting for a worker to claim it.
    Queued,
    Running,
    Complete,
    Failed,
}

/// One NDJSON file of a finished export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    pub resource_type: String,
    /// The file's name in the job's folder, e.g. `Observation-2.ndjson`.
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// Only this client may poll, download or cancel.
    pub client_id: String,
    /// The kick-off URL, for the manifest.
    pub request: String,
    pub level: Level,
    /// The types exported, in order.
    pub types: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    /// The export holds resources as they were at this instant: those last updated after it
    /// are left out (the next export with `_since` set to it picks them up).
    pub transaction_time: DateTime<Utc>,
    pub status: Status,
    /// Resources written so far.
    pub written: u64,
    /// How many of `types` are done.
    pub types_done: usize,
    pub output: Vec<OutputFile>,
    /// Why a failed export failed (never resource content).
    pub error: Option<String>,
    /// The last time the running task recorded progress.
    pub heartbeat: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times a worker claimed the job; the claim's files are in the job's folder
    /// `{attempt}/`.
    #[serde(default)]
    pub attempt: u32,
    /// Which worker claimed it last (for people reading the state).
    #[serde(default)]
    pub worker: Option<String>,
}

impl Job {
    pub fn key(id: &str) -> String {
        format!("{KEY_PREFIX}{id}")
    }

    pub fn cancel_key(id: &str) -> String {
        format!("{CANCEL_PREFIX}{id}")
    }

    pub fn members_key(id: &str) -> String {
        format!("{MEMBERS_PREFIX}{id}")
    }

    /// The job stored under `id`, if any.
    pub async fn load(store: &dyn Store, id: &str) -> Result<Option<Job>, StoreError> {
        Ok(Job::load_text(store, id).await?.map(|(job, _)| job))
    }

    /// The job stored under `id` and its text as stored (to compare-and-put from).
    pub async fn load_text(
        store: &dyn Store,
        id: &str,
    ) -> Result<Option<(Job, String)>, StoreError> {
        match store.state_get(&Job::key(id)).await? {
            None => Ok(None),
            Some(text) => Ok(Some((Job::parse(&text)?, text))),
        }
    }

    pub fn parse(text: &str) -> Result<Job, StoreError> {
        serde_json::from_str(text)
            .map_err(|e| StoreError::Database(format!("an export job record is unreadable: {e}")))
    }

    pub fn to_text(&self) -> Result<String, StoreError> {
        serde_json::to_string(self)
            .map_err(|e| StoreError::Database(format!("could not encode an export job: {e}")))
    }

    /// Stores the job, whatever was there (the kick-off, and tests).
    pub async fn save(&self, store: &dyn Store) -> Result<(), StoreError> {
        store.state_put(&Job::key(&self.id), &self.to_text()?).await
    }

    /// Stores the job only if its record is still `expected`; answers the new text, or None when
    /// the record changed meanwhile (another worker took the job over, or it was removed).
    pub async fn swap(
        &self,
        store: &dyn Store,
        expected: &str,
    ) -> Result<Option<String>, StoreError> {
        let text = self.to_text()?;
        let swapped = store
            .state_compare_and_put(&Job::key(&self.id), Some(expected), &text)
            .await?;
        Ok(swapped.then_some(text))
    }

    /// Whether the job was cancelled (its cancellation key exists).
    pub async fn cancelled(store: &dyn Store, id: &str) -> Result<bool, StoreError> {
        Ok(store.state_get(&Job::cancel_key(id)).await?.is_some())
    }

    /// A running job nobody has advanced for [`STALE_SECS`].
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.is_stale_after(now, STALE_SECS)
    }

    /// A running job nobody has advanced for `secs` seconds.
    pub fn is_stale_after(&self, now: DateTime<Utc>, secs: i64) -> bool {
        self.status == Status::Running
            && now.signed_duration_since(self.heartbeat).num_seconds() >= secs
    }

    /// Whether the job is still to be done (queued, or running, here or anywhere).
    pub fn is_pending(&self) -> bool {
        matches!(self.status, Status::Queued | Status::Running)
    }

    /// The `X-Progress` text of a queued or running job.
    pub fn progress(&self) -> String {
        if self.status == Status::Queued {
            return "queued; waiting for a server to start it".into();
        }
        let total = self.types.len();
        match self.types.get(self.types_done) {
            Some(t) => format!(
                "{} resources written; exporting {t} (type {} of {total})",
                self.written,
                self.types_done + 1
            ),
            None => format!("{} resources written; finishing", self.written),
        }
    }
}

/// Job ids are made by the server (32 lower-case hex digits); anything else names no job.
pub fn is_job_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new, unguessable job id.
pub fn new_job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A file name this server writes: `{Type}-{n}.ndjson`. Anything else (a path, `..`) is refused
/// before it comes near the file system.
pub fn is_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".ndjson") else {
        return false;
    };
    let Some((ty, n)) = stem.rsplit_once('-') else {
        return false;
    };
    fhir::is_supported_type(ty)
        && !n.is_empty()
        && n.len() <= 9
        && n.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_file_names_are_checked_strictly() {
        let id = new_job_id();
        assert!(is_job_id(&id), "{id}");
        assert!(!is_job_id("../../etc/passwd"));
        assert!(!is_job_id(&id.to_uppercase()));
        assert!(is_file_name("Observation-12.ndjson"));
        for bad in [
            "../Observation-1.ndjson",
            "Observation-1.json",
            "Nope-1.ndjson",
            "Observation-.ndjson",
            "Observation-1.ndjson/x",
        ] {
            assert!(!is_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn jobs_round_trip_through_json() {
        let now = chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let job = Job {
            id: new_job_id(),
            client_id: "c".into(),
            request: "http://h/fhir/Group/g/$export".into(),
            level: Level::Group { id: "g".into() },
            types: vec!["Patient".into(), "Observation".into()],
            since: None,
            transaction_time: now,
            status: Status::Running,
            written: 10,
            types_done: 1,
            output: vec![],
            error: None,
            heartbeat: now,
            finished_at: None,
            attempt: 1,
            worker: Some("w".into()),
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(Job::parse(&text).unwrap(), job);
        // Records written before jobs were claimed read as a first claim by nobody.
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old.as_object_mut().unwrap().remove("attempt");
        old.as_object_mut().unwrap().remove("worker");
        let read = Job::parse(&old.to_string()).unwrap();
        assert_eq!((read.attempt, read.worker), (0, None));
        let queued = Job {
            status: Status::Queued,
            heartbeat: now - chrono::Duration::seconds(STALE_SECS * 10),
            ..job.clone()
        };
        assert!(!queued.is_stale(now), "a queued job never goes stale");
        assert!(queued.is_pending());
        assert_eq!(
            queued.progress(),
            "queued; waiting for a server to start it"
        );
        assert_eq!(
            job.progress(),
            "10 resources written; exporting Observation (type 2 of 2)"
        );
        assert!(!job.is_stale(now));
        assert!(job.is_stale(now + chrono::Duration::seconds(STALE_SECS)));
    }
}
