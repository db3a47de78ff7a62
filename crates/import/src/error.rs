//! What stops an import as a whole. A bad line never does: it is reported and counted (see
//! [`crate::summary`]), and the rest goes on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} does not exist", .0.display())]
    NotFound(PathBuf),

    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A folder with nothing to import in it.
    #[error("{} holds no .ndjson, .jsonl or .json files (plain or .gz)", .0.display())]
    NothingToImport(PathBuf),

    /// The database failed in a way that retrying did not mend. What was committed stays, and
    /// the journal lets a later run carry on from there.
    #[error(
        "{0}; what was imported so far is kept, and running the import again carries on from there"
    )]
    Store(#[from] store::StoreError),

    /// A thread of the import stopped unexpectedly (a bug).
    #[error("the import stopped on an internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = ImportError> = std::result::Result<T, E>;
