//! Registering a SMART app (`portico admin create-app`): a public client that proves itself
//! with PKCE, and the exact redirect URIs it may use.
//!
//! The redirect URI rule lives here, once: an authorisation code travels in the redirect, so
//! it must go over TLS (`https`) or stay on the person's own machine (`http` to a loopback
//! address, as native apps listen there: RFC 8252 §7.3). No fragment (RFC 6749 §3.1.2), no
//! user name or password in it, and no wildcard: `/oauth/authorize` compares the URI exactly.

use chrono::{DateTime, Utc};
use store::accounts::SmartApp;
use store::Store;
use url::Url;

use crate::WebError;

/// Longest app name and redirect URI accepted.
const MAX_NAME_CHARS: usize = 100;
const MAX_URI_CHARS: usize = 2000;

/// Checks one redirect URI against the rule of this module: a 400 whose message says what to
/// do when it breaks it.
pub fn check_redirect_uri(uri: &str) -> Result<(), WebError> {
    let refuse = |why: &str| {
        Err(WebError::bad_request(format!(
            "{uri:?} {why}; a redirect URI must be https, or http on the loopback address \
             (127.0.0.1, [::1] or localhost), e.g. https://app.example/callback or \
             http://127.0.0.1:8400/callback"
        )))
    };
    if uri.len() > MAX_URI_CHARS {
        return refuse("is too long");
    }
    let Ok(url) = Url::parse(uri) else {
        return refuse("is not an absolute URL");
    };
    if url.fragment().is_some() {
        return refuse("has a #fragment, which OAuth does not allow");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("carries a user name or password");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return refuse("has no host"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => refuse("is plain http to another machine"),
        _ => refuse("has a scheme other than https or http"),
    }
}

/// Checks an app's name: what people see on the consent screen.
pub fn check_name(name: &str) -> Result<(), WebError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(WebError::bad_request(format!(
            "give the app a name of 1 to {MAX_NAME_CHARS} characters that people will recognise \
             on the consent screen"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(WebError::bad_request(
            "the app name must not contain control characters",
        ));
    }
    Ok(())
}

/// A new app's client id: `app-` and 24 hex digits (system clients' ids start `client-`, so an
/// id alone says which kind it is).
pub fn new_app_id() -> String {
    let bytes: [u8; 12] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("app-{hex}")
}

/// Registers an app named `name` with `redirect_uris` (each checked, duplicates dropped).
pub async fn register_app(
    store: &dyn Store,
    name: &str,
    redirect_uris: &[String],
    now: DateTime<Utc>,
) -> Result<SmartApp, WebError> {
    check_name(name)?;
    if redirect_uris.is_empty() {
        return Err(WebError::bad_request("give at least one redirect URI"));
    }
    for uri in redirect_uris {
        check_redirect_uri(uri)?;
    }
    let mut uris: Vec<String> = Vec::new();
    for uri in redirect_uris {
        if !uris.contains(uri) {
            uris.push(uri.clone());
        }
    }
    let app = SmartApp {
        client_id: new_app_id(),
        name: name.trim().to_string(),
        redirect_uris: uris,
        created_at: now,
    };
    store.accounts().create_smart_app(&app).await?;
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?tenant=1",
            "http://127.0.0.1:8400/callback",
            "http://localhost/callback",
            "http://[::1]:9000/",
            "http://127.5.6.7/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn other_redirect_uris_are_refused_with_the_rule_in_the_message() {
        for bad in [
            "http://app.example/callback",
            "http://10.0.0.1/callback",
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
            "com.example.app:/callback",
            "javascript:alert(1)",
            "/callback",
            "",
            "ftp://127.0.0.1/cb",
        ] {
            let e = check_redirect_uri(bad).expect_err(bad);
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            assert!(
                e.to_string()
                    .contains("must be https, or http on the loopback"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_name_people_can_read_is_needed() {
        assert!(check_name("Good app").is_ok());
        assert!(check_name("  ").is_err());
        assert!(check_name(&"x".repeat(101)).is_err());
        assert!(check_name("A\napp").is_err());
    }

    #[test]
    fn app_ids_are_distinct_and_marked_as_apps() {
        let (a, b) = (new_app_id(), new_app_id());
        assert!(a.starts_with("app-") && a.len() == 28);
        assert_ne!(a, b);
    }
}
