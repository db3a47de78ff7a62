//! The one error type of this crate.
//!
//! Messages say what was wrong and where, so that an operator can act on them, but they never
//! carry tokens, codes, keys or claim values: those are credentials or personal data, and errors
//! end up in logs.

/// Why discovery, building an authorization request or a code exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting given to [`crate::Client::discover`] cannot work (issuer or redirect URI).
    #[error("OIDC configuration: {0}")]
    Config(String),

    /// The client's private key could not be used for `private_key_jwt`.
    #[error("OIDC client private key: {0}")]
    PrivateKey(String),

    /// The provider could not be reached, or the connection broke.
    #[error("{what}: request failed: {source}")]
    Http {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },

    /// The provider answered with an unexpected HTTP status.
    #[error("{what}: the provider answered HTTP {status}")]
    HttpStatus { what: &'static str, status: u16 },

    /// The provider's answer was not what the protocol requires (not JSON, missing member, too
    /// large, …).
    #[error("{what}: {reason}")]
    BadResponse { what: &'static str, reason: String },

    /// The discovery document cannot be used with this client.
    #[error("provider metadata: {0}")]
    Metadata(String),

    /// The authorization request's extra parameters tried to set one this client sets itself.
    #[error("authorization parameter `{0}` is set by the client and cannot be given as an extra")]
    ReservedParameter(String),

    /// The operating system's random source failed.
    #[error("the system random number generator failed")]
    Random,

    /// The `state` that came back with the code is not the one this sign-in sent: the callback
    /// belongs to another browser or sign-in, or was forged.
    #[error("the state returned with the authorization code does not match the one sent; start the sign-in again")]
    StateMismatch,

    /// The callback came without an authorization code.
    #[error("the callback carried no authorization code")]
    MissingCode,

    /// The token endpoint refused the exchange, with the OAuth error it gave (for example
    /// `invalid_grant` for a code that was already used or has expired).
    #[error("the token endpoint refused the code exchange (HTTP {status}): {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRefused {
        status: u16,
        error: String,
        description: Option<String>,
    },

    /// The ID token's signature does not verify with the provider's keys.
    #[error("ID token rejected: its signature does not verify with the provider's published keys")]
    IdTokenSignature,

    /// The ID token names a signing key the provider does not publish, even after refetching
    /// its key set.
    #[error("ID token rejected: it is signed with key id `{kid}`, which the provider's key set does not contain")]
    UnknownSigningKey { kid: String },

    /// The ID token's nonce is absent or differs from the one sent: it was not issued for this
    /// sign-in (a replayed or injected token).
    #[error("ID token rejected: its nonce does not match the one sent with this sign-in")]
    NonceMismatch,

    /// The ID token fails another check; the reason names the check.
    #[error("ID token rejected: {0}")]
    InvalidIdToken(String),

    /// A claim about the user is present but unusable; the value itself is never shown.
    #[error("claim `{claim}`: {reason}")]
    InvalidClaim { claim: &'static str, reason: String },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
