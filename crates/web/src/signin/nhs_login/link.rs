//! Which account an NHS login is, in this order:
//!
//! 1. **The account linked to its subject** (`sub`): NHS login's stable id for the person. Its
//!    identity level becomes this sign-in's (P9 sees the record, P5 and P0 a reduced view), so
//!    a person whose NHS login was raised to P9 gets the record at their next sign-in.
//! 2. **The patient account with its NHS number**, which is then linked to the subject — only
//!    at P9. At P5 NHS login has matched details that others may know too but not proven who
//!    the person is, and linking would hand over an account somebody already made (and could
//!    lower its level): that person is asked to sign in with their username and password.
//!    The same rule keeps `/register` from making a second account for a patient.
//! 3. **A new patient account** for the one Patient with that NHS number, when there is one:
//!    no password (it signs in through NHS login only), username `nhs-login:{account id}`
//!    (`:` is never in a username people choose, so the two cannot collide).
//! 4. Otherwise nothing: the record is not here, and no account is made.
//!
//! Refused whatever the level: a disabled account; an account whose NHS number is not the one
//! NHS login gives (the link would join two people); an account already linked to another
//! NHS login.

use chrono::{DateTime, Utc};
use fhir::nhs_number::NhsNumber;
use oidc::Identity;
use store::accounts::{Account, AccountStatus, IdentityLevel, Role};
use store::{Store, StoreError};

use crate::signin::provision::patient_by_nhs_number;
use crate::WebError;

/// The prefix of the usernames of accounts made by NHS login.
pub const USERNAME_PREFIX: &str = "nhs-login:";

/// What the sign-in comes to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Sign in as this account (as stored now).
    SignIn { account: Account, change: Change },
    /// No account and no Patient with this NHS number (or no NHS number at all).
    NoRecord,
    /// The identity matches an account it may not sign in as.
    Refused {
        reason: Refusal,
        account: Option<Account>,
    },
}

/// What the sign-in changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    /// An existing account was linked to the subject.
    Linked,
    /// A new account was made.
    Created,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Disabled,
    /// An account exists for the NHS number, and NHS login's level is too low to link it.
    HasAccount,
    /// The account is linked to another NHS login, or its NHS number is not this one, or a
    /// concurrent sign-in took the NHS number or the subject first.
    Conflict,
}

/// The store's level for NHS login's.
pub(crate) fn level(level: oidc::IdentityLevel) -> IdentityLevel {
    match level {
        oidc::IdentityLevel::P0 => IdentityLevel::P0,
        oidc::IdentityLevel::P5 => IdentityLevel::P5,
        oidc::IdentityLevel::P9 => IdentityLevel::P9,
    }
}

fn refused(reason: Refusal, account: Option<Account>) -> Outcome {
    Outcome::Refused { reason, account }
}

/// Finds (or links, or makes) the account of `identity` by the rules above.
pub(crate) async fn resolve(
    store: &dyn Store,
    identity: &Identity,
    now: DateTime<Utc>,
) -> Result<Outcome, WebError> {
    let accounts = store.accounts();
    let level = level(identity.identity_level);

    if let Some(account) = accounts.account_by_oidc_subject(&identity.subject).await? {
        if account.status != AccountStatus::Active {
            return Ok(refused(Refusal::Disabled, Some(account)));
        }
        if let (Some(theirs), Some(ours)) = (&identity.nhs_number, &account.nhs_number) {
            if theirs != ours {
                return Ok(refused(Refusal::Conflict, Some(account)));
            }
        }
        let mut account = account;
        if account.identity_level != level {
            accounts
                .link_oidc_subject(&account.account_id, &identity.subject, level, now)
                .await?;
            account.identity_level = level;
        }
        return Ok(Outcome::SignIn {
            account,
            change: Change::None,
        });
    }

    let Some(nhs_number) = identity.nhs_number.as_deref() else {
        return Ok(Outcome::NoRecord);
    };

    if let Some(account) = accounts.account_by_nhs_number(nhs_number).await? {
        if account.status != AccountStatus::Active {
            return Ok(refused(Refusal::Disabled, Some(account)));
        }
        if account.oidc_subject.is_some() {
            return Ok(refused(Refusal::Conflict, Some(account)));
        }
        if level != IdentityLevel::P9 {
            return Ok(refused(Refusal::HasAccount, Some(account)));
        }
        return match accounts
            .link_oidc_subject(&account.account_id, &identity.subject, level, now)
            .await
        {
            Ok(true) => {
                let mut account = account;
                account.oidc_subject = Some(identity.subject.clone());
                account.identity_level = level;
                Ok(Outcome::SignIn {
                    account,
                    change: Change::Linked,
                })
            }
            Ok(false) | Err(StoreError::Conflict(_)) => Ok(refused(Refusal::Conflict, None)),
            Err(e) => Err(e.into()),
        };
    }

    // The claim was checked by the oidc crate; parsed again only to search by it.
    let Ok(parsed) = NhsNumber::parse(nhs_number) else {
        return Ok(Outcome::NoRecord);
    };
    let Some(patient) = patient_by_nhs_number(store, &parsed).await? else {
        return Ok(Outcome::NoRecord);
    };
    let mut account = Account::new(USERNAME_PREFIX, Role::Patient, now);
    account.username = format!("{USERNAME_PREFIX}{}", account.account_id);
    account.patient_id = Some(patient.id);
    account.nhs_number = Some(nhs_number.to_string());
    account.identity_level = level;
    account.oidc_subject = Some(identity.subject.clone());
    match accounts.create_account(&account).await {
        Ok(()) => Ok(Outcome::SignIn {
            account,
            change: Change::Created,
        }),
        Err(StoreError::Conflict(_)) => Ok(refused(Refusal::Conflict, None)),
        Err(e) => Err(e.into()),
    }
}
