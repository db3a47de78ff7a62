//! The passkey script, compiled into the binary and served at `/assets/passkeys.js` (the CSP
//! allows scripts from `'self'` only, and no inline script). It is the only script of the pages,
//! and only the passkey pages load it.

use std::sync::OnceLock;

use axum::response::Response;

/// The script.
pub const SCRIPT: &str = include_str!("../../assets/passkeys.js");

/// Where the script is served.
pub const SCRIPT_PATH: &str = "/assets/passkeys.js";

/// The script's URL, versioned by its content so that it can be cached for a year, as the
/// stylesheet is ([`crate::ui::assets::versioned_url`]).
pub fn script_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| crate::ui::assets::versioned_url(SCRIPT_PATH, SCRIPT))
}

/// `GET /assets/passkeys.js`.
pub async fn script() -> Response {
    crate::ui::assets::serve(SCRIPT, "text/javascript; charset=utf-8")
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
