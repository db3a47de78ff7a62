//! The command line (DESIGN.md §3).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "portico",
    version,
    about = "Portico: a FHIR R4 patient portal and personal health record for NHS trusts and GP practices",
    long_about = None,
    after_help = "Settings come from PORTICO_* environment variables, then the --config file, then defaults; see README.md."
)]
pub struct Cli {
    /// A TOML file of settings, keyed as the PORTICO_* variables in lower case without the
    /// prefix (database_url, http_addr, …; see README.md). Environment variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "PORTICO_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (FHIR API, OAuth2) against the configured database, after applying pending
    /// migrations.
    Serve(ServeArgs),
    /// Apply database migrations and exit (creates the SQLite file if it is absent).
    Migrate,
    /// Start a throwaway server on a fresh SQLite database seeded with a synthetic region
    /// (a trust, two GP practices, staff, patients with records), and print how to call it.
    Demo(DemoArgs),
    /// Load FHIR NDJSON files, a Bundle, or a folder of them (not available yet: issue 3).
    Import(ImportArgs),
    /// Write a synthetic region as NDJSON files (not available yet: issue 3).
    Seed(SeedArgs),
    /// Administration: API clients.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Create the SQLite database file if it does not exist (otherwise a missing file is an
    /// error, so that a mistyped path never becomes a new, empty database).
    #[arg(long)]
    pub create: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to create the demo database (default: a new temporary directory, removed on exit).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Replace the file given by --db if it exists.
    #[arg(long, requires = "db")]
    pub force: bool,
    /// How many patients to create.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub patients: u32,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// An NDJSON file, a Bundle JSON file, or a folder of them.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// How many patients to generate.
    #[arg(long, value_name = "N")]
    pub patients: u32,
    /// The folder to write the NDJSON files to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Random seed; the same seed gives the same data.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Register a system API client (OAuth2 client credentials). Its secret is printed once and
    /// stored only as a hash.
    CreateClient(CreateClientArgs),
}

#[derive(Debug, Args)]
pub struct CreateClientArgs {
    /// A name for people to recognise the client by.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Space-separated SMART system scopes the client may be granted,
    /// e.g. "system/*.read system/*.write" or "system/Patient.read".
    #[arg(long, value_name = "SCOPES")]
    pub scopes: String,
    /// Print exactly one JSON object {"client_id": …, "client_secret": …} on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_flag_is_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from(["portico", "migrate", "--config", "p.toml"]).expect("parse");
        assert_eq!(cli.config, Some(PathBuf::from("p.toml")));
        assert!(matches!(cli.command, Command::Migrate));
    }

    #[test]
    fn force_needs_a_demo_path() {
        assert!(Cli::try_parse_from(["portico", "demo", "--force"]).is_err());
        let cli = Cli::try_parse_from([
            "portico",
            "demo",
            "--db",
            "d.db",
            "--force",
            "--patients",
            "3",
        ])
        .expect("parse");
        match cli.command {
            Command::Demo(args) => {
                assert!(args.force);
                assert_eq!(args.patients, 3);
            }
            other => panic!("{other:?}"),
        }
    }
}
