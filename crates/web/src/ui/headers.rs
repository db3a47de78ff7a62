//! The security headers of every page, set once by middleware on the pages' routes
//! (OWASP Secure Headers; ASVS 5.0 V3.4).

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// No inline script or style anywhere: the stylesheet is a file of ours, the pages need no
/// script, forms post only to us, and no other site may frame a page (clickjacking).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; \
base-uri 'none'; object-src 'none'";

/// Two years, as the HSTS preload list asks.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000";

/// Adds the security headers; pages that did not choose their own caching are `no-store`
/// (they show personal data or carry anti-forgery tokens). HSTS is sent only when the public
/// URL is https: on plain http (local development, tests) a browser would ignore it.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if state.cookies().secure() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
