//! The HTTP face of Portico: the FHIR R4 REST API (`/fhir`, with `Patient/$everything` in
//! [`everything`] and Bulk Data export in [`export`]), the OAuth2 client-credentials token
//! endpoint (`/oauth/token`) and health checks (`/healthz`, `/readyz`).
//!
//! The way of a request: [`router`] → middleware (request id, access log, panic guard, body
//! limit) → handler in [`rest`] or [`batch`] (parses the request into domain values) →
//! the access policy ([`access`]: a filter in the query, an audit record) → [`store::Store`] →
//! a [`http::Reply`] turned into the response. Errors of
//! every layer are one [`WebError`], answered as an OperationOutcome.
//!
//! Access log: every request is logged at the end with method, route template, status, latency
//! and request id only (never a URL with its query, a header or a body, which could hold patient
//! data): 5xx at `error`, 4xx at `info`, the rest at `debug` (target `web::access`).

pub mod access;
pub mod access_log;
pub mod auth;
pub mod batch;
pub mod bundle;
pub mod capability;
pub mod client_ip;
pub mod clock;
pub mod csrf;
pub mod error;
pub mod everything;
pub mod export;
pub mod http;
pub mod passkeys;
pub mod patient_record;
pub mod rest;
pub mod session;
pub mod signin;
pub mod smart;
pub mod ui;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use store::query::ParseOptions;
use store::Store;
use tower_http::catch_panic::CatchPanicLayer;

pub use auth::{hash_secret, new_client_credentials, parse_scopes};
pub use error::WebError;

/// The media type of every FHIR response.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// The server's public base URL without a trailing slash, e.g. `http://127.0.0.1:8080`: used
    /// in `Location`, `fullUrl` and paging links.
    pub public_url: String,
    /// Largest request body accepted (bytes); larger ones get 413.
    pub max_body_bytes: usize,
    /// Lifetime of an access token (seconds).
    pub token_ttl_secs: u64,
    /// Page size of a search without `_count`.
    pub default_count: usize,
    /// Largest page a search may ask for with `_count`.
    pub max_count: usize,
    /// Most resources one `_revinclude` adds to a search page; past it the Bundle carries a
    /// warning saying the included resources were cut short.
    pub revinclude_limit: usize,
    /// Where Bulk Data exports write their NDJSON files, a folder per job (`PORTICO_EXPORT_DIR`).
    pub export_dir: std::path::PathBuf,
    /// Resources per NDJSON file of an export; a type with more is split over several files.
    pub export_file_resources: usize,
    /// How long a finished export's files are kept (seconds); a later kick-off removes older ones.
    pub export_retention_secs: u64,
    /// Proxies or load balancers in front that append the client's address to
    /// `X-Forwarded-For` (0: clients connect directly); see [`client_ip`].
    pub trusted_proxy_hops: usize,
    /// Sign-in with NHS login; None: off ([`signin::nhs_login`]).
    pub nhs_login: Option<signin::nhs_login::NhsLoginConfig>,
}

/// The export folder when none is configured: `portico-export` in the system's temporary
/// directory.
pub fn default_export_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("portico-export")
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            public_url: "http://127.0.0.1:8080".to_string(),
            max_body_bytes: 10 * 1024 * 1024,
            token_ttl_secs: 900,
            default_count: 50,
            max_count: 1000,
            revinclude_limit: store::search::REVINCLUDE_LIMIT,
            export_dir: default_export_dir(),
            export_file_resources: 100_000,
            export_retention_secs: 24 * 3600,
            trusted_proxy_hops: 0,
            nhs_login: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<WebConfig>,
    pub(crate) signer: Arc<auth::TokenSigner>,
    /// `{public_url}/fhir`.
    pub(crate) base: Arc<str>,
    /// The CapabilityStatement, rendered once.
    pub(crate) capability: axum::body::Bytes,
    /// Bulk Data exports running in this process.
    pub(crate) exports: Arc<export::runner::Registry>,
    /// Where "now" comes from ([`clock`]): the system clock, or a test's.
    pub clock: Arc<dyn clock::Clock>,
    /// How passwords are hashed (Argon2id; cheaper parameters in tests).
    pub passwords: Arc<identity::password::PasswordPolicy>,
    /// The cookies' names and attributes, from the public URL's scheme ([`session`]).
    cookies: session::Cookies,
    /// SMART on FHIR: the id_token key and issuer ([`smart`]).
    pub(crate) smart: Arc<smart::SmartState>,
    /// NHS login, when configured: the provider's client once discovered.
    pub(crate) nhs_login: Option<Arc<signin::nhs_login::NhsLogin>>,
}

impl AppState {
    /// Loads the token signing key from the store and builds the CapabilityStatement.
    pub async fn new(store: Arc<dyn Store>, config: Arc<WebConfig>) -> Result<AppState, WebError> {
        let key = store.signing_key().await?;
        let signer = auth::TokenSigner::new(&key)?;
        let public_url = config.public_url.trim_end_matches('/');
        let base: Arc<str> = format!("{public_url}/fhir").into();
        let capability = axum::body::Bytes::from(capability::capability_statement(public_url));
        let cookies = session::Cookies::for_public_url(public_url);
        let smart = Arc::new(smart::SmartState::load(store.as_ref(), public_url).await?);
        let nhs_login = config
            .nhs_login
            .as_ref()
            .map(|c| signin::nhs_login::NhsLogin::new(c, public_url, &key).map(Arc::new))
            .transpose()?;
        Ok(AppState {
            store,
            config,
            signer: Arc::new(signer),
            base,
            capability,
            exports: Arc::new(export::runner::Registry::default()),
            clock: Arc::new(clock::SystemClock),
            passwords: Arc::new(identity::password::PasswordPolicy::portico()),
            cookies,
            smart,
            nhs_login,
        })
    }

    /// The same state reading time from `clock` (tests move a [`clock::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn clock::Clock>) -> AppState {
        self.clock = clock;
        self
    }

    /// The same state hashing passwords with `policy`.
    pub fn with_password_policy(mut self, policy: identity::password::PasswordPolicy) -> AppState {
        self.passwords = Arc::new(policy);
        self
    }

    /// The current time, from the state's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The cookies' names and attributes.
    pub fn cookies(&self) -> session::Cookies {
        self.cookies
    }

    /// What runs (and removes) Bulk Data exports.
    pub(crate) fn export_runner(&self) -> export::runner::Runner {
        export::runner::Runner {
            store: self.store.clone(),
            registry: self.exports.clone(),
            dir: self.config.export_dir.clone(),
            file_resources: self.config.export_file_resources,
        }
    }

    /// Whether a finished (or abandoned) export has outlived `export_retention_secs`.
    pub(crate) fn export_expired(
        &self,
        job: &export::job::Job,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let retention = i64::try_from(self.config.export_retention_secs).unwrap_or(i64::MAX);
        let since = |t: chrono::DateTime<chrono::Utc>| now.signed_duration_since(t).num_seconds();
        match job.status {
            export::job::Status::Running => job.is_stale(now) && since(job.heartbeat) >= retention,
            _ => job.finished_at.is_some_and(|t| since(t) >= retention),
        }
    }

    /// How many Bulk Data exports run in this process (e.g. for a graceful stop to wait on).
    pub fn running_exports(&self) -> usize {
        self.exports.len()
    }

    /// How searches are parsed on this server.
    pub fn parse_options(&self, lenient: bool) -> ParseOptions {
        ParseOptions {
            lenient,
            base_url: Some(self.base.to_string()),
            default_count: self.config.default_count,
            max_count: self.config.max_count,
            revinclude_limit: self.config.revinclude_limit,
        }
    }

    /// Issues an access token (as the token endpoint does), e.g. for tests and tools.
    pub fn issue_token(&self, client_id: &str, scopes: &str) -> Result<String, WebError> {
        self.signer.issue(
            client_id,
            scopes,
            self.config.token_ttl_secs,
            chrono::Utc::now().timestamp(),
        )
    }
}

/// The web pages (sign-in for now) and their stylesheet, with the pages' security headers.
fn pages(state: &AppState) -> Router<AppState> {
    signin::routes()
        .merge(access_log::routes())
        .merge(signin::nhs_login::routes())
        .merge(passkeys::routes())
        .route(ui::assets::STYLESHEET_PATH, get(ui::assets::stylesheet))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ui::headers::security_headers,
        ))
}

/// Every route of the HTTP API and the web pages.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(pages(&state))
        .merge(smart::routes(&state))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/oauth/token", post(auth::token_endpoint))
        .route("/fhir", post(batch::bundle))
        .route("/fhir/metadata", get(metadata))
        .route("/fhir/_history", get(rest::history_system))
        .route("/fhir/$export", get(export::system_kick_off))
        .route(
            "/fhir/$export-status/{job}",
            get(export::status).delete(export::cancel),
        )
        .route("/fhir/$export-file/{job}/{file}", get(export::file))
        .route("/fhir/Patient/$export", get(export::patient_kick_off))
        .route("/fhir/Group/{id}/$export", get(export::group_kick_off))
        .route(
            "/fhir/Patient/{id}/$everything",
            get(everything::everything),
        )
        .route(
            "/fhir/{type}",
            get(rest::search_get)
                .post(rest::create)
                .put(rest::conditional_update)
                .delete(rest::conditional_delete),
        )
        .route("/fhir/{type}/_search", post(rest::search_post))
        .route("/fhir/{type}/_history", get(rest::history_type))
        .route(
            "/fhir/{type}/{id}",
            get(rest::read).put(rest::update).delete(rest::delete),
        )
        .route("/fhir/{type}/{id}/_history", get(rest::history_instance))
        .route("/fhir/{type}/{id}/_history/{vid}", get(rest::vread))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in flight.
/// Meanwhile this process's export worker claims and runs Bulk Data export jobs
/// ([`export::worker`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|stream| {
        // Small responses must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
    });
    let worker = export::worker::Worker::new(&state, Default::default()).spawn();
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    worker.stop().await;
    served
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            let id = error::current_request_id();
            tracing::warn!(request_id = id.as_deref().unwrap_or("-"), error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is not reachable",
            )
                .into_response()
        }
    }
}

async fn metadata(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    let params = http::parse_query(query.as_deref())?;
    http::negotiate(&headers, &params)?;
    let mut res = (StatusCode::OK, state.capability.clone()).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Ok(res)
}

async fn no_route(uri: axum::http::Uri) -> WebError {
    WebError::NoRoute(uri.path().to_string())
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> WebError {
    WebError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panic message is not logged: it could quote request data.
    WebError::Internal(
        "the server hit an unexpected fault while answering; it has been logged".into(),
    )
    .into_response()
}

/// A client-supplied request id is kept when it is short and plain; otherwise a new one is made.
fn acceptable_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_request_id() -> Arc<str> {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| format!("{:08x}", rand::random::<u32>()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{n:x}").into()
}

/// Gives every request an id (kept from `X-Request-Id` or made), makes it current for the
/// request's errors, echoes it in the response, and logs the request.
async fn request_context(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(Arc::<str>::from)
        .unwrap_or_else(new_request_id);
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut res = error::REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    let status = res.status().as_u16();
    let route = route.as_ref().map(MatchedPath::as_str).unwrap_or("-");
    let micros = start.elapsed().as_micros() as u64;
    let id = &*id;
    if status >= 500 {
        tracing::error!(target: "web::access", request_id = id, %method, route, status, micros, "request");
    } else if status >= 400 {
        tracing::info!(target: "web::access", request_id = id, %method, route, status, micros, "request");
    } else {
        tracing::debug!(target: "web::access", request_id = id, %method, route, status, micros, "request");
    }
    res
}
