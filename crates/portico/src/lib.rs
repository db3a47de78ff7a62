//! The `portico` binary as a library: command line, configuration, wiring and demo data.
//! `main.rs` only parses the command line and turns an [`Error`] into one line and an exit code.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;

use std::sync::Arc;

use cli::{AdminCommand, Cli, Command};
use config::Config;
pub use error::{Error, Result};

/// Runs one command to completion.
pub fn run(cli: Cli) -> Result<()> {
    // Commands of later issues fail at once, before any setting is read.
    if let Some(what) = not_yet_available(&cli.command) {
        return Err(Error::NotAvailable { what, issue: 3 });
    }
    let config = Arc::new(Config::from_env(cli.config.as_deref())?);
    init_logging(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => app::serve(config, args.create).await,
            Command::Migrate => app::migrate(config).await,
            Command::Demo(args) => app::demo(config, args).await,
            Command::Admin(AdminCommand::CreateClient(args)) => {
                app::create_client(config, args).await
            }
            Command::Import(_) | Command::Seed(_) => Err(Error::NotAvailable {
                what: "this command",
                issue: 3,
            }),
        }
    })
}

/// Commands that are part of the interface contract but whose work a later issue adds.
fn not_yet_available(command: &Command) -> Option<&'static str> {
    match command {
        Command::Import(_) => Some("portico import"),
        Command::Seed(_) => Some("portico seed"),
        _ => None,
    }
}

/// Logs go to stderr (stdout carries command output such as `--json`), filtered by `filter`
/// (already checked by [`Config::load`]).
fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config::DEFAULT_LOG));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
