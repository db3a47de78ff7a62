//! The whole sign-in against a real OpenID Connect provider process (`oidc-provider` from npm,
//! OpenID-certified, configured like NHS login in `tests/provider/provider.mjs`) on loopback:
//! authorization request, login and consent driven with plain HTTP, code exchange with a
//! `private_key_jwt` assertion, ID token and userinfo checks. The harness is
//! [`oidc::testing`], shared with the web sign-in tests.
//!
//! Needs Node.js (20.19+) and npm; `npm ci` runs in `tests/provider` when its `node_modules` is
//! missing. Without them these tests fail, saying so: they are never skipped.

use oidc::testing::{self, client_key_pem, nhs_number, Login, Provider, Settings, VTR};
use oidc::{AuthState, Client, Error, Identity, IdentityLevel};
use serde_json::{json, Value};

const CLIENT_ID: &str = "portico-test";
/// Never followed: the test reads the code from the provider's redirect.
const REDIRECT_URI: &str = "https://portico.example/login/nhs/callback";
const SCOPES: [&str; 3] = ["openid", "profile", "email"];

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

fn settings() -> Settings {
    Settings::new(CLIENT_ID, &[REDIRECT_URI], accounts())
}

async fn client(provider: &Provider) -> Client {
    Client::discover(
        provider.issuer(),
        CLIENT_ID,
        client_key_pem(),
        REDIRECT_URI,
        reqwest::Client::new(),
    )
    .await
    .expect("discovery against the provider")
}

/// The provider's answer to the authorization request.
struct Callback {
    code: String,
    state: String,
    /// The `vtr` parameter as the provider received it.
    vtr_seen: Option<String>,
}

/// Signs in at the provider as `account`; the code and state it sends back.
async fn sign_in(provider: &Provider, authorize: &oidc::Url, account: &str) -> Callback {
    let answer = testing::sign_in(provider, authorize, REDIRECT_URI, Login::As(account)).await;
    if let Some(error) = answer.error {
        panic!("the provider answered error {error}");
    }
    Callback {
        code: answer.code.expect("code in the callback"),
        state: answer.state.expect("state in the callback"),
        vtr_seen: answer.vtr_seen,
    }
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
    let provider = Provider::start(settings());
    let client = client(&provider).await;
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
        ..settings()
    });
    let client = client(&provider).await;
    let identity = full_sign_in(&provider, &client, "p5-user").await;
    assert_eq!(identity.subject, "p5-user");
    assert_eq!(identity.identity_level, IdentityLevel::P5);
    assert!(!identity.identity_level.allows_record_access());
    assert_eq!(identity.nhs_number, Some(nhs_number(500)));
    assert_eq!(identity.birthdate.as_deref(), Some("1985-06-15"));
}

#[tokio::test]
async fn a_wrong_state_is_refused_before_the_code_is_spent() {
    let provider = Provider::start(settings());
    let client = client(&provider).await;
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
    let provider = Provider::start(settings());
    let client = client(&provider).await;
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
    let provider = Provider::start(settings());
    let client = client(&provider).await;
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
    let provider = Provider::start(settings());
    let client = client(&provider).await;
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
    let provider = Provider::start(settings());
    let err = Client::discover(
        &format!("{}/", provider.issuer()),
        CLIENT_ID,
        client_key_pem(),
        REDIRECT_URI,
        reqwest::Client::new(),
    )
    .await
    .expect_err("trailing slash is another issuer");
    assert!(matches!(err, Error::Metadata(_)), "{err}");
}
