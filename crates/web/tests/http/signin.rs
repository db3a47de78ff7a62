//! Web sign-in over HTTP, on every available backend: password + TOTP, generic failures,
//! lockout across two server instances, per-IP limits, TOTP replay, recovery codes, session
//! fixation, idle and absolute expiry (on an injected clock), sign-out everywhere, CSRF, open
//! redirects, and the audit records of it all. A module of the `http` test binary.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use identity::password::PasswordPolicy;
use identity::totp::{self, Secret};
use store::accounts::{Account, IdentityLevel, Role};
use store::audit::{AuditAction, AuditOutcome, AuditRecord};
use store::Store;
use web::clock::ManualClock;
use web::signin::provision::{self, NewAccount};
use web::{AppState, WebConfig};

pub(crate) const PASSWORD: &str = "kettle orbit violet 42";

/// Cheap Argon2 for tests (the real cost would make every sign-in take a second unoptimised).
pub(crate) fn cheap() -> PasswordPolicy {
    PasswordPolicy::with_params(8, 1, 1).expect("valid params")
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).expect("valid time")
}

/// A database that a second server instance can open too.
pub(crate) struct Db {
    pub backend: &'static str,
    pub store: Arc<dyn Store>,
    second: Second,
    _dir: Option<tempfile::TempDir>,
}

enum Second {
    Sqlite(String),
    Postgres(String),
}

impl Db {
    /// Another store on the same database: what a second server instance would have.
    pub async fn open_again(&self) -> Arc<dyn Store> {
        match &self.second {
            Second::Sqlite(url) => {
                Arc::new(store_sqlite::SqliteStore::open(url, false).expect("open SQLite again"))
            }
            Second::Postgres(url) => Arc::new(
                store_postgres::PgStore::connect(url)
                    .await
                    .expect("connect PostgreSQL again"),
            ),
        }
    }
}

fn url_for_database(admin: &str, database: &str) -> String {
    let base = admin.split('?').next().unwrap_or(admin);
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    format!("{host_part}/{database}")
}

pub(crate) async fn databases() -> Vec<Db> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("portico.db").display());
    let sqlite = store_sqlite::SqliteStore::open(&url, true).expect("open SQLite store");
    out.push(Db {
        backend: "sqlite",
        store: Arc::new(sqlite),
        second: Second::Sqlite(url),
        _dir: Some(dir),
    });
    if let Ok(admin) = std::env::var("PORTICO_TEST_POSTGRES_URL") {
        let pg = store_postgres::PgStore::connect_fresh_for_tests(&admin)
            .await
            .expect("connect to PostgreSQL (PORTICO_TEST_POSTGRES_URL)");
        let url = url_for_database(&admin, pg.database());
        out.push(Db {
            backend: "postgres",
            store: Arc::new(pg),
            second: Second::Postgres(url),
            _dir: None,
        });
    }
    out
}

/// A running server with a manual clock.
pub(crate) struct App {
    pub backend: &'static str,
    pub base: String,
    pub state: AppState,
    pub clock: ManualClock,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub(crate) async fn start_app(
    backend: &'static str,
    store: Arc<dyn Store>,
    clock: ManualClock,
    config: WebConfig,
) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let config = WebConfig {
        public_url: format!("http://{addr}"),
        ..config
    };
    let state = AppState::new(store, Arc::new(config))
        .await
        .expect("app state")
        .with_clock(Arc::new(clock.clone()))
        .with_password_policy(cheap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve_state = state.clone();
    tokio::spawn(async move {
        let _ = web::serve(listener, serve_state, async {
            let _ = rx.await;
        })
        .await;
    });
    App {
        backend,
        base: format!("http://{addr}"),
        state,
        clock,
        _shutdown: tx,
    }
}

/// One app per available backend, each with its own database and clock at [`t0`].
pub(crate) async fn apps() -> Vec<(App, Db)> {
    let mut out = Vec::new();
    for db in databases().await {
        let app = start_app(
            db.backend,
            db.store.clone(),
            ManualClock::starting_at(t0()),
            WebConfig::default(),
        )
        .await;
        out.push((app, db));
    }
    out
}

impl App {
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.state.now()
    }

    /// Creates an account directly (password [`PASSWORD`]), with TOTP when `totp`.
    pub async fn account(
        &self,
        username: &str,
        role: Role,
        totp: bool,
    ) -> (Account, Option<Secret>) {
        let secret = totp.then(Secret::generate);
        let new = NewAccount {
            username: username.into(),
            role: Some(role),
            totp_secret: secret.as_ref().map(|s| s.to_base32()),
            identity_level: Some(IdentityLevel::P9),
            ..NewAccount::default()
        };
        let account = provision::create_account(
            self.state.store.as_ref(),
            &cheap(),
            new,
            PASSWORD,
            self.now(),
        )
        .await
        .expect("store")
        .expect("account accepted");
        (account, secret)
    }

    pub async fn stored(&self, account_id: &str) -> Account {
        self.state
            .store
            .accounts()
            .account_by_id(account_id)
            .await
            .expect("read account")
            .expect("account exists")
    }

    /// The code an authenticator app shows now (on the app's clock).
    pub fn code(&self, secret: &Secret) -> String {
        totp::code_at(secret, self.now().timestamp()).expect("a code")
    }

    /// Every audit record so far (sealed into the chain first, on backends that chain later).
    pub async fn audit(&self) -> Vec<AuditRecord> {
        self.state.store.seal_audit().await.expect("seal audit");
        self.state
            .store
            .audit_chain(0, 10_000)
            .await
            .expect("audit chain")
            .iter()
            .map(|e| e.record().expect("audit record"))
            .collect()
    }

    pub async fn audit_of(&self, account_id: &str, action: AuditAction) -> Vec<AuditRecord> {
        self.audit()
            .await
            .into_iter()
            .filter(|r| r.agent == account_id && r.action == action)
            .collect()
    }
}

/// A browser: keeps cookies (as a browser would for an http origin), follows no redirects.
pub(crate) struct Browser {
    base: String,
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the hidden (or other) input `name` of the form that posts to `action`.
    pub fn field(&self, action: &str, name: &str) -> String {
        let start = self
            .body
            .find(&format!("action=\"{action}\""))
            .unwrap_or_else(|| panic!("no form for {action}: {}", self.body));
        let form = &self.body[start..];
        let form = &form[..form.find("</form>").unwrap_or(form.len())];
        let needle = format!("name=\"{name}\"");
        let at = form
            .find(&needle)
            .unwrap_or_else(|| panic!("no field {name} in the form for {action}"));
        let after = &form[at..];
        let v = after.find("value=\"").expect("a value") + 7;
        let end = after[v..].find('"').expect("closing quote");
        after[v..v + end].to_string()
    }

    pub fn csrf(&self, action: &str) -> String {
        self.field(action, "csrf")
    }

    pub fn title(&self) -> String {
        let s = self.body.find("<title>").expect("a title") + 7;
        let e = self.body.find("</title>").expect("title end");
        self.body[s..e].to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.cookies.get("portico-session").cloned()
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let rb = if self.cookies.is_empty() {
            rb
        } else {
            rb.header("cookie", self.cookie_header())
        };
        let res = rb.send().await.expect("request sent");
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().expect("ascii cookie");
            let first = v.split(';').next().unwrap_or_default();
            let (name, value) = first.split_once('=').expect("name=value");
            if v.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = res.text().await.expect("body");
        Page {
            status,
            location,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let rb = self.http.get(format!("{}{path}", self.base));
        self.send(rb).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let rb = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(rb).await
    }

    /// The password step with a fresh form; the answer.
    pub async fn password_step(&mut self, username: &str, password: &str, next: &str) -> Page {
        let form = self.get(&format!("/login?next={next}")).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf("/login");
        let next_field = form.field("/login", "next");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
                ("next", &next_field),
            ],
        )
        .await
    }

    /// The second-factor step with `code` (or a recovery code); the answer.
    pub async fn second_factor(&mut self, code: &str, recovery: bool) -> Page {
        let form = self.get("/login/second-factor").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf("/login/second-factor");
        let (method, field) = if recovery {
            ("recovery", "recovery_code")
        } else {
            ("totp", "code")
        };
        self.post(
            "/login/second-factor",
            &[
                ("csrf", &csrf),
                ("method", method),
                (field, code),
                ("next", ""),
            ],
        )
        .await
    }

    /// A complete sign-in; panics unless it lands on the account page.
    pub async fn sign_in(&mut self, app: &App, username: &str, secret: &Secret) {
        let p = self.password_step(username, PASSWORD, "").await;
        assert_eq!(p.status, 303, "[{}] password step: {}", app.backend, p.body);
        assert_eq!(p.location.as_deref(), Some("/login/second-factor"));
        let p = self.second_factor(&app.code(secret), false).await;
        assert_eq!(p.status, 303, "[{}] second factor: {}", app.backend, p.body);
        assert_eq!(p.location.as_deref(), Some("/account"));
    }

    pub async fn sign_out(&mut self) -> Page {
        let account = self.get("/account").await;
        let csrf = account.csrf("/logout");
        self.post("/logout", &[("csrf", &csrf)]).await
    }
}

fn count(records: &[AuditRecord], action: AuditAction, outcome: AuditOutcome) -> usize {
    records
        .iter()
        .filter(|r| r.action == action && r.outcome == outcome)
        .count()
}

// ----- the pages themselves -----

#[tokio::test]
async fn sign_in_page_is_accessible_html_with_the_security_headers() {
    for (app, _db) in apps().await {
        let mut b = app.browser();
        let p = b.get("/login").await;
        assert_eq!(p.status, 200, "[{}]", app.backend);
        assert_eq!(p.title(), "Sign in – Portico");
        assert!(p.body.contains("<html lang=\"en-GB\">"));
        assert!(p.body.contains("href=\"#main-content\""), "skip link");
        assert!(p.body.contains("autocomplete=\"username\""));
        assert!(p.body.contains("autocomplete=\"current-password\""));
        assert!(p.body.contains("<label class=\"label\" for=\"username\">"));
        assert!(!p.body.contains("<script"), "no script");
        assert!(!p.body.contains("style="), "no inline style");
        assert_eq!(
            p.header("content-security-policy").as_deref(),
            Some(web::ui::headers::CONTENT_SECURITY_POLICY)
        );
        assert!(!web::ui::headers::CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert_eq!(
            p.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(p.header("referrer-policy").as_deref(), Some("no-referrer"));
        assert_eq!(p.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(
            p.header("strict-transport-security"),
            None,
            "no HSTS on plain http"
        );
        let css = p.body.split("href=\"/assets/portico.css?v=").nth(1);
        assert!(css.is_some(), "the layout links the stylesheet");
        assert!(b.cookies.contains_key("portico-presession"));

        let css = b.get("/assets/portico.css").await;
        assert_eq!(css.status, 200);
        assert!(css
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/css"));
        assert!(css
            .header("cache-control")
            .unwrap_or_default()
            .contains("max-age=31536000"));
        assert!(css.body.contains(":focus"));
    }
}

#[tokio::test]
async fn https_public_url_brings_hsts_and_host_prefixed_secure_cookies() {
    let db = databases().await.remove(0);
    let app = start_app(
        db.backend,
        db.store.clone(),
        ManualClock::starting_at(t0()),
        WebConfig::default(),
    )
    .await;
    // The same store behind a state whose public URL is https.
    let config = WebConfig {
        public_url: "https://portal.example.nhs.uk".into(),
        ..WebConfig::default()
    };
    let state = AppState::new(app.state.store.clone(), Arc::new(config))
        .await
        .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(web::serve(listener, state, async {
        let _ = rx.await;
    }));
    let res = reqwest::get(format!("http://{addr}/login"))
        .await
        .expect("get");
    assert_eq!(
        res.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some(web::ui::headers::STRICT_TRANSPORT_SECURITY)
    );
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.starts_with("__Host-portico-presession="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/")
    );
}

// ----- password + TOTP -----

#[tokio::test]
async fn sign_in_with_password_and_totp_reaches_the_account_page_and_is_audited() {
    for (app, _db) in apps().await {
        let (account, secret) = app.account("alice", Role::Patient, true).await;
        let secret = secret.expect("totp");
        let mut b = app.browser();
        b.sign_in(&app, "Alice", &secret).await;
        let page = b.get("/account").await;
        assert_eq!(page.status, 200, "[{}] {}", app.backend, page.body);
        assert_eq!(page.title(), "Your account – Portico");
        assert!(page.body.contains(">alice<"));
        assert!(page.body.contains(">Patient<"));
        assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
        let signed_in = app.audit_of(&account.account_id, AuditAction::SignIn).await;
        assert_eq!(signed_in.len(), 1, "[{}]", app.backend);
        assert_eq!(signed_in[0].outcome, AuditOutcome::Success);
        assert_eq!(signed_in[0].source.as_deref(), Some("127.0.0.1"));
        // Signing out is recorded, and the account page is then out of reach.
        let out = b.sign_out().await;
        assert_eq!(out.status, 303);
        let after = b.get("/account").await;
        assert_eq!(after.status, 303);
        assert_eq!(after.location.as_deref(), Some("/login"));
        // Any other page comes back to itself after signing in.
        let p = b.get("/account/password").await;
        assert_eq!(p.location.as_deref(), Some("/login?next=/account/password"));
        assert_eq!(
            app.audit_of(&account.account_id, AuditAction::SignOut)
                .await
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_generic_answer() {
    for (app, _db) in apps().await {
        let (account, _) = app.account("bob", Role::Clinician, true).await;
        let mut b = app.browser();
        let wrong = b.password_step("bob", "not the password at all", "").await;
        let unknown = b.password_step("nobody-here", PASSWORD, "").await;
        for p in [&wrong, &unknown] {
            assert_eq!(p.status, 401, "[{}] {}", app.backend, p.body);
            assert_eq!(p.title(), "Error: Sign in – Portico");
            assert!(p.body.contains("Enter a correct username and password"));
            assert!(
                p.body.contains("href=\"#username\""),
                "error summary links the field"
            );
            assert!(b.session_cookie().is_none());
        }
        // Disabled accounts answer the same.
        app.state
            .store
            .accounts()
            .set_account_status(
                &account.account_id,
                store::accounts::AccountStatus::Disabled,
                app.now(),
            )
            .await
            .expect("disable");
        let disabled = b.password_step("bob", PASSWORD, "").await;
        assert_eq!(disabled.status, 401);
        assert!(disabled
            .body
            .contains("Enter a correct username and password"));
        let records = app.audit().await;
        assert_eq!(
            count(&records, AuditAction::SignInFailed, AuditOutcome::Denied),
            3,
            "[{}]",
            app.backend
        );
        assert!(records.iter().any(|r| r.agent == "unknown"));
        // The username typed is never recorded.
        assert!(!records.iter().any(|r| r.detail().contains("nobody-here")));
    }
}

#[tokio::test]
async fn empty_fields_are_named_in_the_error_summary() {
    for (app, _db) in apps().await {
        let mut b = app.browser();
        let p = b.password_step("", "", "").await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("Enter your username"));
        assert!(p.body.contains("Enter your password"));
        assert!(p.body.contains("href=\"#password\""));
        assert!(p.body.contains("id=\"password-error\""));
    }
}

#[tokio::test]
async fn lockout_after_five_failures_holds_across_two_instances_and_ends_in_15_minutes() {
    for db in databases().await {
        let clock = ManualClock::starting_at(t0());
        let a = start_app(
            db.backend,
            db.store.clone(),
            clock.clone(),
            WebConfig::default(),
        )
        .await;
        let b_store = db.open_again().await;
        let b = start_app(db.backend, b_store, clock.clone(), WebConfig::default()).await;
        let (account, secret) = a.account("carol", Role::Patient, true).await;
        let secret = secret.expect("totp");
        let (mut on_a, mut on_b) = (a.browser(), b.browser());
        for _ in 0..3 {
            assert_eq!(
                on_a.password_step("carol", "wrong password one", "")
                    .await
                    .status,
                401
            );
        }
        for _ in 0..2 {
            assert_eq!(
                on_b.password_step("carol", "wrong password two", "")
                    .await
                    .status,
                401
            );
        }
        let stored = a.stored(&account.account_id).await;
        assert_eq!(
            stored.locked_until,
            Some(t0() + TimeDelta::minutes(15)),
            "[{}]",
            db.backend
        );
        // The right password on either instance now gets the generic answer.
        for browser in [&mut on_a, &mut on_b] {
            let p = browser.password_step("carol", PASSWORD, "").await;
            assert_eq!(p.status, 401, "[{}] locked: {}", db.backend, p.body);
            assert!(p.body.contains("Enter a correct username and password"));
        }
        assert!(a
            .audit()
            .await
            .iter()
            .any(|r| r.agent == account.account_id && r.entity.as_deref() == Some("lockout")));
        clock.advance(TimeDelta::minutes(15));
        on_b.sign_in(&b, "carol", &secret).await;
        let stored = a.stored(&account.account_id).await;
        assert_eq!((stored.failed_sign_ins, stored.locked_until), (0, None));
    }
}

#[tokio::test]
async fn the_per_ip_limit_stops_the_21st_attempt_in_five_minutes() {
    for (app, _db) in apps().await {
        app.account("dave", Role::Patient, true).await;
        let mut b = app.browser();
        for i in 0..20 {
            // Different usernames: the per-account lockout is not what stops this.
            let p = b
                .password_step(&format!("guess{i}"), "some wrong password", "")
                .await;
            assert_eq!(p.status, 401, "[{}] attempt {i}", app.backend);
        }
        let p = b.password_step("dave", PASSWORD, "").await;
        assert_eq!(p.status, 429, "[{}] {}", app.backend, p.body);
        assert!(p.body.contains("Too many attempts"));
        assert!(b.session_cookie().is_none());
        app.clock.advance(TimeDelta::minutes(5));
        let p = b.password_step("dave", PASSWORD, "").await;
        assert_eq!(p.status, 303, "[{}] a new window", app.backend);
    }
}

#[tokio::test]
async fn a_totp_code_is_accepted_once() {
    for (app, _db) in apps().await {
        let (_, secret) = app.account("erin", Role::Proxy, true).await;
        let secret = secret.expect("totp");
        let code = app.code(&secret);
        let mut first = app.browser();
        first.sign_in(&app, "erin", &secret).await;
        // The same code again (same 30 s step), from another browser.
        let mut second = app.browser();
        let p = second.password_step("erin", PASSWORD, "").await;
        assert_eq!(p.status, 303);
        let p = second.second_factor(&code, false).await;
        assert_eq!(p.status, 401, "[{}] replay: {}", app.backend, p.body);
        assert!(p.body.contains("already been used"));
        // The next step's code works.
        app.clock.advance(TimeDelta::seconds(30));
        let p = second.second_factor(&app.code(&secret), false).await;
        assert_eq!(p.status, 303, "[{}] {}", app.backend, p.body);
        // A wrong code is refused and counted.
        let mut third = app.browser();
        third.password_step("erin", PASSWORD, "").await;
        let p = third.second_factor("000000", false).await;
        let p = if p.status == 303 {
            // 000000 was by chance right: try another.
            third.second_factor("999999", false).await
        } else {
            p
        };
        assert_eq!(p.status, 401);
    }
}

#[tokio::test]
async fn second_factor_attempts_are_limited_per_account() {
    for (app, _db) in apps().await {
        let (_, secret) = app.account("fay", Role::Patient, true).await;
        let secret = secret.expect("totp");
        let mut b = app.browser();
        b.password_step("fay", PASSWORD, "").await;
        let right = app.code(&secret);
        let wrong = if right == "123456" {
            "654321"
        } else {
            "123456"
        };
        for _ in 0..4 {
            assert_eq!(b.second_factor(wrong, false).await.status, 401);
        }
        // The fifth failure locks the account (lockout counts second-factor failures too).
        assert_eq!(b.second_factor(wrong, false).await.status, 401);
        let p = b.second_factor(&right, false).await;
        assert_eq!(p.status, 429, "[{}] {}", app.backend, p.body);
    }
}

// ----- set-up and recovery codes -----

/// Signs in an account without TOTP and sets it up; the secret and the recovery codes.
async fn set_up_totp(app: &App, b: &mut Browser, username: &str) -> (Secret, Vec<String>) {
    let p = b.password_step(username, PASSWORD, "").await;
    assert_eq!(p.status, 303, "[{}] {}", app.backend, p.body);
    assert_eq!(p.location.as_deref(), Some("/account/totp"));
    // No access before the second factor is set up.
    let blocked = b.get("/account").await;
    assert_eq!(blocked.status, 303);
    assert_eq!(blocked.location.as_deref(), Some("/login/second-factor"));
    let to_setup = b.get("/login/second-factor").await;
    assert_eq!(to_setup.location.as_deref(), Some("/account/totp"));
    let setup = b.get("/account/totp").await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    assert_eq!(setup.title(), "Set up your authenticator app – Portico");
    assert!(setup.body.contains("otpauth://totp/Portico:"));
    assert!(setup.body.contains("src=\"data:image/svg+xml;base64,"));
    let secret_text = setup.field("/account/totp", "secret");
    let secret = Secret::from_base32(&secret_text).expect("a base32 secret");
    let csrf = setup.csrf("/account/totp");
    let mac = setup.field("/account/totp", "secret_mac");
    // A secret of the attacker's choosing is refused.
    let forged = Secret::generate();
    let p = b
        .post(
            "/account/totp",
            &[
                ("csrf", &csrf),
                ("secret", &forged.to_base32()),
                ("secret_mac", &mac),
                ("code", &app.code(&forged)),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    let before = b.session_cookie();
    let done = b
        .post(
            "/account/totp",
            &[
                ("csrf", &csrf),
                ("secret", &secret_text),
                ("secret_mac", &mac),
                ("code", &app.code(&secret)),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "[{}] {}", app.backend, done.body);
    assert_eq!(done.title(), "Save your recovery codes – Portico");
    assert_ne!(
        b.session_cookie(),
        before,
        "a new session once the second factor is done"
    );
    let list = done
        .body
        .split("id=\"recovery-codes\">")
        .nth(1)
        .expect("codes");
    let list = &list[..list.find("</ul>").expect("end")];
    let codes: Vec<String> = list
        .split("<li>")
        .skip(1)
        .map(|c| {
            c.split("</li>")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

#[tokio::test]
async fn an_account_without_totp_sets_it_up_first_and_a_recovery_code_works_once() {
    for (app, _db) in apps().await {
        let (account, _) = app.account("gus", Role::Admin, false).await;
        let mut b = app.browser();
        let (secret, codes) = set_up_totp(&app, &mut b, "gus").await;
        assert_eq!(b.get("/account").await.status, 200);
        assert!(app.stored(&account.account_id).await.totp_secret.is_some());
        b.sign_out().await;

        let mut c = app.browser();
        assert_eq!(c.password_step("gus", PASSWORD, "").await.status, 303);
        let p = c.second_factor(&codes[3].to_uppercase(), true).await;
        assert_eq!(p.status, 303, "[{}] recovery: {}", app.backend, p.body);
        c.sign_out().await;
        let mut d = app.browser();
        d.password_step("gus", PASSWORD, "").await;
        let p = d.second_factor(&codes[3], true).await;
        assert_eq!(p.status, 401, "[{}] a used recovery code", app.backend);
        assert!(p.body.contains("recovery code you have not used"));
        app.clock.advance(TimeDelta::seconds(30));
        assert_eq!(d.second_factor(&app.code(&secret), false).await.status, 303);
        let changes = app
            .audit_of(&account.account_id, AuditAction::CredentialChange)
            .await;
        assert_eq!(changes.len(), 1, "the set-up is recorded");
    }
}

// ----- sessions -----

#[tokio::test]
async fn the_session_token_changes_at_each_step_and_old_ones_are_dead() {
    for (app, _db) in apps().await {
        let (_, secret) = app.account("hal", Role::Patient, true).await;
        let secret = secret.expect("totp");
        let mut b = app.browser();
        // A token planted before sign-in (e.g. by an attacker) is not the one after it.
        b.cookies
            .insert("portico-session".into(), identity::token::new_token());
        let planted = b.session_cookie();
        let p = b.password_step("hal", PASSWORD, "").await;
        assert_eq!(p.status, 303);
        let half = b.session_cookie();
        assert!(half.is_some() && half != planted);
        let p = b.second_factor(&app.code(&secret), false).await;
        assert_eq!(p.status, 303);
        let full = b.session_cookie();
        assert!(full.is_some() && full != half);
        // The half-signed-in token is dead.
        let mut old = app.browser();
        old.cookies
            .insert("portico-session".into(), half.unwrap_or_default());
        let p = old.get("/account").await;
        assert_eq!(p.status, 303);
        assert_eq!(p.location.as_deref(), Some("/login"));
        // After signing out the full token is dead too.
        let mut copy = app.browser();
        copy.cookies
            .insert("portico-session".into(), full.unwrap_or_default());
        assert_eq!(copy.get("/account").await.status, 200);
        b.sign_out().await;
        assert_eq!(copy.get("/account").await.status, 303, "[{}]", app.backend);
    }
}

#[tokio::test]
async fn sessions_end_after_30_idle_minutes_and_12_hours_in_all() {
    for (app, _db) in apps().await {
        let (_, secret) = app.account("ivy", Role::Patient, true).await;
        let secret = secret.expect("totp");
        let mut b = app.browser();
        b.sign_in(&app, "ivy", &secret).await;
        app.clock.advance(TimeDelta::minutes(29));
        assert_eq!(
            b.get("/account").await.status,
            200,
            "[{}] 29 idle minutes",
            app.backend
        );
        app.clock.advance(TimeDelta::minutes(29));
        assert_eq!(
            b.get("/account").await.status,
            200,
            "[{}] touched",
            app.backend
        );
        app.clock.advance(TimeDelta::minutes(30));
        assert_eq!(
            b.get("/account").await.status,
            303,
            "[{}] 30 idle minutes",
            app.backend
        );

        app.clock.advance(TimeDelta::seconds(30));
        let mut busy = app.browser();
        busy.sign_in(&app, "ivy", &secret).await;
        for _ in 0..(12 * 3 - 1) {
            app.clock.advance(TimeDelta::minutes(20));
            assert_eq!(busy.get("/account").await.status, 200);
        }
        app.clock.advance(TimeDelta::minutes(20));
        let p = busy.get("/account").await;
        assert_eq!(p.status, 303, "[{}] 12 hours", app.backend);
    }
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_other_session_and_keeps_this_one() {
    for (app, _db) in apps().await {
        let (account, secret) = app.account("joe", Role::Clerical, true).await;
        let secret = secret.expect("totp");
        let mut laptop = app.browser();
        laptop.sign_in(&app, "joe", &secret).await;
        app.clock.advance(TimeDelta::seconds(30));
        let mut phone = app.browser();
        phone.sign_in(&app, "joe", &secret).await;
        let page = phone.get("/account").await;
        let csrf = page.csrf("/account/sign-out-everywhere");
        let p = phone
            .post("/account/sign-out-everywhere", &[("csrf", &csrf)])
            .await;
        assert_eq!(p.status, 303);
        let page = phone.get("/account?done=elsewhere").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("signed out on every other device"));
        assert_eq!(
            laptop.get("/account").await.status,
            303,
            "[{}]",
            app.backend
        );
        let outs = app
            .audit_of(&account.account_id, AuditAction::SignOut)
            .await;
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].entity.as_deref(), Some("all-other-sessions"));
    }
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    for (app, _db) in apps().await {
        let (account, secret) = app.account("kim", Role::Patient, true).await;
        let secret = secret.expect("totp");
        let mut here = app.browser();
        here.sign_in(&app, "kim", &secret).await;
        app.clock.advance(TimeDelta::seconds(30));
        let mut there = app.browser();
        there.sign_in(&app, "kim", &secret).await;
        let form = here.get("/account/password").await;
        let csrf = form.csrf("/account/password");
        let new = "marble tundra pickle 77";
        let weak = here
            .post(
                "/account/password",
                &[
                    ("csrf", &csrf),
                    ("current_password", PASSWORD),
                    ("new_password", "password1234"),
                ],
            )
            .await;
        assert_eq!(weak.status, 400);
        assert!(weak.body.contains("too common"));
        let wrong = here
            .post(
                "/account/password",
                &[
                    ("csrf", &csrf),
                    ("current_password", "not it at all"),
                    ("new_password", new),
                ],
            )
            .await;
        assert_eq!(wrong.status, 401);
        let ok = here
            .post(
                "/account/password",
                &[
                    ("csrf", &csrf),
                    ("current_password", PASSWORD),
                    ("new_password", new),
                ],
            )
            .await;
        assert_eq!(ok.status, 303, "[{}] {}", app.backend, ok.body);
        assert_eq!(here.get("/account").await.status, 200);
        assert_eq!(there.get("/account").await.status, 303);
        let stored = app.stored(&account.account_id).await;
        assert!(stored.credentials_changed_at.is_some());
        let mut fresh = app.browser();
        assert_eq!(fresh.password_step("kim", PASSWORD, "").await.status, 401);
        assert_eq!(fresh.password_step("kim", new, "").await.status, 303);
        assert_eq!(
            app.audit_of(&account.account_id, AuditAction::CredentialChange)
                .await
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn a_correct_password_with_old_hash_parameters_is_rehashed() {
    for (app, _db) in apps().await {
        let (account, _) = app.account("lee", Role::Patient, true).await;
        assert!(account
            .password_hash
            .as_deref()
            .unwrap_or_default()
            .contains("m=8,t=1,p=1"));
        // The server's policy changes to other costs; the next sign-in stores a new hash.
        let state = app
            .state
            .clone()
            .with_password_policy(PasswordPolicy::with_params(16, 1, 1).expect("params"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(web::serve(listener, state, async {
            let _ = rx.await;
        }));
        let mut b = Browser::new(&format!("http://{addr}"));
        assert_eq!(b.password_step("lee", PASSWORD, "").await.status, 303);
        let stored = app.stored(&account.account_id).await;
        let hash = stored.password_hash.unwrap_or_default();
        assert!(hash.contains("m=16,t=1,p=1"), "[{}] {hash}", app.backend);
        assert_eq!(
            stored.credentials_changed_at, None,
            "a rehash is not a change"
        );
    }
}

// ----- CSRF -----

#[tokio::test]
async fn posts_without_the_right_csrf_token_get_403_and_change_nothing() {
    for (app, _db) in apps().await {
        let (account, secret) = app.account("max", Role::Patient, true).await;
        let secret = secret.expect("totp");
        let mut b = app.browser();
        // Sign-in form without a token, or with another form's token.
        b.get("/login").await;
        let p = b
            .post("/login", &[("username", "max"), ("password", PASSWORD)])
            .await;
        assert_eq!(p.status, 403, "[{}]", app.backend);
        assert_eq!(p.title(), "This form has expired – Portico");
        let good = b.get("/login").await.csrf("/login");
        let first = if good.starts_with('A') { "B" } else { "A" };
        let other = format!("{first}{}", &good[1..]);
        let p = b
            .post(
                "/login",
                &[
                    ("csrf", &other),
                    ("username", "max"),
                    ("password", "wrong password here"),
                ],
            )
            .await;
        assert_eq!(p.status, 403);
        assert!(b.session_cookie().is_none());
        assert_eq!(app.stored(&account.account_id).await.failed_sign_ins, 0);

        b.sign_in(&app, "max", &secret).await;
        let token = b.get("/account").await.csrf("/account/sign-out-everywhere");
        // A token for one form does not work for another.
        let p = b
            .post(
                "/account/password",
                &[
                    ("csrf", &token),
                    ("current_password", PASSWORD),
                    ("new_password", "marble tundra pickle 77"),
                ],
            )
            .await;
        assert_eq!(p.status, 403);
        let p = b.post("/logout", &[("csrf", "")]).await;
        assert_eq!(p.status, 403);
        assert_eq!(b.get("/account").await.status, 200, "still signed in");
        let stored = app.stored(&account.account_id).await;
        assert_eq!(
            stored.password_hash, account.password_hash,
            "[{}]",
            app.backend
        );
        // Another browser's session token does not work for this session.
        app.clock.advance(TimeDelta::seconds(30));
        let mut other = app.browser();
        other.sign_in(&app, "max", &secret).await;
        let foreign = other.get("/account").await.csrf("/logout");
        assert_eq!(b.post("/logout", &[("csrf", &foreign)]).await.status, 403);
    }
}

// ----- open redirects -----

#[tokio::test]
async fn next_goes_only_to_local_paths() {
    for (app, _db) in apps().await {
        let (_, secret) = app.account("ned", Role::Patient, true).await;
        let secret = secret.expect("totp");
        for (i, (next, want)) in [
            ("/account%3Fdone%3Delsewhere", "/account?done=elsewhere"),
            ("//evil.example", "/account"),
            ("/%5Cevil.example", "/account"),
            ("https://evil.example/", "/account"),
            ("/%2F%2Fevil.example", "/account"),
            ("%2F%2Fevil.example", "/account"),
            ("/%09/evil.example", "/account"),
            ("javascript:alert(1)", "/account"),
        ]
        .into_iter()
        .enumerate()
        {
            app.clock.advance(TimeDelta::seconds(30));
            let mut b = app.browser();
            let p = b.password_step("ned", PASSWORD, next).await;
            assert_eq!(p.status, 303, "[{}] {next}", app.backend);
            let to = p.location.unwrap_or_default();
            assert!(to.starts_with("/login/second-factor"), "{to}");
            let form = b.get(&to).await;
            let next_field = form.field("/login/second-factor", "next");
            let csrf = form.csrf("/login/second-factor");
            let p = b
                .post(
                    "/login/second-factor",
                    &[
                        ("csrf", &csrf),
                        ("method", "totp"),
                        ("code", &app.code(&secret)),
                        ("next", &next_field),
                    ],
                )
                .await;
            assert_eq!(
                p.location.as_deref(),
                Some(want),
                "[{}] case {i}: {next}",
                app.backend
            );
        }
        // Already signed in, /login?next= answers the same way.
        let mut b = app.browser();
        app.clock.advance(TimeDelta::seconds(30));
        b.sign_in(&app, "ned", &secret).await;
        let p = b.get("/login?next=//evil.example").await;
        assert_eq!(p.location.as_deref(), Some("/account"));
    }
}

// ----- registration -----

impl App {
    /// Creates a Patient through the FHIR API; its id.
    pub async fn patient(&self, nhs: &str, birth_date: &str, postcode: &str) -> String {
        let token = self
            .state
            .issue_token("test-admin", "system/*.*")
            .expect("token");
        let body = serde_json::json!({
            "resourceType": "Patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
            "name": [{"family": "Tester", "given": ["Pat"]}],
            "birthDate": birth_date,
            "address": [{"line": ["1 High Street"], "postalCode": postcode}]
        });
        let res = reqwest::Client::new()
            .post(format!("{}/fhir/Patient", self.base))
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("create patient");
        assert_eq!(res.status().as_u16(), 201);
        let v: serde_json::Value = res.json().await.expect("json");
        v["id"].as_str().expect("id").to_string()
    }
}

const NHS: &str = "9434765919";

async fn register(b: &mut Browser, fields: &[(&str, &str)]) -> Page {
    let form = b.get("/register").await;
    assert_eq!(form.status, 200);
    assert_eq!(form.title(), "Create your account – Portico");
    let csrf = form.csrf("/register");
    let mut all: Vec<(&str, &str)> = vec![
        ("nhs_number", "943 476 5919"),
        ("dob_day", "5"),
        ("dob_month", "3"),
        ("dob_year", "1984"),
        ("postcode", "ls1 4ap"),
        ("username", "newpatient"),
        ("password", PASSWORD),
    ];
    for (k, v) in fields {
        if let Some(slot) = all.iter_mut().find(|(name, _)| name == k) {
            slot.1 = v;
        }
    }
    all.push(("csrf", &csrf));
    b.post("/register", &all).await
}

#[tokio::test]
async fn registration_matches_nhs_number_birth_date_and_postcode_then_sets_up_totp() {
    for (app, _db) in apps().await {
        let patient = app.patient(NHS, "1984-03-05", "LS1 4AP").await;
        let mut b = app.browser();
        let p = register(&mut b, &[]).await;
        assert_eq!(p.status, 303, "[{}] {}", app.backend, p.body);
        assert_eq!(p.location.as_deref(), Some("/account/totp"));
        let account = app
            .state
            .store
            .accounts()
            .account_by_username("newpatient")
            .await
            .expect("read")
            .expect("created");
        assert_eq!(account.role, Role::Patient);
        assert_eq!(account.patient_id.as_deref(), Some(patient.as_str()));
        assert_eq!(account.identity_level, IdentityLevel::P5);
        assert_eq!(account.nhs_number.as_deref(), Some(NHS));
        // No access before the second factor; the set-up page is where it goes.
        assert_eq!(b.get("/account").await.status, 303);
        assert_eq!(b.get("/account/totp").await.status, 200);
        let registered = app
            .audit_of(&account.account_id, AuditAction::CredentialChange)
            .await;
        assert_eq!(registered.len(), 1);
        assert_eq!(registered[0].entity.as_deref(), Some("registration"));
        assert_eq!(registered[0].patient.as_deref(), Some(patient.as_str()));
        // The same patient cannot register twice; the answer is the generic one.
        let mut again = app.browser();
        let p = register(&mut again, &[("username", "secondtry")]).await;
        assert_eq!(p.status, 400);
        assert!(p
            .body
            .contains("We could not create an account with these details"));
    }
}

#[tokio::test]
async fn every_registration_mismatch_gets_the_same_answer() {
    for (app, _db) in apps().await {
        app.patient(NHS, "1984-03-05", "LS1 4AP").await;
        let mut b = app.browser();
        let mut bodies = Vec::new();
        for fields in [
            vec![("nhs_number", "9990000018")],
            vec![("dob_day", "6")],
            vec![("postcode", "LS1 4AQ")],
        ] {
            let p = register(&mut b, &fields).await;
            assert_eq!(p.status, 400, "[{}] {fields:?}", app.backend);
            assert!(p
                .body
                .contains("We could not create an account with these details"));
            // The message, not the echoed fields, is what must not differ.
            let message = p
                .body
                .split("error-summary__list")
                .nth(1)
                .unwrap_or_default();
            bodies.push(message[..message.find("</ul>").unwrap_or(0)].to_string());
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
        assert!(app
            .state
            .store
            .accounts()
            .account_by_username("newpatient")
            .await
            .expect("read")
            .is_none());
        // Field problems are named field by field instead.
        let p = register(
            &mut b,
            &[
                ("nhs_number", "9434765918"),
                ("dob_day", "31"),
                ("dob_month", "2"),
                ("password", "password"),
            ],
        )
        .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("Enter a valid NHS number"));
        assert!(p.body.contains("Date of birth must be a real date"));
        assert!(p.body.contains("href=\"#dob_day\""));
        assert!(p.body.contains("Use at least 12 characters"));
    }
}

#[tokio::test]
async fn registration_attempts_are_limited_per_ip() {
    for (app, _db) in apps().await {
        app.patient(NHS, "1984-03-05", "LS1 4AP").await;
        let mut b = app.browser();
        for _ in 0..10 {
            assert_eq!(
                register(&mut b, &[("postcode", "ZZ9 9ZZ")]).await.status,
                400
            );
        }
        let p = register(&mut b, &[]).await;
        assert_eq!(p.status, 429, "[{}]", app.backend);
    }
}

// ----- invitations -----

async fn redeem(b: &mut Browser, code: &str, fields: &[(&str, &str)]) -> Page {
    let form = b.get("/register/invitation").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf("/register/invitation");
    let mut all: Vec<(&str, &str)> = vec![
        ("code", code),
        ("dob_day", "5"),
        ("dob_month", "3"),
        ("dob_year", "1984"),
        ("username", "invited"),
        ("password", PASSWORD),
    ];
    for (k, v) in fields {
        if let Some(slot) = all.iter_mut().find(|(name, _)| name == k) {
            slot.1 = v;
        }
    }
    all.push(("csrf", &csrf));
    b.post("/register/invitation", &all).await
}

async fn invitation(app: &App, patient: &str) -> String {
    let (code, code_hash) = identity::invitation::generate();
    app.state
        .store
        .accounts()
        .create_invitation(&store::accounts::Invitation {
            code_hash,
            patient_id: patient.to_string(),
            created_at: app.now(),
            expires_at: app.now() + TimeDelta::days(30),
            used_at: None,
            attempts: 0,
        })
        .await
        .expect("invitation");
    code
}

#[tokio::test]
async fn an_invitation_makes_a_p9_account_once() {
    for (app, _db) in apps().await {
        let patient = app.patient(NHS, "1984-03-05", "LS1 4AP").await;
        let code = invitation(&app, &patient).await;
        let mut b = app.browser();
        let p = redeem(&mut b, &code.to_lowercase().replace('-', " "), &[]).await;
        assert_eq!(p.status, 303, "[{}] {}", app.backend, p.body);
        assert_eq!(p.location.as_deref(), Some("/account/totp"));
        let account = app
            .state
            .store
            .accounts()
            .account_by_username("invited")
            .await
            .expect("read")
            .expect("created");
        assert_eq!(account.identity_level, IdentityLevel::P9);
        assert_eq!(account.patient_id.as_deref(), Some(patient.as_str()));
        assert_eq!(account.nhs_number.as_deref(), Some(NHS));
        let mut again = app.browser();
        let p = redeem(&mut again, &code, &[("username", "invited2")]).await;
        assert_eq!(p.status, 400, "[{}] used twice", app.backend);
        assert!(p.body.contains("We could not accept this code"));
    }
}

#[tokio::test]
async fn an_invitation_allows_five_attempts_then_none() {
    for (app, _db) in apps().await {
        let patient = app.patient(NHS, "1984-03-05", "LS1 4AP").await;
        let code = invitation(&app, &patient).await;
        let mut b = app.browser();
        for _ in 0..5 {
            let p = redeem(&mut b, &code, &[("dob_day", "6")]).await;
            assert_eq!(p.status, 400);
            assert!(p.body.contains("We could not accept this code"));
        }
        // Even the right date of birth is refused now.
        let p = redeem(&mut b, &code, &[]).await;
        assert_eq!(p.status, 400, "[{}] attempts exhausted", app.backend);
        assert!(p.body.contains("We could not accept this code"));
        // And a code that was never issued gets the same answer.
        let p = redeem(&mut b, "7KQF-2M9X-P4HT", &[]).await;
        assert!(p.body.contains("We could not accept this code"));
    }
}
