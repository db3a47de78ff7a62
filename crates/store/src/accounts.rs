//! Portal accounts and sign-in state: accounts of patients, proxies and staff, their second
//! factors, sessions, shared rate-limit counters, onboarding invitations and SMART on FHIR
//! authorisations. Portal-only state in plain tables (DESIGN.md, Principles), not FHIR: an
//! account only points at the Patient, RelatedPerson or PractitionerRole it signs in as.
//!
//! The store keeps what the identity layer hands it and never sees a secret in the clear:
//! passwords arrive as PHC strings, session ids, codes and tokens as their hashes.
//!
//! Every operation that must happen at most once (a TOTP step, a recovery code, an invitation,
//! an authorisation code, a refresh token) is one conditional statement in the database, so it
//! holds however many server instances share the database. Every instant is stored to the
//! millisecond (a finer one comes back truncated); callers pass `now`, so rules are testable.
//!
//! [`AccountStore`] is what callers use. Backends implement the small [`AccountSql`] interface
//! instead (a read and a write primitive over statements this module owns): the SQL text
//! ([`sql`]), its arguments and the decoding of its rows are then one copy for both databases.

mod exec;
mod over_sql;
mod rows;
pub mod sql;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::error::Result;

pub use exec::{AccountSql, Arg, Cell, Statement, Written};

/// What an account may do, decided by the access policy; stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Patient,
    Proxy,
    Clinician,
    Clerical,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Patient,
        Role::Proxy,
        Role::Clinician,
        Role::Clerical,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Proxy => "proxy",
            Role::Clinician => "clinician",
            Role::Clerical => "clerical",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` exactly as [`Role::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// How sure we are of who the person is (NHS identity verification levels): `P0` none, `P5`
/// basic checks, `P9` verified in person or by NHS login's high level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityLevel {
    P0,
    P5,
    P9,
}

impl IdentityLevel {
    pub const ALL: [IdentityLevel; 3] = [IdentityLevel::P0, IdentityLevel::P5, IdentityLevel::P9];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentityLevel::P0 => "P0",
            IdentityLevel::P5 => "P5",
            IdentityLevel::P9 => "P9",
        }
    }

    pub fn parse(name: &str) -> Option<IdentityLevel> {
        IdentityLevel::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// A disabled account cannot sign in; it is kept (never deleted) so that audit trails resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Active,
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Disabled => "disabled",
        }
    }

    pub fn parse(name: &str) -> Option<AccountStatus> {
        [AccountStatus::Active, AccountStatus::Disabled]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One sign-in. The username is kept lower-cased, so two accounts never differ only by case.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// A UUID.
    pub account_id: String,
    pub username: String,
    pub role: Role,
    /// PHC string (Argon2id); None for accounts that sign in only through NHS login.
    pub password_hash: Option<String>,
    /// The Patient a patient account is (a proxy acts for patients through their links).
    pub patient_id: Option<String>,
    /// The RelatedPerson a proxy account is.
    pub related_person_id: Option<String>,
    /// The PractitionerRole a staff account works as.
    pub practitioner_role_id: Option<String>,
    /// The organisation (ODS code) a staff account belongs to.
    pub ods_code: Option<String>,
    /// At most one patient account per NHS number; other roles may repeat one.
    pub nhs_number: Option<String>,
    pub identity_level: IdentityLevel,
    /// The TOTP secret as the identity layer gives it; None when TOTP is off.
    pub totp_secret: Option<String>,
    /// The last TOTP time step accepted: the replay guard ([`AccountStore::record_totp_step`]).
    pub totp_last_step: Option<i64>,
    /// The subject of an external sign-in (NHS login) linked to this account.
    pub oidc_subject: Option<String>,
    pub status: AccountStatus,
    /// Failed sign-ins since the last success.
    pub failed_sign_ins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    /// When the password last changed; refresh tokens issued before it are no longer honoured.
    pub credentials_changed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Account {
    /// A new active account with a fresh UUID, no credentials and identity level P0.
    pub fn new(username: &str, role: Role, now: DateTime<Utc>) -> Account {
        Account {
            account_id: uuid::Uuid::new_v4().to_string(),
            username: username.to_lowercase(),
            role,
            password_hash: None,
            patient_id: None,
            related_person_id: None,
            practitioner_role_id: None,
            ods_code: None,
            nhs_number: None,
            identity_level: IdentityLevel::P0,
            totp_secret: None,
            totp_last_step: None,
            oidc_subject: None,
            status: AccountStatus::Active,
            failed_sign_ins: 0,
            locked_until: None,
            credentials_changed_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether a lockout is in force at `now`.
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }
}

/// A registered passkey. `passkey` is the JSON the web layer serialises its credential state
/// to (public key, signature counter); the store does not look inside.
#[derive(Debug, Clone, PartialEq)]
pub struct WebauthnCredential {
    /// base64url, as the authenticator names it.
    pub credential_id: String,
    pub account_id: String,
    /// What the person called it ("my phone").
    pub name: String,
    pub passkey: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A signed-in browser. Only the hash of the session token is stored, so a copy of the
/// database does not let anyone take over a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Moved forward by each request ([`AccountStore::touch_session`]), never past the
    /// absolute expiry.
    pub idle_expires_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
    /// The per-session secret CSRF tokens are derived from.
    pub csrf_secret: String,
    pub second_factor_done: bool,
    /// The patient a proxy is currently acting for (the switcher).
    pub acting_for_patient: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Session {
    /// Whether the session still signs its holder in at `now`: not ended, and neither idle
    /// nor absolute expiry has passed.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now < self.idle_expires_at && now < self.absolute_expires_at
    }
}

/// A rate-limit counter after a hit ([`AccountStore::rate_limit_hit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCount {
    /// Hits in the current window, this one included.
    pub count: u32,
    pub window_start: DateTime<Utc>,
    /// Set to the end of the window once the count passes the maximum.
    pub locked_until: Option<DateTime<Utc>>,
}

impl RateCount {
    /// Whether the key is limited at `now`.
    pub fn is_limited(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }
}

/// An onboarding invitation, sent by letter or SMS, that lets a patient create their account.
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub code_hash: String,
    pub patient_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// Attempts to redeem it so far ([`AccountStore::count_invitation_attempt`]).
    pub attempts: u32,
}

/// A SMART on FHIR app: a public client that uses authorisation code + PKCE.
#[derive(Debug, Clone, PartialEq)]
pub struct SmartApp {
    pub client_id: String,
    pub name: String,
    /// Exact redirect URIs the app may use.
    pub redirect_uris: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// An authorisation code, between `/oauth/authorize` and `/oauth/token`.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub account_id: String,
    pub redirect_uri: String,
    /// Space-separated scopes granted.
    pub scopes: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// The patient in context (`launch/patient`).
    pub patient_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// A person's consent for an app to act for them: what patients list and revoke as
/// "connected apps". Refresh tokens belong to a grant.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthGrant {
    pub grant_id: String,
    pub account_id: String,
    pub client_id: String,
    pub scopes: String,
    pub patient_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A refresh token, used once: using it marks it used and the caller issues the next one
/// (rotation); a second use of a used token means it was copied, and the caller revokes the
/// grant.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// Accounts and sign-in state, on either database. Methods that change one row answer whether
/// it was there to change (`false`: no such account, session, …), so callers never need a
/// read first. A unique key already taken is [`StoreError::Conflict`] with a message naming
/// the field (never its value).
#[async_trait]
pub trait AccountStore: Send + Sync {
    // ----- Accounts -----

    /// Stores a new account, its username lower-cased. Conflict when the username, the
    /// account id, the NHS number (of another patient account) or the OIDC subject is taken.
    async fn create_account(&self, account: &Account) -> Result<()>;

    async fn account_by_id(&self, account_id: &str) -> Result<Option<Account>>;

    /// The account with this username, ignoring case.
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>>;

    /// The patient account with this NHS number (other roles are not found by it).
    async fn account_by_nhs_number(&self, nhs_number: &str) -> Result<Option<Account>>;

    async fn account_by_oidc_subject(&self, subject: &str) -> Result<Option<Account>>;

    /// Sets a new password (a change or a reset) and `credentials_changed_at`, which retires
    /// refresh tokens issued before it. Sessions are not ended here: the caller ends them with
    /// [`AccountStore::end_all_sessions`], keeping the one in use if it should.
    async fn update_password(
        &self,
        account_id: &str,
        password_hash: &str,
        changed_at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Replaces the stored hash of the same password (new Argon2 parameters, at sign-in):
    /// unlike [`AccountStore::update_password`], nothing issued before is retired.
    async fn rehash_password(
        &self,
        account_id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Turns TOTP on (a secret) or off (None), with the step the enrolment code used.
    async fn set_totp(
        &self,
        account_id: &str,
        secret: Option<&str>,
        last_step: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// The replay guard: records `step` as used only if it is later than every step recorded
    /// before. `false` means the code was already used (or an older one), even when two
    /// requests race with the same code.
    async fn record_totp_step(&self, account_id: &str, step: i64) -> Result<bool>;

    /// Counts a failed sign-in; the new count, or None for no such account.
    async fn record_sign_in_failure(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>>;

    /// After a successful sign-in: no failures, no lockout.
    async fn reset_sign_in_failures(&self, account_id: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Locks the account until `until` (None lifts the lock).
    async fn lock_account_until(
        &self,
        account_id: &str,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn set_account_status(
        &self,
        account_id: &str,
        status: AccountStatus,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Links an external sign-in (NHS login) and the identity level it vouches for. Conflict
    /// when another account holds the subject.
    async fn link_oidc_subject(
        &self,
        account_id: &str,
        subject: &str,
        level: IdentityLevel,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    // ----- Recovery codes -----

    /// Replaces every recovery code of the account by these hashes, in one transaction.
    async fn replace_recovery_codes(&self, account_id: &str, code_hashes: &[String]) -> Result<()>;

    /// Uses a recovery code: true exactly once per code, however many requests race.
    async fn use_recovery_code(
        &self,
        account_id: &str,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Unused recovery codes left.
    async fn recovery_codes_left(&self, account_id: &str) -> Result<u32>;

    // ----- Passkeys -----

    /// Conflict when the credential id is registered already.
    async fn add_webauthn_credential(&self, credential: &WebauthnCredential) -> Result<()>;

    /// A credential by its id (a passkey sign-in names the credential, not the account).
    async fn webauthn_credential(&self, credential_id: &str) -> Result<Option<WebauthnCredential>>;

    /// The account's credentials, oldest first.
    async fn webauthn_credentials(&self, account_id: &str) -> Result<Vec<WebauthnCredential>>;

    /// After a sign-in with it: the new credential state (signature counter) and when.
    async fn update_webauthn_credential(
        &self,
        credential_id: &str,
        passkey: &str,
        used_at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Removes one of the account's credentials (another account's is left alone).
    async fn remove_webauthn_credential(
        &self,
        account_id: &str,
        credential_id: &str,
    ) -> Result<bool>;

    // ----- Sessions -----

    async fn create_session(&self, session: &Session) -> Result<()>;

    /// The session with this token hash, live or not ([`Session::is_live`] decides).
    async fn session(&self, token_hash: &str) -> Result<Option<Session>>;

    /// A request on a live session: records it and moves the idle expiry to
    /// `idle_expires_at` (capped at the absolute expiry). False when the session is not live.
    async fn touch_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Marks the second factor done on a session that has not ended.
    async fn complete_second_factor(&self, token_hash: &str) -> Result<bool>;

    /// Sets (or clears) the patient a proxy acts for, on a session that has not ended.
    async fn set_acting_for(&self, token_hash: &str, patient_id: Option<&str>) -> Result<bool>;

    /// Signs out one session; false if it had ended already or does not exist.
    async fn end_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Signs out every session of the account not yet ended, except `keep` (the one in use
    /// when "sign out other devices"); how many were ended.
    async fn end_all_sessions(
        &self,
        account_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64>;

    // ----- Rate limits -----

    /// Counts one hit on `key` in a fixed window of length `window` that starts at the first
    /// hit after the previous window ended. When the count passes `max`, the key is limited
    /// until the window ends. One statement: hits from every server instance count, none is
    /// lost when they race. The window must be at least a millisecond.
    async fn rate_limit_hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
        max: u32,
    ) -> Result<RateCount>;

    /// Forgets the counter of `key` (e.g. after a successful sign-in).
    async fn rate_limit_clear(&self, key: &str) -> Result<()>;

    // ----- Invitations -----

    async fn create_invitation(&self, invitation: &Invitation) -> Result<()>;

    async fn invitation(&self, code_hash: &str) -> Result<Option<Invitation>>;

    /// Counts an attempt to redeem the invitation, if it is unused, unexpired and has had
    /// fewer than `max_attempts`: the attempt's number, or None (no attempt allowed). Racing
    /// attempts never exceed the maximum.
    async fn count_invitation_attempt(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<Option<u32>>;

    /// Uses the invitation if it is unused and unexpired: its patient id, exactly once.
    async fn take_invitation(&self, code_hash: &str, now: DateTime<Utc>) -> Result<Option<String>>;

    // ----- SMART apps and OAuth -----

    async fn create_smart_app(&self, app: &SmartApp) -> Result<()>;

    async fn smart_app(&self, client_id: &str) -> Result<Option<SmartApp>>;

    async fn insert_oauth_code(&self, code: &OAuthCode) -> Result<()>;

    /// Uses an unexpired code, exactly once: a second use (or a late one) is None, and the
    /// caller then revokes what the first use granted.
    async fn take_oauth_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthCode>>;

    /// A code whatever its state (to find what a reused code granted).
    async fn oauth_code(&self, code_hash: &str) -> Result<Option<OAuthCode>>;

    async fn create_grant(&self, grant: &OAuthGrant) -> Result<()>;

    async fn grant(&self, grant_id: &str) -> Result<Option<OAuthGrant>>;

    /// The account's grants not revoked, oldest first: its connected apps.
    async fn active_grants(&self, account_id: &str) -> Result<Vec<OAuthGrant>>;

    /// Revokes a grant; its refresh tokens can no longer be taken. False if it was revoked
    /// already or does not exist.
    async fn revoke_grant(&self, grant_id: &str, now: DateTime<Utc>) -> Result<bool>;

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()>;

    /// Uses an unexpired, unused refresh token exactly once (the caller then inserts its
    /// successor). Only a token of a grant not revoked, of an active account, issued after
    /// the account's credentials last changed can be taken; one refused for those reasons
    /// stays unused, so [`AccountStore::refresh_token`] tells it from a reused one.
    async fn take_refresh_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RefreshToken>>;

    /// A refresh token whatever its state (to tell reuse from an unknown token).
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>>;

    /// Marks every unused refresh token of the grant used; how many.
    async fn revoke_refresh_tokens(&self, grant_id: &str, now: DateTime<Utc>) -> Result<u64>;
}
