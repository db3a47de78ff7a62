//! Sign-in with NHS login over HTTP, on every available backend, against a real OpenID Connect
//! provider process on loopback (`oidc::testing`: oidc-provider shaped like NHS login; needs
//! Node.js, never skipped). A module of the `http` test binary, reusing the sign-in tests'
//! databases and browser.
//!
//! Each test starts one provider for all backends: the servers' listeners are bound first, so
//! that the provider can be given every server's redirect URI before the servers are told the
//! provider's issuer.

use std::collections::HashMap;
use std::sync::Arc;

use oidc::testing::{self, client_key_pem, nhs_number, Login, Provider, Settings};
use serde_json::{json, Value};
use store::accounts::{Account, AccountStatus, IdentityLevel, Role};
use store::audit::{AuditAction, AuditOutcome, AuditRecord};
use store::Store;
use web::signin::nhs_login::{NhsLoginConfig, CALLBACK_PATH, USERNAME_PREFIX};
use web::signin::provision::{self, NewAccount};
use web::{AppState, WebConfig};

use super::signin::{cheap, databases, Browser, Page, PASSWORD};

const CLIENT_ID: &str = "portico-web-test";

/// The provider's people, by subject. Serials pick distinct test-range NHS numbers.
fn people() -> Value {
    let p9 = |serial: u32| {
        json!({"nhs_number": nhs_number(serial), "vot": "P9.Cp.Cd",
            "identity_proofing_level": "P9", "birthdate": "1970-01-01", "email": "p9@example.org"})
    };
    let p5 = |serial: u32| {
        json!({"nhs_number": nhs_number(serial), "vot": "P5.Cp.Cd",
            "identity_proofing_level": "P5", "birthdate": "1985-06-15"})
    };
    json!({
        "p9-user": p9(1),
        "p5-user": p5(500),
        "no-record": p9(900),
        "p9-has-account": p9(1200),
        "p5-has-account": p5(1500),
        "p0-user": {"vot": "P0.Cp.Cd", "identity_proofing_level": "P0", "email": "p0@example.org"},
    })
}

fn nhs_of(subject: &str) -> String {
    people()[subject]["nhs_number"]
        .as_str()
        .expect("an NHS number")
        .to_string()
}

/// A server with NHS login configured.
struct NhsApp {
    backend: &'static str,
    base: String,
    state: AppState,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// One server per available backend, and the provider they all use.
async fn servers() -> (Provider, Vec<NhsApp>) {
    let mut bound = Vec::new();
    for db in databases().await {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        bound.push((db, listener, base));
    }
    let redirects: Vec<String> = bound
        .iter()
        .map(|(_, _, base)| format!("{base}{CALLBACK_PATH}"))
        .collect();
    let redirects: Vec<&str> = redirects.iter().map(String::as_str).collect();
    let provider = Provider::start(Settings::new(CLIENT_ID, &redirects, people()));
    let mut apps = Vec::new();
    for (db, listener, base) in bound {
        let backend = db.backend;
        let config = WebConfig {
            public_url: base.clone(),
            nhs_login: Some(
                NhsLoginConfig::new(provider.issuer(), CLIENT_ID, client_key_pem())
                    .expect("NHS login settings"),
            ),
            ..WebConfig::default()
        };
        let state = AppState::new(db.store.clone(), Arc::new(config))
            .await
            .expect("app state")
            .with_password_policy(cheap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        tokio::spawn(async move {
            let _ = web::serve(listener, serve_state, async {
                let _ = rx.await;
            })
            .await;
            // The database (and its temp dir) lives as long as the server.
            drop(db);
        });
        apps.push(NhsApp {
            backend,
            base,
            state,
            _shutdown: tx,
        });
    }
    (provider, apps)
}

impl NhsApp {
    fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.base)
    }

    fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// A Patient with this NHS number, made through the FHIR API; its id.
    async fn patient(&self, nhs: &str) -> String {
        let token = self
            .state
            .issue_token("test-admin", "system/*.*")
            .expect("token");
        let body = json!({
            "resourceType": "Patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
            "name": [{"family": "Tester", "given": ["Pat"]}],
            "birthDate": "1970-01-01",
        });
        let res = reqwest::Client::new()
            .post(format!("{}/fhir/Patient", self.base))
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("create patient");
        assert_eq!(res.status().as_u16(), 201, "[{}]", self.backend);
        let v: Value = res.json().await.expect("json");
        v["id"].as_str().expect("id").to_string()
    }

    async fn by_subject(&self, subject: &str) -> Option<Account> {
        self.store()
            .accounts()
            .account_by_oidc_subject(subject)
            .await
            .expect("read account")
    }

    async fn by_nhs_number(&self, nhs: &str) -> Option<Account> {
        self.store()
            .accounts()
            .account_by_nhs_number(nhs)
            .await
            .expect("read account")
    }

    /// Every audit record so far.
    async fn audit(&self) -> Vec<AuditRecord> {
        self.store().seal_audit().await.expect("seal audit");
        self.store()
            .audit_chain(0, 10_000)
            .await
            .expect("audit chain")
            .iter()
            .map(|e| e.record().expect("audit record"))
            .collect()
    }

    /// The records of NHS login sign-ins (and failures).
    async fn nhs_audit(&self) -> Vec<AuditRecord> {
        self.audit()
            .await
            .into_iter()
            .filter(|r| {
                r.entity
                    .as_deref()
                    .is_some_and(|e| e.starts_with("nhs-login"))
            })
            .collect()
    }

    /// `/login/nhs{query}`: the redirect to the provider, its query, and the provider URL.
    async fn start(&self, b: &mut Browser, query: &str) -> (oidc::Url, HashMap<String, String>) {
        let p = b.get(&format!("/login/nhs{query}")).await;
        assert_eq!(p.status, 302, "[{}] start: {}", self.backend, p.body);
        let url = oidc::Url::parse(p.location.as_deref().expect("Location")).expect("a URL");
        let params = url.query_pairs().into_owned().collect();
        (url, params)
    }

    /// The person goes to NHS login, does `login` there, and comes back: the callback's
    /// answer (and the callback URL the provider sent them to).
    async fn sign_in(
        &self,
        provider: &Provider,
        b: &mut Browser,
        query: &str,
        login: Login<'_>,
    ) -> (Page, oidc::Url) {
        let (authorize, _) = self.start(b, query).await;
        let back = testing::sign_in(provider, &authorize, &self.redirect_uri(), login).await;
        (b.get(&local(&back.url)).await, back.url)
    }
}

/// The path and query of a URL of ours.
fn local(url: &oidc::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

fn with_query_param(url: &oidc::Url, name: &str, value: &str) -> String {
    let mut changed = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    changed.query_pairs_mut().clear().extend_pairs(pairs);
    local(&changed)
}

fn count(records: &[AuditRecord], action: AuditAction, status: u16) -> usize {
    records
        .iter()
        .filter(|r| r.action == action && r.status == Some(status))
        .count()
}

// ----- the tests -----

#[tokio::test]
async fn a_p9_user_with_a_record_is_signed_in_with_a_new_account_found_again_by_subject() {
    let (provider, apps) = servers().await;
    for app in &apps {
        let b_ = app.backend;
        let nhs = nhs_of("p9-user");
        let patient = app.patient(&nhs).await;
        let mut b = app.browser();

        // The sign-in page offers NHS login, keeping `next`.
        let login = b.get("/login?next=/account%3Ffrom%3Dnhs").await;
        assert!(login.body.contains("Continue to NHS login"), "[{b_}]");
        assert!(
            login
                .body
                .contains("href=\"/login/nhs?next=/account%3Ffrom%3Dnhs\""),
            "[{b_}] {}",
            login.body
        );

        // The authorization request NHS login gets.
        let (_, q) = app.start(&mut b, "?next=/account%3Ffrom%3Dnhs").await;
        assert_eq!(q["client_id"], CLIENT_ID, "[{b_}]");
        assert_eq!(q["redirect_uri"], app.redirect_uri(), "[{b_}]");
        assert_eq!(q["scope"], "openid profile email phone", "[{b_}]");
        assert_eq!(
            q["vtr"], r#"["P9.Cp.Cd","P9.Cp.Ck","P9.Cm","P5.Cp.Cd","P5.Cp.Ck","P5.Cm"]"#,
            "[{b_}]"
        );
        assert_eq!(q["code_challenge_method"], "S256", "[{b_}]");
        assert!(!q.contains_key("prompt"), "[{b_}]");
        // Its secrets wait in a sealed cookie: not even the state is readable in it.
        let sealed = b.cookies.get("portico-nhs-login").cloned().expect("cookie");
        assert!(!sealed.contains(&q["state"]), "[{b_}]");

        // A half-done password sign-in of someone else in this browser: a live session
        // without its second factor. It is ended, not upgraded.
        provision::create_account(
            app.store(),
            &cheap(),
            NewAccount {
                username: "someone-else".into(),
                role: Some(Role::Clinician),
                ..NewAccount::default()
            },
            PASSWORD,
            app.state.now(),
        )
        .await
        .expect("store")
        .expect("account accepted");
        let p = b.password_step("someone-else", PASSWORD, "").await;
        assert_eq!(p.location.as_deref(), Some("/account/totp"), "[{b_}]");
        let half = b.session_cookie().expect("a half session");
        let mut other = app.browser();
        other.cookies.insert("portico-session".into(), half.clone());
        assert_eq!(other.get("/account/totp").await.status, 200, "[{b_}] live");
        let (p, _) = app
            .sign_in(
                &provider,
                &mut b,
                "?next=/account%3Ffrom%3Dnhs",
                Login::As("p9-user"),
            )
            .await;
        assert_eq!(p.status, 303, "[{b_}] {}", p.body);
        assert_eq!(p.location.as_deref(), Some("/account?from=nhs"), "[{b_}]");
        assert!(
            !b.cookies.contains_key("portico-nhs-login"),
            "[{b_}] removed"
        );
        let first = b.session_cookie().expect("a session");
        assert_ne!(first, half, "[{b_}] a new session");
        let account_page = b.get("/account").await;
        assert_eq!(account_page.status, 200, "[{b_}] signed in fully");
        let r = other.get("/account/totp").await;
        assert_eq!(
            r.location.as_deref(),
            Some("/login"),
            "[{b_}] the half one ended"
        );
        // Signed in, /login/nhs goes straight on.
        let r = b.get("/login/nhs?next=/account%3Fagain").await;
        assert_eq!(r.location.as_deref(), Some("/account?again"), "[{b_}]");

        let account = app.by_subject("p9-user").await.expect("linked account");
        assert_eq!(account.role, Role::Patient, "[{b_}]");
        assert_eq!(
            account.patient_id.as_deref(),
            Some(patient.as_str()),
            "[{b_}]"
        );
        assert_eq!(account.nhs_number.as_deref(), Some(nhs.as_str()), "[{b_}]");
        assert_eq!(account.identity_level, IdentityLevel::P9, "[{b_}]");
        assert_eq!(account.password_hash, None, "[{b_}]");
        assert!(account.username.starts_with(USERNAME_PREFIX), "[{b_}]");

        // Again, on another device: the same account, found by its subject.
        let mut b2 = app.browser();
        let (p, _) = app
            .sign_in(&provider, &mut b2, "", Login::As("p9-user"))
            .await;
        assert_eq!(p.status, 303, "[{b_}] {}", p.body);
        assert_eq!(p.location.as_deref(), Some("/account"), "[{b_}]");
        let second = b2.session_cookie().expect("a session");
        assert_ne!(second, first, "[{b_}] a session of its own");
        let again = app.by_subject("p9-user").await.expect("account");
        assert_eq!(
            again.account_id, account.account_id,
            "[{b_}] not duplicated"
        );

        // Audited: made once, signed in twice; never the NHS number or another claim.
        let records = app.nhs_audit().await;
        let mine: Vec<&AuditRecord> = records
            .iter()
            .filter(|r| r.agent == account.account_id)
            .collect();
        let signed_in = mine
            .iter()
            .filter(|r| r.action == AuditAction::SignIn && r.outcome == AuditOutcome::Success)
            .count();
        assert_eq!(signed_in, 2, "[{b_}] {mine:?}");
        assert_eq!(
            count(&records, AuditAction::CredentialChange, 201),
            1,
            "[{b_}] account made"
        );
        assert!(
            mine.iter()
                .all(|r| r.patient.as_deref() == Some(patient.as_str())),
            "[{b_}]"
        );
        for r in app.audit().await {
            let detail = r.detail();
            for claim in [nhs.as_str(), "1970-01-01", "p9@example.org"] {
                assert!(!detail.contains(claim), "[{b_}] {claim} in {detail}");
            }
        }
    }
}

#[tokio::test]
async fn a_p5_user_gets_a_p5_account_and_each_sign_in_sets_the_level() {
    let (provider, apps) = servers().await;
    for app in &apps {
        let b_ = app.backend;
        app.patient(&nhs_of("p5-user")).await;
        let mut b = app.browser();
        let (p, _) = app
            .sign_in(&provider, &mut b, "", Login::As("p5-user"))
            .await;
        assert_eq!(p.status, 303, "[{b_}] {}", p.body);
        let account = app.by_subject("p5-user").await.expect("account");
        assert_eq!(
            account.identity_level,
            IdentityLevel::P5,
            "[{b_}] reduced view"
        );

        // Raised by someone else in between: NHS login's level of this sign-in counts.
        app.store()
            .accounts()
            .link_oidc_subject(
                &account.account_id,
                "p5-user",
                IdentityLevel::P9,
                account.created_at,
            )
            .await
            .expect("set level");
        let mut b = app.browser();
        let (p, _) = app
            .sign_in(&provider, &mut b, "", Login::As("p5-user"))
            .await;
        assert_eq!(p.status, 303, "[{b_}] {}", p.body);
        let again = app.by_subject("p5-user").await.expect("account");
        assert_eq!(again.account_id, account.account_id, "[{b_}]");
        assert_eq!(again.identity_level, IdentityLevel::P5, "[{b_}]");
    }
}

#[tokio::test]
async fn without_a_record_nobody_gets_an_account() {
    let (provider, apps) = servers().await;
    for app in &apps {
        let b_ = app.backend;
        for subject in ["no-record", "p0-user"] {
            let mut b = app.browser();
            let (p, _) = app.sign_in(&provider, &mut b, "", Login::As(subject)).await;
            assert_eq!(p.status, 404, "[{b_}] {subject}: {}", p.body);
            assert!(p.body.contains("We could not find your record"), "[{b_}]");
            assert!(!p.body.contains("Try again"), "[{b_}] nothing to retry");
            assert!(b.session_cookie().is_none(), "[{b_}] {subject}");
            assert!(app.by_subject(subject).await.is_none(), "[{b_}] {subject}");
        }
        assert!(app.by_nhs_number(&nhs_of("no-record")).await.is_none());
        let records = app.nhs_audit().await;
        assert_eq!(count(&records, AuditAction::SignInFailed, 404), 2, "[{b_}]");
        assert_eq!(count(&records, AuditAction::SignIn, 200), 0, "[{b_}]");
    }
}

#[tokio::test]
async fn a_changed_state_another_browsers_return_or_no_cookie_is_refused() {
    let (provider, apps) = servers().await;
    for app in &apps {
        let b_ = app.backend;
        app.patient(&nhs_of("p9-user")).await;

        // The state changed on the way back.
        let mut b = app.browser();
        let (authorize, _) = app.start(&mut b, "?next=/account").await;
        let back = testing::sign_in(
            &provider,
            &authorize,
            &app.redirect_uri(),
            Login::As("p9-user"),
        )
        .await;
        let p = b
            .get(&with_query_param(&back.url, "state", "forged-state"))
            .await;
        assert_eq!(p.status, 403, "[{b_}] {}", p.body);
        assert!(
            p.body.contains("Your sign-in could not be finished"),
            "[{b_}]"
        );
        assert!(p.body.contains("href=\"/login/nhs\""), "[{b_}] try again");
        assert!(b.session_cookie().is_none(), "[{b_}]");
        assert!(
            !b.cookies.contains_key("portico-nhs-login"),
            "[{b_}] used up"
        );

        // A return meant for another browser (login CSRF): this browser's cookie does not fit.
        let mut victim = app.browser();
        app.start(&mut victim, "").await;
        let mut attacker = app.browser();
        let (authorize, _) = app.start(&mut attacker, "").await;
        let back = testing::sign_in(
            &provider,
            &authorize,
            &app.redirect_uri(),
            Login::As("p9-user"),
        )
        .await;
        let p = victim.get(&local(&back.url)).await;
        assert_eq!(p.status, 403, "[{b_}] {}", p.body);
        assert!(victim.session_cookie().is_none(), "[{b_}]");

        // No cookie at all, and a cookie changed by a byte.
        let mut stranger = app.browser();
        let p = stranger.get(&local(&back.url)).await;
        assert_eq!(p.status, 400, "[{b_}] {}", p.body);
        let mut tamperer = app.browser();
        let (authorize, _) = app.start(&mut tamperer, "").await;
        let back = testing::sign_in(
            &provider,
            &authorize,
            &app.redirect_uri(),
            Login::As("p9-user"),
        )
        .await;
        let mut sealed = tamperer.cookies["portico-nhs-login"].clone().into_bytes();
        let middle = sealed.len() / 2;
        sealed[middle] = if sealed[middle] == b'A' { b'B' } else { b'A' };
        tamperer.cookies.insert(
            "portico-nhs-login".into(),
            String::from_utf8(sealed).expect("ASCII"),
        );
        let p = tamperer.get(&local(&back.url)).await;
        assert_eq!(p.status, 400, "[{b_}] {}", p.body);
        assert!(tamperer.session_cookie().is_none(), "[{b_}]");

        assert!(
            app.by_subject("p9-user").await.is_none(),
            "[{b_}] no account"
        );
        let records = app.nhs_audit().await;
        assert_eq!(count(&records, AuditAction::SignInFailed, 403), 2, "[{b_}]");
        assert_eq!(count(&records, AuditAction::SignInFailed, 400), 2, "[{b_}]");
    }
}

#[tokio::test]
async fn a_provider_error_gets_a_plain_page_with_try_again() {
    let (provider, apps) = servers().await;
    for app in &apps {
        let b_ = app.backend;
        let mut b = app.browser();
        let (p, back) = app
            .sign_in(&provider, &mut b, "?next=/account%3Ftab%3D2", Login::Cancel)
            .await;
        assert_eq!(
            back.query_pairs()
                .find(|(k, _)| k == "error")
                .map(|(_, v)| v.into_owned()),
            Some("access_denied".to_string()),
            "[{b_}]"
        );
        assert_eq!(p.status, 401, "[{b_}] {}", p.body);
        assert!(p.body.contains("You have not been signed in"), "[{b_}]");
        assert!(
            p.body
                .contains("href=\"/login/nhs?next=/account%3Ftab%3D2\""),
            "[{b_}] try again keeps next: {}",
            p.body
        );
        assert!(
            p.body.contains("href=\"/login\""),
            "[{b_}] password instead"
        );
        assert!(
            !p.body.contains("End-User aborted"),
            "[{b_}] provider text not shown"
        );
        assert!(b.session_cookie().is_none(), "[{b_}]");
        let records = app.nhs_audit().await;
        assert_eq!(count(&records, AuditAction::SignInFailed, 401), 1, "[{b_}]");
    }
}

#[tokio::test]
async fn the_nhs_app_assertion_goes_to_nhs_login_with_prompt_none() {
    let (provider, apps) = servers().await;
    for app in &apps {
        let b_ = app.backend;
        let jwt = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJwOS11c2VyIn0.c2lnbmF0dXJl";
        let mut b = app.browser();
        let (_, q) = app
            .start(&mut b, &format!("?assertedLoginIdentity={jwt}"))
            .await;
        assert_eq!(q.get("prompt").map(String::as_str), Some("none"), "[{b_}]");
        assert_eq!(
            q.get("asserted_login_identity").map(String::as_str),
            Some(jwt),
            "[{b_}]"
        );
        // Not JWT-shaped: not passed on, an ordinary sign-in instead.
        let (_, q) = app
            .start(&mut b, "?assertedLoginIdentity=%3Cscript%3E")
            .await;
        assert!(!q.contains_key("asserted_login_identity") && !q.contains_key("prompt"));

        // The provider has no session for the person: it answers login_required.
        let (p, back) = app
            .sign_in(
                &provider,
                &mut b,
                &format!("?assertedLoginIdentity={jwt}"),
                Login::As("p9-user"),
            )
            .await;
        assert!(
            back.as_str().contains("error=login_required"),
            "[{b_}] {back}"
        );
        assert_eq!(p.status, 401, "[{b_}] {}", p.body);
        assert!(p.body.contains("href=\"/login/nhs\""), "[{b_}] try again");
    }
}

#[tokio::test]
async fn an_existing_account_is_linked_at_p9_only_and_never_duplicated() {
    let (provider, apps) = servers().await;
    for app in &apps {
        let b_ = app.backend;
        let mut existing = HashMap::new();
        for subject in ["p9-has-account", "p5-has-account"] {
            let nhs = nhs_of(subject);
            let patient = app.patient(&nhs).await;
            let new = NewAccount {
                username: format!("{subject}-password"),
                role: Some(Role::Patient),
                patient_id: Some(patient),
                nhs_number: Some(nhs),
                identity_level: Some(IdentityLevel::P5),
                ..NewAccount::default()
            };
            let account =
                provision::create_account(app.store(), &cheap(), new, PASSWORD, app.state.now())
                    .await
                    .expect("store")
                    .expect("account accepted");
            existing.insert(subject, account);
        }

        // P9: linked, and raised to P9; still the same account with its password.
        let mut b = app.browser();
        let (p, _) = app
            .sign_in(&provider, &mut b, "", Login::As("p9-has-account"))
            .await;
        assert_eq!(p.status, 303, "[{b_}] {}", p.body);
        let before = &existing["p9-has-account"];
        let linked = app.by_subject("p9-has-account").await.expect("linked");
        assert_eq!(
            linked.account_id, before.account_id,
            "[{b_}] not a new account"
        );
        assert_eq!(linked.identity_level, IdentityLevel::P9, "[{b_}]");
        assert_eq!(linked.password_hash, before.password_hash, "[{b_}]");
        let by_nhs = app
            .by_nhs_number(&nhs_of("p9-has-account"))
            .await
            .expect("account");
        assert_eq!(by_nhs.account_id, before.account_id, "[{b_}]");
        let records = app.nhs_audit().await;
        assert!(
            records.iter().any(|r| r.agent == before.account_id
                && r.action == AuditAction::CredentialChange
                && r.entity.as_deref() == Some("nhs-login-link")),
            "[{b_}] {records:?}"
        );

        // P5: not linked; told to use the password.
        let mut b = app.browser();
        let (p, _) = app
            .sign_in(&provider, &mut b, "", Login::As("p5-has-account"))
            .await;
        assert_eq!(p.status, 409, "[{b_}] {}", p.body);
        assert!(p.body.contains("You already have an account"), "[{b_}]");
        assert!(b.session_cookie().is_none(), "[{b_}]");
        assert!(app.by_subject("p5-has-account").await.is_none(), "[{b_}]");
        let kept = app
            .by_nhs_number(&nhs_of("p5-has-account"))
            .await
            .expect("account");
        assert_eq!(kept.account_id, existing["p5-has-account"].account_id);
        assert_eq!(kept.identity_level, IdentityLevel::P5, "[{b_}] unchanged");

        // A disabled account does not sign in through NHS login either.
        app.store()
            .accounts()
            .set_account_status(&before.account_id, AccountStatus::Disabled, app.state.now())
            .await
            .expect("disable");
        let mut b = app.browser();
        let (p, _) = app
            .sign_in(&provider, &mut b, "", Login::As("p9-has-account"))
            .await;
        assert_eq!(p.status, 423, "[{b_}] {}", p.body);
        assert!(p.body.contains("We could not sign you in"), "[{b_}]");
        assert!(b.session_cookie().is_none(), "[{b_}]");
        let records = app.nhs_audit().await;
        assert!(
            records.iter().any(|r| r.agent == before.account_id
                && r.action == AuditAction::SignInFailed
                && r.status == Some(423)),
            "[{b_}] {records:?}"
        );
    }
}

#[tokio::test]
async fn without_the_settings_there_is_no_nhs_login() {
    for db in databases().await {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let config = WebConfig {
            public_url: base.clone(),
            ..WebConfig::default()
        };
        let state = AppState::new(db.store.clone(), Arc::new(config))
            .await
            .expect("app state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = web::serve(listener, state, async {
                let _ = rx.await;
            })
            .await;
        });
        let mut b = Browser::new(&base);
        let login = b.get("/login").await;
        assert_eq!(login.status, 200);
        assert!(!login.body.contains("NHS login"), "[{}]", db.backend);
        assert_eq!(b.get("/login/nhs").await.status, 404, "[{}]", db.backend);
        assert_eq!(
            b.get("/login/nhs/callback?code=x&state=y").await.status,
            404,
            "[{}]",
            db.backend
        );
        drop(tx);
    }
}
