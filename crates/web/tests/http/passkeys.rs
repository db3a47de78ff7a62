//! Passkeys over HTTP, on every available backend: adding one to a signed-in account, signing
//! in with it alone, removing it, and what is refused — replays, another origin, a counter that
//! went back, an expired ceremony, forged or cross-origin requests, sessions that are missing,
//! half done or too old, locked accounts, the per-IP limit — with the audit records.
//!
//! The authenticator is webauthn-authenticator-rs's `SoftPasskey`: real P-256 keys and ECDSA
//! signatures over the real client data, checked by the server's webauthn-rs. It keeps no
//! discoverable ("resident") credentials and returns no user handle, which a usernameless
//! sign-in needs, so [`Device`] adds what a platform authenticator does around it: it remembers
//! the credentials it made for each relying party with their user handle, picks one when asked
//! with an empty allow list, and returns its user handle. The key and signature are still
//! SoftPasskey's. A module of the `http` test binary.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use identity::totp::{self, Secret};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use store::accounts::{Account, IdentityLevel, Role};
use store::audit::{AuditAction, AuditOutcome, AuditRecord};
use web::clock::ManualClock;
use web::signin::provision::{self, NewAccount};
use web::{AppState, WebConfig};
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, WebauthnCError,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackend, AuthenticatorBackendHashedClientData};
use webauthn_rs_proto::{
    AllowCredentials, PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions,
};

use crate::signin::{cheap, databases, Browser, Db, PASSWORD};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).expect("valid time")
}

// ----- the authenticator -----

/// A discoverable credential the device holds.
struct Resident {
    rp_id: String,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
}

/// A passkey device: SoftPasskey's keys and signatures, with discoverable credentials.
struct Device {
    keys: SoftPasskey,
    resident: Vec<Resident>,
}

impl Device {
    fn new() -> Device {
        // SoftPasskey cannot ask a person anything; `true` makes it report user verification,
        // as a device does after a fingerprint or PIN.
        Device {
            keys: SoftPasskey::new(true),
            resident: Vec::new(),
        }
    }
}

impl AuthenticatorBackendHashedClientData for Device {
    fn perform_register(
        &mut self,
        client_data_hash: Vec<u8>,
        mut options: PublicKeyCredentialCreationOptions,
        timeout_ms: u32,
    ) -> Result<RegisterPublicKeyCredential, WebauthnCError> {
        let discoverable = options.authenticator_selection.as_ref().is_some_and(|s| {
            s.require_resident_key
                || s.resident_key == Some(webauthn_rs_proto::ResidentKeyRequirement::Required)
        });
        // The device stores discoverable credentials itself; SoftPasskey only makes the key.
        if let Some(selection) = options.authenticator_selection.as_mut() {
            selection.require_resident_key = false;
            selection.resident_key = None;
        }
        let rp_id = options.rp.id.clone();
        let user_handle = options.user.id.to_vec();
        let made = AuthenticatorBackendHashedClientData::perform_register(
            &mut self.keys,
            client_data_hash,
            options,
            timeout_ms,
        )?;
        if discoverable {
            self.resident.push(Resident {
                rp_id,
                credential_id: made.raw_id.to_vec(),
                user_handle,
            });
        }
        Ok(made)
    }

    fn perform_auth(
        &mut self,
        client_data_hash: Vec<u8>,
        mut options: PublicKeyCredentialRequestOptions,
        timeout_ms: u32,
    ) -> Result<PublicKeyCredential, WebauthnCError> {
        // An empty allow list: offer a discoverable credential of this relying party (the
        // newest, as a person would pick the one they just made).
        let chosen = if options.allow_credentials.is_empty() {
            let found = self
                .resident
                .iter()
                .rev()
                .find(|r| r.rp_id == options.rp_id)
                .ok_or(WebauthnCError::NoSelectedToken)?;
            options.allow_credentials = vec![AllowCredentials {
                type_: "public-key".into(),
                id: found.credential_id.clone().into(),
                transports: None,
            }];
            Some(found.user_handle.clone())
        } else {
            None
        };
        let mut assertion = AuthenticatorBackendHashedClientData::perform_auth(
            &mut self.keys,
            client_data_hash,
            options,
            timeout_ms,
        )?;
        assertion.response.user_handle = chosen.map(Into::into);
        Ok(assertion)
    }
}

// ----- the server -----

/// A server whose public URL is `http://localhost:{port}` (browsers take a domain name only as
/// a relying party id), reached at 127.0.0.1.
struct App {
    backend: &'static str,
    base: String,
    origin: String,
    state: AppState,
    clock: ManualClock,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start_app(db: &Db, host: &str) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let origin = format!("http://{host}:{port}");
    let config = WebConfig {
        public_url: origin.clone(),
        ..WebConfig::default()
    };
    let clock = ManualClock::starting_at(t0());
    let state = AppState::new(db.store.clone(), Arc::new(config))
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
        backend: db.backend,
        base: format!("http://127.0.0.1:{port}"),
        origin,
        state,
        clock,
        _shutdown: tx,
    }
}

/// One app per available backend.
async fn apps() -> Vec<(App, Db)> {
    let mut out = Vec::new();
    for db in databases().await {
        let app = start_app(&db, "localhost").await;
        out.push((app, db));
    }
    out
}

/// A JSON answer.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl App {
    fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    fn origin_url(&self) -> Url {
        Url::parse(&self.origin).expect("origin URL")
    }

    /// An account with password [`PASSWORD`] and an authenticator app.
    async fn account(&self, username: &str) -> (Account, Secret) {
        let secret = Secret::generate();
        let new = NewAccount {
            username: username.into(),
            role: Some(Role::Patient),
            totp_secret: Some(secret.to_base32()),
            identity_level: Some(IdentityLevel::P9),
            ..NewAccount::default()
        };
        let account = provision::create_account(
            self.state.store.as_ref(),
            &cheap(),
            new,
            PASSWORD,
            self.state.now(),
        )
        .await
        .expect("store")
        .expect("account accepted");
        (account, secret)
    }

    /// A complete sign-in with password and TOTP (moving the clock a step on first, so that
    /// no code is refused as a replay).
    async fn sign_in_with_password(&self, b: &mut Browser, username: &str, secret: &Secret) {
        self.clock.advance(TimeDelta::seconds(31));
        let p = b.password_step(username, PASSWORD, "").await;
        assert_eq!(
            p.status, 303,
            "[{}] password step: {}",
            self.backend, p.body
        );
        let code = totp::code_at(secret, self.state.now().timestamp()).expect("a code");
        let p = b.second_factor(&code, false).await;
        assert_eq!(
            p.status, 303,
            "[{}] second factor: {}",
            self.backend, p.body
        );
        assert_eq!(p.location.as_deref(), Some("/account"));
    }

    /// POSTs `body` as JSON from this server's origin, with the browser's cookies.
    async fn post_json(&self, b: &mut Browser, path: &str, body: &Value) -> Answer {
        self.post_raw(b, path, Some(&self.origin), "application/json", body)
            .await
    }

    /// POSTs `body` with the given `Origin` (None: no header) and content type.
    async fn post_raw(
        &self,
        b: &mut Browser,
        path: &str,
        origin: Option<&str>,
        content_type: &str,
        body: &Value,
    ) -> Answer {
        let mut rb = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(origin) = origin {
            rb = rb.header("origin", origin);
        }
        let cookies = b
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookies.is_empty() {
            rb = rb.header("cookie", cookies);
        }
        let res = rb.send().await.expect("request sent");
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().expect("ascii cookie");
            let first = v.split(';').next().unwrap_or_default();
            let (name, value) = first.split_once('=').expect("name=value");
            if v.contains("Max-Age=0") {
                b.cookies.remove(name);
            } else {
                b.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Starts adding a passkey; the ceremony handle and the creation options.
    async fn start_registration(&self, b: &mut Browser) -> (String, CreationChallengeResponse) {
        let started = self
            .post_json(b, "/account/passkeys/register/start", &json!({}))
            .await;
        assert_eq!(
            started.status, 200,
            "[{}] register start: {}",
            self.backend, started.body
        );
        let ceremony = started.body["ceremony"]
            .as_str()
            .expect("a ceremony")
            .to_string();
        let options = serde_json::from_value(json!({ "publicKey": started.body["publicKey"] }))
            .expect("creation options");
        (ceremony, options)
    }

    /// Adds a passkey made by `device` for `origin`, named `name`; the finish's answer.
    async fn add_passkey_from(
        &self,
        b: &mut Browser,
        device: &mut Device,
        origin: Url,
        name: &str,
    ) -> Answer {
        let (ceremony, options) = self.start_registration(b).await;
        let made =
            AuthenticatorBackend::perform_register(device, origin, options.public_key, 60_000)
                .expect("the device makes a credential");
        self.post_json(
            b,
            "/account/passkeys/register/finish",
            &json!({ "ceremony": ceremony, "name": name, "credential": made }),
        )
        .await
    }

    /// Adds a passkey and checks it was accepted.
    async fn add_passkey(&self, b: &mut Browser, device: &mut Device, name: &str) {
        let done = self
            .add_passkey_from(b, device, self.origin_url(), name)
            .await;
        assert_eq!(
            done.status, 200,
            "[{}] register finish: {}",
            self.backend, done.body
        );
        assert_eq!(done.body["redirect"], "/account/passkeys?done=added");
    }

    /// Starts a passkey sign-in; the ceremony handle and the request options.
    async fn start_sign_in(&self, b: &mut Browser) -> (String, RequestChallengeResponse) {
        let started = self.post_json(b, "/login/passkey/start", &json!({})).await;
        assert_eq!(
            started.status, 200,
            "[{}] sign-in start: {}",
            self.backend, started.body
        );
        let ceremony = started.body["ceremony"]
            .as_str()
            .expect("a ceremony")
            .to_string();
        let options = serde_json::from_value(json!({ "publicKey": started.body["publicKey"] }))
            .expect("request options");
        (ceremony, options)
    }

    async fn finish_sign_in(
        &self,
        b: &mut Browser,
        ceremony: &str,
        assertion: &PublicKeyCredential,
        next: &str,
    ) -> Answer {
        self.post_json(
            b,
            "/login/passkey/finish",
            &json!({ "ceremony": ceremony, "next": next, "credential": assertion }),
        )
        .await
    }

    /// A whole passkey sign-in with `device` for this server's origin; the finish's answer.
    async fn passkey_sign_in(&self, b: &mut Browser, device: &mut Device) -> Answer {
        let (ceremony, options) = self.start_sign_in(b).await;
        let assertion = sign(device, self.origin_url(), options);
        self.finish_sign_in(b, &ceremony, &assertion, "").await
    }

    /// Every audit record so far.
    async fn audit(&self) -> Vec<AuditRecord> {
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

    async fn audit_with(&self, action: AuditAction, entity: &str) -> Vec<AuditRecord> {
        self.audit()
            .await
            .into_iter()
            .filter(|r| r.action == action && r.entity.as_deref() == Some(entity))
            .collect()
    }

    async fn ceremonies_stored(&self) -> usize {
        self.state
            .store
            .state_list("passkey-ceremony/")
            .await
            .expect("state list")
            .len()
    }
}

/// The device's assertion for `options`, made as a browser at `origin` would ask for it.
fn sign(
    device: &mut Device,
    origin: Url,
    options: RequestChallengeResponse,
) -> PublicKeyCredential {
    AuthenticatorBackend::perform_auth(device, origin, options.public_key, 60_000)
        .expect("the device signs")
}

// ----- adding and signing in -----

#[tokio::test]
async fn a_passkey_added_after_sign_in_then_signs_in_alone_with_the_second_factor_done() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (account, secret) = app.account("ada").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "ada", &secret).await;

        let page = b.get("/account").await;
        assert!(page.body.contains("href=\"/account/passkeys\""), "[{be}]");
        let page = b.get("/account/passkeys").await;
        assert_eq!(page.status, 200, "[{be}] {}", page.body);
        assert!(page.body.contains("id=\"passkeys-none\""), "[{be}]");
        assert!(page.body.contains("id=\"passkey-add\""), "[{be}]");

        let (_, options) = app.start_registration(&mut b).await;
        let pk = &options.public_key;
        assert_eq!(pk.rp.id, "localhost");
        assert_eq!(pk.user.name, "ada");
        let handle = uuid_bytes(&account.account_id);
        assert_eq!(
            pk.user.id.to_vec(),
            handle,
            "[{be}] the user handle is the account id"
        );
        let selection = pk.authenticator_selection.as_ref().expect("selection");
        assert!(selection.require_resident_key, "[{be}] discoverable");
        assert_eq!(
            selection.user_verification,
            webauthn_rs_proto::UserVerificationPolicy::Required
        );

        let mut phone = Device::new();
        app.add_passkey(&mut b, &mut phone, "  My   phone ").await;
        // (A minute apart, so that the list's order is certain.)
        app.clock.advance(TimeDelta::minutes(1));
        let page = b.get("/account/passkeys?done=added").await;
        assert!(
            page.body
                .contains("<dd class=\"passkey-name\">My phone</dd>"),
            "[{be}] {}",
            page.body
        );
        assert!(
            page.body
                .contains("<dd class=\"passkey-added\">15 June 2025</dd>"),
            "[{be}]"
        );
        assert!(page.body.contains("Not used yet"), "[{be}]");
        assert!(page.body.contains("Your passkey has been added"), "[{be}]");
        let added = app
            .audit_with(AuditAction::CredentialChange, "passkey-added")
            .await;
        assert_eq!(added.len(), 1, "[{be}]");
        assert_eq!(added[0].agent, account.account_id);
        assert_eq!(added[0].outcome, AuditOutcome::Success);

        // A second, unnamed passkey is named by the date.
        let mut key = Device::new();
        app.add_passkey(&mut b, &mut key, "").await;
        let listed = app
            .state
            .store
            .accounts()
            .webauthn_credentials(&account.account_id)
            .await
            .expect("list");
        let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["My phone", "Passkey added 15 June 2025"], "[{be}]");

        let out = b.sign_out().await;
        assert_eq!(out.status, 303, "[{be}]");

        // Signing in: no username, no password, no code.
        let mut fresh = app.browser();
        let page = fresh.get("/login/passkey").await;
        assert_eq!(page.status, 200, "[{be}]");
        let (ceremony, options) = app.start_sign_in(&mut fresh).await;
        assert!(
            options.public_key.allow_credentials.is_empty(),
            "[{be}] usernameless"
        );
        assert_eq!(
            options.public_key.user_verification,
            webauthn_rs_proto::UserVerificationPolicy::Required
        );
        app.clock.advance(TimeDelta::minutes(1));
        let assertion = sign(&mut phone, app.origin_url(), options);
        let done = app
            .finish_sign_in(&mut fresh, &ceremony, &assertion, "/account/passkeys")
            .await;
        assert_eq!(done.status, 200, "[{be}] {}", done.body);
        assert_eq!(done.body["redirect"], "/account/passkeys");
        let cookie = fresh.session_cookie().expect("a session cookie");
        let session = app
            .state
            .store
            .accounts()
            .session(&identity::token::hash_token(&cookie))
            .await
            .expect("read session")
            .expect("the session exists");
        assert_eq!(session.account_id, account.account_id);
        assert!(
            session.second_factor_done,
            "[{be}] a passkey is both factors"
        );
        let page = fresh.get("/account").await;
        assert_eq!(page.status, 200, "[{be}] signed in: {}", page.body);

        let signed_in = app.audit_with(AuditAction::SignIn, "passkey").await;
        assert_eq!(signed_in.len(), 1, "[{be}]");
        assert_eq!(signed_in[0].agent, account.account_id);
        let used = app
            .state
            .store
            .accounts()
            .webauthn_credential(&listed[0].credential_id)
            .await
            .expect("read")
            .expect("still there");
        assert_eq!(used.last_used_at, Some(app.state.now()), "[{be}]");
        assert_ne!(
            used.passkey, listed[0].passkey,
            "[{be}] the counter was stored"
        );
        let page = fresh.get("/account/passkeys").await;
        assert!(page.body.contains("Not used yet"), "[{be}] the other one");
        assert_eq!(
            page.body
                .matches("<dd class=\"passkey-last-used\">15 June 2025</dd>")
                .count(),
            1,
            "[{be}] the phone was used today"
        );

        // `next` goes only to local paths.
        let mut other = app.browser();
        let (ceremony, options) = app.start_sign_in(&mut other).await;
        let assertion = sign(&mut phone, app.origin_url(), options);
        let done = app
            .finish_sign_in(&mut other, &ceremony, &assertion, "//evil.example")
            .await;
        assert_eq!(done.status, 200, "[{be}]");
        assert_eq!(done.body["redirect"], "/account");
    }
}

/// The 16 bytes of a UUID account id.
fn uuid_bytes(account_id: &str) -> Vec<u8> {
    let hex: String = account_id.chars().filter(|c| *c != '-').collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test]
async fn passkey_sign_in_ends_the_session_the_browser_brought() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (_, secret) = app.account("bea").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "bea", &secret).await;
        let mut device = Device::new();
        app.add_passkey(&mut b, &mut device, "laptop").await;
        let before = b.session_cookie().expect("session");
        let done = app.passkey_sign_in(&mut b, &mut device).await;
        assert_eq!(done.status, 200, "[{be}] {}", done.body);
        let after = b.session_cookie().expect("session");
        assert_ne!(before, after, "[{be}] a new token");
        let old = app
            .state
            .store
            .accounts()
            .session(&identity::token::hash_token(&before))
            .await
            .expect("read")
            .expect("exists");
        assert!(old.ended_at.is_some(), "[{be}] the old session ended");
    }
}

// ----- removing -----

#[tokio::test]
async fn a_removed_passkey_no_longer_signs_in() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (account, secret) = app.account("cal").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "cal", &secret).await;
        let mut device = Device::new();
        app.add_passkey(&mut b, &mut device, "tablet").await;
        let id = app
            .state
            .store
            .accounts()
            .webauthn_credentials(&account.account_id)
            .await
            .expect("list")[0]
            .credential_id
            .clone();
        let action = format!("/account/passkeys/{id}/remove");

        // Without the right anti-forgery token nothing is removed.
        let forged = b.post(&action, &[("csrf", "forged")]).await;
        assert_eq!(forged.status, 403, "[{be}]");
        let page = b.get("/account/passkeys").await;
        assert!(page.body.contains("tablet"), "[{be}] still there");
        // Another account cannot remove it.
        let (_, other_secret) = app.account("dee").await;
        let mut other = app.browser();
        app.sign_in_with_password(&mut other, "dee", &other_secret)
            .await;
        let theirs = other.get("/account/passkeys").await;
        assert!(!theirs.body.contains("tablet"), "[{be}]");

        let csrf = page.csrf(&action);
        let removed = b.post(&action, &[("csrf", &csrf)]).await;
        assert_eq!(removed.status, 303, "[{be}] {}", removed.body);
        assert_eq!(
            removed.location.as_deref(),
            Some("/account/passkeys?done=removed")
        );
        let page = b.get("/account/passkeys?done=removed").await;
        assert!(!page.body.contains("tablet"), "[{be}]");
        assert!(
            page.body.contains("Your passkey has been removed"),
            "[{be}]"
        );
        let again = b.post(&action, &[("csrf", &csrf)]).await;
        assert_eq!(again.status, 404, "[{be}] nothing left to remove");
        let audited = app
            .audit_with(AuditAction::CredentialChange, "passkey-removed")
            .await;
        assert_eq!(audited.len(), 1, "[{be}]");
        assert_eq!(audited[0].agent, account.account_id);

        let mut fresh = app.browser();
        let refused = app.passkey_sign_in(&mut fresh, &mut device).await;
        assert_eq!(refused.status, 401, "[{be}] {}", refused.body);
        assert_eq!(refused.body["error"], "not-signed-in");
        assert!(fresh.session_cookie().is_none(), "[{be}]");
        let failed = app.audit_with(AuditAction::SignInFailed, "passkey").await;
        assert_eq!(failed.len(), 1, "[{be}]");
        assert_eq!(
            failed[0].agent, "unknown",
            "[{be}] the passkey names no account now"
        );
    }
}

// ----- what is refused -----

#[tokio::test]
async fn a_replayed_assertion_and_a_counter_that_went_back_are_refused() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (account, secret) = app.account("eve").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "eve", &secret).await;
        let mut device = Device::new();
        app.add_passkey(&mut b, &mut device, "phone").await;

        // The same answer twice: the ceremony was taken by the first.
        let mut fresh = app.browser();
        let (ceremony, options) = app.start_sign_in(&mut fresh).await;
        let assertion = sign(&mut device, app.origin_url(), options);
        let first = app
            .finish_sign_in(&mut fresh, &ceremony, &assertion, "")
            .await;
        assert_eq!(first.status, 200, "[{be}] {}", first.body);
        let mut thief = app.browser();
        let replay = app
            .finish_sign_in(&mut thief, &ceremony, &assertion, "")
            .await;
        assert_eq!(replay.status, 401, "[{be}] {}", replay.body);
        assert!(thief.session_cookie().is_none());
        // Nor does an old answer finish a new ceremony: it signed another challenge.
        let (fresh_ceremony, _) = app.start_sign_in(&mut thief).await;
        let replay = app
            .finish_sign_in(&mut thief, &fresh_ceremony, &assertion, "")
            .await;
        assert_eq!(replay.status, 401, "[{be}] {}", replay.body);

        // Two answers made in order, used in the other order: the older one shows a counter the
        // server has seen pass, as a cloned authenticator would.
        let (c1, o1) = app.start_sign_in(&mut thief).await;
        let (c2, o2) = app.start_sign_in(&mut thief).await;
        let older = sign(&mut device, app.origin_url(), o1);
        let newer = sign(&mut device, app.origin_url(), o2);
        let ok = app.finish_sign_in(&mut thief, &c2, &newer, "").await;
        assert_eq!(ok.status, 200, "[{be}] {}", ok.body);
        let mut clone = app.browser();
        let back = app.finish_sign_in(&mut clone, &c1, &older, "").await;
        assert_eq!(back.status, 401, "[{be}] {}", back.body);

        let failed = app.audit_with(AuditAction::SignInFailed, "passkey").await;
        assert_eq!(failed.len(), 3, "[{be}]");
        assert_eq!(
            failed[2].agent, account.account_id,
            "[{be}] the passkey named it"
        );
        assert_eq!(
            app.ceremonies_stored().await,
            0,
            "[{be}] every ceremony was taken"
        );
    }
}

#[tokio::test]
async fn an_assertion_or_a_credential_made_for_another_origin_is_refused() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (account, secret) = app.account("fay").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "fay", &secret).await;
        let mut device = Device::new();
        let port = app.origin_url().port().expect("a port");
        let phishing = Url::parse(&format!("http://login.localhost:{port}")).expect("url");
        let refused = app
            .add_passkey_from(&mut b, &mut device, phishing.clone(), "x")
            .await;
        assert_eq!(refused.status, 400, "[{be}] {}", refused.body);
        assert_eq!(refused.body["error"], "not-added");
        let other_port = Url::parse(&format!("http://localhost:{}", port ^ 1)).expect("url");
        let refused = app
            .add_passkey_from(&mut b, &mut device, other_port.clone(), "x")
            .await;
        assert_eq!(refused.status, 400, "[{be}] {}", refused.body);
        let none = app
            .state
            .store
            .accounts()
            .webauthn_credentials(&account.account_id)
            .await
            .expect("list");
        assert!(none.is_empty(), "[{be}]");

        app.add_passkey(&mut b, &mut device, "phone").await;
        for origin in [phishing, other_port] {
            let mut victim = app.browser();
            let (ceremony, options) = app.start_sign_in(&mut victim).await;
            let assertion = sign(&mut device, origin.clone(), options);
            let done = app
                .finish_sign_in(&mut victim, &ceremony, &assertion, "")
                .await;
            assert_eq!(done.status, 401, "[{be}] {origin}: {}", done.body);
            assert!(victim.session_cookie().is_none(), "[{be}]");
        }
        // The device itself still works from the right origin.
        let mut real = app.browser();
        let done = app.passkey_sign_in(&mut real, &mut device).await;
        assert_eq!(done.status, 200, "[{be}] {}", done.body);
    }
}

#[tokio::test]
async fn a_user_handle_that_is_not_the_passkeys_account_is_refused() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (_, secret) = app.account("lou").await;
        let (victim, _) = app.account("mae").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "lou", &secret).await;
        let mut device = Device::new();
        app.add_passkey(&mut b, &mut device, "phone").await;
        // The user handle is not signed: a doctored client could name any account with it.
        device.resident[0].user_handle = uuid_bytes(&victim.account_id);
        let mut fresh = app.browser();
        let refused = app.passkey_sign_in(&mut fresh, &mut device).await;
        assert_eq!(refused.status, 401, "[{be}] {}", refused.body);
        assert!(fresh.session_cookie().is_none(), "[{be}]");
    }
}

#[tokio::test]
async fn an_expired_ceremony_is_refused_and_swept_away() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (_, secret) = app.account("gus").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "gus", &secret).await;
        let mut device = Device::new();
        app.add_passkey(&mut b, &mut device, "phone").await;

        let mut fresh = app.browser();
        let (ceremony, options) = app.start_sign_in(&mut fresh).await;
        let assertion = sign(&mut device, app.origin_url(), options);
        app.start_sign_in(&mut fresh).await;
        assert_eq!(app.ceremonies_stored().await, 2, "[{be}]");
        app.clock.advance(TimeDelta::minutes(5));
        let late = app
            .finish_sign_in(&mut fresh, &ceremony, &assertion, "")
            .await;
        assert_eq!(late.status, 401, "[{be}] {}", late.body);
        assert_eq!(
            app.ceremonies_stored().await,
            1,
            "[{be}] the late one was taken"
        );
        let swept = web::passkeys::ceremony::sweep(&app.state)
            .await
            .expect("sweep");
        assert_eq!(swept, 1, "[{be}]");
        assert_eq!(app.ceremonies_stored().await, 0, "[{be}]");
    }
}

#[tokio::test]
async fn a_locked_account_cannot_sign_in_with_its_passkey() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (account, secret) = app.account("hal").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "hal", &secret).await;
        let mut device = Device::new();
        app.add_passkey(&mut b, &mut device, "phone").await;
        let now = app.state.now();
        app.state
            .store
            .accounts()
            .lock_account_until(&account.account_id, Some(now + TimeDelta::minutes(15)), now)
            .await
            .expect("lock");
        let mut fresh = app.browser();
        let refused = app.passkey_sign_in(&mut fresh, &mut device).await;
        assert_eq!(refused.status, 401, "[{be}] the same answer as any refusal");
        let failed = app.audit_with(AuditAction::SignInFailed, "passkey").await;
        assert_eq!(failed.len(), 1, "[{be}]");
        assert_eq!(failed[0].status, Some(423));
        assert_eq!(failed[0].agent, account.account_id);
        app.clock.advance(TimeDelta::minutes(16));
        let done = app.passkey_sign_in(&mut fresh, &mut device).await;
        assert_eq!(done.status, 200, "[{be}] after the lock: {}", done.body);
    }
}

#[tokio::test]
async fn passkey_sign_in_shares_the_per_ip_limit_of_the_password_form() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let mut b = app.browser();
        for i in 0..20 {
            let started = app
                .post_json(&mut b, "/login/passkey/start", &json!({}))
                .await;
            assert_eq!(started.status, 200, "[{be}] attempt {i}");
        }
        let limited = app
            .post_json(&mut b, "/login/passkey/start", &json!({}))
            .await;
        assert_eq!(limited.status, 429, "[{be}] {}", limited.body);
        assert_eq!(limited.body["error"], "too-many");
        let p = b.password_step("anyone", PASSWORD, "").await;
        assert_eq!(p.status, 429, "[{be}] the password form shares the budget");
        let audited = app.audit_with(AuditAction::SignInFailed, "passkey").await;
        assert_eq!(audited.len(), 1, "[{be}]");
        assert_eq!(audited[0].status, Some(429));
        app.clock.advance(TimeDelta::minutes(5));
        let again = app
            .post_json(&mut b, "/login/passkey/start", &json!({}))
            .await;
        assert_eq!(again.status, 200, "[{be}] a new window");
    }
}

// ----- who may add one, and forged requests -----

#[tokio::test]
async fn adding_a_passkey_needs_a_complete_and_recent_sign_in_of_the_same_session() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (account, secret) = app.account("ivy").await;
        let start = "/account/passkeys/register/start";
        let finish = "/account/passkeys/register/finish";
        let dummy = json!({ "ceremony": "x", "credential": {} });

        let mut anonymous = app.browser();
        let r = app.post_json(&mut anonymous, start, &json!({})).await;
        assert_eq!(r.status, 401, "[{be}] {}", r.body);
        assert_eq!(r.body["error"], "signed-out");
        let r = app.post_json(&mut anonymous, finish, &dummy).await;
        assert_eq!(r.status, 401, "[{be}]");
        let page = anonymous.get("/account/passkeys").await;
        assert_eq!(page.status, 303, "[{be}] to sign in");

        // Half signed in (password only).
        let mut half = app.browser();
        app.clock.advance(TimeDelta::seconds(31));
        let p = half.password_step("ivy", PASSWORD, "").await;
        assert_eq!(p.status, 303);
        let r = app.post_json(&mut half, start, &json!({})).await;
        assert_eq!(r.status, 401, "[{be}] the second factor is not done");

        // A ceremony belongs to the session that started it.
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "ivy", &secret).await;
        let mut other = app.browser();
        app.sign_in_with_password(&mut other, "ivy", &secret).await;
        let (ceremony, options) = app.start_registration(&mut b).await;
        let mut device = Device::new();
        let made = AuthenticatorBackend::perform_register(
            &mut device,
            app.origin_url(),
            options.public_key,
            60_000,
        )
        .expect("made");
        let r = app
            .post_json(
                &mut other,
                finish,
                &json!({ "ceremony": ceremony, "credential": made }),
            )
            .await;
        assert_eq!(
            r.status, 400,
            "[{be}] another session's ceremony: {}",
            r.body
        );

        // Fifteen minutes after signing in, the session may browse but not add a passkey.
        app.clock.advance(TimeDelta::minutes(15));
        let page = b.get("/account/passkeys").await;
        assert_eq!(page.status, 200, "[{be}]");
        assert!(page.body.contains("id=\"passkey-sign-in-again\""), "[{be}]");
        assert!(!page.body.contains("id=\"passkey-add\""), "[{be}]");
        let r = app.post_json(&mut b, start, &json!({})).await;
        assert_eq!(r.status, 403, "[{be}] {}", r.body);
        assert_eq!(r.body["error"], "sign-in-again");
        let none = app
            .state
            .store
            .accounts()
            .webauthn_credentials(&account.account_id)
            .await
            .expect("list");
        assert!(none.is_empty(), "[{be}]");
        // Signing in again allows it.
        let mut again = app.browser();
        app.sign_in_with_password(&mut again, "ivy", &secret).await;
        app.add_passkey(&mut again, &mut device, "phone").await;
    }
}

#[tokio::test]
async fn ceremony_requests_must_be_json_from_the_public_origin() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let (_, secret) = app.account("joe").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "joe", &secret).await;
        let origin = app.origin.clone();
        for path in [
            "/account/passkeys/register/start",
            "/account/passkeys/register/finish",
            "/login/passkey/start",
            "/login/passkey/finish",
        ] {
            // What a form on another site can send.
            for content_type in [
                "application/x-www-form-urlencoded",
                "text/plain",
                "multipart/form-data; boundary=x",
            ] {
                let r = app
                    .post_raw(
                        &mut b,
                        path,
                        Some("https://evil.example"),
                        content_type,
                        &json!({}),
                    )
                    .await;
                assert_eq!(r.status, 415, "[{be}] {path} as {content_type}");
            }
            for sent in [
                None,
                Some("null"),
                Some("https://evil.example"),
                Some("http://127.0.0.1"),
                Some(&*format!("{origin}.evil.example")),
            ] {
                let r = app
                    .post_raw(&mut b, path, sent, "application/json", &json!({}))
                    .await;
                assert_eq!(r.status, 403, "[{be}] {path} from {sent:?}: {}", r.body);
                assert_eq!(r.body["error"], "forbidden");
                assert_eq!(
                    r.headers.get("content-type").and_then(|v| v.to_str().ok()),
                    Some("application/json")
                );
            }
        }
        assert_eq!(
            app.ceremonies_stored().await,
            0,
            "[{be}] nothing was started"
        );
        let r = app
            .post_json(
                &mut b,
                "/login/passkey/finish",
                &json!({ "not": "a finish" }),
            )
            .await;
        assert_eq!(r.status, 400, "[{be}] {}", r.body);
    }
}

// ----- the pages -----

#[tokio::test]
async fn the_passkey_controls_are_hidden_until_the_script_finds_passkeys() {
    for (app, _db) in apps().await {
        let be = app.backend;
        let mut b = app.browser();
        let login = b.get("/login?next=/account/passkeys").await;
        assert!(
            login
                .body
                .contains("href=\"/login/passkey?next=/account/passkeys\""),
            "[{be}] {}",
            login.body
        );
        let page = b.get("/login/passkey").await;
        assert_eq!(page.status, 200, "[{be}]");
        assert_eq!(page.title(), "Sign in with a passkey – Portico");
        assert!(page
            .body
            .contains("id=\"passkey-unsupported\" data-passkey-fallback>"));
        let controls = page.body.find("id=\"passkey-signin\"").expect("controls");
        let tag_end = page.body[controls..].find('>').expect("tag end") + controls;
        assert!(
            page.body[controls..tag_end].ends_with(" hidden"),
            "[{be}] hidden without the script"
        );
        let script = page
            .body
            .split("<script src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("the script tag")
            .to_string();
        assert!(script.starts_with("/assets/passkeys.js?v="), "{script}");
        assert!(!page.body.contains("<script>"), "[{be}] no inline script");
        assert!(!page.body.contains(" onclick="), "[{be}] no inline handler");
        assert_eq!(
            page.header("content-security-policy").as_deref(),
            Some(web::ui::headers::CONTENT_SECURITY_POLICY)
        );
        assert!(
            page.body.contains("href=\"/login\""),
            "[{be}] the password way"
        );

        let js = b.get(&script).await;
        assert_eq!(js.status, 200);
        assert!(js
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/javascript"));
        assert_eq!(
            js.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert!(js.body.contains("window.PublicKeyCredential"));
    }
}

#[tokio::test]
async fn a_server_reached_by_ip_address_has_passkeys_off() {
    for db in databases().await {
        let app = start_app(&db, "127.0.0.1").await;
        let be = app.backend;
        let (_, secret) = app.account("kit").await;
        let mut b = app.browser();
        app.sign_in_with_password(&mut b, "kit", &secret).await;
        let page = b.get("/account/passkeys").await;
        assert_eq!(page.status, 200, "[{be}]");
        assert!(page.body.contains("id=\"passkeys-unavailable\""), "[{be}]");
        assert!(!page.body.contains("<script"), "[{be}] nothing to enhance");
        let r = app
            .post_json(&mut b, "/account/passkeys/register/start", &json!({}))
            .await;
        assert_eq!(r.status, 404, "[{be}] {}", r.body);
        assert_eq!(r.body["error"], "unavailable");
        let mut anonymous = app.browser();
        let page = anonymous.get("/login/passkey").await;
        assert!(page.body.contains("id=\"passkeys-unavailable\""), "[{be}]");
        let r = app
            .post_json(&mut anonymous, "/login/passkey/start", &json!({}))
            .await;
        assert_eq!(r.status, 404, "[{be}]");
    }
}
