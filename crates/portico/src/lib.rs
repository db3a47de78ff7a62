//! The `portico` binary as a library: command line, configuration, wiring and demo data.
//! `main.rs` only parses the command line and turns an [`Error`] into one line and an exit code.

pub mod accounts;
pub mod app;
pub mod apps;
pub mod audit_trail;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;

use std::sync::Arc;

use cli::{AdminCommand, AuditCommand, Cli, Command};
use config::Config;
pub use error::{Error, Result};

/// mimalloc instead of the system allocator: resources are parsed on worker threads and freed on
/// the database writer's thread, and during `portico import` glibc's allocator took about a sixth
/// of the SQLite writer's time on such frees; with mimalloc, allocation is under a twentieth of it
/// (perf profiles of the writer thread).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs one command to completion.
pub fn run(cli: Cli) -> Result<()> {
    // Seeding only writes files: it reads no setting and opens no database.
    let command = match cli.command {
        Command::Seed(args) => return app::seed(&args),
        other => other,
    };
    let config = Arc::new(Config::from_env(cli.config.as_deref())?);
    init_logging(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    runtime.block_on(async move {
        match command {
            Command::Serve(args) => app::serve(config, args.create).await,
            Command::Migrate => app::migrate(config).await,
            Command::Demo(args) => app::demo(config, args).await,
            Command::Admin(AdminCommand::CreateClient(args)) => {
                app::create_client(config, args).await
            }
            Command::Admin(AdminCommand::CreateAccount(args)) => {
                accounts::create_account(config, args).await
            }
            Command::Admin(AdminCommand::Invite(args)) => accounts::invite(config, args).await,
            Command::Admin(AdminCommand::CreateApp(args)) => apps::create_app(config, args).await,
            Command::Import(args) => app::import(config, args).await,
            Command::Audit(AuditCommand::Verify(args)) => audit_trail::verify(config, args).await,
            Command::Seed(args) => app::seed(&args),
        }
    })
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
