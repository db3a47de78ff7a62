//! The passkey script, compiled into the binary and served at `/assets/passkeys.js` (the CSP
//! allows scripts from `'self'` only, and no inline script). It is the only script of the pages,
//! and only the passkey pages load it.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The script.
pub const SCRIPT: &str = include_str!("../../assets/passkeys.js");

/// Where the script is served.
pub const SCRIPT_PATH: &str = "/assets/passkeys.js";

/// The script's URL with a version taken from its content (`?v=` the first 12 hex digits of its
/// SHA-256), so each build's script can be cached for a year, as the stylesheet is.
pub fn script_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let digest = Sha256::digest(SCRIPT.as_bytes());
        let version: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("{SCRIPT_PATH}?v={version}")
    })
}

/// `GET /assets/passkeys.js`.
pub async fn script() -> Response {
    let mut res = SCRIPT.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_url_is_versioned_by_content() {
        let url = script_url();
        assert!(url.starts_with("/assets/passkeys.js?v="), "{url}");
        assert_eq!(url.len(), SCRIPT_PATH.len() + 3 + 12);
    }

    #[test]
    fn the_script_only_enhances_browsers_that_have_passkeys() {
        assert!(SCRIPT.contains("window.PublicKeyCredential"));
        // No way around the CSP: no eval, no inline handlers written into the page.
        for banned in [
            "eval(",
            "new Function",
            "innerHTML",
            "onclick",
            "document.write",
        ] {
            assert!(!SCRIPT.contains(banned), "{banned}");
        }
    }
}
