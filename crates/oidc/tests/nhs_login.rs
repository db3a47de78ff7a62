//! The whole sign-in against a real OpenID Connect provider process (`oidc-provider` from npm,
//! OpenID-certified, configured like NHS login in `tests/provider/provider.mjs`) on loopback:
//! authorization request, login and consent driven with plain HTTP, code exchange with a
//! `private_key_jwt` assertion, ID token and userinfo checks.
//!
//! Needs Node.js (20.19+) and npm; `npm ci` runs in `tests/provider` when its `node_modules` is
//! missing. Without them these tests fail, saying so: they are never skipped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use oidc::{AuthState, Client, ClientKey, Error, Identity, IdentityLevel, Url};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

const CLIENT_ID: &str = "portico-test";
/// Never followed: the test reads the code from the provider's redirect.
const REDIRECT_URI: &str = "https://portico.example/login/nhs/callback";
const VTR: [&str; 6] = [
    "P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm", "P5.Cp.Cd", "P5.Cp.Ck", "P5.Cm",
];
const SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// Valid test-range NHS numbers (999 000 0000–999 999 9999, never issued to people).
fn nhs_number(serial: u32) -> String {
    (serial..serial + 20)
        .find_map(fhir::nhs_number::NhsNumber::in_test_range)
        .map(|n| n.digits())
        .expect("a valid test-range number among 20 serials")
}

fn accounts() -> Value {
    json!({
        "p9-user": {
            "nhs_number": nhs_number(1), "vot": "P9.Cp.Cd", "identity_proofing_level": "P9",
            "birthdate": "1970-01-01", "email": "p9@example.org", "email_verified": true,
            "family_name": "Testing",
        },
        "p5-user": {
            "nhs_number": nhs_number(500), "vot": "P5.Cp.Cd", "identity_proofing_level": "P5",
            "birthdate": "1985-06-15", "email": "p5@example.org", "family_name": "Testing",
        },
        "bad-nhs-number": {
            "nhs_number": bad_nhs_number(), "vot": "P9.Cp.Cd", "identity_proofing_level": "P9",
        },
    })
}

/// A valid test number with its check digit changed: ten digits that fail Modulus 11.
fn bad_nhs_number() -> String {
    let good = nhs_number(7);
    let (body, check) = good.split_at(9);
    let wrong = (check.parse::<u8>().expect("digit") + 1) % 10;
    format!("{body}{wrong}")
}

/// The client's RSA key, made once per run: a debug build takes seconds to generate one.
fn client_key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        let key =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
        key.to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 PEM")
            .to_string()
    })
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/provider")
}

/// `npm ci` once, when the provider's dependencies are not installed yet.
fn install_provider() {
    static LOCK: Mutex<()> = Mutex::new(());
    let _once = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = provider_dir();
    if dir.join("node_modules/oidc-provider/package.json").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "these tests need Node.js 20.19+ and npm to run the OIDC provider, and `npm` \
                 could not be started ({e}); install Node.js (e.g. `apt-get install nodejs npm`)"
            )
        });
    assert!(
        status.success(),
        "`npm ci` in {} failed ({status}); it needs the npm registry",
        dir.display()
    );
}

/// Provider settings a test may change.
struct Settings {
    id_token_alg: &'static str,
    client_auth_algs: &'static str,
    id_token_claims: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            id_token_alg: "RS512",
            client_auth_algs: r#"["RS512","RS256"]"#,
            id_token_claims: "userinfo",
        }
    }
}

/// A running provider; dropping it kills the process (and the process also exits when this
/// test process's end of its standard input closes).
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start(settings: Settings) -> Provider {
        install_provider();
        let jwks = ClientKey::from_pem(client_key_pem())
            .expect("client key")
            .public_jwks();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .arg("0")
            .current_dir(provider_dir())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_JWKS", jwks.to_string())
            .env("REDIRECT_URIS", json!([REDIRECT_URI]).to_string())
            .env("ACCOUNTS", accounts().to_string())
            .env("ID_TOKEN_ALG", settings.id_token_alg)
            .env("CLIENT_AUTH_ALGS", settings.client_auth_algs)
            .env("ID_TOKEN_CLAIMS", settings.id_token_claims)
            .env("EXIT_WITH_STDIN", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need Node.js 20.19+ to run the OIDC provider, and `node` could \
                     not be started ({e}); install Node.js"
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads every line, so the provider never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Guard first, so a provider that never gets ready is still killed.
        let mut provider = Provider {
            child,
            issuer: String::new(),
        };
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(port) = line.strip_prefix("ready ") {
                        provider.issuer = format!("http://127.0.0.1:{}", port.trim());
                        return provider;
                    }
                }
                Err(e) => panic!(
                    "the OIDC provider did not print `ready <port>` ({e}); see its stderr above"
                ),
            }
        }
    }

    async fn client(&self) -> Client {
        Client::discover(
            &self.issuer,
            CLIENT_ID,
            client_key_pem(),
            REDIRECT_URI,
            reqwest::Client::new(),
        )
        .await
        .expect("discovery against the provider")
    }
}

/// The provider's answer to the authorization request.
struct Callback {
    code: String,
    state: String,
    /// The `vtr` parameter as the provider received it.
    vtr_seen: Option<String>,
}

/// Plays the browser: follows the provider's redirects, logs in as `account`, consents, and
/// stops at the redirect to our redirect URI.
async fn sign_in(provider: &Provider, authorize: &Url, account: &str) -> Callback {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser client");
    let base = Url::parse(&provider.issuer).expect("issuer URL");
    let mut response = browser
        .get(authorize.clone())
        .send()
        .await
        .expect("authorize");
    let mut vtr_seen = None;
    for _ in 0..12 {
        let status = response.status();
        let url = response.url().clone();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .expect("redirect with Location")
                .to_string();
            if location.starts_with(REDIRECT_URI) {
                let to = Url::parse(&location).expect("callback URL");
                let get = |name: &str| {
                    to.query_pairs()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                };
                if let Some(error) = get("error") {
                    panic!(
                        "the provider answered error {error}: {:?}",
                        get("error_description")
                    );
                }
                return Callback {
                    code: get("code").expect("code in the callback"),
                    state: get("state").expect("state in the callback"),
                    vtr_seen,
                };
            }
            let next = base.join(&location).expect("redirect target");
            response = browser.get(next).send().await.expect("follow redirect");
            continue;
        }
        assert!(
            status.is_success() && url.path().starts_with("/interaction/"),
            "unexpected answer {status} at {url}: {}",
            response.text().await.unwrap_or_default()
        );
        let page: Value = response.json().await.expect("interaction JSON");
        if let Some(vtr) = page["params"]["vtr"].as_str() {
            vtr_seen = Some(vtr.to_string());
        }
        let (action, form) = match page["prompt"].as_str() {
            Some("login") => ("login", vec![("login", account)]),
            Some("consent") => ("confirm", vec![]),
            other => panic!("unexpected prompt {other:?}"),
        };
        let submit = Url::parse(&format!("{url}/{action}")).expect("form URL");
        response = browser
            .post(submit)
            .form(&form)
            .send()
            .await
            .expect("submit interaction");
    }
    panic!("no redirect to the redirect URI after 12 steps");
}

async fn start_sign_in(
    provider: &Provider,
    client: &Client,
    account: &str,
) -> (Callback, AuthState) {
    let (url, auth) = client
        .authorize_url(&SCOPES, &VTR, &[])
        .expect("authorization URL");
    let callback = sign_in(provider, &url, account).await;
    (callback, auth)
}

async fn full_sign_in(provider: &Provider, client: &Client, account: &str) -> Identity {
    let (callback, auth) = start_sign_in(provider, client, account).await;
    client
        .exchange(&callback.code, &auth, &callback.state)
        .await
        .expect("code exchange")
}

#[tokio::test]
async fn a_p9_user_signs_in_with_nhs_number_and_high_level() {
    let provider = Provider::start(Settings::default());
    let client = provider.client().await;
    let (callback, auth) = start_sign_in(&provider, &client, "p9-user").await;
    assert_eq!(
        callback.vtr_seen.as_deref(),
        Some(r#"["P9.Cp.Cd","P9.Cp.Ck","P9.Cm","P5.Cp.Cd","P5.Cp.Ck","P5.Cm"]"#),
        "the provider received vtr as a JSON array"
    );
    let identity = client
        .exchange(&callback.code, &auth, &callback.state)
        .await
        .expect("code exchange");
    assert_eq!(identity.subject, "p9-user");
    assert_eq!(identity.nhs_number, Some(nhs_number(1)));
    assert_eq!(identity.identity_level, IdentityLevel::P9);
    assert!(identity.identity_level.allows_record_access());
    assert_eq!(identity.birthdate.as_deref(), Some("1970-01-01"));
    assert_eq!(identity.email.as_deref(), Some("p9@example.org"));
}

#[tokio::test]
async fn a_p5_user_comes_back_as_p5_with_claims_in_an_es256_id_token_and_rs256_assertion() {
    let provider = Provider::start(Settings {
        id_token_alg: "ES256",
        client_auth_algs: r#"["RS256"]"#,
        id_token_claims: "id_token",
    });
    let client = provider.client().await;
    let identity = full_sign_in(&provider, &client, "p5-user").await;
    assert_eq!(identity.subject, "p5-user");
    assert_eq!(identity.identity_level, IdentityLevel::P5);
    assert!(!identity.identity_level.allows_record_access());
    assert_eq!(identity.nhs_number, Some(nhs_number(500)));
    assert_eq!(identity.birthdate.as_deref(), Some("1985-06-15"));
}

#[tokio::test]
async fn a_wrong_state_is_refused_before_the_code_is_spent() {
    let provider = Provider::start(Settings::default());
    let client = provider.client().await;
    let (callback, auth) = start_sign_in(&provider, &client, "p9-user").await;

    let forged = format!("{}x", callback.state);
    for state in [forged.as_str(), "", &auth.nonce] {
        let err = client
            .exchange(&callback.code, &auth, state)
            .await
            .expect_err("wrong state");
        assert!(matches!(err, Error::StateMismatch), "{err}");
    }
    // The refused attempts did not reach the provider: the code still works once.
    let identity = client
        .exchange(&callback.code, &auth, &callback.state)
        .await
        .expect("the right state");
    assert_eq!(identity.identity_level, IdentityLevel::P9);
}

#[tokio::test]
async fn a_replayed_code_is_refused_by_the_provider_with_a_clear_error() {
    let provider = Provider::start(Settings::default());
    let client = provider.client().await;
    let (callback, auth) = start_sign_in(&provider, &client, "p9-user").await;
    client
        .exchange(&callback.code, &auth, &callback.state)
        .await
        .expect("first exchange");

    let err = client
        .exchange(&callback.code, &auth, &callback.state)
        .await
        .expect_err("replayed code");
    match &err {
        Error::TokenRefused { status, error, .. } => {
            assert_eq!(error, "invalid_grant", "{err}");
            assert_eq!(*status, 400);
        }
        other => panic!("expected TokenRefused, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(
        !message.contains(&callback.code),
        "the code is not echoed: {message}"
    );
}

#[tokio::test]
async fn a_code_redeemed_with_another_sign_ins_pkce_verifier_is_refused() {
    let provider = Provider::start(Settings::default());
    let client = provider.client().await;
    let (callback, auth) = start_sign_in(&provider, &client, "p9-user").await;
    let other = AuthState {
        pkce_verifier: "a".repeat(43),
        ..auth.clone()
    };
    let err = client
        .exchange(&callback.code, &other, &callback.state)
        .await
        .expect_err("wrong verifier");
    assert!(
        matches!(&err, Error::TokenRefused { error, .. } if error == "invalid_grant"),
        "{err}"
    );
}

#[tokio::test]
async fn an_nhs_number_failing_modulus_11_is_refused_without_echoing_it() {
    let provider = Provider::start(Settings::default());
    let client = provider.client().await;
    let (callback, auth) = start_sign_in(&provider, &client, "bad-nhs-number").await;
    let err = client
        .exchange(&callback.code, &auth, &callback.state)
        .await
        .expect_err("bad NHS number");
    assert!(
        matches!(
            err,
            Error::InvalidClaim {
                claim: "nhs_number",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains(&bad_nhs_number()[..6]), "{err}");
}

#[tokio::test]
async fn discovery_refuses_a_mistyped_issuer() {
    let provider = Provider::start(Settings::default());
    let err = Client::discover(
        &format!("{}/", provider.issuer),
        CLIENT_ID,
        client_key_pem(),
        REDIRECT_URI,
        reqwest::Client::new(),
    )
    .await
    .expect_err("trailing slash is another issuer");
    assert!(matches!(err, Error::Metadata(_)), "{err}");
}
