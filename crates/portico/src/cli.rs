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
    /// Administration: API clients, sign-in accounts, invitations.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail's chain of hashes from the first record to the last: exits 0 when
    /// intact, 3 naming the first record found changed, removed or reordered. Prints the last
    /// record's hash: keep it outside the database to detect records cut off the end later.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Print one JSON object {"checked": …, "last_seq": …, "last_hash": …, "fault": …}.
    #[arg(long)]
    pub json: bool,
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
    /// Create a sign-in account for a patient, a proxy or staff. The password is read from
    /// standard input (one line), so it never shows in the process list or shell history.
    CreateAccount(CreateAccountArgs),
    /// Make an invitation code for a patient to create their account with (sent by letter or
    /// SMS). The code is printed once and stored only as a hash.
    Invite(InviteArgs),
    /// Register a SMART on FHIR app: a public client that signs people in with the
    /// authorization code flow and PKCE, at the redirect URIs given.
    CreateApp(CreateAppArgs),
}

/// Roles an account can have (`clerical` is an extension of the contract's four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Patient,
    Proxy,
    Clinician,
    Clerical,
    Admin,
}

impl RoleArg {
    pub fn role(self) -> store::accounts::Role {
        use store::accounts::Role;
        match self {
            RoleArg::Patient => Role::Patient,
            RoleArg::Proxy => Role::Proxy,
            RoleArg::Clinician => Role::Clinician,
            RoleArg::Clerical => Role::Clerical,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = CREATE_ACCOUNT_HELP)]
pub struct CreateAccountArgs {
    /// What the account may do.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// The name to sign in with (3 to 64 letters, digits, '.', '-', '_', '@', '+'; kept in
    /// lower case).
    #[arg(long, value_name = "U")]
    pub username: String,
    /// Read the password from standard input (one line). Required: passwords are never taken
    /// as arguments.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Patient accounts: link to the Patient with this NHS number (it must exist) at identity
    /// level P9, as an administrator vouches for the person.
    #[arg(long, value_name = "N")]
    pub nhs_number: Option<String>,
    /// Proxy accounts (required): the RelatedPerson the proxy is.
    #[arg(long, value_name = "ID")]
    pub related_person: Option<String>,
    /// Staff accounts: the ODS code of their organisation.
    #[arg(long, value_name = "CODE")]
    pub ods: Option<String>,
    /// Staff accounts: the PractitionerRole they work as (it must exist).
    #[arg(long, value_name = "ID")]
    pub practitioner_role: Option<String>,
    /// Turn on the authenticator-app second factor now and print its secret (base32), instead
    /// of the person setting it up at first sign-in.
    #[arg(long)]
    pub with_totp: bool,
    /// Print exactly one JSON object {"account_id": …[, "totp_secret": …]} on stdout.
    #[arg(long)]
    pub json: bool,
}

const CREATE_ACCOUNT_HELP: &str = "\
Example: printf '%s\\n' \"$PASSWORD\" | portico admin create-account --role clinician --username \
j.smith --ods RX1 --password-stdin --with-totp --json

Every account needs a second factor: without --with-totp the person sets up an authenticator \
app right after their first password sign-in. A weak password (fewer than 12 characters, \
common, containing the username, repetitive) is refused with exit status 2.";

#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The Patient (resource id) the invitation is for.
    #[arg(long, value_name = "ID")]
    pub patient: String,
    /// Days until the code expires.
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// Print exactly one JSON object {"code": …, "expires": …} on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = CREATE_APP_HELP)]
pub struct CreateAppArgs {
    /// The app's name, as people will see it on the consent screen.
    #[arg(long, value_name = "N")]
    pub name: String,
    /// A redirect URI the app may use, compared exactly (repeat the option for more): https,
    /// or http on the loopback address (127.0.0.1, [::1], localhost).
    #[arg(long = "redirect-uri", value_name = "URI", required = true)]
    pub redirect_uris: Vec<String>,
    /// Print exactly one JSON object {"client_id": …} on stdout.
    #[arg(long)]
    pub json: bool,
}

const CREATE_APP_HELP: &str = "\
Example: portico admin create-app --name \"Health diary\" --redirect-uri \
https://diary.example/callback --json

The app is a public client: it has no secret and must use PKCE (S256). It asks for scopes such \
as patient/*.read, openid fhirUser launch/patient offline_access; the person signing in sees \
them on the consent screen and can disconnect the app later from their account.";

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
    fn create_account_takes_the_contract_flags_and_needs_password_stdin() {
        let cli = Cli::try_parse_from([
            "portico",
            "admin",
            "create-account",
            "--role",
            "patient",
            "--username",
            "u",
            "--password-stdin",
            "--nhs-number",
            "9434765919",
            "--with-totp",
            "--json",
        ])
        .expect("parse");
        match cli.command {
            Command::Admin(AdminCommand::CreateAccount(args)) => {
                assert_eq!(args.role, RoleArg::Patient);
                assert!(args.password_stdin && args.with_totp && args.json);
                assert_eq!(args.nhs_number.as_deref(), Some("9434765919"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from([
            "portico",
            "admin",
            "create-account",
            "--role",
            "admin",
            "--username",
            "u"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "portico",
            "admin",
            "create-account",
            "--role",
            "superuser",
            "--username",
            "u",
            "--password-stdin"
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

    #[test]
    fn create_app_takes_a_name_and_repeated_redirect_uris() {
        let cli = Cli::try_parse_from([
            "portico",
            "admin",
            "create-app",
            "--name",
            "Diary",
            "--redirect-uri",
            "https://a.example/cb",
            "--redirect-uri",
            "http://127.0.0.1:7000/cb",
            "--json",
        ])
        .expect("parse");
        match cli.command {
            Command::Admin(AdminCommand::CreateApp(args)) => {
                assert_eq!(args.name, "Diary");
                assert_eq!(
                    args.redirect_uris,
                    ["https://a.example/cb", "http://127.0.0.1:7000/cb"]
                );
                assert!(args.json);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["portico", "admin", "create-app", "--name", "Diary"]).is_err(),
            "a redirect URI is required"
        );
    }
}
