//! The crate's one error type, for operations that can fail on their input or environment.
//!
//! Expected answers to a user are not errors and have types of their own: a password that breaks
//! a rule is a [`crate::password::Weakness`], a one-time code that is not accepted is a
//! [`crate::totp::Rejection`], a password that does not match is
//! [`crate::password::Verification::Invalid`]. None of the messages here contain the secret
//! that was given.

/// Why an operation of this crate failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The password is longer (after normalisation) than the hasher accepts; the strength rules
    /// refuse such passwords long before this limit.
    #[error("the password is longer than {max_bytes} bytes")]
    PasswordTooLong { max_bytes: usize },
    /// Argon2 parameters outside the range Portico accepts.
    #[error("Argon2 parameters out of range: {0}")]
    InvalidParams(String),
    /// Argon2 failed while hashing (it fails only on inputs outside its limits).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A TOTP secret that is not base32 for 16 to 64 bytes.
    #[error("the TOTP secret must be base32 for 16 to 64 bytes")]
    InvalidTotpSecret,
    /// A PKCE code verifier that breaks RFC 7636 § 4.1.
    #[error(
        "the PKCE code verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'"
    )]
    InvalidCodeVerifier,
}
