//! Rows of the account tables as the types of [`super`], and those types as statement
//! arguments: the one place where instants become epoch milliseconds and back, and enums
//! their stored names. A row that does not decode is a database error naming the table and
//! column, never the value (which may be personal data).

use chrono::{DateTime, Utc};

use super::exec::{Arg, Cell};
use super::{
    Account, AccountStatus, IdentityLevel, Invitation, OAuthCode, OAuthGrant, RefreshToken, Role,
    Session, SmartApp, WebauthnCredential,
};
use crate::error::{Result, StoreError};

pub(super) fn text(s: &str) -> Arg {
    Arg::Text(Some(s.to_owned()))
}

pub(super) fn opt_text(s: Option<&str>) -> Arg {
    Arg::Text(s.map(str::to_owned))
}

pub(super) fn int(i: i64) -> Arg {
    Arg::Int(Some(i))
}

pub(super) fn time(t: DateTime<Utc>) -> Arg {
    Arg::Int(Some(t.timestamp_millis()))
}

pub(super) fn opt_time(t: Option<DateTime<Utc>>) -> Arg {
    Arg::Int(t.map(|t| t.timestamp_millis()))
}

/// A stored count as the API's `u32` (saturating: counts cannot be negative).
pub(super) fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// One row of `table`, read by column position.
pub(super) struct Row<'a> {
    table: &'static str,
    cells: &'a [Cell],
}

impl<'a> Row<'a> {
    pub(super) fn new(table: &'static str, cells: &'a [Cell]) -> Row<'a> {
        Row { table, cells }
    }

    fn bad(&self, column: usize, why: &str) -> StoreError {
        StoreError::Database(format!(
            "a stored {} row is unreadable: column {column} {why}",
            self.table
        ))
    }

    fn cell(&self, i: usize) -> Result<&'a Cell> {
        self.cells.get(i).ok_or_else(|| self.bad(i, "is missing"))
    }

    pub(super) fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            Cell::Int(_) => Err(self.bad(i, "is a number, not text")),
        }
    }

    pub(super) fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?.ok_or_else(|| self.bad(i, "is null"))
    }

    pub(super) fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(n) => Ok(Some(*n)),
            Cell::Text(_) => Err(self.bad(i, "is text, not a number")),
        }
    }

    pub(super) fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?.ok_or_else(|| self.bad(i, "is null"))
    }

    pub(super) fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>> {
        self.opt_int(i)?
            .map(|ms| {
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| self.bad(i, "is an instant out of range"))
            })
            .transpose()
    }

    pub(super) fn time(&self, i: usize) -> Result<DateTime<Utc>> {
        self.opt_time(i)?.ok_or_else(|| self.bad(i, "is null"))
    }

    fn flag(&self, i: usize) -> Result<bool> {
        Ok(self.int(i)? != 0)
    }

    fn parsed<T>(&self, i: usize, parse: fn(&str) -> Option<T>) -> Result<T> {
        parse(&self.text(i)?).ok_or_else(|| self.bad(i, "holds an unknown name"))
    }
}

pub(super) fn account_args(a: &Account) -> Vec<Arg> {
    vec![
        text(&a.account_id),
        text(&a.username.to_lowercase()),
        text(a.role.as_str()),
        opt_text(a.password_hash.as_deref()),
        opt_text(a.patient_id.as_deref()),
        opt_text(a.related_person_id.as_deref()),
        opt_text(a.practitioner_role_id.as_deref()),
        opt_text(a.ods_code.as_deref()),
        opt_text(a.nhs_number.as_deref()),
        text(a.identity_level.as_str()),
        opt_text(a.totp_secret.as_deref()),
        Arg::Int(a.totp_last_step),
        opt_text(a.oidc_subject.as_deref()),
        text(a.status.as_str()),
        int(i64::from(a.failed_sign_ins)),
        opt_time(a.locked_until),
        opt_time(a.credentials_changed_at),
        time(a.created_at),
        time(a.updated_at),
    ]
}

pub(super) fn account(cells: &[Cell]) -> Result<Account> {
    let r = Row::new("accounts", cells);
    Ok(Account {
        account_id: r.text(0)?,
        username: r.text(1)?,
        role: r.parsed(2, Role::parse)?,
        password_hash: r.opt_text(3)?,
        patient_id: r.opt_text(4)?,
        related_person_id: r.opt_text(5)?,
        practitioner_role_id: r.opt_text(6)?,
        ods_code: r.opt_text(7)?,
        nhs_number: r.opt_text(8)?,
        identity_level: r.parsed(9, IdentityLevel::parse)?,
        totp_secret: r.opt_text(10)?,
        totp_last_step: r.opt_int(11)?,
        oidc_subject: r.opt_text(12)?,
        status: r.parsed(13, AccountStatus::parse)?,
        failed_sign_ins: count(r.int(14)?),
        locked_until: r.opt_time(15)?,
        credentials_changed_at: r.opt_time(16)?,
        created_at: r.time(17)?,
        updated_at: r.time(18)?,
    })
}

pub(super) fn webauthn_args(c: &WebauthnCredential) -> Vec<Arg> {
    vec![
        text(&c.credential_id),
        text(&c.account_id),
        text(&c.name),
        text(&c.passkey),
        time(c.created_at),
        opt_time(c.last_used_at),
    ]
}

pub(super) fn webauthn(cells: &[Cell]) -> Result<WebauthnCredential> {
    let r = Row::new("webauthn_credentials", cells);
    Ok(WebauthnCredential {
        credential_id: r.text(0)?,
        account_id: r.text(1)?,
        name: r.text(2)?,
        passkey: r.text(3)?,
        created_at: r.time(4)?,
        last_used_at: r.opt_time(5)?,
    })
}

pub(super) fn session_args(s: &Session) -> Vec<Arg> {
    vec![
        text(&s.token_hash),
        text(&s.account_id),
        time(s.created_at),
        time(s.last_seen_at),
        time(s.idle_expires_at),
        time(s.absolute_expires_at),
        text(&s.csrf_secret),
        int(i64::from(s.second_factor_done)),
        opt_text(s.acting_for_patient.as_deref()),
        opt_time(s.ended_at),
    ]
}

pub(super) fn session(cells: &[Cell]) -> Result<Session> {
    let r = Row::new("sessions", cells);
    Ok(Session {
        token_hash: r.text(0)?,
        account_id: r.text(1)?,
        created_at: r.time(2)?,
        last_seen_at: r.time(3)?,
        idle_expires_at: r.time(4)?,
        absolute_expires_at: r.time(5)?,
        csrf_secret: r.text(6)?,
        second_factor_done: r.flag(7)?,
        acting_for_patient: r.opt_text(8)?,
        ended_at: r.opt_time(9)?,
    })
}

pub(super) fn invitation_args(i: &Invitation) -> Vec<Arg> {
    vec![
        text(&i.code_hash),
        text(&i.patient_id),
        time(i.created_at),
        time(i.expires_at),
        opt_time(i.used_at),
        int(i64::from(i.attempts)),
    ]
}

pub(super) fn invitation(cells: &[Cell]) -> Result<Invitation> {
    let r = Row::new("invitations", cells);
    Ok(Invitation {
        code_hash: r.text(0)?,
        patient_id: r.text(1)?,
        created_at: r.time(2)?,
        expires_at: r.time(3)?,
        used_at: r.opt_time(4)?,
        attempts: count(r.int(5)?),
    })
}

pub(super) fn smart_app_args(a: &SmartApp) -> Result<Vec<Arg>> {
    let uris = serde_json::to_string(&a.redirect_uris).map_err(|e| {
        StoreError::Database(format!("could not encode a SMART app's redirect URIs: {e}"))
    })?;
    Ok(vec![
        text(&a.client_id),
        text(&a.name),
        Arg::Text(Some(uris)),
        time(a.created_at),
    ])
}

pub(super) fn smart_app(cells: &[Cell]) -> Result<SmartApp> {
    let r = Row::new("smart_apps", cells);
    let redirect_uris = serde_json::from_str(&r.text(2)?)
        .map_err(|_| r.bad(2, "is not a JSON array of strings"))?;
    Ok(SmartApp {
        client_id: r.text(0)?,
        name: r.text(1)?,
        redirect_uris,
        created_at: r.time(3)?,
    })
}

pub(super) fn oauth_code_args(c: &OAuthCode) -> Vec<Arg> {
    vec![
        text(&c.code_hash),
        text(&c.client_id),
        text(&c.account_id),
        text(&c.redirect_uri),
        text(&c.scopes),
        text(&c.code_challenge),
        opt_text(c.patient_id.as_deref()),
        time(c.created_at),
        time(c.expires_at),
        opt_time(c.used_at),
    ]
}

pub(super) fn oauth_code(cells: &[Cell]) -> Result<OAuthCode> {
    let r = Row::new("oauth_codes", cells);
    Ok(OAuthCode {
        code_hash: r.text(0)?,
        client_id: r.text(1)?,
        account_id: r.text(2)?,
        redirect_uri: r.text(3)?,
        scopes: r.text(4)?,
        code_challenge: r.text(5)?,
        patient_id: r.opt_text(6)?,
        created_at: r.time(7)?,
        expires_at: r.time(8)?,
        used_at: r.opt_time(9)?,
    })
}

pub(super) fn grant_args(g: &OAuthGrant) -> Vec<Arg> {
    vec![
        text(&g.grant_id),
        text(&g.account_id),
        text(&g.client_id),
        text(&g.scopes),
        opt_text(g.patient_id.as_deref()),
        time(g.created_at),
        opt_time(g.revoked_at),
    ]
}

pub(super) fn grant(cells: &[Cell]) -> Result<OAuthGrant> {
    let r = Row::new("oauth_grants", cells);
    Ok(OAuthGrant {
        grant_id: r.text(0)?,
        account_id: r.text(1)?,
        client_id: r.text(2)?,
        scopes: r.text(3)?,
        patient_id: r.opt_text(4)?,
        created_at: r.time(5)?,
        revoked_at: r.opt_time(6)?,
    })
}

pub(super) fn refresh_args(t: &RefreshToken) -> Vec<Arg> {
    vec![
        text(&t.token_hash),
        text(&t.grant_id),
        time(t.created_at),
        time(t.expires_at),
        opt_time(t.used_at),
    ]
}

pub(super) fn refresh(cells: &[Cell]) -> Result<RefreshToken> {
    let r = Row::new("refresh_tokens", cells);
    Ok(RefreshToken {
        token_hash: r.text(0)?,
        grant_id: r.text(1)?,
        created_at: r.time(2)?,
        expires_at: r.time(3)?,
        used_at: r.opt_time(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }

    /// What a backend hands back for the arguments it was given.
    fn cells(args: &[Arg]) -> Vec<Cell> {
        args.iter()
            .map(|a| match a {
                Arg::Text(Some(s)) => Cell::Text(s.clone()),
                Arg::Int(Some(i)) => Cell::Int(*i),
                Arg::Text(None) | Arg::Int(None) => Cell::Null,
            })
            .collect()
    }

    #[test]
    fn an_account_survives_its_arguments_and_the_username_is_lower_cased() {
        let mut a = Account::new("Ann.Smith", Role::Proxy, at(1_700_000_000_123));
        a.username = "Ann.Smith".into();
        a.password_hash = Some("$argon2id$v=19$x".into());
        a.totp_last_step = Some(56_666_666);
        a.locked_until = Some(at(1_700_000_900_000));
        a.failed_sign_ins = 3;
        let back = account(&cells(&account_args(&a))).unwrap();
        assert_eq!(back.username, "ann.smith");
        a.username = "ann.smith".into();
        assert_eq!(back, a);
    }

    #[test]
    fn unknown_names_and_wrong_types_are_errors_not_panics() {
        let a = Account::new("x", Role::Admin, at(0));
        let mut c = cells(&account_args(&a));
        c[2] = Cell::Text("superuser".into());
        assert!(matches!(account(&c), Err(StoreError::Database(m)) if m.contains("column 2")));
        let mut c = cells(&account_args(&a));
        c[17] = Cell::Text("yesterday".into());
        assert!(account(&c).is_err());
        c.truncate(5);
        assert!(account(&c).is_err());
        let mut c = cells(&account_args(&a));
        c[17] = Cell::Int(i64::MAX);
        assert!(account(&c).is_err(), "an instant out of range");
    }

    #[test]
    fn counts_saturate() {
        assert_eq!(count(-1), 0);
        assert_eq!(count(7), 7);
        assert_eq!(count(i64::MAX), u32::MAX);
    }

    #[test]
    fn redirect_uris_that_are_not_a_json_list_are_an_error() {
        let c = vec![
            Cell::Text("app".into()),
            Cell::Text("App".into()),
            Cell::Text("https://a.example/cb".into()),
            Cell::Int(0),
        ];
        assert!(smart_app(&c).is_err());
    }
}
