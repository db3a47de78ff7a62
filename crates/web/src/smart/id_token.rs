//! The OpenID Connect id_token of a SMART app's token response: who the person is, signed with
//! the server's ES256 key ([`super::keys`]) so that the app can check it against
//! `/.well-known/jwks.json`.
//!
//! Claims: `iss` (this server), `sub` (the account id), `aud` (the app), `iat`, `exp`, `nonce`
//! when the authorisation request had one, and with the `fhirUser` scope the FHIR resource the
//! person is: their Patient, a proxy's RelatedPerson, staff's PractitionerRole (absent when the
//! account is linked to none).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use store::accounts::{Account, OAuthGrant, Role};

use super::grantable::FHIR_USER;
use crate::{AppState, WebError};

/// The FHIR resource (absolute URL) `account` signs in as, if it is linked to one.
pub fn fhir_user(base: &str, account: &Account) -> Option<String> {
    let (resource_type, id) = match account.role {
        Role::Patient => ("Patient", account.patient_id.as_deref()?),
        Role::Proxy => ("RelatedPerson", account.related_person_id.as_deref()?),
        Role::Clinician | Role::Clerical | Role::Admin => {
            ("PractitionerRole", account.practitioner_role_id.as_deref()?)
        }
    };
    Some(format!("{base}/{resource_type}/{id}"))
}

/// Who issues id_tokens, and for how long they hold.
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    /// `iss`: the server's public URL.
    pub issuer: &'a str,
    /// The FHIR base URL (`fhirUser` is under it).
    pub base: &'a str,
    pub ttl_secs: u64,
}

/// The claims of the id_token for `account` under `grant`.
pub fn claims(
    by: Issuer<'_>,
    grant: &OAuthGrant,
    account: &Account,
    scope: &str,
    nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let iat = now.timestamp();
    let mut claims = json!({
        "iss": by.issuer,
        "sub": account.account_id,
        "aud": grant.client_id,
        "iat": iat,
        "exp": iat.saturating_add(i64::try_from(by.ttl_secs).unwrap_or(i64::MAX)),
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = Value::String(nonce.to_string());
    }
    if scope.split_whitespace().any(|s| s == FHIR_USER) {
        if let Some(user) = fhir_user(by.base, account) {
            claims["fhirUser"] = Value::String(user);
        }
    }
    claims
}

/// The signed id_token.
pub fn id_token(
    state: &AppState,
    grant: &OAuthGrant,
    account: &Account,
    scope: &str,
    nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, WebError> {
    let by = Issuer {
        issuer: &state.smart.issuer,
        base: &state.base,
        ttl_secs: state.config.token_ttl_secs,
    };
    let claims = claims(by, grant, account, scope, nonce, now);
    state.smart.id_token_key.sign(&claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(role: Role) -> Account {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let mut a = Account::new("someone", role, now);
        a.patient_id = Some("pat-1".into());
        a.related_person_id = Some("rp-1".into());
        a.practitioner_role_id = Some("pr-1".into());
        a
    }

    #[test]
    fn fhir_user_is_the_resource_the_role_signs_in_as() {
        let base = "https://p.example/fhir";
        assert_eq!(
            fhir_user(base, &account(Role::Patient)).as_deref(),
            Some("https://p.example/fhir/Patient/pat-1")
        );
        assert_eq!(
            fhir_user(base, &account(Role::Proxy)).as_deref(),
            Some("https://p.example/fhir/RelatedPerson/rp-1")
        );
        assert_eq!(
            fhir_user(base, &account(Role::Clinician)).as_deref(),
            Some("https://p.example/fhir/PractitionerRole/pr-1")
        );
        let mut admin = account(Role::Admin);
        admin.practitioner_role_id = None;
        assert_eq!(fhir_user(base, &admin), None);
    }

    #[test]
    fn claims_carry_the_nonce_and_fhir_user_only_when_asked() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let a = account(Role::Patient);
        let grant = OAuthGrant {
            grant_id: "g".into(),
            account_id: a.account_id.clone(),
            client_id: "app-1".into(),
            scopes: "openid fhirUser".into(),
            patient_id: Some("pat-1".into()),
            created_at: now,
            revoked_at: None,
        };
        let by = Issuer {
            issuer: "https://p.example",
            base: "https://p.example/fhir",
            ttl_secs: 300,
        };
        let c = claims(by, &grant, &a, "openid fhirUser", Some("n1"), now);
        assert_eq!(c["iss"], "https://p.example");
        assert_eq!(c["aud"], "app-1");
        assert_eq!(c["sub"], a.account_id.as_str());
        assert_eq!(c["nonce"], "n1");
        assert_eq!(c["exp"], 1_700_000_300);
        assert_eq!(c["fhirUser"], "https://p.example/fhir/Patient/pat-1");
        let plain = claims(by, &grant, &a, "openid", None, now);
        assert!(plain.get("nonce").is_none() && plain.get("fhirUser").is_none());
    }
}
