//! HTTP-level tests: the real router on 127.0.0.1:0 over a real store — SQLite in a temp dir
//! always, and PostgreSQL too when `PORTICO_TEST_POSTGRES_URL` is set. Every test runs once per
//! available backend.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use store::{ApiClient, Store};
use web::{AppState, WebConfig};

#[path = "http/access.rs"]
mod access;
#[path = "http/access_log.rs"]
mod access_log;
#[path = "http/everything_export.rs"]
mod everything_export;
#[path = "http/nhs_login.rs"]
mod nhs_login;
#[path = "http/passkeys.rs"]
mod passkeys;
#[path = "http/signin.rs"]
mod signin;
#[path = "http/smart.rs"]
mod smart;

// ----- harness -----

/// A token request form, the expected status and the expected RFC 6749 error.
type TokenCase<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);

struct Server {
    backend: &'static str,
    base: String,
    http: reqwest::Client,
    state: AppState,
    token: String,
    _dir: Option<tempfile::TempDir>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

async fn stores() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let mut out: Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("portico.db").display());
    let sqlite = store_sqlite::SqliteStore::open(&url, true).expect("open SQLite store");
    out.push(("sqlite", Arc::new(sqlite), Some(dir)));
    if let Ok(url) = std::env::var("PORTICO_TEST_POSTGRES_URL") {
        let pg = store_postgres::PgStore::connect_fresh_for_tests(&url)
            .await
            .expect("connect to PostgreSQL (PORTICO_TEST_POSTGRES_URL)");
        out.push(("postgres", Arc::new(pg), None));
    }
    out
}

async fn start(
    backend: &'static str,
    store: Arc<dyn Store>,
    dir: Option<tempfile::TempDir>,
    config: WebConfig,
) -> Server {
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
        .expect("app state");
    let token = state
        .issue_token("test-admin", "system/*.*")
        .expect("token");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve_state = state.clone();
    tokio::spawn(async move {
        let _ = web::serve(listener, serve_state, async {
            let _ = rx.await;
        })
        .await;
    });
    Server {
        backend,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        state,
        token,
        _dir: dir,
        _shutdown: tx,
    }
}

/// One server per available backend.
async fn servers_with(config: WebConfig) -> Vec<Server> {
    let mut out = Vec::new();
    for (name, store, dir) in stores().await {
        out.push(start(name, store, dir, config.clone()).await);
    }
    out
}

async fn servers() -> Vec<Server> {
    servers_with(WebConfig::default()).await
}

impl Server {
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A request with the all-access token.
    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    fn with_token(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    async fn get(&self, path: &str) -> Resp {
        send(self.req(Method::GET, path)).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Resp {
        send(fhir_json(self.req(Method::POST, path), body)).await
    }

    async fn put_json(&self, path: &str, body: &Value) -> Resp {
        send(fhir_json(self.req(Method::PUT, path), body)).await
    }

    async fn delete(&self, path: &str) -> Resp {
        send(self.req(Method::DELETE, path)).await
    }

    /// Creates a resource and returns it as served.
    async fn create(&self, body: Value) -> Value {
        let ty = body["resourceType"]
            .as_str()
            .expect("resourceType")
            .to_string();
        let r = self.post_json(&format!("/fhir/{ty}"), &body).await;
        assert_eq!(r.status, 201, "[{}] create {ty}: {}", self.backend, r.text);
        r.json()
    }

    /// Registers an API client with a real Argon2id hash; returns (id, secret).
    async fn register_client(&self, scopes: &str) -> (String, String) {
        let (id, secret) = web::new_client_credentials();
        let client = ApiClient {
            client_id: id.clone(),
            name: "test client".into(),
            secret_hash: web::hash_secret(&secret),
            scopes: scopes.into(),
            created_at: chrono::Utc::now(),
        };
        self.state
            .store
            .insert_api_client(&client)
            .await
            .expect("insert client");
        (id, secret)
    }
}

fn fhir_json(rb: RequestBuilder, body: &Value) -> RequestBuilder {
    rb.header("content-type", "application/fhir+json")
        .body(body.to_string())
}

async fn send(rb: RequestBuilder) -> Resp {
    let res = rb.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.expect("response body");
    Resp {
        status,
        headers,
        text,
    }
}

fn assert_outcome(r: &Resp, status: u16, code: &str, ctx: &str) {
    assert_eq!(r.status, status, "{ctx}: {}", r.text);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/fhir+json"),
        "{ctx}: content-type {:?}",
        r.header("content-type")
    );
    let v = r.json();
    assert_eq!(v["resourceType"], "OperationOutcome", "{ctx}: {}", r.text);
    assert_eq!(v["issue"][0]["code"], code, "{ctx}: {}", r.text);
}

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Test"]}], "gender": "female", "birthDate": "1980-02-03"})
}

fn entry_ids(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["search"]["mode"] == mode)
                .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_string)
}

#[tokio::test]
async fn postgres_is_tested_whenever_it_is_configured() {
    let names: Vec<&str> = servers().await.iter().map(|s| s.backend).collect();
    let expected: &[&str] = if std::env::var("PORTICO_TEST_POSTGRES_URL").is_ok() {
        &["sqlite", "postgres"]
    } else {
        &["sqlite"]
    };
    assert_eq!(names, expected);
}

// ----- health -----

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    for s in servers().await {
        let r = send(s.anon(Method::GET, "/healthz")).await;
        assert_eq!((r.status, r.text.as_str()), (200, "ok"), "[{}]", s.backend);
        let r = send(s.anon(Method::GET, "/readyz")).await;
        assert_eq!(r.status, 200, "[{}] {}", s.backend, r.text);
    }
}

// ----- authentication and authorisation -----

#[tokio::test]
async fn fhir_requests_without_a_valid_token_get_401() {
    for s in servers().await {
        let b = s.backend;
        let r = send(s.anon(Method::GET, "/fhir/Patient")).await;
        assert_outcome(&r, 401, "login", &format!("[{b}] no token"));
        assert!(
            r.header("www-authenticate")
                .unwrap_or_default()
                .starts_with("Bearer"),
            "[{b}]"
        );

        let r = send(s.with_token("garbage", Method::GET, "/fhir/Patient")).await;
        assert_outcome(&r, 401, "login", &format!("[{b}] garbage token"));

        // Signed with another key.
        let other = web::auth::TokenSigner::new(&[9u8; 32]).unwrap();
        let foreign = other
            .issue("x", "system/*.*", 60, chrono::Utc::now().timestamp())
            .unwrap();
        let r = send(s.with_token(&foreign, Method::GET, "/fhir/Patient/1")).await;
        assert_outcome(&r, 401, "login", &format!("[{b}] foreign token"));

        // Tampered: claims swapped under the original signature.
        let (_, sig) = s.token.split_once('.').unwrap();
        let r =
            send(s.with_token(&format!("eyJ4IjoxfQ.{sig}"), Method::GET, "/fhir/Patient")).await;
        assert_outcome(&r, 401, "login", &format!("[{b}] tampered token"));

        let r = send(
            s.anon(Method::GET, "/fhir/Patient")
                .header("authorization", "Basic Zm9vOmJhcg=="),
        )
        .await;
        assert_outcome(&r, 401, "login", &format!("[{b}] basic instead of bearer"));

        // The CapabilityStatement is public.
        let r = send(s.anon(Method::GET, "/fhir/metadata")).await;
        assert_eq!(r.status, 200, "[{b}] metadata");
    }
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    for s in servers_with(WebConfig {
        token_ttl_secs: 0,
        ..WebConfig::default()
    })
    .await
    {
        let r = send(s.anon(Method::GET, "/fhir/Patient").bearer_auth(&s.token)).await;
        assert_outcome(&r, 401, "login", &format!("[{}] expired", s.backend));
        assert!(r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("expired"));
    }
}

#[tokio::test]
async fn token_endpoint_grants_client_credentials() {
    for s in servers().await {
        let b = s.backend;
        let (id, secret) = s
            .register_client("system/*.read system/Patient.write")
            .await;

        // Form credentials, all scopes.
        let r = send(s.anon(Method::POST, "/oauth/token").form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ]))
        .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(v["token_type"], "bearer");
        assert_eq!(v["expires_in"], 900);
        assert_eq!(v["scope"], "system/*.read system/Patient.write");
        let token = v["access_token"].as_str().unwrap().to_string();
        let r = send(s.with_token(&token, Method::GET, "/fhir/Patient")).await;
        assert_eq!(r.status, 200, "[{b}] token works: {}", r.text);
        let r = send(fhir_json(
            s.with_token(&token, Method::POST, "/fhir/Patient"),
            &patient("Grant"),
        ))
        .await;
        assert_eq!(r.status, 201, "[{b}] Patient.write works: {}", r.text);
        let r = send(fhir_json(
            s.with_token(&token, Method::POST, "/fhir/Observation"),
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
        ))
        .await;
        assert_outcome(&r, 403, "forbidden", &format!("[{b}] no Observation write"));

        // HTTP Basic and a narrower scope.
        let r = send(
            s.anon(Method::POST, "/oauth/token")
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "system/Patient.read"),
                ]),
        )
        .await;
        assert_eq!(r.status, 200, "[{b}] basic: {}", r.text);
        let v = r.json();
        assert_eq!(v["scope"], "system/Patient.read");
        let narrow = v["access_token"].as_str().unwrap().to_string();
        let r = send(s.with_token(&narrow, Method::GET, "/fhir/Observation")).await;
        assert_outcome(&r, 403, "forbidden", &format!("[{b}] narrowed token"));
    }
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    for s in servers().await {
        let b = s.backend;
        let (id, secret) = s.register_client("system/*.read").await;
        let cases: Vec<TokenCase> = vec![
            (
                vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", "wrong"),
                ],
                401,
                "invalid_client",
            ),
            (
                vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", "nobody"),
                    ("client_secret", &secret),
                ],
                401,
                "invalid_client",
            ),
            (
                vec![("grant_type", "client_credentials")],
                401,
                "invalid_client",
            ),
            (
                vec![
                    ("grant_type", "password"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
                400,
                "unsupported_grant_type",
            ),
            (
                vec![("client_id", &id), ("client_secret", &secret)],
                400,
                "invalid_request",
            ),
            (
                vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("scope", "system/*.write"),
                ],
                400,
                "invalid_scope",
            ),
            (
                vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("scope", "patient/*.read"),
                ],
                400,
                "invalid_scope",
            ),
        ];
        for (form, status, error) in cases {
            let r = send(s.anon(Method::POST, "/oauth/token").form(&form)).await;
            assert_eq!(r.status, status, "[{b}] {form:?}: {}", r.text);
            assert_eq!(r.json()["error"], error, "[{b}] {form:?}");
            assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        }
        let r = send(
            s.anon(Method::POST, "/oauth/token")
                .json(&json!({"grant_type": "client_credentials"})),
        )
        .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!("invalid_request")),
            "[{b}] JSON body"
        );
    }
}

#[tokio::test]
async fn read_only_client_gets_403_on_writes() {
    for s in servers().await {
        let b = s.backend;
        let reader = s.state.issue_token("reader", "system/*.read").unwrap();
        let r = send(fhir_json(
            s.with_token(&reader, Method::POST, "/fhir/Patient"),
            &patient("Nope"),
        ))
        .await;
        assert_outcome(&r, 403, "forbidden", &format!("[{b}] create"));
        let created = s.create(patient("Readable")).await;
        let id = created["id"].as_str().unwrap();
        let r = send(s.with_token(&reader, Method::GET, &format!("/fhir/Patient/{id}"))).await;
        assert_eq!(r.status, 200, "[{b}] read");
        let r = send(s.with_token(&reader, Method::DELETE, &format!("/fhir/Patient/{id}"))).await;
        assert_outcome(&r, 403, "forbidden", &format!("[{b}] delete"));
        // A transaction needs every entry's permission.
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "GET", "url": format!("Patient/{id}")}},
            {"resource": patient("InTx"), "request": {"method": "POST", "url": "Patient"}}
        ]});
        let r = send(fhir_json(s.with_token(&reader, Method::POST, "/fhir"), &tx)).await;
        assert_outcome(&r, 403, "forbidden", &format!("[{b}] transaction"));
        assert_eq!(
            r.json()["issue"][0]["expression"][0],
            "Bundle.entry[1]",
            "[{b}]"
        );

        let writer = s.state.issue_token("writer", "system/*.write").unwrap();
        let r = send(s.with_token(&writer, Method::GET, "/fhir/Patient")).await;
        assert_outcome(&r, 403, "forbidden", &format!("[{b}] write-only search"));
    }
}

// ----- metadata -----

#[tokio::test]
async fn metadata_lists_types_interactions_and_search_params() {
    for s in servers().await {
        let b = s.backend;
        let r = send(s.anon(Method::GET, "/fhir/metadata")).await;
        assert_eq!(r.status, 200, "[{b}]");
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/fhir+json"));
        let v = r.json();
        assert_eq!(v["resourceType"], "CapabilityStatement");
        assert_eq!(v["fhirVersion"], "4.0.1");
        assert_eq!(v["rest"][0]["mode"], "server");
        assert_eq!(
            v["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"],
            format!("{}/oauth/token", s.base)
        );
        let system: Vec<&str> = v["rest"][0]["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert_eq!(system, ["transaction", "batch", "history-system"]);
        let resources = v["rest"][0]["resource"].as_array().unwrap();
        let types: Vec<&str> = resources
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, fhir::RESOURCE_TYPES, "[{b}]");
        for res in resources {
            let t = res["type"].as_str().unwrap();
            let interactions: Vec<&str> = res["interaction"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["code"].as_str().unwrap())
                .collect();
            for i in [
                "read",
                "vread",
                "update",
                "delete",
                "history-instance",
                "history-type",
                "create",
                "search-type",
            ] {
                assert!(interactions.contains(&i), "{t} lacks {i}");
            }
            assert_eq!(res["conditionalDelete"], "single");
            let listed: Vec<(String, String, String)> = res["searchParam"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().into(),
                        p["definition"].as_str().unwrap().into(),
                        p["type"].as_str().unwrap().into(),
                    )
                })
                .collect();
            let mut expected: Vec<(String, String, String)> = vec![
                (
                    "_id".into(),
                    "http://hl7.org/fhir/SearchParameter/Resource-id".into(),
                    "token".into(),
                ),
                (
                    "_lastUpdated".into(),
                    "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated".into(),
                    "date".into(),
                ),
            ];
            for p in fhir::search_params::for_type(t) {
                if !matches!(p.code, "_id" | "_lastUpdated")
                    && !matches!(
                        p.param_type,
                        fhir::search_params::ParamType::Number
                            | fhir::search_params::ParamType::Composite
                            | fhir::search_params::ParamType::Special
                    )
                {
                    expected.push((p.code.into(), p.url.into(), p.param_type.code().into()));
                }
            }
            assert_eq!(listed, expected, "[{b}] {t} search params");
        }
        {
            let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
            let names: Vec<&str> = patient["searchParam"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for n in ["birthdate", "family", "identifier", "name"] {
                assert!(
                    names.contains(&n),
                    "Patient lacks search param {n}: {names:?}"
                );
            }
            let obs = resources
                .iter()
                .find(|r| r["type"] == "Observation")
                .unwrap();
            assert!(obs["searchInclude"]
                .as_array()
                .unwrap()
                .contains(&json!("Observation:subject")));
            assert!(patient["searchRevInclude"]
                .as_array()
                .unwrap()
                .contains(&json!("Observation:subject")));
        }
        let r = send(s.anon(Method::GET, "/fhir/metadata?_format=xml")).await;
        assert_outcome(&r, 406, "not-supported", &format!("[{b}] metadata as xml"));
    }
}

/// A search value of the right kind for a parameter of `param_type`, as the CapabilityStatement
/// names the type.
fn sample_value(param_type: &str) -> Option<&'static str> {
    Some(match param_type {
        "token" => "x",
        "string" => "a",
        "date" => "ge2020-01-01",
        "reference" => "Patient/1",
        "quantity" => "5",
        "uri" => "http://x",
        _ => return None,
    })
}

#[tokio::test]
async fn every_advertised_search_parameter_runs_on_every_backend() {
    for s in servers().await {
        let b = s.backend;
        let capability = send(s.anon(Method::GET, "/fhir/metadata")).await.json();
        let resources = capability["rest"][0]["resource"]
            .as_array()
            .expect("rest[0].resource");
        let types: Vec<&str> = resources
            .iter()
            .filter_map(|r| r["type"].as_str())
            .collect();
        assert_eq!(types, fhir::RESOURCE_TYPES, "[{b}] every type is listed");
        // One resource of each of a few types, so that searches also meet index rows.
        let pid = s.create(patient("Advertised")).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        s.create(json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "subject": {"reference": format!("Patient/{pid}")}, "effectiveDateTime": "2024-03-10T09:30:00Z", "valueQuantity": {"value": 5, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}))
            .await;
        let mut tried = 0;
        let mut failures = Vec::new();
        for res in resources {
            let t = res["type"].as_str().unwrap();
            for p in res["searchParam"].as_array().unwrap() {
                let name = p["name"].as_str().unwrap();
                let param_type = p["type"].as_str().unwrap();
                let Some(value) = sample_value(param_type) else {
                    failures.push(format!(
                        "{t}.{name} is advertised with type {param_type:?}, which the server cannot search"
                    ));
                    continue;
                };
                let query = serde_urlencoded::to_string([(name, value)]).unwrap();
                let r = s.get(&format!("/fhir/{t}?{query}")).await;
                tried += 1;
                if r.status != 200 {
                    failures.push(format!("GET /fhir/{t}?{query} -> {}: {}", r.status, r.text));
                } else if r.json()["type"] != "searchset" {
                    failures.push(format!(
                        "GET /fhir/{t}?{query} is not a searchset: {}",
                        r.text
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "[{b}] advertised search parameters that do not run ({} of {tried}):\n{}",
            failures.len(),
            failures.join("\n")
        );
        // More than `_id` and `_lastUpdated` per type: the real definitions were advertised.
        assert!(
            tried > 10 * fhir::RESOURCE_TYPES.len(),
            "[{b}] only {tried} search parameters are advertised"
        );
    }
}

// ----- the interactions -----

#[tokio::test]
async fn create_read_update_delete_with_status_codes_and_headers() {
    for s in servers().await {
        let b = s.backend;
        let r = s.post_json("/fhir/Patient", &patient("Lifecycle")).await;
        assert_eq!(r.status, 201, "[{b}] create: {}", r.text);
        let created = r.json();
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(created["meta"]["versionId"], "1");
        assert!(created["meta"]["lastUpdated"].is_string());
        assert_eq!(
            r.header("location").unwrap(),
            format!("{}/fhir/Patient/{id}/_history/1", s.base)
        );
        assert_eq!(r.header("etag").unwrap(), "W/\"1\"");
        let last_modified = r.header("last-modified").unwrap();
        assert!(last_modified.ends_with(" GMT"), "{last_modified}");
        assert_eq!(
            r.header("content-type").unwrap(),
            "application/fhir+json; charset=utf-8"
        );
        assert!(r.header("x-request-id").is_some());

        let r = s.get(&format!("/fhir/Patient/{id}")).await;
        assert_eq!(r.status, 200, "[{b}] read");
        assert_eq!(r.header("etag").unwrap(), "W/\"1\"");
        assert_eq!(r.header("last-modified").unwrap(), last_modified);
        assert_eq!(
            r.header("content-type").unwrap(),
            "application/fhir+json; charset=utf-8"
        );
        assert_eq!(r.json(), created);

        let r = send(
            s.req(Method::GET, &format!("/fhir/Patient/{id}"))
                .header("if-none-match", "W/\"1\""),
        )
        .await;
        assert_eq!(r.status, 304, "[{b}] if-none-match");

        // Update with the current version.
        let mut changed = created.clone();
        changed["gender"] = json!("male");
        let r = send(fhir_json(
            s.req(Method::PUT, &format!("/fhir/Patient/{id}"))
                .header("if-match", "W/\"1\""),
            &changed,
        ))
        .await;
        assert_eq!(r.status, 200, "[{b}] update: {}", r.text);
        assert_eq!(r.header("etag").unwrap(), "W/\"2\"");
        assert_eq!(r.json()["gender"], "male");

        // Stale and malformed If-Match.
        let r = send(fhir_json(
            s.req(Method::PUT, &format!("/fhir/Patient/{id}"))
                .header("if-match", "W/\"1\""),
            &created,
        ))
        .await;
        assert_outcome(&r, 412, "conflict", &format!("[{b}] stale If-Match"));
        let r = send(fhir_json(
            s.req(Method::PUT, &format!("/fhir/Patient/{id}"))
                .header("if-match", "yesterday"),
            &created,
        ))
        .await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] bad If-Match"));

        // vread of both versions.
        let r = s.get(&format!("/fhir/Patient/{id}/_history/1")).await;
        assert_eq!(
            (r.status, r.json()["gender"].clone()),
            (200, json!("female")),
            "[{b}] vread 1"
        );
        assert_eq!(r.header("etag").unwrap(), "W/\"1\"");
        let r = s.get(&format!("/fhir/Patient/{id}/_history/2")).await;
        assert_eq!(
            (r.status, r.json()["gender"].clone()),
            (200, json!("male")),
            "[{b}] vread 2"
        );
        let r = s.get(&format!("/fhir/Patient/{id}/_history/9")).await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] vread missing"));
        let r = s.get(&format!("/fhir/Patient/{id}/_history/x")).await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] vread bad version"));

        // Delete, then read: 410; vread of the deletion: 410.
        let r = s.delete(&format!("/fhir/Patient/{id}")).await;
        assert_eq!(r.status, 204, "[{b}] delete: {}", r.text);
        assert!(r.text.is_empty());
        let r = s.get(&format!("/fhir/Patient/{id}")).await;
        assert_outcome(&r, 410, "deleted", &format!("[{b}] read deleted"));
        let r = s.get(&format!("/fhir/Patient/{id}/_history/3")).await;
        assert_outcome(&r, 410, "deleted", &format!("[{b}] vread deletion"));
        let r = s.get(&format!("/fhir/Patient/{id}/_history/1")).await;
        assert_eq!(r.status, 200, "[{b}] old versions stay readable");

        // Never existed; unknown type.
        let r = s.get("/fhir/Patient/never-was").await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] never existed"));
        let r = s.get("/fhir/Spaceship/1").await;
        assert_outcome(
            &r,
            404,
            "not-supported",
            &format!("[{b}] unknown type read"),
        );
        let r = s
            .post_json("/fhir/Spaceship", &json!({"resourceType": "Spaceship"}))
            .await;
        assert_outcome(
            &r,
            404,
            "not-supported",
            &format!("[{b}] unknown type create"),
        );

        // Update creates with a client id (201), then is unchanged (200).
        let mut named = patient("Named");
        named["id"] = json!("client-chosen-1");
        let r = s.put_json("/fhir/Patient/client-chosen-1", &named).await;
        assert_eq!(r.status, 201, "[{b}] update-create: {}", r.text);
        assert_eq!(
            r.header("location").unwrap(),
            format!("{}/fhir/Patient/client-chosen-1/_history/1", s.base)
        );
        let r = s.put_json("/fhir/Patient/client-chosen-1", &named).await;
        assert_eq!(
            (r.status, r.header("etag")),
            (200, Some("W/\"1\"".to_string())),
            "[{b}] unchanged update"
        );

        // Body/URL mismatches.
        let r = s.put_json("/fhir/Patient/other-id", &named).await;
        assert_eq!(r.status, 400, "[{b}] id mismatch: {}", r.text);
        let r = s.put_json("/fhir/Patient/no-id", &patient("NoId")).await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] update without id"));
        let r = s
            .post_json("/fhir/Observation", &patient("WrongType"))
            .await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] resourceType mismatch"));
        assert_eq!(r.json()["issue"][0]["expression"][0], "resourceType");
    }
}

#[tokio::test]
async fn prefer_return_variants() {
    for s in servers().await {
        let b = s.backend;
        let r = send(fhir_json(
            s.req(Method::POST, "/fhir/Patient")
                .header("prefer", "return=minimal"),
            &patient("Minimal"),
        ))
        .await;
        assert_eq!(r.status, 201, "[{b}]");
        assert!(r.text.is_empty(), "[{b}] minimal has no body: {}", r.text);
        let location = r.header("location").unwrap();
        assert!(location.contains("/fhir/Patient/"));
        assert_eq!(r.header("etag").unwrap(), "W/\"1\"");

        let r = send(fhir_json(
            s.req(Method::POST, "/fhir/Patient")
                .header("prefer", "return=OperationOutcome"),
            &patient("Outcome"),
        ))
        .await;
        assert_eq!(r.status, 201, "[{b}]");
        let v = r.json();
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert_eq!(v["issue"][0]["severity"], "information");

        let r = send(fhir_json(
            s.req(Method::POST, "/fhir/Patient")
                .header("prefer", "return=representation"),
            &patient("Repr"),
        ))
        .await;
        assert_eq!(
            (r.status, r.json()["resourceType"].clone()),
            (201, json!("Patient")),
            "[{b}]"
        );

        let id = r.json()["id"].as_str().unwrap().to_string();
        let r = send(
            s.req(Method::DELETE, &format!("/fhir/Patient/{id}"))
                .header("prefer", "return=OperationOutcome"),
        )
        .await;
        assert_eq!(r.status, 200, "[{b}] delete with outcome");
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn format_and_accept_allow_json_only() {
    for s in servers().await {
        let b = s.backend;
        let id = s.create(patient("Format")).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        for f in ["json", "application/json", "application/fhir+json"] {
            let r = send(
                s.req(Method::GET, &format!("/fhir/Patient/{id}"))
                    .query(&[("_format", f)]),
            )
            .await;
            assert_eq!(r.status, 200, "[{b}] _format={f}");
        }
        for f in ["xml", "application/fhir+xml"] {
            let r = send(
                s.req(Method::GET, &format!("/fhir/Patient/{id}"))
                    .query(&[("_format", f)]),
            )
            .await;
            assert_outcome(&r, 406, "not-supported", &format!("[{b}] _format={f}"));
            assert!(r.json()["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("JSON"));
        }
        for a in [
            "application/fhir+json",
            "application/json",
            "*/*",
            "text/html, */*;q=0.8",
        ] {
            let r = send(
                s.req(Method::GET, &format!("/fhir/Patient/{id}"))
                    .header("accept", a),
            )
            .await;
            assert_eq!(r.status, 200, "[{b}] Accept {a}");
        }
        let r = send(
            s.req(Method::GET, &format!("/fhir/Patient/{id}"))
                .header("accept", "application/fhir+xml"),
        )
        .await;
        assert_outcome(&r, 406, "not-supported", &format!("[{b}] Accept xml"));
        let r = send(
            s.req(Method::GET, "/fhir/Patient")
                .query(&[("_format", "xml")]),
        )
        .await;
        assert_outcome(&r, 406, "not-supported", &format!("[{b}] search as xml"));
        // A body that is not JSON.
        let r = send(
            s.req(Method::POST, "/fhir/Patient")
                .header("content-type", "application/fhir+xml")
                .body("<Patient/>"),
        )
        .await;
        assert_outcome(&r, 415, "not-supported", &format!("[{b}] xml body"));
    }
}

#[tokio::test]
async fn body_over_the_limit_is_413_naming_the_setting() {
    for s in servers_with(WebConfig {
        max_body_bytes: 2048,
        ..WebConfig::default()
    })
    .await
    {
        let b = s.backend;
        let mut big = patient("Big");
        big["name"][0]["text"] = json!("x".repeat(4096));
        let r = s.post_json("/fhir/Patient", &big).await;
        assert_outcome(&r, 413, "too-long", &format!("[{b}] big body"));
        let d = r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            d.contains("2048") && d.contains("max_body_bytes"),
            "[{b}] {d}"
        );
        let r = s.post_json("/fhir", &json!({"resourceType": "Bundle", "type": "batch", "entry": [{"resource": big, "request": {"method": "POST", "url": "Patient"}}]})).await;
        assert_outcome(&r, 413, "too-long", &format!("[{b}] big bundle"));
        let r = s.post_json("/fhir/Patient", &patient("Small")).await;
        assert_eq!(r.status, 201, "[{b}] small body still fine");
    }
}

#[tokio::test]
async fn invalid_resource_names_the_failing_path() {
    for s in servers().await {
        let b = s.backend;
        let mut bad = patient("BadDate");
        bad["birthDate"] = json!("03/02/1980");
        let r = s.post_json("/fhir/Patient", &bad).await;
        assert!(
            r.status == 400 || r.status == 422,
            "[{b}] {}: {}",
            r.status,
            r.text
        );
        assert_eq!(
            r.status, 422,
            "[{b}] a malformed date in a well-formed resource is 422"
        );
        let v = r.json();
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert_eq!(
            v["issue"][0]["expression"][0], "Patient.birthDate",
            "[{b}] {}",
            r.text
        );

        let r = s
            .post_json(
                "/fhir/Patient",
                &json!({"resourceType": "Patient", "colour": "blue"}),
            )
            .await;
        assert_eq!(
            r.status, 400,
            "[{b}] unknown element is a structure error: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn malformed_bodies_are_400_with_the_position() {
    for s in servers().await {
        let b = s.backend;
        let r = send(
            s.req(Method::POST, "/fhir/Patient")
                .header("content-type", "application/fhir+json")
                .body("{\"resourceType\": \"Patient\",\n \"active\": tru }"),
        )
        .await;
        assert_outcome(&r, 400, "structure", &format!("[{b}] bad JSON"));
        let d = r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(d.contains("line 2"), "[{b}] {d}");
        let r = send(
            s.req(Method::POST, "/fhir/Patient")
                .header("content-type", "application/fhir+json")
                .body(""),
        )
        .await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] empty body"));
        for body in ["[]", "\"Patient\"", "42", "{\"resourceType\": 5}"] {
            let r = send(
                s.req(Method::POST, "/fhir/Patient")
                    .header("content-type", "application/fhir+json")
                    .body(body),
            )
            .await;
            assert_eq!(r.status, 400, "[{b}] body {body}: {}", r.text);
            assert_eq!(r.json()["resourceType"], "OperationOutcome");
        }
        let r = send(
            s.req(Method::POST, "/fhir/Patient")
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
        assert_outcome(&r, 415, "not-supported", &format!("[{b}] text/plain"));
    }
}

#[tokio::test]
async fn conditional_create_update_and_delete() {
    for s in servers().await {
        let b = s.backend;
        let mut p = patient("Conditional");
        p["identifier"] =
            json!([{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}]);
        let cond = "identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018";
        let r = send(fhir_json(
            s.req(Method::POST, "/fhir/Patient")
                .header("if-none-exist", cond),
            &p,
        ))
        .await;
        assert_eq!(r.status, 201, "[{b}] first conditional create: {}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_string();
        let r = send(fhir_json(
            s.req(Method::POST, "/fhir/Patient")
                .header("if-none-exist", cond),
            &p,
        ))
        .await;
        assert_eq!(r.status, 200, "[{b}] second conditional create: {}", r.text);
        assert_eq!(
            r.json()["id"],
            id.as_str(),
            "[{b}] the existing resource is returned"
        );

        // Two matches: 412.
        let mut twin = patient("ConditionalTwin");
        twin["identifier"] = json!([{"system": "urn:test", "value": "dup"}]);
        s.create(twin.clone()).await;
        s.create(twin.clone()).await;
        let r = send(fhir_json(
            s.req(Method::POST, "/fhir/Patient")
                .header("if-none-exist", "identifier=urn:test|dup"),
            &twin,
        ))
        .await;
        assert_outcome(
            &r,
            412,
            "multiple-matches",
            &format!("[{b}] several matches"),
        );
        let r = send(fhir_json(
            s.req(Method::POST, "/fhir/Patient")
                .header("if-none-exist", "nonsense=1"),
            &twin,
        ))
        .await;
        assert_eq!(r.status, 400, "[{b}] unknown criteria: {}", r.text);

        // Conditional update: updates the match.
        let mut update = p.clone();
        update["gender"] = json!("other");
        let r = s.put_json(&format!("/fhir/Patient?{cond}"), &update).await;
        assert_eq!(r.status, 200, "[{b}] conditional update: {}", r.text);
        assert_eq!(
            (
                r.json()["id"].clone(),
                r.json()["meta"]["versionId"].clone()
            ),
            (json!(id), json!("2"))
        );
        // ... and creates when nothing matches.
        let mut fresh = patient("CondUpdateNew");
        fresh["identifier"] = json!([{"system": "urn:test", "value": "new-one"}]);
        let r = s
            .put_json("/fhir/Patient?identifier=urn:test|new-one", &fresh)
            .await;
        assert_eq!(
            r.status, 201,
            "[{b}] conditional update creates: {}",
            r.text
        );
        let r = s
            .put_json("/fhir/Patient?identifier=urn:test|dup", &twin)
            .await;
        assert_outcome(
            &r,
            412,
            "multiple-matches",
            &format!("[{b}] conditional update, several"),
        );
        let r = s.put_json("/fhir/Patient", &twin).await;
        assert_eq!(r.status, 400, "[{b}] conditional update without criteria");

        // Conditional delete.
        let r = s.delete(&format!("/fhir/Patient?{cond}")).await;
        assert_eq!(r.status, 204, "[{b}] conditional delete: {}", r.text);
        let r = s.get(&format!("/fhir/Patient/{id}")).await;
        assert_eq!(r.status, 410, "[{b}] gone after conditional delete");
        let r = s.delete("/fhir/Patient?identifier=urn:test|dup").await;
        assert_outcome(
            &r,
            412,
            "multiple-matches",
            &format!("[{b}] conditional delete, several"),
        );
    }
}

// ----- search -----

#[tokio::test]
async fn search_bundle_shape_and_paging() {
    for s in servers().await {
        let b = s.backend;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                s.create(patient(&format!("Pager{i}"))).await["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        s.create(patient("Elsewhere")).await;
        let r = s
            .get("/fhir/Patient?family=Pager&_count=2&_total=accurate")
            .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/fhir+json"));
        let page = r.json();
        assert_eq!(page["resourceType"], "Bundle");
        assert_eq!(page["type"], "searchset");
        assert_eq!(page["total"], 5, "[{b}] {}", r.text);
        let entries = page["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        for e in entries {
            let id = e["resource"]["id"].as_str().unwrap();
            assert_eq!(e["fullUrl"], format!("{}/fhir/Patient/{id}", s.base));
            assert_eq!(e["search"]["mode"], "match");
        }
        let self_link = link(&page, "self").unwrap();
        assert!(
            self_link.starts_with(&format!("{}/fhir/Patient?", s.base)),
            "{self_link}"
        );
        assert!(
            self_link.contains("family=Pager") && self_link.contains("_count=2"),
            "{self_link}"
        );
        assert!(link(&page, "previous").is_none());

        // Follow next links to the end: every match once.
        let mut seen = entry_ids(&page, "match");
        let mut next = link(&page, "next");
        let mut pages = 1;
        while let Some(url) = next {
            let r = s.get(&url).await;
            assert_eq!(r.status, 200, "[{b}] next page {url}: {}", r.text);
            let p = r.json();
            assert!(
                link(&p, "previous").is_some(),
                "[{b}] page {pages} has previous"
            );
            seen.extend(entry_ids(&p, "match"));
            next = link(&p, "next");
            pages += 1;
            assert!(pages <= 5, "[{b}] paging does not end");
        }
        assert_eq!(pages, 3, "[{b}]");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "[{b}] pages overlap: {seen:?}");
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(sorted, expected, "[{b}]");

        // _summary=count: only the total.
        let r = s.get("/fhir/Patient?family=Pager&_summary=count").await;
        let v = r.json();
        assert_eq!(
            (
                v["total"].clone(),
                v["entry"].as_array().map_or(0, Vec::len)
            ),
            (json!(5), 0),
            "[{b}] {}",
            r.text
        );

        // _id search and unknown type.
        let r = s.get(&format!("/fhir/Patient?_id={}", ids[0])).await;
        assert_eq!(entry_ids(&r.json(), "match"), vec![ids[0].clone()], "[{b}]");
        let r = s.get("/fhir/Spaceship?name=x").await;
        assert_outcome(
            &r,
            404,
            "not-supported",
            &format!("[{b}] unknown type search"),
        );
    }
}

#[tokio::test]
async fn include_and_revinclude_entries_are_marked_include() {
    for s in servers().await {
        let b = s.backend;
        let p = s.create(patient("Included")).await;
        let pid = p["id"].as_str().unwrap().to_string();
        let obs = s
            .create(json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "subject": {"reference": format!("Patient/{pid}")}}))
            .await;
        let oid = obs["id"].as_str().unwrap().to_string();
        let r = s
            .get(&format!(
                "/fhir/Observation?subject=Patient/{pid}&_include=Observation:subject"
            ))
            .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(
            entry_ids(&v, "match"),
            vec![oid.clone()],
            "[{b}] {}",
            r.text
        );
        assert_eq!(
            entry_ids(&v, "include"),
            vec![pid.clone()],
            "[{b}] {}",
            r.text
        );

        let r = s
            .get(&format!(
                "/fhir/Patient?_id={pid}&_revinclude=Observation:subject"
            ))
            .await;
        let v = r.json();
        assert_eq!(
            entry_ids(&v, "match"),
            vec![pid.clone()],
            "[{b}] {}",
            r.text
        );
        assert_eq!(
            entry_ids(&v, "include"),
            vec![oid.clone()],
            "[{b}] {}",
            r.text
        );

        // A client that may read Observations only gets no Patient included.
        let narrow = s
            .state
            .issue_token("obs-only", "system/Observation.read")
            .unwrap();
        let r = send(s.with_token(
            &narrow,
            Method::GET,
            &format!("/fhir/Observation?subject=Patient/{pid}&_include=Observation:subject"),
        ))
        .await;
        let v = r.json();
        assert_eq!(entry_ids(&v, "match"), vec![oid], "[{b}]");
        assert!(entry_ids(&v, "include").is_empty(), "[{b}] {}", r.text);
    }
}

#[tokio::test]
async fn revinclude_cut_short_is_reported_as_a_warning() {
    for s in servers_with(WebConfig {
        revinclude_limit: 2,
        ..WebConfig::default()
    })
    .await
    {
        let b = s.backend;
        let pid = s.create(patient("Popular")).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        for _ in 0..3 {
            s.create(json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "subject": {"reference": format!("Patient/{pid}")}}))
                .await;
        }
        let r = s
            .get(&format!(
                "/fhir/Patient?_id={pid}&_revinclude=Observation:subject"
            ))
            .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(entry_ids(&v, "match"), vec![pid.clone()], "[{b}]");
        assert_eq!(entry_ids(&v, "include").len(), 2, "[{b}] {}", r.text);
        let outcomes: Vec<&Value> = v["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["search"]["mode"] == "outcome")
            .collect();
        assert_eq!(outcomes.len(), 1, "[{b}] one outcome entry: {}", r.text);
        let issue = &outcomes[0]["resource"]["issue"][0];
        assert_eq!(issue["severity"], "warning", "[{b}] {issue}");
        let text = issue["diagnostics"].as_str().unwrap_or_default();
        assert!(
            text.contains("Observation:subject") && text.contains("first 2"),
            "[{b}] the warning names the _revinclude and the limit: {text}"
        );

        // Within the limit: no outcome entry.
        let r = s
            .get(&format!("/fhir/Patient?_id={pid}&_revinclude=Patient:link"))
            .await;
        let v = r.json();
        assert!(
            entry_ids(&v, "outcome").is_empty(),
            "[{b}] nothing was cut short: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn include_iterate_is_refused_strictly_and_ignored_leniently() {
    for s in servers().await {
        let b = s.backend;
        let pid = s.create(patient("Iterate")).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        for query in [
            "_include=Patient:general-practitioner:iterate",
            "_include:iterate=Patient:general-practitioner",
            "_revinclude:iterate=Observation:subject",
        ] {
            let url = format!("/fhir/Patient?_id={pid}&{query}");
            let r = s.get(&url).await;
            assert_outcome(&r, 400, "not-supported", &format!("[{b}] strict {query}"));
            let text = r.json()["issue"][0]["diagnostics"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                text.contains("iterate is not supported"),
                "[{b}] {query}: {text}"
            );
            let r = send(
                s.req(Method::GET, &url)
                    .header("prefer", "handling=lenient"),
            )
            .await;
            assert_eq!(r.status, 200, "[{b}] lenient {query}: {}", r.text);
            let v = r.json();
            assert_eq!(entry_ids(&v, "match"), vec![pid.clone()], "[{b}]");
            let outcome = v["entry"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["search"]["mode"] == "outcome")
                .expect("outcome entry");
            let name = query.split('=').next().unwrap();
            assert!(
                outcome["resource"]["issue"][0]["diagnostics"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(name),
                "[{b}] the ignored {name} is named: {outcome}"
            );
        }
    }
}

#[tokio::test]
async fn paging_parameters_past_their_limits_are_400_not_500() {
    for s in servers().await {
        let b = s.backend;
        for _ in 0..3 {
            s.create(patient("Deep")).await;
        }
        for offset in ["99999999999999999999", "9223372036854775808", "100001"] {
            for path in [
                format!("/fhir/Patient?family=Deep&_offset={offset}"),
                format!("/fhir/Patient/_history?_offset={offset}"),
                format!("/fhir/_history?_offset={offset}"),
            ] {
                let r = s.get(&path).await;
                assert_outcome(&r, 400, "too-costly", &format!("[{b}] {path}"));
                let text = r.json()["issue"][0]["diagnostics"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(
                    text.contains("100000") && text.contains("_lastUpdated"),
                    "[{b}] {path}: {text}"
                );
            }
        }
        // The deepest allowed page runs, and says where it is.
        let r = s.get("/fhir/Patient?family=Deep&_offset=100000").await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert!(v.get("entry").is_none(), "[{b}] {}", r.text);
        assert!(link(&v, "self").unwrap().contains("_offset=100000"));
        assert!(link(&v, "next").is_none());
        // A huge _count is the largest page.
        let r = s
            .get("/fhir/Patient?family=Deep&_count=99999999999999999999")
            .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        assert_eq!(entry_ids(&r.json(), "match").len(), 3, "[{b}]");
        // _count=0: no entries; the total only when asked for.
        let r = s
            .get("/fhir/Patient?family=Deep&_count=0&_total=accurate")
            .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(v["total"], 3, "[{b}] {}", r.text);
        assert!(v.get("entry").is_none(), "[{b}] {}", r.text);
        assert!(link(&v, "next").is_none(), "[{b}] {}", r.text);
        let r = s.get("/fhir/Patient?family=Deep&_count=0").await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert!(
            v.get("total").is_none() && v.get("entry").is_none(),
            "[{b}] {}",
            r.text
        );
        let r = s.get("/fhir/Patient/_history?_count=0").await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(v["total"], 3, "[{b}] {}", r.text);
        assert!(v.get("entry").is_none(), "[{b}] {}", r.text);
    }
}

#[tokio::test]
async fn post_search_merges_form_and_query() {
    for s in servers().await {
        let b = s.backend;
        let a = s.create(patient("PostSearch")).await;
        let mut other = patient("PostSearch");
        other["gender"] = json!("male");
        s.create(other).await;
        let r = send(
            s.req(Method::POST, "/fhir/Patient/_search?gender=female")
                .form(&[("family", "PostSearch")]),
        )
        .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        assert_eq!(
            entry_ids(&r.json(), "match"),
            vec![a["id"].as_str().unwrap().to_string()],
            "[{b}] {}",
            r.text
        );
        let r = send(
            s.req(Method::POST, "/fhir/Patient/_search")
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_outcome(&r, 415, "not-supported", &format!("[{b}] json _search"));
    }
}

#[tokio::test]
async fn unknown_parameters_fail_strictly_and_are_reported_when_lenient() {
    for s in servers().await {
        let b = s.backend;
        s.create(patient("Lenient")).await;
        let r = s.get("/fhir/Patient?family=Lenient&shoe-size=9").await;
        assert_outcome(&r, 400, "not-supported", &format!("[{b}] strict"));
        assert_eq!(r.json()["issue"][0]["expression"][0], "shoe-size");
        let r = send(
            s.req(Method::GET, "/fhir/Patient?family=Lenient&shoe-size=9")
                .header("prefer", "handling=lenient"),
        )
        .await;
        assert_eq!(r.status, 200, "[{b}] lenient: {}", r.text);
        let v = r.json();
        assert_eq!(entry_ids(&v, "match").len(), 1, "[{b}] {}", r.text);
        let outcome = v["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["search"]["mode"] == "outcome")
            .expect("outcome entry");
        assert_eq!(outcome["resource"]["resourceType"], "OperationOutcome");
        assert!(outcome["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("shoe-size"));
        assert!(
            !link(&v, "self").unwrap().contains("shoe-size"),
            "[{b}] ignored params stay out of links"
        );
        let r = s.get("/fhir/Patient?birthdate=yesterday").await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] bad date value"));
    }
}

#[tokio::test]
async fn elements_subsets_matches_and_tags_them() {
    for s in servers().await {
        let b = s.backend;
        s.create(patient("Elements")).await;
        let r = s
            .get("/fhir/Patient?family=Elements&_elements=gender")
            .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let res = r.json()["entry"][0]["resource"].clone();
        assert_eq!(res["gender"], "female");
        assert!(
            res.get("name").is_none() && res.get("birthDate").is_none(),
            "[{b}] {res}"
        );
        assert!(res["id"].is_string() && res["meta"]["versionId"].is_string());
        assert_eq!(res["meta"]["tag"][0]["code"], "SUBSETTED");
        assert_eq!(
            res["meta"]["tag"][0]["system"],
            "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
        );
    }
}

// ----- history -----

#[tokio::test]
async fn history_bundles_list_versions_newest_first() {
    for s in servers().await {
        let b = s.backend;
        let created = s.create(patient("Historic")).await;
        let id = created["id"].as_str().unwrap().to_string();
        let mut v2 = created.clone();
        v2["gender"] = json!("male");
        assert_eq!(
            s.put_json(&format!("/fhir/Patient/{id}"), &v2).await.status,
            200
        );
        assert_eq!(s.delete(&format!("/fhir/Patient/{id}")).await.status, 204);

        let r = s.get(&format!("/fhir/Patient/{id}/_history")).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let h = r.json();
        assert_eq!(h["type"], "history");
        assert_eq!(h["total"], 3);
        let entries = h["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["request"]["method"], "DELETE");
        assert!(
            entries[0].get("resource").is_none(),
            "[{b}] deletions carry no resource"
        );
        assert_eq!(entries[0]["response"]["etag"], "W/\"3\"");
        assert_eq!(entries[1]["request"]["method"], "PUT");
        assert_eq!(entries[1]["resource"]["meta"]["versionId"], "2");
        assert_eq!(entries[2]["request"]["method"], "POST");
        assert_eq!(entries[2]["response"]["status"], "201 Created");
        assert_eq!(
            entries[2]["fullUrl"],
            format!("{}/fhir/Patient/{id}", s.base)
        );

        // Paging.
        let r = s
            .get(&format!("/fhir/Patient/{id}/_history?_count=2"))
            .await;
        let p1 = r.json();
        assert_eq!(p1["entry"].as_array().unwrap().len(), 2, "[{b}]");
        let next = link(&p1, "next").expect("next link");
        let p2 = s.get(&next).await.json();
        let last = p2["entry"].as_array().unwrap();
        assert_eq!(last.len(), 1, "[{b}] {p2}");
        assert_eq!(last[0]["response"]["etag"], "W/\"1\"");
        assert!(link(&p2, "next").is_none());

        // Type and system history.
        s.create(json!({"resourceType": "Organization", "name": "Hist Org"}))
            .await;
        let r = s.get("/fhir/Patient/_history").await;
        let t = r.json();
        assert_eq!(t["total"], 3, "[{b}] type history: {}", r.text);
        let r = s.get("/fhir/_history").await;
        let sys = r.json();
        assert_eq!(sys["total"], 4, "[{b}] system history: {}", r.text);
        assert_eq!(sys["entry"][0]["resource"]["resourceType"], "Organization");

        // _since in the future: nothing.
        let r = s.get("/fhir/_history?_since=2999-01-01T00:00:00Z").await;
        assert_eq!(r.json()["total"], 0, "[{b}] {}", r.text);
        let r = s.get("/fhir/_history?_since=soon").await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] bad _since"));
        let r = s.get("/fhir/Patient/nobody/_history").await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] history of nothing"));

        // Whole-system history needs read on every type.
        let narrow = s
            .state
            .issue_token("narrow", "system/Patient.read")
            .unwrap();
        let r = send(s.with_token(&narrow, Method::GET, "/fhir/_history")).await;
        assert_outcome(
            &r,
            403,
            "forbidden",
            &format!("[{b}] narrow system history"),
        );
    }
}

// ----- batch and transaction -----

#[tokio::test]
async fn transaction_rewrites_urn_uuid_references() {
    for s in servers().await {
        let b = s.backend;
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": patient("TxPatient"), "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059", "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}}, "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": "Patient?family=TxPatient"}}
        ]});
        let r = s.post_json("/fhir", &tx).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(v["type"], "transaction-response");
        let entries = v["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["response"]["status"], "201 Created");
        assert_eq!(entries[0]["response"]["etag"], "W/\"1\"");
        assert!(entries[0]["response"]["lastModified"].is_string());
        let pid = entries[0]["resource"]["id"].as_str().unwrap().to_string();
        let loc = entries[0]["response"]["location"].as_str().unwrap();
        assert_eq!(loc, format!("Patient/{pid}/_history/1"));
        assert_eq!(
            entries[1]["resource"]["subject"]["reference"],
            format!("Patient/{pid}")
        );
        // The stored Observation has the rewritten reference too.
        let oid = entries[1]["resource"]["id"].as_str().unwrap();
        let stored = s.get(&format!("/fhir/Observation/{oid}")).await.json();
        assert_eq!(stored["subject"]["reference"], format!("Patient/{pid}"));
        // The read ran after the writes.
        assert_eq!(entries[2]["response"]["status"], "200 OK");
        assert_eq!(
            entry_ids(&entries[2]["resource"], "match"),
            vec![pid],
            "[{b}]"
        );
    }
}

#[tokio::test]
async fn transaction_entries_can_be_conditional() {
    for s in servers().await {
        let b = s.backend;
        let mut known = patient("TxKnown");
        known["identifier"] = json!([{"system": "urn:tx", "value": "known"}]);
        let existing = s.create(known.clone()).await;
        let eid = existing["id"].as_str().unwrap().to_string();
        let doomed = s.create(patient("TxDoomed")).await;
        let did = doomed["id"].as_str().unwrap().to_string();
        let mut changed = known.clone();
        changed["gender"] = json!("male");
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": known, "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:tx|known"}},
            {"resource": changed, "request": {"method": "PUT", "url": "Patient?identifier=urn:tx|known"}},
            {"request": {"method": "DELETE", "url": format!("Patient/{did}")}}
        ]});
        let r = s.post_json("/fhir", &tx).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let e = r.json()["entry"].clone();
        assert_eq!(e[0]["response"]["status"], "200 OK", "[{b}] {e}");
        assert_eq!(e[0]["resource"]["id"], eid.as_str());
        assert_eq!(e[1]["response"]["status"], "200 OK", "[{b}] {e}");
        assert_eq!(e[1]["response"]["etag"], "W/\"2\"");
        assert_eq!(e[2]["response"]["status"], "204 No Content", "[{b}] {e}");
        assert_eq!(
            s.get(&format!("/fhir/Patient/{did}")).await.status,
            410,
            "[{b}]"
        );
        assert_eq!(
            s.get(&format!("/fhir/Patient/{eid}")).await.json()["gender"],
            "male"
        );
    }
}

#[tokio::test]
async fn transaction_is_all_or_nothing() {
    for s in servers().await {
        let b = s.backend;
        let existing = s.create(patient("TxExisting")).await;
        let id = existing["id"].as_str().unwrap().to_string();
        let mut stale = existing.clone();
        stale["gender"] = json!("male");
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": patient("TxRolledBack"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": stale, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"7\""}}
        ]});
        let r = s.post_json("/fhir", &tx).await;
        assert_outcome(&r, 412, "conflict", &format!("[{b}] failing transaction"));
        assert_eq!(
            r.json()["issue"][0]["expression"][0],
            "Bundle.entry[1]",
            "[{b}] {}",
            r.text
        );
        let r = s.get("/fhir/Patient?family=TxRolledBack").await;
        assert!(
            entry_ids(&r.json(), "match").is_empty(),
            "[{b}] rolled back: {}",
            r.text
        );

        // An invalid resource in entry 0 fails before anything runs.
        let mut bad = patient("TxInvalid");
        bad["birthDate"] = json!("not a date");
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": bad, "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient("TxAfterInvalid"), "request": {"method": "POST", "url": "Patient"}}
        ]});
        let r = s.post_json("/fhir", &tx).await;
        assert!(r.status == 400 || r.status == 422, "[{b}] {}", r.text);
        let issue = r.json()["issue"][0].clone();
        assert_eq!(issue["expression"][0], "Bundle.entry[0]", "[{b}] {issue}");
        let r = s.get("/fhir/Patient?family=TxAfterInvalid").await;
        assert!(entry_ids(&r.json(), "match").is_empty(), "[{b}]");

        let r = s
            .post_json(
                "/fhir",
                &json!({"resourceType": "Bundle", "type": "collection"}),
            )
            .await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] collection bundle"));
    }
}

#[tokio::test]
async fn batch_answers_every_entry_on_its_own() {
    for s in servers().await {
        let b = s.backend;
        let mut bad = patient("BatchBad");
        bad["birthDate"] = json!("soon");
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": patient("BatchOk"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
            {"resource": bad, "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient("BatchOk2"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "PATCH", "url": "Patient/x"}}
        ]});
        let r = s.post_json("/fhir", &batch).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(v["type"], "batch-response");
        let e = v["entry"].as_array().unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[0]["response"]["status"], "201 Created");
        assert_eq!(e[1]["response"]["status"], "404 Not Found");
        assert_eq!(
            e[1]["response"]["outcome"]["resourceType"],
            "OperationOutcome"
        );
        let s2 = e[2]["response"]["status"].as_str().unwrap();
        assert!(s2.starts_with("400") || s2.starts_with("422"), "[{b}] {s2}");
        assert_eq!(e[3]["response"]["status"], "201 Created");
        assert_eq!(e[4]["response"]["status"], "405 Method Not Allowed");
        let r = s.get("/fhir/Patient?family=BatchOk&_total=accurate").await;
        assert_eq!(r.json()["total"], 2, "[{b}] both good entries were stored");
    }
}

// ----- robustness -----

#[tokio::test]
async fn malformed_requests_get_outcomes_not_crashes() {
    for s in servers().await {
        let b = s.backend;
        let r = s.get("/fhir/Patient?name=%FF%FE").await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] non-UTF-8 query"));
        let r = s.get("/fhir/Patient?family=%zz").await;
        assert_eq!(r.status, 200, "[{b}] a stray % is taken literally");
        let r = s.get("/fhir/Patient/%FF").await;
        assert_eq!(r.status, 400, "[{b}] non-UTF-8 path: {}", r.text);
        let r = s.get("/nowhere").await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] unknown path"));
        let r = send(s.req(Method::PATCH, "/fhir/Patient/1")).await;
        assert_outcome(&r, 405, "not-supported", &format!("[{b}] PATCH"));
        // Oversized headers are refused by the HTTP layer (431), or the connection is closed.
        if let Ok(r) = s
            .req(Method::GET, "/fhir/Patient")
            .header("x-huge", "a".repeat(600_000))
            .send()
            .await
        {
            assert!(
                r.status().as_u16() == 431 || r.status().as_u16() == 400,
                "[{b}] huge header: {}",
                r.status()
            );
        }
        let r = s.get("/fhir/Patient?_count=many").await;
        assert_outcome(&r, 400, "invalid", &format!("[{b}] bad _count"));
        // The server still answers.
        assert_eq!(send(s.anon(Method::GET, "/healthz")).await.status, 200);
    }
}

#[tokio::test]
async fn request_ids_are_echoed_and_quoted_in_errors() {
    for s in servers().await {
        let b = s.backend;
        let r = send(
            s.req(Method::GET, "/fhir/Patient/missing")
                .header("x-request-id", "support-ticket-42"),
        )
        .await;
        assert_eq!(
            r.header("x-request-id").as_deref(),
            Some("support-ticket-42"),
            "[{b}]"
        );
        let d = r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(d.contains("support-ticket-42"), "[{b}] {d}");
        let r = s.get("/fhir/Patient/missing").await;
        let generated = r.header("x-request-id").expect("generated id");
        assert!(r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains(&generated));
        let r = send(
            s.req(Method::GET, "/fhir/Patient/missing")
                .header("x-request-id", "bad id with spaces"),
        )
        .await;
        assert_ne!(
            r.header("x-request-id").as_deref(),
            Some("bad id with spaces")
        );
    }
}

/// Collects log output in memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn access_log_has_route_status_and_request_id_but_no_patient_data() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread, which also runs the server: the subscriber sees it all.
    let _guard = tracing::subscriber::set_default(subscriber);
    for s in servers().await {
        let b = s.backend;
        // Whether a log line is wanted is cached process-wide by the first thread to reach it,
        // and a parallel test without a subscriber may have cached "never". So reach the access
        // log's 2xx and 4xx lines here first (registering them if no one has), then have every
        // registered line asked again, now that this thread has a subscriber.
        s.get("/fhir/Patient?_count=1").await;
        s.get("/fhir/Patient/warm-up").await;
        tracing::callsite::rebuild_interest_cache();
        let created = s.create(patient("Secretname")).await;
        let id = created["id"].as_str().unwrap();
        let r = send(
            s.req(Method::GET, "/fhir/Patient?family=Secretname")
                .header("x-request-id", "log-check-1"),
        )
        .await;
        assert_eq!(r.status, 200, "[{b}]");
        let r = send(
            s.req(Method::GET, "/fhir/Patient/unknown-id-77")
                .header("x-request-id", "log-check-2"),
        )
        .await;
        assert_eq!(r.status, 404, "[{b}]");
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("log-check-1"))
            .unwrap_or_else(|| panic!("[{b}] no log line: {text}"));
        assert!(
            line.contains("route=\"/fhir/{type}\"")
                && line.contains("status=200")
                && line.contains("method=GET"),
            "[{b}] {line}"
        );
        let line = text
            .lines()
            .find(|l| l.contains("log-check-2"))
            .expect("error logged");
        assert!(
            line.contains("route=\"/fhir/{type}/{id}\"") && line.contains("status=404"),
            "[{b}] {line}"
        );
        for secret in ["Secretname", "unknown-id-77", id] {
            assert!(
                !text.contains(secret),
                "[{b}] the log shows {secret:?}: {text}"
            );
        }
    }
}
