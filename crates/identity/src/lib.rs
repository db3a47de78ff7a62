//! Credential primitives for signing in to Portico: pure functions with no database and no HTTP,
//! so that every security rule is decided in one place and tested exhaustively. The tables that
//! keep accounts, sessions and counters, and the HTTP handlers that use these functions, live in
//! other crates.
//!
//! - [`password`]: Argon2id hashing with rehash-on-login when the parameters change, and the
//!   strength rules of NIST SP 800-63B / OWASP ASVS 5.0 (length, an embedded list of common and
//!   breached passwords, personal information, repetition and sequences).
//! - [`totp`]: RFC 6238 one-time codes for the second factor, with replay protection.
//! - [`recovery`]: single-use recovery codes for a lost authenticator.
//! - [`invitation`]: onboarding codes sent by letter or SMS.
//! - [`token`]: random bearer tokens (session ids, refresh tokens, authorization codes) and the
//!   hash under which they are stored.
//! - [`pkce`]: RFC 7636 proof keys for SMART on FHIR apps (S256 only).
//! - [`csrf`]: per-session, per-form anti-forgery tokens.
//! - [`ratelimit`]: the arithmetic of rate limits and account lockout over a small state record
//!   that the caller keeps in the database, so limits hold across server instances.

mod code;
pub mod csrf;
pub mod error;
pub mod invitation;
pub mod password;
pub mod pkce;
pub mod ratelimit;
pub mod recovery;
pub mod token;
pub mod totp;

pub use error::Error;
