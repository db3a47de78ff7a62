//! Where to go after signing in: `?next=` takes only a path on this server, so a link like
//! `/login?next=https://evil.example` cannot turn Portico's sign-in into a phishing
//! redirect (an open redirect, OWASP ASVS 5.0 V3.7.2 — in the CWE-601 sense).
//!
//! Accepted: a path that starts with exactly one `/`, followed by printable ASCII with no
//! backslash, whose percent-decoded form does not start with `//` or `/\` either (some servers
//! and browsers decode before following). Refused: `//host`, `/\host`, `https:…`, `javascript:…`,
//! tabs and newlines (browsers strip them, turning `/\t/host` into `//host`), non-ASCII, and
//! anything longer than 2,000 characters. A refused `next` is replaced by the account page.

use axum::http::Uri;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Where a person goes after signing in when no acceptable `next` was given.
pub const DEFAULT_NEXT: &str = "/account";

/// Longest `next` accepted.
const MAX_LEN: usize = 2000;

/// What is percent-encoded when `next` is put in a query string.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `next` when it is a safe local path, else None.
pub fn safe_next(next: &str) -> Option<&str> {
    let bytes = next.as_bytes();
    let ok = next.len() <= MAX_LEN
        && bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/') | Some(b'\\'))
        && bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\');
    if !ok {
        return None;
    }
    let decoded = percent_decode_str(next).decode_utf8().ok()?;
    let decoded = decoded.as_bytes();
    if matches!(decoded.get(1), Some(b'/') | Some(b'\\'))
        || decoded.iter().any(|b| *b == b'\\' || b.is_ascii_control())
    {
        return None;
    }
    Some(next)
}

/// `next` when safe, else the account page.
pub fn next_or_default(next: Option<&str>) -> &str {
    next.and_then(safe_next).unwrap_or(DEFAULT_NEXT)
}

/// `path` with `?next=` set to `next` when it is safe and not the default.
pub fn with_next(path: &str, next: &str) -> String {
    match safe_next(next) {
        Some(n) if n != DEFAULT_NEXT => {
            format!("{path}?next={}", utf8_percent_encode(n, QUERY_VALUE))
        }
        _ => path.to_string(),
    }
}

/// The sign-in page that returns to `uri` afterwards.
pub fn login_with_next(uri: &Uri) -> String {
    let target = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    if target == "/" {
        return super::LOGIN_PATH.to_string();
    }
    with_next(super::LOGIN_PATH, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_accepted() {
        for ok in [
            "/",
            "/account",
            "/records/letters?page=2&sort=date",
            "/a/b%20c",
            "/account#top",
        ] {
            assert_eq!(safe_next(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn other_hosts_schemes_and_tricks_are_refused() {
        for bad in [
            "",
            "account",
            "//evil.example",
            "//evil.example/account",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/%0a/evil.example",
            "/ /evil",
            "/caf\u{e9}",
            "/%ff",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(2000))), None);
    }

    #[test]
    fn the_default_replaces_what_is_refused() {
        assert_eq!(next_or_default(Some("//evil.example")), "/account");
        assert_eq!(next_or_default(None), "/account");
        assert_eq!(next_or_default(Some("/records")), "/records");
    }

    #[test]
    fn next_survives_the_round_trip_through_a_query_string() {
        let url = with_next("/login", "/records/letters?page=2&x=a b");
        assert_eq!(url, "/login");
        let url = with_next("/login", "/records/letters?page=2&x=y");
        assert_eq!(url, "/login?next=/records/letters%3Fpage%3D2%26x%3Dy");
        let back: Vec<(String, String)> =
            serde_urlencoded::from_str(url.split_once('?').map(|(_, q)| q).unwrap_or(""))
                .unwrap_or_default();
        assert_eq!(back[0].1, "/records/letters?page=2&x=y");
        assert_eq!(with_next("/login", "/account"), "/login");
    }
}
