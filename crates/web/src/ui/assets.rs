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

/// `path?v=` the first 12 hex digits of the SHA-256 of `content`: a new build with changed
/// content gets a new URL, so browsers may cache each one for a year.
pub fn versioned_url(path: &str, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    let version: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{path}?v={version}")
}

/// A compiled-in asset as served: its media type, cached for a year (its URL changes with its
/// content, [`versioned_url`]).
pub fn serve(content: &'static str, media_type: &'static str) -> Response {
    let mut res = content.into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    res
}

/// The stylesheet's versioned URL.
pub fn stylesheet_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| versioned_url(STYLESHEET_PATH, STYLESHEET))
}

/// `GET /assets/portico.css`.
pub async fn stylesheet() -> Response {
    serve(STYLESHEET, "text/css; charset=utf-8")
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
