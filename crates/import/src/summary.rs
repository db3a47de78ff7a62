//! What an import did, per resource type: the table printed at the end, and the same as one JSON
//! object for scripts (`portico import --json`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use store::WriteOutcome;

/// Counts for one resource type (or all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    /// Imported again with the same content: no new version was written.
    pub unchanged: u64,
    pub deleted: u64,
    pub rejected: u64,
}

impl Counts {
    /// Resources (and deletions) the import looked at.
    pub fn total(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.deleted + self.rejected
    }

    fn add(&mut self, other: &Counts) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.deleted += other.deleted;
        self.rejected += other.rejected;
    }
}

/// Rejections listed in the summary; all of them are reported on stderr as they happen.
pub const MAX_LISTED: usize = 1000;

/// The summary of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Input files found.
    pub files: usize,
    /// Files an earlier run imported completely and that have not changed since: skipped.
    pub files_already_imported: usize,
    /// Files in the folder that are not importable (by name) and were left alone.
    pub files_ignored: usize,
    /// Lines an earlier, interrupted run had done: skipped.
    pub lines_resumed: u64,
    /// Lines whose conditional references resolved only after the rest was imported.
    pub deferred_then_imported: u64,
    #[serde(flatten)]
    pub totals: Counts,
    /// The first [`MAX_LISTED`] rejections as `path:line: reason` (all of them go to stderr).
    pub rejections: Vec<String>,
    pub by_type: BTreeMap<String, Counts>,
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Resources looked at per second of the run.
    pub per_second: f64,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl Summary {
    pub fn count_outcome(&mut self, resource_type: &str, outcome: &WriteOutcome) {
        if matches!(outcome, WriteOutcome::StatePut) {
            // The journal's own write: not a resource.
            return;
        }
        let c = self.entry(resource_type);
        match outcome {
            WriteOutcome::Created(_) => c.created += 1,
            WriteOutcome::Updated { changed: true, .. } => c.updated += 1,
            WriteOutcome::Updated { changed: false, .. } | WriteOutcome::Existing(_) => {
                c.unchanged += 1
            }
            WriteOutcome::Deleted {
                version: Some(_), ..
            } => c.deleted += 1,
            // Deleting what is not there (any more) changes nothing.
            WriteOutcome::Deleted { version: None, .. } | WriteOutcome::StatePut => {
                c.unchanged += 1
            }
        }
    }

    /// Lists a rejection (up to [`MAX_LISTED`]).
    pub fn list_rejection(&mut self, message: String) {
        if self.rejections.len() < MAX_LISTED {
            self.rejections.push(message);
        }
    }

    pub fn count_rejected(&mut self, resource_type: &str) {
        self.entry(resource_type).rejected += 1;
    }

    fn entry(&mut self, resource_type: &str) -> &mut Counts {
        self.by_type.entry(resource_type.to_string()).or_default()
    }

    /// Sets the totals and the rate once the run is over.
    pub fn finish(&mut self, elapsed: Duration) {
        let mut totals = Counts::default();
        for c in self.by_type.values() {
            totals.add(c);
        }
        self.totals = totals;
        self.elapsed = elapsed;
        let secs = elapsed.as_secs_f64();
        self.per_second = if secs > 0.0 {
            (totals.total() as f64 / secs).round()
        } else {
            0.0
        };
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "type",
            "created",
            "updated",
            "unchanged",
            "deleted",
            "rejected",
        ];
        let row = |name: &str, c: &Counts| {
            [
                name.to_string(),
                c.created.to_string(),
                c.updated.to_string(),
                c.unchanged.to_string(),
                c.deleted.to_string(),
                c.rejected.to_string(),
            ]
        };
        let mut rows: Vec<[String; 6]> = self.by_type.iter().map(|(t, c)| row(t, c)).collect();
        rows.push(row("total", &self.totals));
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i == 0 {
                    write!(f, "{cell:<w$}")?;
                } else {
                    write!(f, "  {cell:>w$}")?;
                }
            }
            writeln!(f)
        };
        line(f, &header.map(str::to_string))?;
        for (i, r) in rows.iter().enumerate() {
            if i + 1 == rows.len() {
                let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
                writeln!(f, "{}", "-".repeat(rule))?;
            }
            line(f, r)?;
        }
        write!(
            f,
            "{} resources in {:.1} s ({:.0}/s) from {} file{}",
            self.totals.total(),
            self.elapsed.as_secs_f64(),
            self.per_second,
            self.files,
            if self.files == 1 { "" } else { "s" }
        )?;
        if self.files_already_imported > 0 {
            write!(
                f,
                "; {} already imported and unchanged since, skipped (--again imports them again)",
                self.files_already_imported
            )?;
        }
        if self.lines_resumed > 0 {
            write!(
                f,
                "; resumed after {} lines an earlier run had imported",
                self.lines_resumed
            )?;
        }
        if self.deferred_then_imported > 0 {
            write!(
                f,
                "; {} lines waited for their conditional references",
                self.deferred_then_imported
            )?;
        }
        if self.files_ignored > 0 {
            write!(
                f,
                "; {} files ignored (not .ndjson, .jsonl or .json)",
                self.files_ignored
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::ResourceVersion;

    fn version() -> ResourceVersion {
        ResourceVersion {
            resource_type: "Patient".into(),
            id: "p".into(),
            version_id: 1,
            last_updated: chrono::DateTime::UNIX_EPOCH,
            deleted: false,
            json: String::new(),
        }
    }

    #[test]
    fn outcomes_are_counted_by_type_and_totalled() {
        let mut s = Summary::default();
        s.count_outcome("Patient", &WriteOutcome::Created(version()));
        s.count_outcome(
            "Patient",
            &WriteOutcome::Updated {
                version: version(),
                changed: false,
            },
        );
        s.count_outcome(
            "Observation",
            &WriteOutcome::Updated {
                version: version(),
                changed: true,
            },
        );
        s.count_outcome(
            "Flag",
            &WriteOutcome::Deleted {
                resource_type: "Flag".into(),
                id: "f".into(),
                version: None,
            },
        );
        s.count_rejected("Observation");
        s.files = 2;
        s.finish(Duration::from_secs(2));
        assert_eq!(s.by_type["Patient"].created, 1);
        assert_eq!(s.by_type["Patient"].unchanged, 1);
        assert_eq!(s.by_type["Flag"].unchanged, 1);
        assert_eq!(s.totals.total(), 5);
        assert_eq!(s.totals.rejected, 1);
        assert_eq!(s.per_second, 3.0);
        let text = s.to_string();
        assert!(text.contains("Observation"), "{text}");
        assert!(text
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("5 resources in 2.0 s")));
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).expect("json");
        assert_eq!(json["created"], 1);
        assert_eq!(json["by_type"]["Observation"]["rejected"], 1);
        assert_eq!(json["elapsed"], 2.0);
    }
}
