//! Configuration: environment variables, or a TOML file given by `--config`, over defaults
//! (DESIGN.md §3). An environment variable wins over the file, the file over the default.
//!
//! [`Config`] is a plain value: `main` builds one and hands it on as `Arc<Config>`; tests build
//! their own with [`Config::load`] and a map standing in for the environment. Values are checked
//! here, once, so that a bad setting stops the program at start with one line naming it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://portico.db";
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_MLLP_ADDR: &str = "127.0.0.1:2575";
pub const DEFAULT_LOG: &str = "info";

/// A value that must never reach a log or an error message. `Debug` prints `[redacted]`;
/// there is no `Display`, so showing it takes a deliberate [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Every setting, with its environment variable and its key in the TOML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setting {
    DatabaseUrl,
    HttpAddr,
    MllpAddr,
    PublicUrl,
    SmtpUrl,
    NotifyUrl,
    NotifyKey,
    OidcIssuer,
    OidcClientId,
    OidcKey,
    MaxBodyBytes,
    Log,
    ExportDir,
    TrustedProxyHops,
}

impl Setting {
    pub const ALL: [Setting; 14] = [
        Setting::DatabaseUrl,
        Setting::HttpAddr,
        Setting::MllpAddr,
        Setting::PublicUrl,
        Setting::SmtpUrl,
        Setting::NotifyUrl,
        Setting::NotifyKey,
        Setting::OidcIssuer,
        Setting::OidcClientId,
        Setting::OidcKey,
        Setting::MaxBodyBytes,
        Setting::Log,
        Setting::ExportDir,
        Setting::TrustedProxyHops,
    ];

    pub fn env(self) -> &'static str {
        match self {
            Setting::DatabaseUrl => "PORTICO_DATABASE_URL",
            Setting::HttpAddr => "PORTICO_HTTP_ADDR",
            Setting::MllpAddr => "PORTICO_MLLP_ADDR",
            Setting::PublicUrl => "PORTICO_PUBLIC_URL",
            Setting::SmtpUrl => "PORTICO_SMTP_URL",
            Setting::NotifyUrl => "PORTICO_NOTIFY_URL",
            Setting::NotifyKey => "PORTICO_NOTIFY_KEY",
            Setting::OidcIssuer => "PORTICO_OIDC_ISSUER",
            Setting::OidcClientId => "PORTICO_OIDC_CLIENT_ID",
            Setting::OidcKey => "PORTICO_OIDC_KEY",
            Setting::MaxBodyBytes => "PORTICO_MAX_BODY_BYTES",
            Setting::Log => "PORTICO_LOG",
            Setting::ExportDir => "PORTICO_EXPORT_DIR",
            Setting::TrustedProxyHops => "PORTICO_TRUSTED_PROXY_HOPS",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Setting::DatabaseUrl => "database_url",
            Setting::HttpAddr => "http_addr",
            Setting::MllpAddr => "mllp_addr",
            Setting::PublicUrl => "public_url",
            Setting::SmtpUrl => "smtp_url",
            Setting::NotifyUrl => "notify_url",
            Setting::NotifyKey => "notify_key",
            Setting::OidcIssuer => "oidc_issuer",
            Setting::OidcClientId => "oidc_client_id",
            Setting::OidcKey => "oidc_key",
            Setting::MaxBodyBytes => "max_body_bytes",
            Setting::Log => "log",
            Setting::ExportDir => "export_dir",
            Setting::TrustedProxyHops => "trusted_proxy_hops",
        }
    }
}

/// Where the database is, parsed from `PORTICO_DATABASE_URL`; the scheme picks the backend.
#[derive(Clone, PartialEq)]
pub enum DatabaseUrl {
    Sqlite {
        /// The URL as given, for the SQLite backend.
        url: String,
        /// The database file.
        path: PathBuf,
    },
    Postgres {
        url: Secret<String>,
        /// The URL with its password replaced by `***`, for messages.
        shown: String,
        /// `host[:port]/database`, for messages.
        target: String,
        /// Kept only to scrub it from error messages that a driver might echo.
        password: Option<Secret<String>>,
    },
}

impl DatabaseUrl {
    /// Parses a database URL. The error message never repeats more of the input than its scheme
    /// (or, for SQLite, the file path), so a password cannot leak through it.
    pub fn parse(input: &str) -> std::result::Result<DatabaseUrl, String> {
        let input = input.trim();
        let Some((scheme, rest)) = input.split_once(':') else {
            return Err(
                "not a URL; use sqlite://path (e.g. sqlite://portico.db) or postgres://user@host:5432/database"
                    .into(),
            );
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let without_slashes = rest.strip_prefix("//").unwrap_or(rest);
                let path = without_slashes
                    .split_once('?')
                    .map_or(without_slashes, |(p, _)| p);
                if path.is_empty() {
                    return Err("no file after sqlite://; give a path, e.g. sqlite://portico.db or sqlite:///var/lib/portico/portico.db".into());
                }
                if path == ":memory:" || path.contains("mode=memory") {
                    return Err("an in-memory SQLite database cannot be shared by the server's connections; give a file path, e.g. sqlite://portico.db".into());
                }
                Ok(DatabaseUrl::Sqlite {
                    url: input.to_string(),
                    path: PathBuf::from(path),
                })
            }
            "postgres" | "postgresql" => {
                let Some(after) = rest.strip_prefix("//") else {
                    return Err(format!(
                        "a {scheme} URL starts with {scheme}://; e.g. postgres://user@host:5432/database"
                    ));
                };
                let authority_end = after.find(['/', '?']).unwrap_or(after.len());
                let (authority, tail) = after.split_at(authority_end);
                let (userinfo, hostport) = match authority.rsplit_once('@') {
                    Some((u, h)) => (Some(u), h),
                    None => (None, authority),
                };
                let password = userinfo
                    .and_then(|u| u.split_once(':'))
                    .map(|(_, p)| p.to_string());
                let shown_userinfo = match userinfo {
                    Some(u) => match u.split_once(':') {
                        Some((user, _)) => format!("{user}:***@"),
                        None => format!("{u}@"),
                    },
                    None => String::new(),
                };
                let database = tail
                    .strip_prefix('/')
                    .unwrap_or("")
                    .split('?')
                    .next()
                    .unwrap_or("");
                let host = if hostport.is_empty() {
                    "localhost (socket)"
                } else {
                    hostport
                };
                Ok(DatabaseUrl::Postgres {
                    url: Secret::new(input.to_string()),
                    shown: format!("{scheme}://{shown_userinfo}{hostport}{tail}"),
                    target: if database.is_empty() {
                        host.to_string()
                    } else {
                        format!("{host}/{database}")
                    },
                    password: password.filter(|p| !p.is_empty()).map(Secret::new),
                })
            }
            other => Err(format!(
                "unsupported scheme {}; use sqlite://path or postgres://…",
                printable(other)
            )),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite { .. } => "sqlite",
            DatabaseUrl::Postgres { .. } => "postgres",
        }
    }

    /// The URL as it may be shown: any password replaced by `***`.
    pub fn shown(&self) -> String {
        match self {
            DatabaseUrl::Sqlite { url, .. } => url.clone(),
            DatabaseUrl::Postgres { shown, .. } => shown.clone(),
        }
    }

    /// Removes the password (as written, and percent-decoded) from a message.
    pub fn scrub(&self, message: &str) -> String {
        let DatabaseUrl::Postgres {
            password: Some(password),
            ..
        } = self
        else {
            return message.to_string();
        };
        let mut out = message.to_string();
        let raw = password.expose();
        let decoded = percent_decode(raw);
        for secret in [raw.as_str(), decoded.as_str()] {
            if !secret.is_empty() {
                out = out.replace(secret, "[redacted]");
            }
        }
        out
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.shown())
    }
}

/// A scheme is shown in messages; keep it to something harmless and short.
fn printable(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .take(20)
        .collect();
    if cleaned.is_empty() {
        "(empty)".into()
    } else {
        cleaned
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a setting's value came from, so that an error names it the way the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Default,
    Env(&'static str),
    File,
}

/// The TOML file's shape: the same settings as the environment, under their lower-case keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    http_addr: Option<String>,
    mllp_addr: Option<String>,
    public_url: Option<String>,
    smtp_url: Option<String>,
    notify_url: Option<String>,
    notify_key: Option<String>,
    oidc_issuer: Option<String>,
    oidc_client_id: Option<String>,
    oidc_key: Option<String>,
    max_body_bytes: Option<u64>,
    log: Option<String>,
    export_dir: Option<String>,
    trusted_proxy_hops: Option<u64>,
}

impl FileConfig {
    fn get(&self, setting: Setting) -> Option<String> {
        match setting {
            Setting::DatabaseUrl => self.database_url.clone(),
            Setting::HttpAddr => self.http_addr.clone(),
            Setting::MllpAddr => self.mllp_addr.clone(),
            Setting::PublicUrl => self.public_url.clone(),
            Setting::SmtpUrl => self.smtp_url.clone(),
            Setting::NotifyUrl => self.notify_url.clone(),
            Setting::NotifyKey => self.notify_key.clone(),
            Setting::OidcIssuer => self.oidc_issuer.clone(),
            Setting::OidcClientId => self.oidc_client_id.clone(),
            Setting::OidcKey => self.oidc_key.clone(),
            Setting::MaxBodyBytes => self.max_body_bytes.map(|n| n.to_string()),
            Setting::Log => self.log.clone(),
            Setting::ExportDir => self.export_dir.clone(),
            Setting::TrustedProxyHops => self.trusted_proxy_hops.map(|n| n.to_string()),
        }
    }
}

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub http_addr: SocketAddr,
    /// Checked now; the MLLP listener itself arrives with the HL7 issue.
    pub mllp_addr: SocketAddr,
    /// None: derived from the address the HTTP listener is actually bound to
    /// (`http://127.0.0.1:8080` with the defaults). Never ends in `/`.
    pub public_url: Option<String>,
    pub smtp_url: Option<Secret<String>>,
    pub notify_url: Option<String>,
    pub notify_key: Option<Secret<String>>,
    /// NHS login (OpenID Connect): all three or none ([`oidc_settings`]).
    pub oidc_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    /// The client's private key as PEM text: `PORTICO_OIDC_KEY` itself when it starts with
    /// `-----BEGIN`, else the content of the file it names.
    pub oidc_key: Option<Secret<String>>,
    pub max_body_bytes: usize,
    /// A `tracing` filter, e.g. `info` or `portico=debug,web=debug`.
    pub log: String,
    /// Where Bulk Data exports write their files (a folder per job). Default: `portico-export`
    /// beside the SQLite database file, or in the system's temporary directory for PostgreSQL.
    /// With several servers on one PostgreSQL database it must be storage they all share.
    pub export_dir: PathBuf,
    /// Proxies or load balancers in front that append the client's address to
    /// `X-Forwarded-For` (0: clients connect directly); per-IP sign-in limits use the address
    /// this many entries from the right.
    pub trusted_proxy_hops: usize,
    file: Option<PathBuf>,
    from_file: BTreeSet<Setting>,
}

impl Config {
    /// Reads the process environment and, when given, the TOML file.
    pub fn from_env(file: Option<&Path>) -> Result<Config> {
        Config::load(file, |name| std::env::var(name).ok())
    }

    /// Builds the configuration from `env` (a stand-in for the environment) over the file over
    /// the defaults. An empty environment variable counts as unset.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let file_config = match file {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());

        let mut from_file = BTreeSet::new();
        let mut origins = Vec::new();
        let mut raw = |setting: Setting| -> Option<String> {
            let from_env = env(setting.env()).map(|v| (v, Origin::Env(setting.env())));
            // RUST_LOG is the usual name for a log filter; PORTICO_LOG wins when both are set.
            let from_env = from_env.or_else(|| {
                (setting == Setting::Log)
                    .then(|| env("RUST_LOG").map(|v| (v, Origin::Env("RUST_LOG"))))
                    .flatten()
            });
            let found = from_env.or_else(|| file_config.get(setting).map(|v| (v, Origin::File)));
            match found {
                Some((value, origin)) => {
                    if origin == Origin::File {
                        from_file.insert(setting);
                    }
                    origins.push((setting, origin));
                    Some(value)
                }
                None => {
                    origins.push((setting, Origin::Default));
                    None
                }
            }
        };

        let database_url = raw(Setting::DatabaseUrl);
        let http_addr = raw(Setting::HttpAddr);
        let mllp_addr = raw(Setting::MllpAddr);
        let public_url = raw(Setting::PublicUrl);
        let smtp_url = raw(Setting::SmtpUrl);
        let notify_url = raw(Setting::NotifyUrl);
        let notify_key = raw(Setting::NotifyKey);
        let oidc_issuer = raw(Setting::OidcIssuer);
        let oidc_client_id = raw(Setting::OidcClientId);
        let oidc_key = raw(Setting::OidcKey);
        let max_body_bytes = raw(Setting::MaxBodyBytes);
        let log = raw(Setting::Log);
        let export_dir = raw(Setting::ExportDir);
        let trusted_proxy_hops = raw(Setting::TrustedProxyHops);

        let name = |setting: Setting| -> String {
            let origin = origins
                .iter()
                .find(|(s, _)| *s == setting)
                .map(|(_, o)| o.clone())
                .unwrap_or(Origin::Default);
            setting_label(setting, &origin, file)
        };
        let bad = |setting: Setting, message: String| Error::Config {
            setting: name(setting),
            message,
        };

        let database_url =
            DatabaseUrl::parse(database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL))
                .map_err(|m| bad(Setting::DatabaseUrl, m))?;
        let http_addr = parse_addr(http_addr.as_deref().unwrap_or(DEFAULT_HTTP_ADDR), "8080")
            .map_err(|m| bad(Setting::HttpAddr, m))?;
        let mllp_addr = parse_addr(mllp_addr.as_deref().unwrap_or(DEFAULT_MLLP_ADDR), "2575")
            .map_err(|m| bad(Setting::MllpAddr, m))?;
        let public_url = public_url
            .map(|u| parse_http_url(&u, "https://portal.example.nhs.uk"))
            .transpose()
            .map_err(|m| bad(Setting::PublicUrl, m))?;
        let smtp_url = smtp_url
            .map(|u| {
                let lower = u.to_ascii_lowercase();
                if lower.starts_with("smtp://") || lower.starts_with("smtps://") {
                    Ok(Secret::new(u))
                } else {
                    Err("use smtp://host:port or smtps://user:password@host:465".to_string())
                }
            })
            .transpose()
            .map_err(|m| bad(Setting::SmtpUrl, m))?;
        let notify_url = notify_url
            .map(|u| parse_http_url(&u, "https://api.notifications.service.gov.uk"))
            .transpose()
            .map_err(|m| bad(Setting::NotifyUrl, m))?;
        let (oidc_issuer, oidc_client_id, oidc_key) =
            match oidc_settings(oidc_issuer, oidc_client_id, oidc_key) {
                Ok(Some(oidc)) => (Some(oidc.issuer), Some(oidc.client_id), Some(oidc.key)),
                Ok(None) => (None, None, None),
                Err((setting, message)) => return Err(bad(setting, message)),
            };
        let max_body_bytes = match max_body_bytes {
            None => default_max_body_bytes(),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| {
                    bad(
                        Setting::MaxBodyBytes,
                        format!(
                            "{:?} is not a size in bytes of at least 1024; e.g. {}",
                            v.chars().take(40).collect::<String>(),
                            default_max_body_bytes()
                        ),
                    )
                })?,
        };
        let trusted_proxy_hops = match trusted_proxy_hops {
            None => 0,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 10)
                .ok_or_else(|| {
                    bad(
                        Setting::TrustedProxyHops,
                        format!(
                            "{:?} is not a number of proxies from 0 to 10; use 1 behind one load balancer that appends to X-Forwarded-For",
                            v.chars().take(40).collect::<String>()
                        ),
                    )
                })?,
        };
        let log = log.unwrap_or_else(|| DEFAULT_LOG.to_string());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
            return Err(bad(
                Setting::Log,
                format!("invalid log filter ({e}); e.g. info, or info,web=debug"),
            ));
        }

        let export_dir = match export_dir {
            Some(dir) => {
                let dir = PathBuf::from(dir.trim());
                if dir.is_file() {
                    return Err(bad(
                        Setting::ExportDir,
                        format!(
                            "{} is a file; name a folder (it is created if missing)",
                            dir.display()
                        ),
                    ));
                }
                dir
            }
            None => default_export_dir(&database_url),
        };

        Ok(Config {
            database_url,
            http_addr,
            mllp_addr,
            public_url,
            smtp_url,
            notify_url,
            notify_key: notify_key.map(Secret::new),
            oidc_issuer,
            oidc_client_id,
            oidc_key,
            max_body_bytes,
            log,
            export_dir,
            trusted_proxy_hops,
            file: file.map(Path::to_path_buf),
            from_file,
        })
    }

    /// How to name `setting` in a message: its environment variable, or its key in the file
    /// when the value came from there.
    pub fn name_of(&self, setting: Setting) -> String {
        let origin = if self.from_file.contains(&setting) {
            Origin::File
        } else {
            Origin::Env(setting.env())
        };
        setting_label(setting, &origin, self.file.as_deref())
    }

    /// The public base URL: the configured one, or one made from the address the HTTP listener
    /// is bound to (an unspecified address such as 0.0.0.0 is shown as 127.0.0.1).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let ip = if bound.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            bound.ip()
        };
        format!("http://{}", SocketAddr::new(ip, bound.port()))
    }

    /// Settings that are accepted now but have no effect until a later issue adds their feature.
    pub fn unused_settings(&self) -> Vec<&'static str> {
        let mut unused = Vec::new();
        if self.smtp_url.is_some() {
            unused.push(Setting::SmtpUrl.env());
        }
        if self.notify_url.is_some() || self.notify_key.is_some() {
            unused.push(Setting::NotifyUrl.env());
        }
        unused
    }
}

/// NHS login's three settings, checked: all three or none (None: sign-in with NHS login is
/// off). The issuer must be an absolute http(s) URL; the key is the PEM itself (starting with
/// `-----BEGIN`) or the path of a PEM file, read now. Whether the key can sign is checked when
/// the server starts (`web::signin::nhs_login::NhsLoginConfig`). No message quotes the key, nor
/// even the value of `PORTICO_OIDC_KEY`, which may be the key mistyped.
fn oidc_settings(
    issuer: Option<String>,
    client_id: Option<String>,
    key: Option<String>,
) -> std::result::Result<Option<OidcSettings>, (Setting, String)> {
    let (issuer, client_id, key) = match (issuer, client_id, key) {
        (None, None, None) => return Ok(None),
        (Some(issuer), Some(client_id), Some(key)) => (issuer, client_id.trim().to_string(), key),
        (issuer, client_id, _) => {
            let missing = if issuer.is_none() {
                Setting::OidcIssuer
            } else if client_id.is_none() {
                Setting::OidcClientId
            } else {
                Setting::OidcKey
            };
            return Err((
                missing,
                format!(
                    "not set; sign-in with NHS login needs {}, {} and {} together (or none of them, to leave it off)",
                    Setting::OidcIssuer.env(),
                    Setting::OidcClientId.env(),
                    Setting::OidcKey.env()
                ),
            ));
        }
    };
    let issuer = parse_http_url(&issuer, "https://auth.login.nhs.uk")
        .map_err(|m| (Setting::OidcIssuer, m))?;
    let key = read_oidc_key(&key).map_err(|m| (Setting::OidcKey, m))?;
    Ok(Some(OidcSettings {
        issuer,
        client_id,
        key: Secret::new(key),
    }))
}

/// NHS login's three settings once checked.
struct OidcSettings {
    issuer: String,
    client_id: String,
    key: Secret<String>,
}

/// The PEM text of the client key: `value` itself, or the content of the file it names.
fn read_oidc_key(value: &str) -> std::result::Result<String, String> {
    const PEM_START: &str = "-----BEGIN";
    if value.trim_start().starts_with(PEM_START) {
        return Ok(value.to_string());
    }
    let text = std::fs::read_to_string(value.trim()).map_err(|e| {
        format!(
            "cannot read the key file it names ({e}); give the path of a PEM file holding the client's RSA private key, or the PEM itself (starting with {PEM_START})"
        )
    })?;
    if !text.trim_start().starts_with(PEM_START) {
        return Err(format!(
            "the file it names is not PEM (it does not start with {PEM_START}); give the client's RSA private key in PEM (PKCS#8 or PKCS#1)"
        ));
    }
    Ok(text)
}

/// `portico-export` beside a SQLite database file; for PostgreSQL, in the temporary directory.
pub fn default_export_dir(database_url: &DatabaseUrl) -> PathBuf {
    match database_url {
        DatabaseUrl::Sqlite { path, .. } => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("portico-export"),
        DatabaseUrl::Postgres { .. } => web::default_export_dir(),
    }
}

/// Requests with larger bodies are refused (413) before they are read; the web layer's default.
pub fn default_max_body_bytes() -> usize {
    web::WebConfig::default().max_body_bytes
}

fn setting_label(setting: Setting, origin: &Origin, file: Option<&Path>) -> String {
    match (origin, file) {
        (Origin::File, Some(path)) => format!("{} in {}", setting.key(), path.display()),
        (Origin::Env(name), _) => (*name).to_string(),
        _ => setting.env().to_string(),
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
        path: path.to_path_buf(),
        message: format!(
            "cannot read the configuration file ({e}); check the path given to --config"
        ),
    })?;
    toml::from_str::<FileConfig>(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().replace('\n', " ");
        let message = message.trim();
        Error::ConfigFile {
            path: path.to_path_buf(),
            message: match line {
                Some(line) => format!("line {line}: {message}"),
                None => message.to_string(),
            },
        }
    })
}

/// `IP:port`, or `localhost:port`.
fn parse_addr(value: &str, example_port: &str) -> std::result::Result<SocketAddr, String> {
    let value = value.trim();
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = value.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        }
    }
    Err(format!(
        "cannot parse {:?} as an address; give IP:port, e.g. 127.0.0.1:{example_port} or 0.0.0.0:{example_port}",
        value.chars().take(60).collect::<String>()
    ))
}

/// An absolute http(s) URL, without a trailing `/`.
fn parse_http_url(value: &str, example: &str) -> std::result::Result<String, String> {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !value.contains(' ') => {
            Ok(value.trim_end_matches('/').to_string())
        }
        _ => Err(format!(
            "{:?} is not an absolute http(s) URL; e.g. {example}",
            value.chars().take(60).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("portico.toml");
        std::fs::write(&path, text).expect("write config");
        (dir, path)
    }

    fn config_error(result: Result<Config>) -> Error {
        match result {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_follow_the_design() {
        let config = Config::load(None, env_of(&[])).expect("defaults");
        assert_eq!(
            config.database_url,
            DatabaseUrl::Sqlite {
                url: "sqlite://portico.db".into(),
                path: PathBuf::from("portico.db")
            }
        );
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.mllp_addr.to_string(), "127.0.0.1:2575");
        assert_eq!(config.public_url, None);
        assert_eq!(
            config.public_url_for(config.http_addr),
            "http://127.0.0.1:8080"
        );
        assert_eq!(config.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(config.log, "info");
        assert!(config.smtp_url.is_none() && config.notify_key.is_none());
    }

    #[test]
    fn environment_wins_over_file_and_file_over_defaults() {
        let (_dir, path) = file_with(
            "database_url = \"sqlite:///srv/file.db\"\nhttp_addr = \"0.0.0.0:9000\"\nmllp_addr = \"127.0.0.1:2600\"\nmax_body_bytes = 2048\n",
        );
        let config = Config::load(
            Some(&path),
            env_of(&[("PORTICO_HTTP_ADDR", "127.0.0.1:9100")]),
        )
        .expect("config");
        // env over file
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:9100");
        // file over default
        assert_eq!(config.mllp_addr.to_string(), "127.0.0.1:2600");
        assert_eq!(config.max_body_bytes, 2048);
        assert_eq!(config.database_url.shown(), "sqlite:///srv/file.db");
        // default where neither says anything
        assert_eq!(config.log, "info");
        assert_eq!(config.name_of(Setting::HttpAddr), "PORTICO_HTTP_ADDR");
        assert_eq!(
            config.name_of(Setting::MllpAddr),
            format!("mllp_addr in {}", path.display())
        );
    }

    #[test]
    fn an_empty_environment_variable_counts_as_unset() {
        let (_dir, path) = file_with("http_addr = \"127.0.0.1:9000\"\n");
        let config =
            Config::load(Some(&path), env_of(&[("PORTICO_HTTP_ADDR", "")])).expect("config");
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn portico_log_wins_over_rust_log() {
        let config = Config::load(
            None,
            env_of(&[("RUST_LOG", "debug"), ("PORTICO_LOG", "warn")]),
        )
        .expect("config");
        assert_eq!(config.log, "warn");
        let config = Config::load(None, env_of(&[("RUST_LOG", "debug")])).expect("config");
        assert_eq!(config.log, "debug");
    }

    #[test]
    fn public_url_loses_its_trailing_slash_and_must_be_http() {
        let config = Config::load(
            None,
            env_of(&[("PORTICO_PUBLIC_URL", "https://portal.example.nhs.uk/")]),
        )
        .expect("config");
        assert_eq!(
            config.public_url_for(config.http_addr),
            "https://portal.example.nhs.uk"
        );
        let e = config_error(Config::load(
            None,
            env_of(&[("PORTICO_PUBLIC_URL", "portal.example")]),
        ));
        assert!(e.to_string().starts_with("PORTICO_PUBLIC_URL: "), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn trusted_proxy_hops_default_to_none_and_are_a_small_number() {
        let config = Config::load(None, env_of(&[])).expect("config");
        assert_eq!(config.trusted_proxy_hops, 0);
        let config =
            Config::load(None, env_of(&[("PORTICO_TRUSTED_PROXY_HOPS", "1")])).expect("config");
        assert_eq!(config.trusted_proxy_hops, 1);
        for bad in ["-1", "eleven", "11"] {
            let e = config_error(Config::load(
                None,
                env_of(&[("PORTICO_TRUSTED_PROXY_HOPS", bad)]),
            ));
            assert!(
                e.to_string().starts_with("PORTICO_TRUSTED_PROXY_HOPS: "),
                "{e}"
            );
        }
    }

    #[test]
    fn derived_public_url_uses_the_bound_port_and_a_reachable_host() {
        let config =
            Config::load(None, env_of(&[("PORTICO_HTTP_ADDR", "0.0.0.0:0")])).expect("config");
        let bound: SocketAddr = "0.0.0.0:43123".parse().expect("addr");
        assert_eq!(config.public_url_for(bound), "http://127.0.0.1:43123");
    }

    #[test]
    fn unsupported_database_scheme_is_named_with_the_fix() {
        let e = config_error(Config::load(
            None,
            env_of(&[("PORTICO_DATABASE_URL", "mysql://root:hunter2@db/portico")]),
        ));
        assert_eq!(
            e.to_string(),
            "PORTICO_DATABASE_URL: unsupported scheme mysql; use sqlite://path or postgres://…"
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn postgres_url_is_shown_without_its_password() {
        let url =
            DatabaseUrl::parse("postgres://app:s%40cret@db.internal:5432/portico?sslmode=require")
                .expect("postgres url");
        assert_eq!(url.backend(), "postgres");
        assert_eq!(
            url.shown(),
            "postgres://app:***@db.internal:5432/portico?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("cret"));
        assert_eq!(
            url.scrub("password s@cret rejected; s%40cret"),
            "password [redacted] rejected; [redacted]"
        );
        let DatabaseUrl::Postgres { target, .. } = &url else {
            panic!("not postgres")
        };
        assert_eq!(target, "db.internal:5432/portico");
        assert!(DatabaseUrl::parse("postgresql://u@h/db").is_ok());
    }

    #[test]
    fn sqlite_urls_give_the_file_path() {
        let path = |u: &str| match DatabaseUrl::parse(u) {
            Ok(DatabaseUrl::Sqlite { path, .. }) => path,
            other => panic!("{u}: {other:?}"),
        };
        assert_eq!(path("sqlite://portico.db"), PathBuf::from("portico.db"));
        assert_eq!(
            path("sqlite:///var/lib/p.db"),
            PathBuf::from("/var/lib/p.db")
        );
        assert_eq!(path("sqlite:./x.db"), PathBuf::from("./x.db"));
        assert_eq!(path("sqlite://x.db?mode=rwc"), PathBuf::from("x.db"));
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
        assert!(DatabaseUrl::parse("portico.db").is_err());
    }

    #[test]
    fn unparsable_address_names_the_setting() {
        let e = config_error(Config::load(None, env_of(&[("PORTICO_HTTP_ADDR", "8080")])));
        let message = e.to_string();
        assert!(
            message.starts_with("PORTICO_HTTP_ADDR: cannot parse \"8080\""),
            "{message}"
        );
        assert!(message.contains("127.0.0.1:8080"), "{message}");
        let config = Config::load(None, env_of(&[("PORTICO_HTTP_ADDR", "localhost:9000")]))
            .expect("localhost");
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn bad_toml_names_the_file_and_line() {
        let (_dir, path) = file_with("http_addr = \"127.0.0.1:1\"\n\nlog = info\n");
        let e = config_error(Config::load(Some(&path), env_of(&[])));
        let message = e.to_string();
        assert!(
            message.starts_with(&format!("{}: line 3: ", path.display())),
            "{message}"
        );
        assert!(!message.contains('\n'));
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn unknown_toml_key_is_refused_with_its_line() {
        let (_dir, path) =
            file_with("http_addr = \"127.0.0.1:1\"\ndatabse_url = \"sqlite://x.db\"\n");
        let message = config_error(Config::load(Some(&path), env_of(&[]))).to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("databse_url"), "{message}");
    }

    #[test]
    fn a_bad_value_from_the_file_is_named_by_its_key() {
        let (_dir, path) = file_with("mllp_addr = \"nowhere\"\n");
        let message = config_error(Config::load(Some(&path), env_of(&[]))).to_string();
        assert!(
            message.starts_with(&format!("mllp_addr in {}: ", path.display())),
            "{message}"
        );
    }

    #[test]
    fn missing_config_file_is_reported() {
        let e = config_error(Config::load(
            Some(Path::new("/nonexistent/portico.toml")),
            env_of(&[]),
        ));
        assert!(e
            .to_string()
            .starts_with("/nonexistent/portico.toml: cannot read"));
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let config = Config::load(
            None,
            env_of(&[
                ("PORTICO_NOTIFY_KEY", "notify-key-123"),
                ("PORTICO_OIDC_ISSUER", "https://auth.login.nhs.uk"),
                ("PORTICO_OIDC_CLIENT_ID", "portico"),
                ("PORTICO_OIDC_KEY", FAKE_PEM),
                ("PORTICO_SMTP_URL", "smtp://mail:smtppw@mail.example"),
                ("PORTICO_DATABASE_URL", "postgres://u:dbpw@h/db"),
            ]),
        )
        .expect("config");
        let shown = format!("{config:?}");
        for secret in ["notify-key-123", "oidc-key-456", "smtppw", "dbpw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("[redacted]"));
        assert_eq!(
            config.notify_key.as_ref().map(|s| s.expose().as_str()),
            Some("notify-key-123")
        );
    }

    /// PEM-shaped, not a key: whether a key can sign is the web layer's check, at serve.
    const FAKE_PEM: &str = "-----BEGIN PRIVATE KEY-----\noidc-key-456\n-----END PRIVATE KEY-----\n";

    #[test]
    fn nhs_login_settings_are_all_three_or_none() {
        let config = Config::load(None, env_of(&[])).expect("none");
        assert!(config.oidc_issuer.is_none() && config.oidc_client_id.is_none());
        assert!(config.oidc_key.is_none());
        let all = [
            ("PORTICO_OIDC_ISSUER", "https://auth.login.nhs.uk/"),
            ("PORTICO_OIDC_CLIENT_ID", " portico "),
            ("PORTICO_OIDC_KEY", FAKE_PEM),
        ];
        let config = Config::load(None, env_of(&all)).expect("all three");
        assert_eq!(
            config.oidc_issuer.as_deref(),
            Some("https://auth.login.nhs.uk")
        );
        assert_eq!(config.oidc_client_id.as_deref(), Some("portico"));
        assert_eq!(
            config.oidc_key.as_ref().map(|k| k.expose().as_str()),
            Some(FAKE_PEM)
        );
        // Every incomplete combination names the first setting missing, in one line.
        for (given, missing) in [
            (&all[..1], "PORTICO_OIDC_CLIENT_ID"),
            (&all[..2], "PORTICO_OIDC_KEY"),
            (&all[1..], "PORTICO_OIDC_ISSUER"),
            (&all[2..], "PORTICO_OIDC_ISSUER"),
            (&[all[0], all[2]][..], "PORTICO_OIDC_CLIENT_ID"),
        ] {
            let e = config_error(Config::load(None, env_of(given)));
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("{missing}: not set; sign-in with NHS login needs PORTICO_OIDC_ISSUER, PORTICO_OIDC_CLIENT_ID and PORTICO_OIDC_KEY together")),
                "{given:?}: {message}"
            );
            assert!(!message.contains('\n') && !message.contains("oidc-key-456"));
            assert_eq!(e.exit_code(), 2);
        }
        // The file's keys count as much as the environment.
        let (_dir, path) = file_with(
            "oidc_issuer = \"https://auth.login.nhs.uk\"\noidc_client_id = \"portico\"\n",
        );
        let e = config_error(Config::load(Some(&path), env_of(&[])));
        assert!(
            e.to_string().starts_with("PORTICO_OIDC_KEY: not set"),
            "{e}"
        );
        let config = Config::load(Some(&path), env_of(&all[2..])).expect("file and environment");
        assert_eq!(config.oidc_client_id.as_deref(), Some("portico"));
        let e = config_error(Config::load(
            None,
            env_of(&[all[1], all[2], ("PORTICO_OIDC_ISSUER", "auth.login.nhs.uk")]),
        ));
        assert!(e.to_string().starts_with("PORTICO_OIDC_ISSUER: "), "{e}");
    }

    #[test]
    fn the_nhs_login_key_is_the_pem_itself_or_the_file_it_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pem_file = dir.path().join("client.pem");
        std::fs::write(&pem_file, FAKE_PEM).expect("write key");
        let not_pem = dir.path().join("client.txt");
        std::fs::write(&not_pem, "oidc-key-456").expect("write key");
        let with_key = |key: &str| {
            Config::load(
                None,
                env_of(&[
                    ("PORTICO_OIDC_ISSUER", "https://auth.login.nhs.uk"),
                    ("PORTICO_OIDC_CLIENT_ID", "portico"),
                    ("PORTICO_OIDC_KEY", key),
                ]),
            )
        };
        let config = with_key(&pem_file.display().to_string()).expect("a PEM file");
        assert_eq!(
            config.oidc_key.as_ref().map(|k| k.expose().as_str()),
            Some(FAKE_PEM)
        );
        let e = config_error(with_key(&not_pem.display().to_string()));
        assert!(
            e.to_string()
                .starts_with("PORTICO_OIDC_KEY: the file it names is not PEM"),
            "{e}"
        );
        assert!(!e.to_string().contains("oidc-key-456"), "{e}");
        // A key pasted without its PEM lines is taken for a path, and not echoed.
        let e = config_error(with_key(
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC",
        ));
        let message = e.to_string();
        assert!(
            message.starts_with("PORTICO_OIDC_KEY: cannot read the key file it names"),
            "{message}"
        );
        assert!(!message.contains("MIIEvQ"), "{message}");
    }

    #[test]
    fn export_dir_defaults_beside_the_sqlite_file_and_can_be_set() {
        let config = Config::load(
            None,
            env_of(&[("PORTICO_DATABASE_URL", "sqlite:///srv/p/portico.db")]),
        )
        .expect("config");
        assert_eq!(config.export_dir, PathBuf::from("/srv/p/portico-export"));
        let config = Config::load(
            None,
            env_of(&[("PORTICO_DATABASE_URL", "sqlite://portico.db")]),
        )
        .expect("config");
        assert_eq!(config.export_dir, PathBuf::from("./portico-export"));
        let config = Config::load(
            None,
            env_of(&[
                ("PORTICO_DATABASE_URL", "postgres://u@h/db"),
                ("PORTICO_EXPORT_DIR", "/var/exports"),
            ]),
        )
        .expect("config");
        assert_eq!(config.export_dir, PathBuf::from("/var/exports"));
        let (_dir, path) = file_with("export_dir = \"/srv/x\"\n");
        let config = Config::load(Some(&path), env_of(&[])).expect("config");
        assert_eq!(config.export_dir, PathBuf::from("/srv/x"));
    }

    #[test]
    fn bad_log_filter_and_body_size_are_refused() {
        let e = config_error(Config::load(None, env_of(&[("PORTICO_LOG", "info,=[")])));
        assert!(
            e.to_string().starts_with("PORTICO_LOG: invalid log filter"),
            "{e}"
        );
        let e = config_error(Config::load(
            None,
            env_of(&[("PORTICO_MAX_BODY_BYTES", "lots")]),
        ));
        assert!(e.to_string().starts_with("PORTICO_MAX_BODY_BYTES: "), "{e}");
    }
}
