//! External sign-in with OpenID Connect, shaped for NHS login.
//!
//! The relying-party side of the authorization code flow:
//!
//! 1. At start, [`Client::discover`] reads the provider's discovery document and keys, and the
//!    client's RSA private key (registered with the provider as a public JWKS, see
//!    [`Client::public_jwks`] / [`ClientKey::public_jwks`]).
//! 2. [`Client::authorize_url`] gives the URL to redirect the browser to (PKCE S256, random
//!    `state` and `nonce`, NHS login's `vtr`) and an [`AuthState`] to keep until the callback.
//! 3. At the callback, [`Client::exchange`] checks `state`, redeems the code with a
//!    `private_key_jwt` client assertion, validates the ID token (signature against the
//!    provider's keys, issuer, audience, expiry, nonce), reads userinfo when needed and returns
//!    an [`Identity`]: subject, checked NHS number, identity level (P0/P5/P9), birth date, email.
//!
//! Whether an identity level may see the record is the caller's decision; this crate only
//! reports it ([`IdentityLevel::allows_record_access`] states the rule: P9 only).

mod auth_state;
mod client;
mod client_key;
mod discovery;
mod error;
mod http;
mod id_token;
mod identity;
mod jwk;
mod jws;
#[cfg(test)]
mod test_keys;
#[cfg(feature = "testing")]
pub mod testing;

pub use auth_state::AuthState;
pub use client::Client;
pub use client_key::ClientKey;
pub use error::{Error, Result};
pub use id_token::LEEWAY_SECS;
pub use identity::{Identity, IdentityLevel};
pub use reqwest::Url;
