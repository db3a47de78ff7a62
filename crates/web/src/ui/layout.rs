//! What the base layout (`templates/base.html`) needs from every page.

use super::assets;
use super::text::{self, Text};

/// The frame of a page: its title, the stylesheet, and the signed-in header links.
#[derive(Debug, Clone)]
pub struct Layout {
    pub t: &'static Text,
    /// The whole `<title>`, e.g. "Error: Sign in – Portico".
    pub title: String,
    /// The stylesheet's URL, versioned by its content so that it can be cached for a year.
    pub css: &'static str,
    /// Present when someone is signed in: the header then offers their account and signing out.
    pub nav: Option<Nav>,
}

/// The header links of a signed-in person.
#[derive(Debug, Clone)]
pub struct Nav {
    /// The anti-forgery token of the sign-out form (`POST /logout`).
    pub sign_out_csrf: String,
}

impl Layout {
    /// The layout of a page called `heading`; `has_errors` puts "Error: " before the title.
    pub fn new(heading: &str, has_errors: bool) -> Layout {
        let t = text::current();
        Layout {
            t,
            title: t.page_title(heading, has_errors),
            css: assets::stylesheet_url(),
            nav: None,
        }
    }

    /// The same layout with the signed-in header links.
    pub fn signed_in(mut self, sign_out_csrf: String) -> Layout {
        self.nav = Some(Nav { sign_out_csrf });
        self
    }
}
