//! Test support (cargo feature `testing`): a real OpenID Connect provider process shaped like
//! NHS login, and a scripted browser that signs in at it, for this crate's tests and for the
//! tests of the crates that use it (the web sign-in routes).
//!
//! The provider is `oidc-provider` from npm (OpenID-certified), configured in
//! `tests/provider/provider.mjs` and listening on loopback. It needs Node.js (20.19+) and npm;
//! `npm ci` runs in `tests/provider` when its `node_modules` is missing. Without them the tests
//! that start it fail, saying so: they are never skipped.
//!
//! This is test code: it panics, with a message saying what to do, when its environment is not
//! what it needs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::Url;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

use crate::ClientKey;

/// The vectors of trust Portico asks NHS login for, most wanted first.
pub const VTR: [&str; 6] = [
    "P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm", "P5.Cp.Cd", "P5.Cp.Ck", "P5.Cm",
];

/// A valid test-range NHS number (999 000 0000–999 999 9999, never issued to people): the
/// first valid one from `serial` on.
pub fn nhs_number(serial: u32) -> String {
    (serial..serial + 20)
        .find_map(fhir::nhs_number::NhsNumber::in_test_range)
        .map(|n| n.digits())
        .expect("a valid test-range number among 20 serials")
}

/// A client RSA key (PKCS#8 PEM), made once per test process: a debug build takes seconds to
/// generate one. No private key is ever committed.
pub fn client_key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        let key =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
        key.to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 PEM")
            .to_string()
    })
}

/// Where `provider.mjs` and its npm package are.
pub fn provider_dir() -> PathBuf {
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

/// How the provider is started: its one client and its test accounts, and the choices a test
/// may change.
#[derive(Debug, Clone)]
pub struct Settings {
    pub client_id: String,
    /// The client's private key (PEM); its public half is registered with the provider.
    pub client_key_pem: String,
    /// The client's registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// Account id → claims (`nhs_number`, `vot`, `identity_proofing_level`, `birthdate`, …).
    /// The account id is the subject (`sub`).
    pub accounts: Value,
    /// ID token signature algorithm.
    pub id_token_alg: &'static str,
    /// Accepted client assertion algorithms (JSON array).
    pub client_auth_algs: &'static str,
    /// `userinfo`: profile claims only at the userinfo endpoint; `id_token`: in the ID token too.
    pub id_token_claims: &'static str,
}

impl Settings {
    /// NHS login's defaults (RS512 everywhere, profile claims from userinfo) for `client_id`
    /// with [`client_key_pem`].
    pub fn new(client_id: &str, redirect_uris: &[&str], accounts: Value) -> Settings {
        Settings {
            client_id: client_id.to_string(),
            client_key_pem: client_key_pem().to_string(),
            redirect_uris: redirect_uris.iter().map(|u| u.to_string()).collect(),
            accounts,
            id_token_alg: "RS512",
            client_auth_algs: r#"["RS512","RS256"]"#,
            id_token_claims: "userinfo",
        }
    }
}

/// A running provider; dropping it kills the process (and the process also exits when this
/// test process's end of its standard input closes).
pub struct Provider {
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
    /// Starts the provider on a free loopback port and waits until it serves.
    pub fn start(settings: Settings) -> Provider {
        install_provider();
        let jwks = ClientKey::from_pem(&settings.client_key_pem)
            .expect("client key")
            .public_jwks();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .arg("0")
            .current_dir(provider_dir())
            .env("CLIENT_ID", &settings.client_id)
            .env("CLIENT_JWKS", jwks.to_string())
            .env("REDIRECT_URIS", json!(settings.redirect_uris).to_string())
            .env("ACCOUNTS", settings.accounts.to_string())
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

    /// `http://127.0.0.1:<port>`, exactly as the provider's discovery document names it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// What the person does at the provider's login prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login<'a> {
    /// Signs in as this test account (and consents to what is asked).
    As(&'a str),
    /// Cancels: the provider answers the client with `error=access_denied`.
    Cancel,
}

/// The provider's redirect back to the client.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The whole redirect target, as the browser would follow it.
    pub url: Url,
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    /// The `vtr` parameter as the provider received it (None when no login prompt was shown).
    pub vtr_seen: Option<String>,
}

/// Plays the browser at the provider: follows its redirects from `authorize`, answers the login
/// prompt as `login` says, consents, and stops at the redirect to `redirect_uri` (a code, or an
/// error such as `login_required` after `prompt=none`).
pub async fn sign_in(
    provider: &Provider,
    authorize: &Url,
    redirect_uri: &str,
    login: Login<'_>,
) -> Callback {
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
            if location.starts_with(redirect_uri) {
                let to = Url::parse(&location).expect("callback URL");
                let get = |name: &str| {
                    to.query_pairs()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                };
                return Callback {
                    code: get("code"),
                    state: get("state"),
                    error: get("error"),
                    url: to,
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
        let (action, form) = match (page["prompt"].as_str(), login) {
            (_, Login::Cancel) => ("abort", vec![]),
            (Some("login"), Login::As(account)) => ("login", vec![("login", account)]),
            (Some("consent"), _) => ("confirm", vec![]),
            (other, _) => panic!("unexpected prompt {other:?}"),
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
