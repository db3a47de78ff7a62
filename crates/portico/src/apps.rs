//! `portico admin create-app`: registers a SMART on FHIR app (DESIGN.md §3). The rules for its
//! name and redirect URIs are the web layer's ([`web::smart::registration`]), so the command
//! line and `/oauth/authorize` cannot disagree; here they become usage errors naming the flag.

use std::sync::Arc;

use chrono::Utc;
use store::accounts::SmartApp;
use store::Store;
use web::smart::registration;
use web::WebError;

use crate::app::{open_store, IfMissing};
use crate::cli::CreateAppArgs;
use crate::config::Config;
use crate::error::{Error, Result};

/// A rule broken by `flag`'s value, as a usage error (exit status 2).
fn usage(flag: &str, e: WebError) -> Error {
    match e {
        WebError::BadRequest(issue) => Error::Usage(format!("{flag}: {}", issue.diagnostics)),
        other => Error::Server(other.to_string()),
    }
}

/// Checks the arguments without the database.
pub fn check_args(args: &CreateAppArgs) -> Result<()> {
    registration::check_name(&args.name).map_err(|e| usage("--name", e))?;
    for uri in &args.redirect_uris {
        registration::check_redirect_uri(uri).map_err(|e| usage("--redirect-uri", e))?;
    }
    Ok(())
}

/// Registers the app the arguments describe.
pub async fn create_app_in(store: &dyn Store, args: &CreateAppArgs) -> Result<SmartApp> {
    check_args(args)?;
    registration::register_app(store, &args.name, &args.redirect_uris, Utc::now())
        .await
        .map_err(|e| usage("--redirect-uri", e))
}

pub async fn create_app(config: Arc<Config>, args: CreateAppArgs) -> Result<()> {
    check_args(&args)?;
    let store = open_store(
        &config,
        IfMissing::Refuse {
            fix: "run `portico migrate` first (or point PORTICO_DATABASE_URL at the server's database)",
        },
    )
    .await?;
    let app = create_app_in(store.as_ref(), &args).await?;
    if args.json {
        println!("{}", serde_json::json!({"client_id": app.client_id}));
    } else {
        println!("Registered SMART app {:?}", app.name);
        println!("client_id:     {}", app.client_id);
        for uri in &app.redirect_uris {
            println!("redirect_uri:  {uri}");
        }
        println!("A public client: no secret; the app must use PKCE (S256).");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, uris: &[&str]) -> CreateAppArgs {
        CreateAppArgs {
            name: name.into(),
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            json: true,
        }
    }

    #[test]
    fn a_bad_redirect_uri_is_a_usage_error_naming_the_flag_and_the_rule() {
        let e = check_args(&args(
            "Diary",
            &["https://a.example/cb", "http://a.example/cb"],
        ))
        .expect_err("plain http elsewhere");
        assert_eq!(e.exit_code(), crate::error::EXIT_CONFIG);
        let text = e.to_string();
        assert!(text.starts_with("--redirect-uri: "), "{text}");
        assert!(text.contains("https, or http on the loopback"), "{text}");
        let e = check_args(&args(" ", &["https://a.example/cb"])).expect_err("no name");
        assert!(e.to_string().starts_with("--name: "));
        assert!(check_args(&args("Diary", &["http://127.0.0.1:7000/cb"])).is_ok());
    }
}
