//! Copying the WAL back into the database file on a thread of its own, so that the writer's
//! commits never wait for a checkpoint (and its `fsync` of the database file).

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use store::{Result, StoreError};

use crate::conn::open_err;

/// The longest a run of commits waits before its pages are copied to the database file.
const INTERVAL: Duration = Duration::from_millis(100);

/// The writer's side: tells the checkpointer that a commit happened.
#[derive(Clone)]
pub(crate) struct Nudge(SyncSender<()>);

impl Nudge {
    pub(crate) fn committed(&self) {
        // A nudge already waiting covers this commit too.
        if let Err(TrySendError::Disconnected(())) = self.0.try_send(()) {
            tracing::warn!(
                "the SQLite checkpointer has stopped; the WAL file will grow until restart"
            );
        }
    }
}

pub(crate) struct Checkpointer {
    conn: Connection,
}

impl Checkpointer {
    pub(crate) fn open(path: &Path) -> Result<Checkpointer> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| open_err(path, e))?;
        Ok(Checkpointer { conn })
    }

    /// Starts the thread; it stops when every [`Nudge`] is gone.
    pub(crate) fn start(self) -> Result<(Nudge, JoinHandle<()>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || self.run(rx))
            .map_err(|e| {
                StoreError::Database(format!("could not start the SQLite checkpoint thread: {e}"))
            })?;
        Ok((Nudge(tx), handle))
    }

    fn run(self, rx: Receiver<()>) {
        loop {
            match rx.recv() {
                Ok(()) => {}
                Err(_) => return,
            }
            // Let a burst of commits gather, then copy them all at once.
            match rx.recv_timeout(INTERVAL) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // PASSIVE: copies what it can without blocking the writer or the readers.
            let r = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
            if let Err(e) = r {
                tracing::warn!(error = %e, "WAL checkpoint failed; it will be retried after the next commit");
            }
        }
    }
}
