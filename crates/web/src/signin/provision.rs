//! Making an account: the one place that checks a username and a new password and stores the
//! account, used by registration (patients) and by `portico admin create-account`.

use chrono::{DateTime, Utc};
use fhir::nhs_number::NhsNumber;
use identity::password::{check_strength, PasswordPolicy, Weakness};
use store::accounts::{Account, IdentityLevel, Role};
use store::{Store, StoreError};

use crate::WebError;

/// Shortest and longest usernames.
pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=64;

/// What a new account is.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub username: String,
    pub role: Option<Role>,
    pub patient_id: Option<String>,
    pub related_person_id: Option<String>,
    pub practitioner_role_id: Option<String>,
    pub ods_code: Option<String>,
    pub nhs_number: Option<String>,
    pub identity_level: Option<IdentityLevel>,
    /// A base32 TOTP secret to enable at once (`--with-totp`).
    pub totp_secret: Option<String>,
}

/// Why an account was not made: answers for the person, not faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not 3 to 64 characters of letters, digits, `.`, `-`, `_`, `@`, `+`.
    Username,
    Password(Weakness),
    UsernameTaken,
    /// This patient (NHS number) has an account already.
    PatientHasAccount,
}

impl Refusal {
    /// One line for the command line.
    pub fn message(&self) -> String {
        match self {
            Refusal::Username => format!(
                "the username must be {} to {} characters: letters, digits, '.', '-', '_', '@' or '+'",
                USERNAME_CHARS.start(),
                USERNAME_CHARS.end()
            ),
            Refusal::Password(w) => format!("the password is not accepted: {w}"),
            Refusal::UsernameTaken => "an account with this username already exists".into(),
            Refusal::PatientHasAccount => {
                "a patient account with this NHS number already exists".into()
            }
        }
    }
}

/// The username as stored (lower case, trimmed), or None when it is not acceptable.
pub fn normalise_username(input: &str) -> Option<String> {
    let u = input.trim().to_lowercase();
    let ok = USERNAME_CHARS.contains(&u.chars().count())
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | '+'));
    ok.then_some(u)
}

/// Checks the username and password, hashes the password (on the blocking pool) and stores the
/// account. The password must not contain the username.
pub async fn create_account(
    store: &dyn Store,
    policy: &PasswordPolicy,
    new: NewAccount,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Result<Account, Refusal>, WebError> {
    let Some(username) = normalise_username(&new.username) else {
        return Ok(Err(Refusal::Username));
    };
    if let Err(w) = check_strength(password, &[&username]) {
        return Ok(Err(Refusal::Password(w)));
    }
    let accounts = store.accounts();
    if accounts.account_by_username(&username).await?.is_some() {
        return Ok(Err(Refusal::UsernameTaken));
    }
    let policy = policy.clone();
    let pw = password.to_string();
    let hash = tokio::task::spawn_blocking(move || policy.hash(&pw))
        .await
        .map_err(|e| WebError::Internal(format!("password hashing stopped: {e}")))?
        .map_err(|e| WebError::Internal(format!("password hashing failed: {e}")))?;
    let mut account = Account::new(&username, new.role.unwrap_or(Role::Patient), now);
    account.password_hash = Some(hash);
    account.patient_id = new.patient_id;
    account.related_person_id = new.related_person_id;
    account.practitioner_role_id = new.practitioner_role_id;
    account.ods_code = new.ods_code;
    account.nhs_number = new.nhs_number;
    account.identity_level = new.identity_level.unwrap_or(IdentityLevel::P0);
    account.totp_secret = new.totp_secret;
    match accounts.create_account(&account).await {
        Ok(()) => Ok(Ok(account)),
        Err(StoreError::Conflict(m)) if m.contains("username") => Ok(Err(Refusal::UsernameTaken)),
        Err(StoreError::Conflict(m)) if m.contains("NHS number") => {
            Ok(Err(Refusal::PatientHasAccount))
        }
        Err(e) => Err(e.into()),
    }
}

/// A Patient found by NHS number.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundPatient {
    pub id: String,
    pub resource: serde_json::Value,
}

/// The one current Patient with this NHS number; None when there is none, or more than one
/// (which only bad data makes, and which must not be guessed between).
pub async fn patient_by_nhs_number(
    store: &dyn Store,
    nhs: &NhsNumber,
) -> Result<Option<FoundPatient>, WebError> {
    let params = vec![(
        "identifier".to_string(),
        format!("{}|{}", fhir::nhs_number::SYSTEM, nhs.digits()),
    )];
    let mut query = store::query::parse("Patient", &params, &Default::default())
        .map_err(|_| WebError::Internal("the NHS number search could not be built".into()))?;
    query.count = 2;
    let found = store.search(&query).await?;
    let current: Vec<_> = found.matches.into_iter().filter(|v| !v.deleted).collect();
    match current.as_slice() {
        [one] => Ok(Some(FoundPatient {
            id: one.id.clone(),
            resource: one.parse()?,
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_limited_to_plain_characters() {
        assert_eq!(
            normalise_username(" Alice.Smith@NHS.net "),
            Some("alice.smith@nhs.net".into())
        );
        assert_eq!(normalise_username("bob_1+x"), Some("bob_1+x".into()));
        for bad in ["", "ab", "a b c", "alice<script>", &"a".repeat(65), "zoë"] {
            assert_eq!(normalise_username(bad), None, "{bad}");
        }
        assert!(normalise_username(&"a".repeat(64)).is_some());
    }
}
