//! The foundation of the server-rendered pages: askama templates (checked when the crate
//! compiles) in a layout that follows the NHS design system's patterns, one stylesheet served
//! by the binary, the security headers of every page, and the pages for failures.
//!
//! Pages work without JavaScript and at 320 px wide, and aim at WCAG 2.2 AA: a skip link,
//! `lang="en-GB"`, titles of the form "Sign in – Portico" ("Error: …" first when a form has
//! errors), an error summary above a form linking to each field, the message beside its field,
//! labels and hints tied to inputs, visible focus and targets of at least 24 px.

pub mod assets;
pub mod form;
pub mod headers;
pub mod layout;
pub mod london;
pub mod text;

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

pub use form::{Errors, FieldError};
pub use layout::Layout;
pub use text::Text;

use crate::error::current_request_id;
use crate::WebError;

/// Renders `template` as an HTML response with `status`. A template that fails to render (it
/// cannot fail on data, as askama checks templates at compile time, but a `Display` can) is a
/// plain 500.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            plain_500()
        }
    }
}

/// A 303 See Other to a local path: how every successful form post answers (POST/redirect/GET),
/// so that reloading the next page does not send the form again.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res
        }
        Err(_) => plain_500(),
    }
}

fn plain_500() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sorry, there is a problem with the service.",
    )
        .into_response()
}

/// A page that says something went wrong: a title and one paragraph, and the request id for
/// 5xx answers so that support can find the log line.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub layout: Layout,
    pub heading: &'static str,
    pub body: &'static str,
    pub reference: Option<String>,
}

/// The HTML answer for a page handler's error: 403 "this form has expired" (a failed CSRF
/// check), 404, 429, and for everything else "there is a problem" with the request id. Server
/// faults are logged with the id (never with request data).
pub fn failure(error: WebError) -> Response {
    let t = text::current();
    let status = error.status();
    let (heading, body) = match status {
        StatusCode::FORBIDDEN => (t.forbidden_title, t.forbidden_body),
        StatusCode::NOT_FOUND => (t.not_found_title, t.not_found_body),
        StatusCode::TOO_MANY_REQUESTS => (t.too_many_title, t.too_many_body),
        _ => (t.problem_title, t.problem_body),
    };
    let reference = if status.is_server_error() {
        let id = current_request_id();
        tracing::error!(
            request_id = id.as_deref().unwrap_or("-"),
            error = %error,
            "a page failed"
        );
        id.map(|id| id.to_string())
    } else {
        None
    };
    let template = MessagePage {
        layout: Layout::new(heading, false),
        heading,
        body,
        reference,
    };
    page(status, &template)
}

/// Turns a page handler's result into its response.
pub fn respond(result: Result<Response, WebError>) -> Response {
    result.unwrap_or_else(failure)
}
