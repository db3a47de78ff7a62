//! SMART on FHIR over HTTP, on every available backend: discovery, sign-in through
//! `/oauth/authorize`, the consent screen, codes with PKCE, tokens, refresh rotation and reuse
//! detection, id_tokens checked against the published key, connected apps, and every way a
//! grant or refresh token must die. A module of the `http` test binary, reusing the sign-in
//! harness of [`super::signin`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::TimeDelta;
use identity::totp::Secret;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use serde_json::Value;
use store::accounts::{Account, IdentityLevel, Role};
use store::audit::AuditAction;
use web::signin::provision::{self, NewAccount};

use super::signin::{apps, cheap, App, Browser, Db, Page, PASSWORD};

/// Where the test app's browser would land (nothing listens there: the tests read `Location`).
const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const STATE: &str = "st-42 &x";
const PATIENT: &str = "pat-smart-1";

// ----- fixture -----

struct Smart {
    app: App,
    _db: Db,
    client_id: String,
    http: reqwest::Client,
}

/// A patient (Patient resource, account with TOTP) and a registered app, per backend.
async fn fixtures() -> Vec<(Smart, Account, Secret)> {
    let mut out = Vec::new();
    for (app, db) in apps().await {
        let http = reqwest::Client::new();
        let admin = app
            .state
            .issue_token("test-admin", "system/*.*")
            .expect("token");
        let r = http
            .put(format!("{}/fhir/Patient/{PATIENT}", app.base))
            .bearer_auth(&admin)
            .header("content-type", "application/fhir+json")
            .body(
                serde_json::json!({"resourceType": "Patient", "id": PATIENT,
                    "name": [{"given": ["Amy"], "family": "Pond"}]})
                .to_string(),
            )
            .send()
            .await
            .expect("PUT Patient");
        assert!(
            r.status().is_success(),
            "[{}] Patient: {}",
            app.backend,
            r.status()
        );
        let registered = web::smart::registration::register_app(
            app.state.store.as_ref(),
            "Health diary",
            &[REDIRECT.to_string()],
            app.now(),
        )
        .await
        .expect("register app");
        let (account, secret) = account(&app, "amy.pond", Role::Patient, Some(PATIENT)).await;
        out.push((
            Smart {
                app,
                _db: db,
                client_id: registered.client_id,
                http,
            },
            account,
            secret,
        ));
    }
    out
}

async fn account(
    app: &App,
    username: &str,
    role: Role,
    patient: Option<&str>,
) -> (Account, Secret) {
    account_with(app, username, role, patient, None).await
}

async fn account_with(
    app: &App,
    username: &str,
    role: Role,
    patient: Option<&str>,
    related_person: Option<&str>,
) -> (Account, Secret) {
    let secret = Secret::generate();
    let new = NewAccount {
        username: username.into(),
        role: Some(role),
        patient_id: patient.map(str::to_string),
        related_person_id: related_person.map(str::to_string),
        totp_secret: Some(secret.to_base32()),
        identity_level: Some(IdentityLevel::P9),
        ..NewAccount::default()
    };
    let account =
        provision::create_account(app.state.store.as_ref(), &cheap(), new, PASSWORD, app.now())
            .await
            .expect("store")
            .expect("account accepted");
    (account, secret)
}

/// What an HTML attribute value says (named and numeric character references decoded).
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(end) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every hidden input of the form that posts to `action`, as name and value.
fn hidden_fields(page: &Page, action: &str) -> Vec<(String, String)> {
    let start = page
        .body
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form for {action}: {}", page.body));
    let form = &page.body[start..];
    let form = &form[..form.find("</form>").unwrap_or(form.len())];
    form.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| {
            let attr = |name: &str| {
                let at = input.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
                let end = input[at..].find('"').expect("closing quote");
                unescape(&input[at..at + end])
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

/// The query parameters of a URL.
fn query_of(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    serde_urlencoded::from_str(query).expect("a query")
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The claims of a token (a JWT, or Portico's `payload.mac` access token).
fn payload(token: &str) -> Value {
    let part = if token.matches('.').count() == 2 {
        token.split('.').nth(1)
    } else {
        token.split('.').next()
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(part.expect("a payload"))
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

struct TokenAnswer {
    status: u16,
    cache_control: Option<String>,
    body: Value,
}

impl Smart {
    fn backend(&self) -> &'static str {
        self.app.backend
    }

    /// `/oauth/authorize?…` with the standard parameters, `changes` replacing or removing
    /// (empty value) some.
    fn authorize_path(&self, scope: &str, changes: &[(&str, &str)]) -> String {
        let aud = format!("{}/fhir", self.app.base);
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", STATE),
            ("aud", &aud),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("nonce", "nonce-7"),
        ];
        for (name, value) in changes {
            params.retain(|(n, _)| n != name);
            if !value.is_empty() {
                params.push((name, value));
            }
        }
        format!(
            "/oauth/authorize?{}",
            serde_urlencoded::to_string(&params).expect("query")
        )
    }

    /// Signs in from the authorize URL (password and TOTP, coming back through `next=`);
    /// the consent page.
    async fn sign_in_through(
        &self,
        b: &mut Browser,
        username: &str,
        secret: &Secret,
        path: &str,
    ) -> Page {
        let b_ = self.backend();
        // A fresh TOTP step for every sign-in (a code works once).
        self.app.clock.advance(TimeDelta::seconds(31));
        let p = b.get(path).await;
        assert_eq!(p.status, 303, "[{b_}] not signed in: {}", p.body);
        let login = p.location.expect("to sign-in");
        assert!(login.starts_with("/login?next="), "[{b_}] {login}");
        let form = b.get(&login).await;
        let next = unescape(&form.field("/login", "next"));
        assert_eq!(next, path, "[{b_}] the authorize URL survives next=");
        let p = b
            .post(
                "/login",
                &[
                    ("csrf", &form.csrf("/login")),
                    ("username", username),
                    ("password", PASSWORD),
                    ("next", &next),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "[{b_}] password: {}", p.body);
        let second = p.location.expect("to the second factor");
        let form = b.get(&second).await;
        let next = unescape(&form.field("/login/second-factor", "next"));
        let code = self.app.code(secret);
        let p = b
            .post(
                "/login/second-factor",
                &[
                    ("csrf", &form.csrf("/login/second-factor")),
                    ("method", "totp"),
                    ("code", &code),
                    ("next", &next),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "[{b_}] second factor: {}", p.body);
        assert_eq!(
            p.location.as_deref(),
            Some(path),
            "[{b_}] back to authorize"
        );
        let consent = b.get(path).await;
        assert_eq!(consent.status, 200, "[{b_}] consent: {}", consent.body);
        consent
    }

    /// Answers the consent page; the app's redirect (`Location`).
    async fn answer(&self, b: &mut Browser, consent: &Page, decision: &str) -> String {
        let mut fields = hidden_fields(consent, "/oauth/authorize");
        fields.push(("decision".into(), decision.into()));
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let p = b.post("/oauth/authorize", &form).await;
        assert_eq!(p.status, 302, "[{}] answer: {}", self.backend(), p.body);
        p.location.expect("a redirect to the app")
    }

    /// The whole flow for `scope`: the code from the redirect.
    async fn code_for(
        &self,
        b: &mut Browser,
        username: &str,
        secret: &Secret,
        scope: &str,
    ) -> String {
        let path = self.authorize_path(scope, &[]);
        let consent = self.sign_in_through(b, username, secret, &path).await;
        let location = self.answer(b, &consent, "approve").await;
        assert!(location.starts_with(REDIRECT), "{location}");
        let q = query_of(&location);
        assert_eq!(param(&q, "state").as_deref(), Some(STATE), "state echoed");
        param(&q, "code").expect("a code")
    }

    async fn token(&self, form: &[(&str, &str)]) -> TokenAnswer {
        let r = self
            .http
            .post(format!("{}/oauth/token", self.app.base))
            .form(form)
            .send()
            .await
            .expect("token request");
        let status = r.status().as_u16();
        let cache_control = r
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        TokenAnswer {
            status,
            cache_control,
            body,
        }
    }

    async fn exchange(&self, code: &str, verifier: &str) -> TokenAnswer {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &self.client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> TokenAnswer {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &self.client_id),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Exchanges `code` and checks the answer is a token response; its body.
    async fn tokens(&self, code: &str) -> Value {
        let t = self.exchange(code, VERIFIER).await;
        assert_eq!(t.status, 200, "[{}] exchange: {}", self.backend(), t.body);
        t.body
    }

    async fn grant_active(&self, access_token: &str) -> bool {
        let grant = payload(access_token)["grant"]
            .as_str()
            .expect("a grant claim")
            .to_string();
        web::smart::grant_is_active(self.app.state.store.as_ref(), &grant).await
    }
}

fn assert_invalid_grant(t: &TokenAnswer, what: &str) {
    assert_eq!(t.status, 400, "{what}: {}", t.body);
    assert_eq!(t.body["error"], "invalid_grant", "{what}");
    assert_eq!(t.cache_control.as_deref(), Some("no-store"), "{what}");
}

const FULL_SCOPE: &str = "openid fhirUser launch/patient patient/*.read user/*.read offline_access";

// ----- discovery -----

#[tokio::test]
async fn smart_configuration_names_the_endpoints_and_capabilities() {
    for (s, _, _) in fixtures().await {
        let b = s.backend();
        for path in [
            "/.well-known/smart-configuration",
            "/fhir/.well-known/smart-configuration",
        ] {
            let r = s
                .http
                .get(format!("{}{path}", s.app.base))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 200, "[{b}] {path}");
            let c: Value = r.json().await.expect("JSON");
            let base = &s.app.base;
            assert_eq!(c["issuer"], base.as_str());
            assert_eq!(
                c["authorization_endpoint"],
                format!("{base}/oauth/authorize")
            );
            assert_eq!(c["token_endpoint"], format!("{base}/oauth/token"));
            assert_eq!(c["jwks_uri"], format!("{base}/.well-known/jwks.json"));
            assert_eq!(
                c["grant_types_supported"],
                serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
            );
            assert_eq!(c["response_types_supported"], serde_json::json!(["code"]));
            assert_eq!(
                c["code_challenge_methods_supported"],
                serde_json::json!(["S256"])
            );
            let caps: Vec<&str> = c["capabilities"]
                .as_array()
                .expect("capabilities")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            for cap in [
                "launch-standalone",
                "client-public",
                "client-confidential-symmetric",
                "context-standalone-patient",
                "permission-patient",
                "permission-user",
                "permission-offline",
                "permission-v1",
                "permission-v2",
                "sso-openid-connect",
            ] {
                assert!(caps.contains(&cap), "[{b}] {cap}");
            }
            let scopes = c["scopes_supported"].as_array().expect("scopes");
            assert!(scopes.contains(&Value::from("launch/patient")));
            assert!(c["token_endpoint_auth_methods_supported"]
                .as_array()
                .expect("auth methods")
                .contains(&Value::from("client_secret_basic")));
        }
    }
}

// ----- the whole flow -----

#[tokio::test]
async fn sign_in_consent_code_token_refresh_and_an_id_token_that_verifies() {
    for (s, account, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let path = s.authorize_path(FULL_SCOPE, &[]);
        let consent = s
            .sign_in_through(&mut browser, "amy.pond", &secret, &path)
            .await;
        // The consent screen: the app, what it may do in plain words, what it will not get.
        assert!(consent.title().starts_with("Connect an app"), "[{b}]");
        assert!(consent
            .body
            .contains("Health diary wants to use your Portico account"));
        assert!(consent.body.contains("See everything in the health record"));
        assert!(consent.body.contains("Know who you are"));
        assert!(consent.body.contains("It will use your own health record."));
        let dropped = &consent.body[consent.body.find("consent-dropped").expect("dropped list")..];
        assert!(
            dropped.contains("user/*.read"),
            "[{b}] a patient grants no user/ scope"
        );
        assert!(!consent.body.contains("<script"));
        let csp = consent.header("content-security-policy").expect("CSP");
        assert!(
            csp.contains("form-action 'self' http://127.0.0.1:9"),
            "[{b}] the answer may redirect to the app: {csp}"
        );

        let location = s.answer(&mut browser, &consent, "approve").await;
        let q = query_of(&location);
        assert_eq!(param(&q, "state").as_deref(), Some(STATE), "[{b}]");
        let code = param(&q, "code").expect("code");

        let t = s.exchange(&code, VERIFIER).await;
        assert_eq!(t.status, 200, "[{b}] {}", t.body);
        assert_eq!(t.cache_control.as_deref(), Some("no-store"));
        let body = t.body;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(
            body["scope"],
            "openid fhirUser launch/patient patient/*.read offline_access"
        );
        assert_eq!(body["patient"], PATIENT);
        let access = body["access_token"].as_str().expect("access token");
        let claims = payload(access);
        assert_eq!(claims["kind"], "user");
        assert_eq!(claims["sub"], account.account_id.as_str());
        assert_eq!(claims["patient"], PATIENT);
        assert_eq!(claims["client_id"], s.client_id.as_str());
        assert!(s.grant_active(access).await, "[{b}]");

        // The id_token verifies with the published key and says who signed in.
        let id_token = body["id_token"].as_str().expect("id_token");
        let jwks: Value = s
            .http
            .get(format!("{}/.well-known/jwks.json", s.app.base))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("JSON");
        let key = &jwks["keys"][0];
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str()),
            (Some("EC"), Some("P-256"))
        );
        let mut point = vec![0x04u8];
        for c in ["x", "y"] {
            point.extend(
                URL_SAFE_NO_PAD
                    .decode(key[c].as_str().expect("coordinate"))
                    .expect("base64url"),
            );
        }
        let parts: Vec<&str> = id_token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("JSON");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], key["kid"]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        let signed = format!("{}.{}", parts[0], parts[1]);
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point);
        assert!(
            public.verify(signed.as_bytes(), &signature).is_ok(),
            "[{b}] signature"
        );
        let mut forged = payload(id_token);
        forged["sub"] = Value::from("someone-else");
        let forged_input = format!(
            "{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(forged.to_string())
        );
        assert!(public.verify(forged_input.as_bytes(), &signature).is_err());
        let id = payload(id_token);
        assert_eq!(id["iss"], s.app.base.as_str());
        assert_eq!(id["aud"], s.client_id.as_str());
        assert_eq!(id["sub"], account.account_id.as_str());
        assert_eq!(id["nonce"], "nonce-7");
        assert_eq!(
            id["fhirUser"],
            format!("{}/fhir/Patient/{PATIENT}", s.app.base)
        );
        assert!(id["exp"].as_i64() > id["iat"].as_i64());

        // Refresh: a new access token and a new refresh token.
        let first_refresh = body["refresh_token"].as_str().expect("refresh token");
        let r = s.refresh(first_refresh).await;
        assert_eq!(r.status, 200, "[{b}] refresh: {}", r.body);
        assert_eq!(r.cache_control.as_deref(), Some("no-store"));
        assert_eq!(r.body["patient"], PATIENT);
        let second_refresh = r.body["refresh_token"].as_str().expect("rotated");
        assert_ne!(second_refresh, first_refresh);
        assert!(
            s.grant_active(r.body["access_token"].as_str().expect("access"))
                .await
        );

        let granted = s
            .app
            .audit_of(&account.account_id, AuditAction::GrantApp)
            .await;
        assert_eq!(granted.len(), 1, "[{b}] GrantApp audited");
        assert_eq!(granted[0].patient.as_deref(), Some(PATIENT));
        assert_eq!(granted[0].entity.as_deref(), Some(s.client_id.as_str()));
    }
}

#[tokio::test]
async fn without_offline_access_or_openid_there_is_no_refresh_token_or_id_token() {
    for (s, _, secret) in fixtures().await {
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, "patient/Observation.rs")
            .await;
        let body = s.tokens(&code).await;
        assert_eq!(body["scope"], "patient/Observation.rs", "[{}]", s.backend());
        assert!(body.get("refresh_token").is_none());
        assert!(body.get("id_token").is_none());
    }
}

// ----- PKCE, codes -----

#[tokio::test]
async fn a_wrong_code_verifier_gets_invalid_grant_and_the_code_is_spent() {
    for (s, _, secret) in fixtures().await {
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, FULL_SCOPE)
            .await;
        let wrong = "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_invalid_grant(&s.exchange(&code, wrong).await, "wrong verifier");
        assert_invalid_grant(&s.exchange(&code, VERIFIER).await, "the code was spent");
    }
}

#[tokio::test]
async fn a_code_used_twice_revokes_the_grant_and_its_refresh_token() {
    for (s, account, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, FULL_SCOPE)
            .await;
        let body = s.tokens(&code).await;
        let access = body["access_token"].as_str().expect("access");
        let refresh = body["refresh_token"].as_str().expect("refresh");
        assert!(s.grant_active(access).await);

        assert_invalid_grant(&s.exchange(&code, VERIFIER).await, "second use");
        assert!(!s.grant_active(access).await, "[{b}] the grant is revoked");
        assert_invalid_grant(&s.refresh(refresh).await, "its refresh token died");
        let grants = s
            .app
            .state
            .store
            .accounts()
            .active_grants(&account.account_id)
            .await
            .expect("grants");
        assert!(grants.is_empty(), "[{b}] no connected app is left");
    }
}

#[tokio::test]
async fn a_code_expires_after_a_minute() {
    for (s, _, secret) in fixtures().await {
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, FULL_SCOPE)
            .await;
        s.app.clock.advance(TimeDelta::seconds(61));
        assert_invalid_grant(&s.exchange(&code, VERIFIER).await, "late code");
    }
}

#[tokio::test]
async fn token_requests_of_other_clients_or_redirect_uris_are_refused() {
    for (s, _, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, FULL_SCOPE)
            .await;
        let t = s
            .token(&[
                ("grant_type", "authorization_code"),
                ("client_id", "app-nobody"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ])
            .await;
        assert_eq!(
            (t.status, t.body["error"].as_str()),
            (401, Some("invalid_client")),
            "[{b}]"
        );
        let t = s
            .token(&[
                ("grant_type", "authorization_code"),
                ("client_id", &s.client_id),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/other"),
                ("code_verifier", VERIFIER),
            ])
            .await;
        assert_invalid_grant(&t, "another redirect_uri");
        let t = s
            .token(&[
                ("grant_type", "authorization_code"),
                ("client_id", &s.client_id),
                ("client_secret", "a secret"),
                ("code", "x"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ])
            .await;
        assert_eq!(
            (t.status, t.body["error"].as_str()),
            (401, Some("invalid_client")),
            "[{b}] apps are public"
        );
    }
}

// ----- the authorize request -----

#[tokio::test]
async fn problems_before_the_redirect_uri_is_trusted_are_pages_never_redirects() {
    for (s, _, _) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        for (what, changes) in [
            ("unregistered client", vec![("client_id", "app-0000")]),
            ("no client", vec![("client_id", "")]),
            (
                "redirect_uri mismatch",
                vec![("redirect_uri", "http://127.0.0.1:9/evil")],
            ),
            ("no redirect_uri", vec![("redirect_uri", "")]),
        ] {
            let p = browser.get(&s.authorize_path(FULL_SCOPE, &changes)).await;
            assert_eq!(p.status, 400, "[{b}] {what}: {}", p.body);
            assert_eq!(p.location, None, "[{b}] {what}: no redirect");
            assert!(
                p.title().starts_with("This app could not connect"),
                "[{b}] {what}"
            );
        }
        let p = browser
            .get(&format!(
                "{}&client_id=again",
                s.authorize_path(FULL_SCOPE, &[])
            ))
            .await;
        assert_eq!(
            (p.status, p.location),
            (400, None),
            "[{b}] repeated parameter"
        );
    }
}

#[tokio::test]
async fn later_problems_go_back_to_the_app_with_error_and_state() {
    for (s, _, _) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let other_aud = "https://elsewhere.example/fhir";
        for (what, changes, error) in [
            (
                "no code_challenge",
                vec![("code_challenge", "")],
                "invalid_request",
            ),
            (
                "plain PKCE",
                vec![("code_challenge_method", "plain")],
                "invalid_request",
            ),
            (
                "no PKCE method",
                vec![("code_challenge_method", "")],
                "invalid_request",
            ),
            ("wrong aud", vec![("aud", other_aud)], "invalid_request"),
            ("no aud", vec![("aud", "")], "invalid_request"),
            (
                "token response type",
                vec![("response_type", "token")],
                "unsupported_response_type",
            ),
            (
                "malformed scope",
                vec![("scope", "patient/Observation")],
                "invalid_scope",
            ),
        ] {
            let p = browser.get(&s.authorize_path(FULL_SCOPE, &changes)).await;
            assert_eq!(p.status, 302, "[{b}] {what}: {}", p.body);
            let location = p.location.expect("redirect");
            assert!(location.starts_with(REDIRECT), "[{b}] {what}: {location}");
            let q = query_of(&location);
            assert_eq!(param(&q, "error").as_deref(), Some(error), "[{b}] {what}");
            assert_eq!(param(&q, "state").as_deref(), Some(STATE), "[{b}] {what}");
            assert!(param(&q, "error_description").is_some());
            assert_eq!(param(&q, "code"), None);
        }
    }
}

#[tokio::test]
async fn deny_sends_access_denied_and_grants_nothing() {
    for (s, account, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let path = s.authorize_path(FULL_SCOPE, &[]);
        let consent = s
            .sign_in_through(&mut browser, "amy.pond", &secret, &path)
            .await;
        let location = s.answer(&mut browser, &consent, "deny").await;
        let q = query_of(&location);
        assert_eq!(
            param(&q, "error").as_deref(),
            Some("access_denied"),
            "[{b}]"
        );
        assert_eq!(param(&q, "state").as_deref(), Some(STATE));
        assert_eq!(param(&q, "code"), None);
        let grants = s
            .app
            .state
            .store
            .accounts()
            .active_grants(&account.account_id)
            .await
            .expect("grants");
        assert!(grants.is_empty(), "[{b}]");
    }
}

#[tokio::test]
async fn approving_without_the_anti_forgery_token_is_403_and_issues_nothing() {
    for (s, account, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let path = s.authorize_path(FULL_SCOPE, &[]);
        let consent = s
            .sign_in_through(&mut browser, "amy.pond", &secret, &path)
            .await;
        let mut fields = hidden_fields(&consent, "/oauth/authorize");
        fields.retain(|(k, _)| k != "csrf");
        fields.push(("decision".into(), "approve".into()));
        let mut with_wrong = fields.clone();
        with_wrong.push(("csrf".into(), "forged".into()));
        for form in [fields, with_wrong] {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let p = browser.post("/oauth/authorize", &form).await;
            assert_eq!(p.status, 403, "[{b}] {}", p.body);
            assert_eq!(p.location, None);
        }
        let grants = s
            .app
            .state
            .store
            .accounts()
            .active_grants(&account.account_id)
            .await
            .expect("grants");
        assert!(grants.is_empty(), "[{b}] no grant without the token");
    }
}

// ----- refresh tokens -----

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_grant() {
    for (s, _, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, FULL_SCOPE)
            .await;
        let body = s.tokens(&code).await;
        let first = body["refresh_token"].as_str().expect("refresh").to_string();
        let r = s.refresh(&first).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.body);
        let second = r.body["refresh_token"]
            .as_str()
            .expect("rotated")
            .to_string();
        let access = r.body["access_token"].as_str().expect("access").to_string();
        let r = s.refresh(&second).await;
        assert_eq!(r.status, 200, "[{b}] the new one works: {}", r.body);
        let third = r.body["refresh_token"]
            .as_str()
            .expect("rotated")
            .to_string();

        // The first token again: someone holds a copy. Everything of the grant dies.
        assert_invalid_grant(&s.refresh(&first).await, "reuse");
        assert!(!s.grant_active(&access).await, "[{b}] grant revoked");
        assert_invalid_grant(&s.refresh(&third).await, "the latest died with the grant");
        assert_invalid_grant(&s.refresh("not-a-token").await, "unknown");
    }
}

#[tokio::test]
async fn a_password_change_kills_refresh_tokens() {
    for (s, _, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, FULL_SCOPE)
            .await;
        let body = s.tokens(&code).await;
        let refresh = body["refresh_token"].as_str().expect("refresh").to_string();

        s.app.clock.advance(TimeDelta::seconds(5));
        let form = browser.get("/account/password").await;
        let p = browser
            .post(
                "/account/password",
                &[
                    ("csrf", &form.csrf("/account/password")),
                    ("current_password", PASSWORD),
                    ("new_password", "saffron glacier pylon 77"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "[{b}] password changed: {}", p.body);
        assert_invalid_grant(&s.refresh(&refresh).await, "after a password change");
    }
}

// ----- connected apps -----

#[tokio::test]
async fn disconnecting_an_app_kills_its_refresh_and_access_tokens_and_is_audited() {
    for (s, account, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, FULL_SCOPE)
            .await;
        let body = s.tokens(&code).await;
        let access = body["access_token"].as_str().expect("access").to_string();
        let refresh = body["refresh_token"].as_str().expect("refresh").to_string();

        let account_page = browser.get("/account").await;
        assert!(
            account_page.body.contains("href=\"/account/apps\""),
            "[{b}] linked"
        );
        let apps = browser.get("/account/apps").await;
        assert_eq!(apps.status, 200, "[{b}] {}", apps.body);
        assert!(apps.body.contains("Health diary"));
        assert!(apps.body.contains("See everything in the health record"));
        let grant = payload(&access)["grant"]
            .as_str()
            .expect("grant")
            .to_string();
        let action = format!("/account/apps/{grant}/revoke");

        // Without the form's token nothing happens.
        let p = browser.post(&action, &[("csrf", "forged")]).await;
        assert_eq!(p.status, 403, "[{b}]");
        assert!(s.grant_active(&access).await);

        let p = browser
            .post(&action, &[("csrf", &apps.csrf(&action))])
            .await;
        assert_eq!(p.status, 303, "[{b}] {}", p.body);
        assert_eq!(p.location.as_deref(), Some("/account/apps?done=revoked"));
        assert!(
            !s.grant_active(&access).await,
            "[{b}] access tokens stop working"
        );
        assert_invalid_grant(&s.refresh(&refresh).await, "after disconnecting");
        let apps = browser.get("/account/apps").await;
        assert!(
            !apps.body.contains("Health diary"),
            "[{b}] gone from the list"
        );
        assert!(apps.body.contains("You have not connected any apps."));

        let revoked = s
            .app
            .audit_of(&account.account_id, AuditAction::RevokeApp)
            .await;
        assert_eq!(revoked.len(), 1, "[{b}] RevokeApp audited");
        assert_eq!(revoked[0].entity.as_deref(), Some(s.client_id.as_str()));
    }
}

#[tokio::test]
async fn another_accounts_app_cannot_be_disconnected() {
    for (s, _, secret) in fixtures().await {
        let b = s.backend();
        let mut browser = s.app.browser();
        let code = s
            .code_for(&mut browser, "amy.pond", &secret, FULL_SCOPE)
            .await;
        let body = s.tokens(&code).await;
        let access = body["access_token"].as_str().expect("access").to_string();
        let grant = payload(&access)["grant"]
            .as_str()
            .expect("grant")
            .to_string();

        let (_, other_secret) = account(&s.app, "rory.williams", Role::Patient, None).await;
        let mut other = s.app.browser();
        s.app.clock.advance(TimeDelta::seconds(31));
        other.sign_in(&s.app, "rory.williams", &other_secret).await;
        let action = format!("/account/apps/{grant}/revoke");
        // A valid token for this action under the other person's session.
        let token = web::csrf::token(
            &s.app
                .state
                .store
                .accounts()
                .session(&identity::token::hash_token(
                    &other.session_cookie().expect("cookie"),
                ))
                .await
                .expect("session")
                .expect("live")
                .csrf_secret,
            &action,
        );
        let p = other.post(&action, &[("csrf", &token)]).await;
        assert_eq!(p.status, 404, "[{b}] {}", p.body);
        assert!(s.grant_active(&access).await, "[{b}] still connected");
    }
}

// ----- roles -----

#[tokio::test]
async fn staff_grant_user_scopes_only_with_no_patient_in_context() {
    for (s, _, _) in fixtures().await {
        let b = s.backend();
        let (staff, secret) = account(&s.app, "dr.song", Role::Clinician, None).await;
        let mut browser = s.app.browser();
        let path = s.authorize_path(
            "openid fhirUser launch/patient patient/*.read user/*.read system/*.read",
            &[],
        );
        let consent = s
            .sign_in_through(&mut browser, "dr.song", &secret, &path)
            .await;
        assert!(consent.body.contains("It will act as you"), "[{b}]");
        assert!(
            !consent.body.contains("name=\"patient\""),
            "[{b}] no picker for staff"
        );
        let location = s.answer(&mut browser, &consent, "approve").await;
        let code = param(&query_of(&location), "code").expect("code");
        let body = s.tokens(&code).await;
        assert_eq!(body["scope"], "openid fhirUser user/*.read", "[{b}]");
        assert!(body.get("patient").is_none(), "[{b}]");
        let id = payload(body["id_token"].as_str().expect("id_token"));
        assert_eq!(id["sub"], staff.account_id.as_str());
        assert!(
            id.get("fhirUser").is_none(),
            "[{b}] no PractitionerRole linked"
        );
    }
}

#[tokio::test]
async fn a_proxy_chooses_the_person_of_their_related_person_link_and_nobody_else() {
    for (s, _, _) in fixtures().await {
        let b = s.backend();
        let admin = s
            .app
            .state
            .issue_token("test-admin", "system/*.*")
            .expect("token");
        let r = s
            .http
            .put(format!("{}/fhir/RelatedPerson/rp-smart", s.app.base))
            .bearer_auth(&admin)
            .header("content-type", "application/fhir+json")
            .body(
                serde_json::json!({"resourceType": "RelatedPerson", "id": "rp-smart",
                    "patient": {"reference": format!("Patient/{PATIENT}")}})
                .to_string(),
            )
            .send()
            .await
            .expect("PUT RelatedPerson");
        assert!(
            r.status().is_success(),
            "[{b}] RelatedPerson: {}",
            r.status()
        );
        let (_, secret) =
            account_with(&s.app, "river.song", Role::Proxy, None, Some("rp-smart")).await;
        let mut browser = s.app.browser();
        let path = s.authorize_path(FULL_SCOPE, &[]);
        let consent = s
            .sign_in_through(&mut browser, "river.song", &secret, &path)
            .await;
        assert!(
            consent.body.contains("Whose health record should it use?"),
            "[{b}]"
        );
        assert!(
            consent.body.contains(&format!("value=\"{PATIENT}\"")),
            "[{b}]"
        );
        assert!(
            consent.body.contains("Amy Pond"),
            "[{b}] the person is named"
        );

        // Someone not on the list cannot be slipped in.
        let mut fields = hidden_fields(&consent, "/oauth/authorize");
        fields.push(("decision".into(), "approve".into()));
        fields.push(("patient".into(), "pat-someone-else".into()));
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let p = browser.post("/oauth/authorize", &form).await;
        assert_eq!((p.status, p.location), (400, None), "[{b}] tampered choice");

        let mut fields = hidden_fields(&consent, "/oauth/authorize");
        fields.push(("decision".into(), "approve".into()));
        fields.push(("patient".into(), PATIENT.into()));
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let p = browser.post("/oauth/authorize", &form).await;
        assert_eq!(p.status, 302, "[{b}] {}", p.body);
        let code = param(&query_of(&p.location.expect("redirect")), "code").expect("code");
        let body = s.tokens(&code).await;
        assert_eq!(body["patient"], PATIENT, "[{b}]");
        let id = payload(body["id_token"].as_str().expect("id_token"));
        assert_eq!(
            id["fhirUser"],
            format!("{}/fhir/RelatedPerson/rp-smart", s.app.base)
        );
    }
}
