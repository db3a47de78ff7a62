//! The binary's one error type. Every variant prints as one line that names what was wrong and
//! how to fix it; none carries a password (database URLs are shown with theirs redacted).

use std::path::PathBuf;

/// Exit status for a bad setting or a bad command line.
pub const EXIT_CONFIG: i32 = 2;
/// Exit status for a failure at run time (database unreachable, port in use, …).
pub const EXIT_RUNTIME: i32 = 1;
/// `portico audit verify` found the audit trail altered.
pub const EXIT_TAMPERED: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting has a value that cannot work; `setting` names it as the user gave it
    /// (`PORTICO_HTTP_ADDR`, or `http_addr in portico.toml`).
    #[error("{setting}: {message}")]
    Config { setting: String, message: String },

    /// The configuration file cannot be read or parsed.
    #[error("{}: {message}", path.display())]
    ConfigFile { path: PathBuf, message: String },

    /// A command-line request that cannot be carried out as given.
    #[error("{0}")]
    Usage(String),

    /// The database is configured correctly but cannot be reached or opened.
    #[error("{setting}: {message}")]
    Database { setting: String, message: String },

    /// An address is well-formed but cannot be listened on.
    #[error("{setting}: {message}")]
    Listen { setting: String, message: String },

    #[error("database error: {0}")]
    Store(#[from] store::StoreError),

    /// The audit trail's chain of hashes is broken: a record was changed, removed or reordered.
    #[error("the audit trail has been tampered with: {0}")]
    Tampered(String),

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Server(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } | Error::ConfigFile { .. } | Error::Usage(_) => EXIT_CONFIG,
            Error::Database { .. }
            | Error::Listen { .. }
            | Error::Store(_)
            | Error::Io { .. }
            | Error::Server(_) => EXIT_RUNTIME,
            Error::Tampered(_) => EXIT_TAMPERED,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
