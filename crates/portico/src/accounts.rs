//! `portico admin create-account` and `portico admin invite`: sign-in accounts and onboarding
//! invitations, made from the command line (DESIGN.md §3).
//!
//! Links are checked against the record: `--nhs-number` must be a valid NHS number (Modulus 11)
//! of a Patient that exists, `--related-person` and `--practitioner-role` resources that exist.
//! A patient account linked by NHS number gets identity level P9, because the administrator
//! running the command vouches for the person; other accounts start at P0 (staff identity is
//! checked by their employer, not recorded as an NHS level). Staff accounts keep the ODS code
//! given with `--ods`; they are linked to a PractitionerRole only when `--practitioner-role`
//! names one, since an organisation has many and guessing which would be wrong.

use std::io::BufRead;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use fhir::nhs_number::NhsNumber;
use identity::password::PasswordPolicy;
use store::accounts::{IdentityLevel, Invitation, Role};
use store::Store;
use web::signin::provision::{self, NewAccount};

use crate::app::{open_store, IfMissing};
use crate::cli::{CreateAccountArgs, InviteArgs, RoleArg};
use crate::config::Config;
use crate::error::{Error, Result};

const NEEDS_DATABASE: IfMissing = IfMissing::Refuse {
    fix: "run `portico migrate` first (or point PORTICO_DATABASE_URL at the server's database)",
};

/// One line of standard input without its line ending: the password.
fn read_password(input: impl BufRead) -> Result<String> {
    let mut line = String::new();
    input
        .take(64 * 1024)
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the password from standard input", e))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(Error::Usage(
            "--password-stdin: standard input gave no password; pipe it in, e.g. printf '%s\\n' \"$PASSWORD\" | portico admin create-account …".into(),
        ));
    }
    Ok(password)
}

/// The ODS code as stored (upper case), or a usage error.
fn ods_code(code: &str) -> Result<String> {
    let code = code.trim().to_ascii_uppercase();
    if (3..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(code)
    } else {
        Err(Error::Usage(
            "--ods: an ODS code is 3 to 10 letters and digits, e.g. RX1 or A81001".into(),
        ))
    }
}

/// Whether `Type/id` exists (and is not deleted).
async fn exists(store: &dyn Store, resource_type: &str, id: &str) -> Result<bool> {
    Ok(store
        .read(resource_type, id)
        .await?
        .is_some_and(|v| !v.deleted))
}

/// Checks the flags that do not need the database: which links go with which role.
fn check_links(args: &CreateAccountArgs) -> Result<()> {
    let role = args.role.role();
    let staff = matches!(role, Role::Clinician | Role::Clerical | Role::Admin);
    if args.nhs_number.is_some() && role != Role::Patient {
        return Err(Error::Usage(
            "--nhs-number: only patient accounts are linked by NHS number".into(),
        ));
    }
    match (&args.related_person, role) {
        (None, Role::Proxy) => {
            return Err(Error::Usage(
                "--role proxy needs --related-person ID (the RelatedPerson the proxy is)".into(),
            ))
        }
        (Some(_), r) if r != Role::Proxy => {
            return Err(Error::Usage(
                "--related-person: only proxy accounts are a RelatedPerson".into(),
            ))
        }
        _ => {}
    }
    if (args.ods.is_some() || args.practitioner_role.is_some()) && !staff {
        return Err(Error::Usage(
            "--ods and --practitioner-role are for staff accounts (clinician, clerical, admin)"
                .into(),
        ));
    }
    if let Some(ods) = &args.ods {
        ods_code(ods)?;
    }
    Ok(())
}

/// A created account: what the command prints.
pub struct CreatedAccount {
    pub account_id: String,
    pub username: String,
    pub totp_secret: Option<String>,
    pub otpauth_uri: Option<String>,
}

/// Creates the account the arguments describe with `password`.
pub async fn create_account_in(
    store: &dyn Store,
    args: &CreateAccountArgs,
    password: &str,
) -> Result<CreatedAccount> {
    check_links(args)?;
    let mut new = NewAccount {
        username: args.username.clone(),
        role: Some(args.role.role()),
        ..NewAccount::default()
    };
    if let Some(n) = &args.nhs_number {
        let nhs = NhsNumber::parse(n).map_err(|e| Error::Usage(format!("--nhs-number: {e}")))?;
        let patient = provision::patient_by_nhs_number(store, &nhs)
            .await
            .map_err(|e| Error::Server(e.to_string()))?
            .ok_or_else(|| Error::Usage("--nhs-number: no patient with that NHS number".into()))?;
        new.patient_id = Some(patient.id);
        new.nhs_number = Some(nhs.digits());
        new.identity_level = Some(IdentityLevel::P9);
    }
    if let Some(id) = &args.related_person {
        if !exists(store, "RelatedPerson", id).await? {
            return Err(Error::Usage(
                "--related-person: no RelatedPerson with that id".into(),
            ));
        }
        new.related_person_id = Some(id.clone());
    }
    if let Some(id) = &args.practitioner_role {
        if !exists(store, "PractitionerRole", id).await? {
            return Err(Error::Usage(
                "--practitioner-role: no PractitionerRole with that id".into(),
            ));
        }
        new.practitioner_role_id = Some(id.clone());
    }
    new.ods_code = args.ods.as_deref().map(ods_code).transpose()?;
    let secret = args.with_totp.then(identity::totp::Secret::generate);
    new.totp_secret = secret.as_ref().map(|s| s.to_base32());
    let created =
        provision::create_account(store, &PasswordPolicy::portico(), new, password, Utc::now())
            .await
            .map_err(|e| Error::Server(e.to_string()))?
            .map_err(|refusal| {
                let flag = match refusal {
                    provision::Refusal::Password(_) => "--password-stdin",
                    provision::Refusal::PatientHasAccount => "--nhs-number",
                    _ => "--username",
                };
                Error::Usage(format!("{flag}: {}", refusal.message()))
            })?;
    Ok(CreatedAccount {
        otpauth_uri: secret.as_ref().map(|s| s.otpauth_uri(&created.username)),
        totp_secret: secret.map(|s| s.to_base32()),
        account_id: created.account_id,
        username: created.username,
    })
}

pub async fn create_account(config: Arc<Config>, args: CreateAccountArgs) -> Result<()> {
    // Check what needs no database (or password) first.
    check_links(&args)?;
    if provision::normalise_username(&args.username).is_none() {
        return Err(Error::Usage(format!(
            "--username: {}",
            provision::Refusal::Username.message()
        )));
    }
    let password = read_password(std::io::stdin().lock())?;
    let store = open_store(&config, NEEDS_DATABASE).await?;
    let created = create_account_in(store.as_ref(), &args, &password).await?;
    if args.json {
        let mut out = serde_json::json!({"account_id": created.account_id});
        if let Some(secret) = &created.totp_secret {
            out["totp_secret"] = serde_json::Value::String(secret.clone());
        }
        println!("{out}");
    } else {
        println!(
            "Created {} account {:?}",
            args.role.role().as_str(),
            created.username
        );
        println!("account_id:  {}", created.account_id);
        if let (Some(secret), Some(uri)) = (&created.totp_secret, &created.otpauth_uri) {
            println!("totp_secret: {secret}");
            println!("otpauth:     {uri}");
            println!("Add the secret to an authenticator app; it is shown only now.");
        } else {
            println!("The person sets up an authenticator app at their first sign-in.");
        }
    }
    Ok(())
}

/// A new invitation: the code (shown once) and when it expires.
pub struct NewInvitation {
    pub code: String,
    pub expires: chrono::DateTime<Utc>,
}

/// Stores an invitation for `patient_id` (which must exist) valid for `days`.
pub async fn invite_in(store: &dyn Store, patient_id: &str, days: u32) -> Result<NewInvitation> {
    if !exists(store, "Patient", patient_id).await? {
        return Err(Error::Usage("--patient: no Patient with that id".into()));
    }
    let now = Utc::now();
    let expires = now + TimeDelta::days(i64::from(days));
    let (code, code_hash) = identity::invitation::generate();
    store
        .accounts()
        .create_invitation(&Invitation {
            code_hash,
            patient_id: patient_id.to_string(),
            created_at: now,
            expires_at: expires,
            used_at: None,
            attempts: 0,
        })
        .await?;
    Ok(NewInvitation { code, expires })
}

pub async fn invite(config: Arc<Config>, args: InviteArgs) -> Result<()> {
    let store = open_store(&config, NEEDS_DATABASE).await?;
    let invitation = invite_in(store.as_ref(), &args.patient, args.days).await?;
    let expires = invitation
        .expires
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"code": invitation.code, "expires": expires})
        );
    } else {
        println!("Invitation code: {}", invitation.code);
        println!("Expires:         {expires}");
        println!("Send it to the patient's registered address; it is shown only now.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_first_line_without_its_ending() {
        let pw = read_password("correct horse battery\r\nsecond line\n".as_bytes());
        assert_eq!(pw.ok().as_deref(), Some("correct horse battery"));
        assert!(read_password("".as_bytes()).is_err());
        assert!(read_password("\n".as_bytes()).is_err());
    }

    #[test]
    fn ods_codes_are_upper_cased_and_checked() {
        assert_eq!(ods_code(" rx1 ").ok().as_deref(), Some("RX1"));
        assert!(ods_code("R").is_err());
        assert!(ods_code("RX1;DROP").is_err());
    }
}

/// One sign-in the demo made: who it is, and the credentials printed once.
#[derive(Debug, Clone)]
pub struct DemoSignIn {
    pub who: &'static str,
    pub username: String,
    pub password: String,
    pub totp_secret: String,
}

/// The first value of `system` among a resource's identifiers.
async fn identifier_of(
    store: &dyn Store,
    resource_type: &str,
    id: &str,
    system: &str,
) -> Result<Option<String>> {
    let Some(v) = store.read(resource_type, id).await? else {
        return Ok(None);
    };
    let value = v.parse()?;
    Ok(value["identifier"].as_array().and_then(|ids| {
        ids.iter()
            .find(|i| i["system"].as_str() == Some(system))
            .and_then(|i| i["value"].as_str())
            .map(str::to_string)
    }))
}

/// Sign-ins for the demo region: the first patient, a parent acting for a child (when the
/// region has one), and a clinician of the trust, each with a random password and an
/// authenticator secret (every account needs a second factor).
pub async fn demo_sign_ins(store: &dyn Store) -> Result<Vec<DemoSignIn>> {
    let mut out = Vec::new();
    let base = |role: RoleArg, username: &str| CreateAccountArgs {
        role,
        username: username.to_string(),
        password_stdin: true,
        nhs_number: None,
        related_person: None,
        ods: None,
        practitioner_role: None,
        with_totp: true,
        json: false,
    };
    let mut wanted: Vec<(&'static str, CreateAccountArgs)> = Vec::new();
    if let Some(nhs) = identifier_of(store, "Patient", "pat-0001", fhir::nhs_number::SYSTEM).await?
    {
        wanted.push((
            "patient (pat-0001)",
            CreateAccountArgs {
                nhs_number: Some(nhs),
                ..base(RoleArg::Patient, "demo-patient")
            },
        ));
    }
    let q = store::SearchQuery {
        count: 1,
        ..store::SearchQuery::all("RelatedPerson")
    };
    if let Some(rp) = store.search(&q).await?.matches.first() {
        wanted.push((
            "parent acting for a child",
            CreateAccountArgs {
                related_person: Some(rp.id.clone()),
                ..base(RoleArg::Proxy, "demo-parent")
            },
        ));
    }
    if let Some(ods) = identifier_of(
        store,
        "Organization",
        "trust-northmoor",
        store::access::ODS_SYSTEM,
    )
    .await?
    {
        wanted.push((
            "clinician at the trust",
            CreateAccountArgs {
                ods: Some(ods),
                ..base(RoleArg::Clinician, "demo-clinician")
            },
        ));
    }
    for (who, args) in wanted {
        let password = identity::token::new_token();
        let created = create_account_in(store, &args, &password).await?;
        out.push(DemoSignIn {
            who,
            username: created.username,
            password,
            totp_secret: created.totp_secret.unwrap_or_default(),
        });
    }
    Ok(out)
}
