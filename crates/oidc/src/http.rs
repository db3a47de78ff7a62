//! Reading the provider's answers: bounded in size (a broken or hostile endpoint cannot make
//! this server buffer without end) and with errors that name the endpoint.

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Far above any discovery document, key set, token or userinfo response.
const MAX_BODY: usize = 1 << 20;

/// The body of `response`, refused past [`MAX_BODY`].
pub(crate) async fn read_body(
    what: &'static str,
    mut response: reqwest::Response,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| Error::Http { what, source })?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::BadResponse {
                what,
                reason: format!("the response is larger than {MAX_BODY} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends `request`, requires a 2xx answer and reads it as JSON of type `T`.
pub(crate) async fn json<T: DeserializeOwned>(
    what: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<T> {
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|source| Error::Http { what, source })?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::HttpStatus {
            what,
            status: status.as_u16(),
        });
    }
    let body = read_body(what, response).await?;
    serde_json::from_slice(&body).map_err(|e| Error::BadResponse {
        what,
        reason: format!("not the expected JSON: {}", without_values(&e)),
    })
}

/// serde_json's messages can quote values of the document (`invalid type: string "…"`), which
/// may be personal data; only a missing member is named, otherwise the position.
pub(crate) fn without_values(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if message.starts_with("missing field") {
        message
    } else {
        format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        )
    }
}
