//! Wiring: the configured store, the HTTP listener, the server and its shutdown, and the
//! commands that use them.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use store::{ApiClient, Store};
use tokio::net::TcpListener;

use crate::cli::{CreateClientArgs, DemoArgs, ImportArgs, SeedArgs};
use crate::config::{Config, DatabaseUrl, Setting};
use crate::demo;
use crate::error::{Error, Result};

/// How long opening PostgreSQL may take in all (connecting, migrations) before giving up.
const POSTGRES_OPEN_TIMEOUT: Duration = Duration::from_secs(60);

/// What to do when the SQLite file is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Create it (`migrate`, `serve --create`).
    Create,
    /// Refuse, telling the user what to run instead.
    Refuse { fix: &'static str },
}

/// Opens the configured database, applying pending migrations, as the backend its URL's scheme
/// names.
pub async fn open_store(config: &Config, if_missing: IfMissing) -> Result<Arc<dyn Store>> {
    check_sqlite_file(config, if_missing)?;
    let setting = config.name_of(Setting::DatabaseUrl);
    match &config.database_url {
        DatabaseUrl::Sqlite { url, .. } => {
            let url = url.clone();
            let create = if_missing == IfMissing::Create;
            let opened =
                tokio::task::spawn_blocking(move || store_sqlite::SqliteStore::open(&url, create))
                    .await
                    .map_err(|e| {
                        Error::Server(format!("opening the SQLite database stopped: {e}"))
                    })?;
            let store = opened.map_err(|e| Error::Database {
                setting,
                message: store_message(&e),
            })?;
            Ok(Arc::new(store))
        }
        db @ DatabaseUrl::Postgres { url, .. } => {
            let connect = store_postgres::PgStore::connect(url.expose());
            let store = match tokio::time::timeout(POSTGRES_OPEN_TIMEOUT, connect).await {
                Ok(Ok(store)) => store,
                Ok(Err(e)) => {
                    return Err(Error::Database {
                        setting,
                        message: db.scrub(&store_message(&e)),
                    })
                }
                Err(_) => {
                    return Err(Error::Database {
                        setting,
                        message: format!(
                            "no answer from PostgreSQL at {} within {}s; check the host and port, and that no firewall drops the connection",
                            db.shown(),
                            POSTGRES_OPEN_TIMEOUT.as_secs()
                        ),
                    })
                }
            };
            Ok(Arc::new(store))
        }
    }
}

/// Refuses a missing SQLite file unless it may be created, so that a mistyped path never
/// silently becomes a new, empty database.
pub fn check_sqlite_file(config: &Config, if_missing: IfMissing) -> Result<()> {
    if let (DatabaseUrl::Sqlite { path, .. }, IfMissing::Refuse { fix }) =
        (&config.database_url, if_missing)
    {
        if !path.exists() {
            return Err(Error::Config {
                setting: config.name_of(Setting::DatabaseUrl),
                message: format!("sqlite file {} does not exist; {fix}", path.display()),
            });
        }
    }
    Ok(())
}

fn store_message(e: &store::StoreError) -> String {
    match e {
        store::StoreError::Database(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Binds the HTTP listener, explaining the usual reasons it cannot be.
pub async fn bind_http(config: &Config) -> Result<TcpListener> {
    let addr = config.http_addr;
    let setting = config.name_of(Setting::HttpAddr);
    TcpListener::bind(addr).await.map_err(|e| {
        let suggestion = SocketAddr::new(addr.ip(), addr.port().wrapping_add(1).max(1024));
        let message = match e.kind() {
            ErrorKind::AddrInUse => format!(
                "{addr} is already in use; stop the program listening there or choose another address, e.g. {}={suggestion}",
                Setting::HttpAddr.env()
            ),
            ErrorKind::AddrNotAvailable => format!(
                "{addr} is not an address of this machine; use 127.0.0.1:{port}, or 0.0.0.0:{port} to listen on every interface",
                port = addr.port()
            ),
            ErrorKind::PermissionDenied => format!(
                "not permitted to listen on {addr} (ports below 1024 need privileges); choose a port above 1024, e.g. {}:8080",
                addr.ip()
            ),
            _ => format!("cannot listen on {addr}: {e}"),
        };
        Error::Listen { setting, message }
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

/// Serves HTTP on `listener` until a shutdown signal.
pub async fn serve_http(
    config: &Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
) -> Result<()> {
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listener's address", e))?;
    let public_url = config.public_url_for(bound);
    let web_config = web::WebConfig {
        public_url: public_url.clone(),
        max_body_bytes: config.max_body_bytes,
        export_dir: config.export_dir.clone(),
        trusted_proxy_hops: config.trusted_proxy_hops,
        nhs_login: nhs_login(config)?,
        ..web::WebConfig::default()
    };
    if let Some(nhs_login) = &web_config.nhs_login {
        tracing::info!(issuer = nhs_login.issuer(), "sign-in with NHS login is on");
    }
    let state = web::AppState::new(store, Arc::new(web_config))
        .await
        .map_err(|e| Error::Server(format!("could not start the web layer: {e}")))?;
    tracing::info!(%bound, %public_url, "serving HTTP");
    web::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| Error::Server(format!("the HTTP server stopped: {e}")))?;
    Ok(())
}

/// NHS login's settings for the web layer, when configured; a client key that cannot sign stops
/// the server here, before it serves anyone.
fn nhs_login(config: &Config) -> Result<Option<web::signin::nhs_login::NhsLoginConfig>> {
    let (Some(issuer), Some(client_id), Some(key)) = (
        &config.oidc_issuer,
        &config.oidc_client_id,
        &config.oidc_key,
    ) else {
        return Ok(None);
    };
    let nhs_login = web::signin::nhs_login::NhsLoginConfig::new(issuer, client_id, key.expose())
        .map_err(|message| Error::Config {
            setting: config.name_of(Setting::OidcKey),
            message,
        })?;
    Ok(Some(nhs_login))
}

pub async fn serve(config: Arc<Config>, create: bool) -> Result<()> {
    let if_missing = if create {
        IfMissing::Create
    } else {
        IfMissing::Refuse {
            fix: "run `portico migrate` or `portico serve --create`",
        }
    };
    // Checked before binding, so that a missing database is reported as such.
    check_sqlite_file(&config, if_missing)?;
    nhs_login(&config)?;
    for setting in config.unused_settings() {
        tracing::warn!("{setting} is set, but the feature it configures arrives in a later release; it has no effect yet");
    }
    let listener = bind_http(&config).await?;
    let store = open_store(&config, if_missing).await?;
    tracing::info!(backend = store.backend(), database = %config.database_url.shown(), "database ready");
    serve_http(&config, store, listener).await
}

pub async fn migrate(config: Arc<Config>) -> Result<()> {
    let store = open_store(&config, IfMissing::Create).await?;
    store.ping().await?;
    eprintln!(
        "Migrations applied: {} database {} is up to date.",
        store.backend(),
        config.database_url.shown()
    );
    Ok(())
}

/// A newly registered API client; the secret exists only here and in the caller's hands.
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub scopes: String,
}

/// Registers an API client with `scopes` (SMART system scopes), storing only its secret's hash.
pub async fn register_client(
    store: &dyn Store,
    name: &str,
    scopes: &str,
) -> Result<ClientCredentials> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Usage(
            "--name: give the client a name of 1 to 200 characters".into(),
        ));
    }
    let parsed =
        web::auth::parse_scopes(scopes).map_err(|e| Error::Usage(format!("--scopes: {e}")))?;
    let scopes = parsed
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let (client_id, client_secret) = web::auth::new_client_credentials();
    let secret = client_secret.clone();
    let secret_hash = tokio::task::spawn_blocking(move || web::auth::hash_secret(&secret))
        .await
        .map_err(|e| Error::Server(format!("hashing the client secret stopped: {e}")))?;
    store
        .insert_api_client(&ApiClient {
            client_id: client_id.clone(),
            name: name.to_string(),
            secret_hash,
            scopes: scopes.clone(),
            created_at: chrono::Utc::now(),
        })
        .await?;
    Ok(ClientCredentials {
        client_id,
        client_secret,
        scopes,
    })
}

pub async fn create_client(config: Arc<Config>, args: CreateClientArgs) -> Result<()> {
    // Check the arguments before touching the database.
    web::auth::parse_scopes(&args.scopes).map_err(|e| Error::Usage(format!("--scopes: {e}")))?;
    let store = open_store(
        &config,
        IfMissing::Refuse {
            fix: "run `portico migrate` first (or point PORTICO_DATABASE_URL at the server's database)",
        },
    )
    .await?;
    let client = register_client(store.as_ref(), &args.name, &args.scopes).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"client_id": client.client_id, "client_secret": client.client_secret})
        );
    } else {
        println!(
            "Registered API client {:?} with scopes: {}",
            args.name.trim(),
            client.scopes
        );
        println!("client_id:     {}", client.client_id);
        println!("client_secret: {}", client.client_secret);
        println!("The secret is shown only now and stored only as a hash: keep it safe.");
    }
    Ok(())
}

/// The demo database file: in a temporary directory removed on exit, or at the given path.
struct DemoDatabase {
    path: PathBuf,
    temp: Option<tempfile::TempDir>,
}

fn demo_database(args: &DemoArgs) -> Result<DemoDatabase> {
    match &args.db {
        None => {
            let temp = tempfile::Builder::new()
                .prefix("portico-demo-")
                .tempdir()
                .map_err(|e| {
                    Error::io("creating a temporary directory for the demo database", e)
                })?;
            Ok(DemoDatabase {
                path: temp.path().join("portico-demo.db"),
                temp: Some(temp),
            })
        }
        Some(path) => {
            if path.is_dir() {
                return Err(Error::Usage(format!(
                    "--db {} is a directory; give a file path, e.g. --db {}",
                    path.display(),
                    path.join("portico-demo.db").display()
                )));
            }
            if path.exists() {
                if !args.force {
                    return Err(Error::Usage(format!(
                        "--db {} already exists; the demo starts from an empty database: choose another path, or add --force to replace it",
                        path.display()
                    )));
                }
                remove_sqlite_files(path)?;
            }
            Ok(DemoDatabase {
                path: path.clone(),
                temp: None,
            })
        }
    }
}

fn remove_sqlite_files(path: &Path) -> Result<()> {
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("removing {} (for --force)", file.display()),
                    e,
                ))
            }
        }
    }
    Ok(())
}

pub async fn demo(config: Arc<Config>, args: DemoArgs) -> Result<()> {
    let db = demo_database(&args)?;
    let listener = bind_http(&config).await?;
    let path = db.path.clone();
    let store =
        tokio::task::spawn_blocking(move || store_sqlite::SqliteStore::open_path(&path, true))
            .await
            .map_err(|e| Error::Server(format!("opening the demo database stopped: {e}")))?
            .map_err(|e| Error::Database {
                setting: "--db".into(),
                message: store_message(&e),
            })?;
    let store: Arc<dyn Store> = Arc::new(store);
    let today = chrono::Local::now().date_naive();
    eprintln!("Seeding the demo region ({} patients)…", args.patients);
    let seeded = demo::seed(store.as_ref(), args.patients, today).await?;
    let counts = seeded
        .counts
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(
        resources = seeded.resources,
        "demo region written: {counts}"
    );
    let client = register_client(store.as_ref(), "demo", "system/*.read system/*.write").await?;
    let sign_ins = crate::accounts::demo_sign_ins(store.as_ref()).await?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listener's address", e))?;
    let url = config.public_url_for(bound);
    let kept = if db.temp.is_some() {
        "temporary, removed on exit"
    } else {
        "kept on exit"
    };
    println!("Portico demo is running at {url}");
    println!("  database:      {} ({kept})", db.path.display());
    println!(
        "  data:          {} resources: {} patients, their GP practices, hospital, staff, appointments and records",
        seeded.resources, seeded.patients
    );
    println!("  API client:    client_id     {}", client.client_id);
    println!("                 client_secret {}", client.client_secret);
    println!();
    println!(
        "Sign in at {url}/login (then the 6-digit code of an authenticator app holding the secret;"
    );
    println!("or `oathtool --totp -b SECRET`):");
    for s in &sign_ins {
        println!(
            "  {:<28} username {:<16} password {}",
            s.who, s.username, s.password
        );
        println!("  {:<28} authenticator secret {}", "", s.totp_secret);
    }
    println!();
    println!("Try it (needs curl and jq):");
    println!(
        "  TOKEN=$(curl -s {url}/oauth/token -d grant_type=client_credentials -d client_id={} -d client_secret={} -d 'scope=system/*.read' | jq -r .access_token)",
        client.client_id, client.client_secret
    );
    println!("  curl -s -H \"Authorization: Bearer $TOKEN\" '{url}/fhir/Patient?_count=5' | jq .");
    println!("  curl -s -H \"Authorization: Bearer $TOKEN\" '{url}/fhir/Observation?patient=pat-0001&_sort=-date' | jq .");
    println!();
    println!("Press Ctrl-C to stop.");
    let served = serve_http(&config, store, listener).await;
    drop(db);
    served
}

/// `portico import`: loads the files into the configured database and prints the summary.
pub async fn import(config: Arc<Config>, args: ImportArgs) -> Result<()> {
    // A wrong path is reported before the database is touched.
    if let Err(e) = std::fs::metadata(&args.path) {
        return Err(import_error(import::ImportError::Unreadable {
            path: args.path.clone(),
            source: e,
        }));
    }
    let if_missing = if args.create {
        IfMissing::Create
    } else {
        IfMissing::Refuse {
            fix: "run `portico migrate` first, or pass --create",
        }
    };
    let store = open_store(&config, if_missing).await?;
    tracing::info!(backend = store.backend(), database = %config.database_url.shown(), "importing");
    let options = import::Options {
        again: args.again,
        batch: args.batch,
        ..import::Options::new(&args.path)
    };
    let summary = import::import(store.clone(), &options)
        .await
        .map_err(import_error)?;
    // Fresh planner statistics for what was just loaded (PostgreSQL), so that the first
    // filtered searches do not plan for an empty table.
    store.refresh_statistics().await?;
    if args.json {
        println!("{}", summary.to_json());
    } else {
        println!("{summary}");
    }
    Ok(())
}

/// An import error as the binary reports it: a bad path is a usage error (exit status 2), a
/// failing database a run-time one (1).
fn import_error(e: import::ImportError) -> Error {
    use import::ImportError as E;
    match e {
        E::Unreadable { path, source } if source.kind() == ErrorKind::NotFound => {
            Error::Usage(format!("{} does not exist", path.display()))
        }
        E::Unreadable { path, source } => Error::io(format!("reading {}", path.display()), source),
        e @ (E::NotFound(_) | E::NothingToImport(_)) => Error::Usage(e.to_string()),
        E::Store(e) => Error::Server(format!(
            "the import stopped: {}; what was imported so far is kept, and running the same command again carries on from there",
            store_message(&e)
        )),
        E::Internal(m) => Error::Server(format!("the import stopped on an internal error: {m}")),
    }
}

/// `portico seed`: writes the synthetic region as NDJSON files.
pub fn seed(args: &SeedArgs) -> Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let today = args
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let options = seed::Options::new(args.patients, seed, today);
    eprintln!(
        "Writing a region of {} patients (seed {seed}, as of {today}) to {}…",
        args.patients,
        args.out.display()
    );
    let written = seed::write_ndjson(&options, &args.out).map_err(|e| match e {
        seed::SeedError::TooManyPatients(_) => Error::Usage(format!("--patients: {e}")),
        seed::SeedError::Io { path, source } => {
            Error::io(format!("writing {}", path.display()), source)
        }
        other => Error::Server(format!("generating the region failed: {other}")),
    })?;
    for (resource_type, n) in &written.counts {
        println!("{n:>10}  {resource_type}");
    }
    println!(
        "Wrote {} resources ({:.1} MB) in {} files to {} in {:.1} s. The same --seed {seed} --today {today} writes the same files.",
        written.total,
        written.bytes as f64 / 1e6,
        written.files.len(),
        args.out.display(),
        written.elapsed.as_secs_f64()
    );
    Ok(())
}
