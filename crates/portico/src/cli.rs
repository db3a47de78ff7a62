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
    /// Load FHIR NDJSON files, Bundles, or a folder of them into the configured database;
    /// resumable, and importing the same data again changes nothing.
    Import(ImportArgs),
    /// Write a synthetic region (trusts, GP practices, staff, patients and their records) as
    /// FHIR NDJSON files, one per resource type.
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
#[command(after_help = IMPORT_HELP)]
pub struct ImportArgs {
    /// A file or a folder (read recursively, in path order): `.ndjson`/`.jsonl` files with one
    /// resource per line, `.json` files holding a Bundle or one resource, each possibly `.gz`.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Print the summary as one JSON object on stdout (rejected lines still go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Import files again that an earlier run imported completely and that have not changed
    /// since (they are skipped otherwise); what is the same as stored is counted "unchanged".
    #[arg(long)]
    pub again: bool,
    /// Create the SQLite database file if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Writes per database transaction (for benchmarks).
    #[arg(long, value_name = "N", hide = true, default_value_t = import::DEFAULT_BATCH)]
    pub batch: usize,
}

/// The rules `portico import --help` explains after the options.
const IMPORT_HELP: &str = "\
Identity: a resource is stored under its own id; a Bundle entry without one under its urn:uuid \
fullUrl or PUT id; a resource without any id replaces the stored one with the same identifier, \
or gets an id derived from its identifier (or content), the same on every run. References \
between files may come in any order; conditional references (Type?identifier=...) that match \
nothing yet are retried after everything else.

Resuming: progress is journaled in the database per file. If the import is stopped or killed, \
run the same command again: it carries on where the last run stopped and ends with the same \
database as a run that was never interrupted. A file already imported completely and unchanged \
since is skipped (--again imports it again).

Errors: a line that cannot be imported is reported on stderr as `path:line: reason` and the \
import goes on; the summary counts created, updated, unchanged, deleted and rejected resources \
per type. Exit status: 0 when the import ran to the end, even if some lines were rejected \
(check the summary's `rejected`); 2 for a path that does not exist or holds nothing to import; \
1 if the database failed (run the command again to resume).";

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// How many patients to generate (at most 900,000).
    #[arg(long, value_name = "N")]
    pub patients: u64,
    /// The folder to write the NDJSON files to (created if missing; files of the same names are
    /// replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Random seed: the same seed (and --today) gives byte-identical files. Without it a seed is
    /// chosen and printed.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// The day the region is generated as of (YYYY-MM-DD; default: today): clinical dates are
    /// relative to it.
    #[arg(long, value_name = "DATE")]
    pub today: Option<chrono::NaiveDate>,
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
    fn import_and_seed_take_their_options() {
        let cli =
            Cli::try_parse_from(["portico", "import", "data", "--json", "--again"]).expect("parse");
        match cli.command {
            Command::Import(args) => {
                assert_eq!(args.path, PathBuf::from("data"));
                assert!(args.json && args.again && !args.create);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "portico",
            "seed",
            "--patients",
            "10",
            "--out",
            "o",
            "--seed",
            "7",
            "--today",
            "2025-03-30",
        ])
        .expect("parse");
        match cli.command {
            Command::Seed(args) => {
                assert_eq!((args.patients, args.seed), (10, Some(7)));
                assert_eq!(
                    args.today.map(|d| d.to_string()).as_deref(),
                    Some("2025-03-30")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from([
            "portico",
            "seed",
            "--patients",
            "1",
            "--out",
            "o",
            "--today",
            "30/03/2025"
        ])
        .is_err());
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
