//! The stylesheet, compiled into the binary and served at `/assets/portico.css`: no CDN, so the
//! pages work on an isolated network and the CSP can say `style-src 'self'`.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Portico's stylesheet.
pub const STYLESHEET: &str = include_str!("../../assets/portico.css");

/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/assets/portico.css";

/// The stylesheet's URL with a version taken from its content (`?v=` the first 12 hex digits of
/// its SHA-256): a new build with a changed stylesheet gets a new URL, so browsers may cache each
/// one for a year.
pub fn stylesheet_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let digest = Sha256::digest(STYLESHEET.as_bytes());
        let version: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("{STYLESHEET_PATH}?v={version}")
    })
}

/// `GET /assets/portico.css`.
pub async fn stylesheet() -> Response {
    let mut res = STYLESHEET.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
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
    fn stylesheet_url_is_versioned_by_content() {
        let url = stylesheet_url();
        assert!(url.starts_with("/assets/portico.css?v="), "{url}");
        assert_eq!(url.len(), STYLESHEET_PATH.len() + 3 + 12);
    }
}
