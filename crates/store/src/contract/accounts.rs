//! The contract of [`crate::accounts`]: round trips to the millisecond, unique keys, and every
//! "at most once" rule under racing requests (on PostgreSQL the racers hold separate
//! connections, as separate server instances would).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::accounts::{
    Account, AccountStatus, IdentityLevel, Invitation, OAuthCode, OAuthGrant, RefreshToken, Role,
    Session, SmartApp, WebauthnCredential,
};
use crate::{Store, StoreError};

/// An instant in June 2025, to the millisecond.
const T0: i64 = 1_750_000_000_123;

/// `T0` plus `ms` milliseconds.
fn at(ms: i64) -> DateTime<Utc> {
    match DateTime::from_timestamp_millis(T0 + ms) {
        Some(t) => t,
        None => panic!("the suite's instant T0 + {ms} ms is out of range"),
    }
}

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

fn ok<T>(r: Result<T, StoreError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// The conflict message of a refused write, or a panic naming what was expected.
fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) -> String {
    match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("{what} should be a conflict, got {other:?}"),
    }
}

/// Runs `n` copies of `f` at once, each on its own task; their answers.
async fn race<T, F, Fut>(store: &Arc<dyn Store>, n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(store.clone(), i))).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        match t.await {
            Ok(v) => out.push(v),
            Err(e) => panic!("a racing task failed: {e}"),
        }
    }
    out
}

async fn account(store: &Arc<dyn Store>, username: &str, role: Role) -> Account {
    let a = Account::new(username, role, at(0));
    ok(store.accounts().create_account(&a).await, "create_account");
    a
}

async fn stored(store: &Arc<dyn Store>, account_id: &str) -> Account {
    match ok(
        store.accounts().account_by_id(account_id).await,
        "account_by_id",
    ) {
        Some(a) => a,
        None => panic!("account {account_id} should exist"),
    }
}

fn full_account() -> Account {
    Account {
        account_id: "0b8f6a52-0c4e-4a8e-9a49-6a3e1f2b7c10".into(),
        username: "ann.smith@example.org".into(),
        role: Role::Patient,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into()),
        patient_id: Some("pat-1".into()),
        related_person_id: Some("rp-1".into()),
        practitioner_role_id: Some("pr-1".into()),
        ods_code: Some("RX1".into()),
        nhs_number: Some(super::nhs_number(1)),
        identity_level: IdentityLevel::P9,
        totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
        totp_last_step: Some(58_333_337),
        oidc_subject: Some("nhs-login|4a8e".into()),
        status: AccountStatus::Active,
        failed_sign_ins: 2,
        locked_until: Some(at(15 * MINUTE)),
        credentials_changed_at: Some(at(-DAY)),
        created_at: at(-7 * DAY),
        updated_at: at(1),
    }
}

pub async fn accounts_round_trip_every_field_to_the_millisecond(store: Arc<dyn Store>) {
    let db = store.accounts();
    let full = full_account();
    ok(db.create_account(&full).await, "create_account (full)");
    assert_eq!(
        ok(db.account_by_id(&full.account_id).await, "by id"),
        Some(full.clone()),
        "every field comes back as stored"
    );
    let found = |a: Option<Account>| a.map(|a| a.account_id);
    assert_eq!(
        found(ok(
            db.account_by_username("Ann.Smith@EXAMPLE.org").await,
            "by username"
        )),
        Some(full.account_id.clone()),
        "a username is found whatever its case"
    );
    assert_eq!(
        found(ok(
            db.account_by_oidc_subject("nhs-login|4a8e").await,
            "by subject"
        )),
        Some(full.account_id.clone())
    );

    let mut bare = Account::new("Bare.Account", Role::Clinician, at(0));
    // Finer than a millisecond: stored to the millisecond.
    bare.created_at = at(0) + TimeDelta::microseconds(456);
    ok(db.create_account(&bare).await, "create_account (bare)");
    let back = stored(&store, &bare.account_id).await;
    assert_eq!(
        back.username, "bare.account",
        "usernames are stored lower-cased"
    );
    assert_eq!(
        back.created_at,
        at(0),
        "instants are kept to the millisecond"
    );
    bare.created_at = at(0);
    assert_eq!(back, bare, "an account with no optional fields round-trips");

    assert_eq!(ok(db.account_by_id("no-such-id").await, "by id"), None);
    assert_eq!(
        ok(db.account_by_username("nobody").await, "by username"),
        None
    );
    assert_eq!(
        ok(db.account_by_oidc_subject("none").await, "by subject"),
        None
    );
    assert_eq!(
        ok(db.account_by_nhs_number("9990000000").await, "by nhs"),
        None
    );

    let nul = Account::new("nul\0name", Role::Admin, at(0));
    assert!(
        matches!(db.create_account(&nul).await, Err(StoreError::Invalid(_))),
        "text with NUL is refused alike on every backend"
    );
}

pub async fn account_usernames_are_unique_ignoring_case(store: Arc<dyn Store>) {
    let db = store.accounts();
    account(&store, "Ann.Smith", Role::Patient).await;
    for other in ["ann.smith", "ANN.SMITH"] {
        let dup = Account::new(other, Role::Clerical, at(0));
        let m = conflict(
            db.create_account(&dup).await,
            "a username taken in another case",
        );
        assert!(
            m.contains("username"),
            "the conflict names the username: {m}"
        );
        assert!(
            !m.contains("ann"),
            "the conflict does not show the value: {m}"
        );
    }
    let results = race(&store, 8, |s, i| async move {
        let name = if i % 2 == 0 { "Racer" } else { "rACER" };
        let a = Account::new(name, Role::Proxy, at(0));
        s.accounts().create_account(&a).await
    })
    .await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        created, 1,
        "of racing creates of one username, exactly one wins"
    );
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))),
        "the losers are conflicts: {results:?}"
    );
    let first = full_account();
    ok(db.create_account(&first).await, "create_account");
    let same_id = Account::new("someone.else", Role::Patient, at(0));
    let same_id = Account {
        account_id: first.account_id.clone(),
        ..same_id
    };
    let m = conflict(db.create_account(&same_id).await, "a reused account id");
    assert_eq!(m, "an account with this id already exists");
}

pub async fn patient_nhs_numbers_and_external_subjects_are_unique(store: Arc<dyn Store>) {
    let db = store.accounts();
    let nhs = super::nhs_number(7);
    let mut patient = Account::new("patient.one", Role::Patient, at(0));
    patient.nhs_number = Some(nhs.clone());
    ok(db.create_account(&patient).await, "create patient");
    let mut twin = Account::new("patient.two", Role::Patient, at(0));
    twin.nhs_number = Some(nhs.clone());
    let m = conflict(db.create_account(&twin).await, "a second patient account");
    assert!(m.contains("NHS number"), "{m}");
    let mut proxy = Account::new("mum", Role::Proxy, at(0));
    proxy.nhs_number = Some(nhs.clone());
    ok(
        db.create_account(&proxy).await,
        "a proxy may hold the NHS number of a patient account",
    );
    let by_nhs = ok(db.account_by_nhs_number(&nhs).await, "by nhs");
    assert_eq!(
        by_nhs.map(|a| a.account_id),
        Some(patient.account_id.clone())
    );
    let mut proxy_only = Account::new("dad", Role::Proxy, at(0));
    proxy_only.nhs_number = Some(super::nhs_number(8));
    ok(db.create_account(&proxy_only).await, "create proxy");
    assert_eq!(
        ok(
            db.account_by_nhs_number(&super::nhs_number(8)).await,
            "by nhs"
        ),
        None,
        "only patient accounts are found by NHS number"
    );

    let linked = ok(
        db.link_oidc_subject(&patient.account_id, "sub-1", IdentityLevel::P9, at(5))
            .await,
        "link",
    );
    assert!(linked);
    let a = ok(db.account_by_oidc_subject("sub-1").await, "by subject");
    assert_eq!(
        a.map(|a| (a.account_id, a.identity_level, a.updated_at)),
        Some((patient.account_id.clone(), IdentityLevel::P9, at(5)))
    );
    let m = conflict(
        db.link_oidc_subject(&proxy.account_id, "sub-1", IdentityLevel::P5, at(6))
            .await,
        "a subject linked to another account",
    );
    assert!(m.contains("external sign-in"), "{m}");
    assert!(!ok(
        db.link_oidc_subject("no-such-id", "sub-2", IdentityLevel::P5, at(6))
            .await,
        "link unknown"
    ));
}

pub async fn totp_steps_are_accepted_once_and_only_forward(store: Arc<dyn Store>) {
    let db = store.accounts();
    let a = account(&store, "totp.user", Role::Clinician).await;
    let id = a.account_id.as_str();
    assert!(ok(
        db.set_totp(id, Some("JBSWY3DPEHPK3PXP"), Some(100), at(1))
            .await,
        "set_totp"
    ));
    let s = stored(&store, id).await;
    assert_eq!(
        (s.totp_secret.as_deref(), s.totp_last_step),
        (Some("JBSWY3DPEHPK3PXP"), Some(100))
    );
    for (step, accepted) in [
        (100, false),
        (101, true),
        (101, false),
        (99, false),
        (105, true),
    ] {
        assert_eq!(
            ok(db.record_totp_step(id, step).await, "record_totp_step"),
            accepted,
            "step {step} after the steps before it"
        );
    }
    let account_id = a.account_id.clone();
    let results = race(&store, 12, move |s, _| {
        let id = account_id.clone();
        async move { s.accounts().record_totp_step(&id, 200).await }
    })
    .await;
    let accepted = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(
        accepted, 1,
        "one code used by racing requests is accepted once: {results:?}"
    );
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");

    assert!(ok(
        db.set_totp(id, None, None, at(2)).await,
        "turn TOTP off"
    ));
    let s = stored(&store, id).await;
    assert_eq!((s.totp_secret, s.totp_last_step), (None, None));
    assert!(ok(
        db.record_totp_step(id, 1).await,
        "first step after re-enrolment"
    ));
    assert!(!ok(db.record_totp_step("no-such-id", 1).await, "unknown"));
    assert!(!ok(
        db.set_totp("no-such-id", None, None, at(2)).await,
        "unknown"
    ));
}

pub async fn password_changes_retire_credentials_and_rehashes_do_not(store: Arc<dyn Store>) {
    let db = store.accounts();
    let a = account(&store, "pw.user", Role::Patient).await;
    let id = a.account_id.as_str();
    assert!(ok(
        db.update_password(id, "$argon2id$new", at(10)).await,
        "update"
    ));
    let s = stored(&store, id).await;
    assert_eq!(s.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(s.credentials_changed_at, Some(at(10)));
    assert_eq!(s.updated_at, at(10));
    assert!(ok(
        db.rehash_password(id, "$argon2id$stronger", at(20)).await,
        "rehash"
    ));
    let s = stored(&store, id).await;
    assert_eq!(s.password_hash.as_deref(), Some("$argon2id$stronger"));
    assert_eq!(
        s.credentials_changed_at,
        Some(at(10)),
        "a rehash of the same password retires nothing"
    );
    assert_eq!(s.updated_at, at(20));
    assert!(!ok(
        db.update_password("no-such-id", "h", at(1)).await,
        "unknown"
    ));
    assert!(!ok(
        db.rehash_password("no-such-id", "h", at(1)).await,
        "unknown"
    ));
}

pub async fn sign_in_failures_count_every_racing_failure_and_a_reset_clears_the_lock(
    store: Arc<dyn Store>,
) {
    let db = store.accounts();
    let a = account(&store, "unlucky", Role::Patient).await;
    let account_id = a.account_id.clone();
    let counts = race(&store, 10, move |s, i| {
        let id = account_id.clone();
        async move { s.accounts().record_sign_in_failure(&id, at(i as i64)).await }
    })
    .await;
    let counts: BTreeSet<u32> = counts
        .into_iter()
        .map(|r| match r {
            Ok(Some(n)) => n,
            other => panic!("a failure should be counted, got {other:?}"),
        })
        .collect();
    assert_eq!(
        counts,
        (1..=10).collect::<BTreeSet<u32>>(),
        "each racing failure gets its own count"
    );
    let id = a.account_id.as_str();
    assert_eq!(stored(&store, id).await.failed_sign_ins, 10);
    assert!(ok(
        db.lock_account_until(id, Some(at(15 * MINUTE)), at(20))
            .await,
        "lock"
    ));
    let s = stored(&store, id).await;
    assert_eq!(s.locked_until, Some(at(15 * MINUTE)));
    assert!(s.is_locked(at(15 * MINUTE - 1)) && !s.is_locked(at(15 * MINUTE)));
    assert!(ok(db.reset_sign_in_failures(id, at(30)).await, "reset"));
    let s = stored(&store, id).await;
    assert_eq!((s.failed_sign_ins, s.locked_until), (0, None));
    assert!(ok(
        db.set_account_status(id, AccountStatus::Disabled, at(40))
            .await,
        "disable"
    ));
    assert_eq!(stored(&store, id).await.status, AccountStatus::Disabled);
    assert_eq!(
        ok(
            db.record_sign_in_failure("no-such-id", at(1)).await,
            "unknown"
        ),
        None
    );
    assert!(!ok(
        db.reset_sign_in_failures("no-such-id", at(1)).await,
        "unknown"
    ));
    assert!(!ok(
        db.lock_account_until("no-such-id", None, at(1)).await,
        "unknown"
    ));
    assert!(!ok(
        db.set_account_status("no-such-id", AccountStatus::Active, at(1))
            .await,
        "unknown"
    ));
}

pub async fn recovery_codes_are_replaced_whole_and_each_is_used_once(store: Arc<dyn Store>) {
    let db = store.accounts();
    let a = account(&store, "codes.one", Role::Patient).await;
    let b = account(&store, "codes.two", Role::Patient).await;
    let (ida, idb) = (a.account_id.as_str(), b.account_id.as_str());
    let hashes = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ok(
        db.replace_recovery_codes(ida, &hashes(&["a", "b", "c"]))
            .await,
        "replace",
    );
    ok(
        db.replace_recovery_codes(idb, &hashes(&["a"])).await,
        "replace",
    );
    assert_eq!(ok(db.recovery_codes_left(ida).await, "left"), 3);
    assert!(ok(db.use_recovery_code(ida, "b", at(1)).await, "use b"));
    assert!(!ok(
        db.use_recovery_code(ida, "b", at(2)).await,
        "use b again"
    ));
    assert!(!ok(
        db.use_recovery_code(ida, "x", at(2)).await,
        "use unknown"
    ));
    assert_eq!(ok(db.recovery_codes_left(ida).await, "left"), 2);
    ok(
        db.replace_recovery_codes(ida, &hashes(&["d", "e"])).await,
        "replace",
    );
    assert_eq!(ok(db.recovery_codes_left(ida).await, "left"), 2);
    assert!(
        !ok(db.use_recovery_code(ida, "a", at(3)).await, "use replaced"),
        "replaced codes are gone"
    );
    assert_eq!(
        ok(db.recovery_codes_left(idb).await, "left"),
        1,
        "another account's codes are untouched"
    );
    assert!(
        matches!(
            db.replace_recovery_codes(ida, &hashes(&["f", "f"])).await,
            Err(StoreError::Conflict(_))
        ),
        "a code given twice is refused"
    );
    assert_eq!(
        ok(db.recovery_codes_left(ida).await, "left"),
        2,
        "a refused replacement changes nothing"
    );
    let account_id = a.account_id.clone();
    let results = race(&store, 8, move |s, i| {
        let id = account_id.clone();
        async move {
            s.accounts()
                .use_recovery_code(&id, "d", at(10 + i as i64))
                .await
        }
    })
    .await;
    assert_eq!(
        results.iter().filter(|r| matches!(r, Ok(true))).count(),
        1,
        "one code used by racing requests works once: {results:?}"
    );
    assert_eq!(ok(db.recovery_codes_left(ida).await, "left"), 1);
}

fn passkey(id: &str, account_id: &str, created: i64) -> WebauthnCredential {
    WebauthnCredential {
        credential_id: id.into(),
        account_id: account_id.into(),
        name: format!("key {id}"),
        passkey: format!("{{\"cred\":\"{id}\",\"counter\":0}}"),
        created_at: at(created),
        last_used_at: None,
    }
}

pub async fn passkeys_are_added_listed_updated_and_removed_per_account(store: Arc<dyn Store>) {
    let db = store.accounts();
    let a = account(&store, "keys.one", Role::Patient).await;
    let b = account(&store, "keys.two", Role::Patient).await;
    let (ida, idb) = (a.account_id.as_str(), b.account_id.as_str());
    let (c1, c2, c3) = (
        passkey("Y3JlZDE", ida, 2),
        passkey("Y3JlZDI", ida, 1),
        passkey("Y3JlZDM", idb, 1),
    );
    for c in [&c1, &c2, &c3] {
        ok(db.add_webauthn_credential(c).await, "add passkey");
    }
    conflict(
        db.add_webauthn_credential(&c1).await,
        "a credential id twice",
    );
    assert_eq!(
        ok(db.webauthn_credentials(ida).await, "list"),
        vec![c2.clone(), c1.clone()],
        "an account's passkeys, oldest first"
    );
    assert_eq!(
        ok(db.webauthn_credential("Y3JlZDM").await, "get"),
        Some(c3.clone())
    );
    assert!(ok(
        db.update_webauthn_credential("Y3JlZDE", "{\"counter\":7}", at(50))
            .await,
        "update"
    ));
    let updated = ok(db.webauthn_credential("Y3JlZDE").await, "get");
    assert_eq!(
        updated.map(|c| (c.passkey, c.last_used_at)),
        Some(("{\"counter\":7}".to_string(), Some(at(50))))
    );
    assert!(
        !ok(
            db.remove_webauthn_credential(idb, "Y3JlZDE").await,
            "remove"
        ),
        "another account's passkey is not removed"
    );
    assert!(ok(
        db.remove_webauthn_credential(ida, "Y3JlZDE").await,
        "remove"
    ));
    assert_eq!(ok(db.webauthn_credentials(ida).await, "list"), vec![c2]);
    assert!(!ok(
        db.update_webauthn_credential("gone", "{}", at(1)).await,
        "unknown"
    ));
    assert_eq!(ok(db.webauthn_credential("gone").await, "get"), None);
}

fn session(hash: &str, account_id: &str) -> Session {
    Session {
        token_hash: hash.into(),
        account_id: account_id.into(),
        created_at: at(0),
        last_seen_at: at(0),
        idle_expires_at: at(30 * MINUTE),
        absolute_expires_at: at(12 * 60 * MINUTE),
        csrf_secret: format!("csrf-{hash}"),
        second_factor_done: false,
        acting_for_patient: None,
        ended_at: None,
    }
}

pub async fn sessions_are_touched_stepped_up_switched_and_ended(store: Arc<dyn Store>) {
    let db = store.accounts();
    let a = account(&store, "browser", Role::Proxy).await;
    let s = session("s1", &a.account_id);
    ok(db.create_session(&s).await, "create_session");
    conflict(db.create_session(&s).await, "a session token twice");
    assert_eq!(ok(db.session("s1").await, "get"), Some(s.clone()));
    assert!(s.is_live(at(1)) && !s.is_live(at(30 * MINUTE)));

    assert!(ok(
        db.touch_session("s1", at(10 * MINUTE), at(40 * MINUTE))
            .await,
        "touch"
    ));
    let got = ok(db.session("s1").await, "get").map(|s| (s.last_seen_at, s.idle_expires_at));
    assert_eq!(got, Some((at(10 * MINUTE), at(40 * MINUTE))));
    assert!(ok(
        db.touch_session("s1", at(20 * MINUTE), at(13 * 60 * MINUTE))
            .await,
        "touch"
    ));
    let got = ok(db.session("s1").await, "get").map(|s| s.idle_expires_at);
    assert_eq!(
        got,
        Some(at(12 * 60 * MINUTE)),
        "the idle expiry never passes the absolute one"
    );

    assert!(ok(db.complete_second_factor("s1").await, "second factor"));
    assert!(ok(
        db.set_acting_for("s1", Some("child-1")).await,
        "acting for"
    ));
    let got =
        ok(db.session("s1").await, "get").map(|s| (s.second_factor_done, s.acting_for_patient));
    assert_eq!(got, Some((true, Some("child-1".to_string()))));
    assert!(ok(db.set_acting_for("s1", None).await, "acting for self"));
    let got = ok(db.session("s1").await, "get").and_then(|s| s.acting_for_patient);
    assert_eq!(got, None);

    let idle = session("s2", &a.account_id);
    ok(db.create_session(&idle).await, "create_session");
    assert!(
        !ok(
            db.touch_session("s2", at(30 * MINUTE), at(60 * MINUTE))
                .await,
            "touch"
        ),
        "an idle-expired session cannot be revived"
    );

    assert!(ok(db.end_session("s1", at(25 * MINUTE)).await, "end"));
    assert!(!ok(
        db.end_session("s1", at(26 * MINUTE)).await,
        "end again"
    ));
    let ended = ok(db.session("s1").await, "get");
    assert_eq!(
        ended.as_ref().and_then(|s| s.ended_at),
        Some(at(25 * MINUTE))
    );
    assert!(ended.is_some_and(|s| !s.is_live(at(25 * MINUTE))));
    assert!(!ok(
        db.touch_session("s1", at(26 * MINUTE), at(50 * MINUTE))
            .await,
        "touch"
    ));
    assert!(!ok(db.complete_second_factor("s1").await, "second factor"));
    assert!(!ok(db.set_acting_for("s1", Some("x")).await, "acting for"));
    assert_eq!(ok(db.session("none").await, "get"), None);
}

pub async fn ending_all_sessions_ends_the_accounts_open_ones_but_the_kept_one(
    store: Arc<dyn Store>,
) {
    let db = store.accounts();
    let a = account(&store, "many.devices", Role::Patient).await;
    let b = account(&store, "other.person", Role::Patient).await;
    for (hash, owner) in [("a1", &a), ("a2", &a), ("a3", &a), ("a4", &a), ("b1", &b)] {
        ok(
            db.create_session(&session(hash, &owner.account_id)).await,
            "create_session",
        );
    }
    assert!(ok(db.end_session("a1", at(1)).await, "end"));
    assert_eq!(
        ok(
            db.end_all_sessions(&a.account_id, Some("a4"), at(2)).await,
            "end all"
        ),
        2,
        "the open sessions but the kept one"
    );
    let ended_at = |s: Option<Session>| s.and_then(|s| s.ended_at);
    assert_eq!(ended_at(ok(db.session("a1").await, "get")), Some(at(1)));
    assert_eq!(ended_at(ok(db.session("a2").await, "get")), Some(at(2)));
    assert_eq!(ended_at(ok(db.session("a4").await, "get")), None);
    assert_eq!(
        ok(
            db.end_all_sessions(&a.account_id, None, at(3)).await,
            "end all"
        ),
        1
    );
    assert_eq!(
        ok(
            db.end_all_sessions(&a.account_id, None, at(4)).await,
            "end all"
        ),
        0
    );
    assert_eq!(
        ended_at(ok(db.session("b1").await, "get")),
        None,
        "another account's session stays open"
    );
}

pub async fn rate_limits_count_every_racing_hit(store: Arc<dyn Store>) {
    let n = 24;
    let results = race(&store, n, |s, _| async move {
        s.accounts()
            .rate_limit_hit("ip:192.0.2.7", at(0), TimeDelta::seconds(60), 1000)
            .await
    })
    .await;
    let counts: BTreeSet<u32> = results
        .into_iter()
        .map(|r| ok(r, "rate_limit_hit").count)
        .collect();
    assert_eq!(
        counts,
        (1..=n as u32).collect::<BTreeSet<u32>>(),
        "every racing hit is counted once"
    );
    let db = store.accounts();
    let next = ok(
        db.rate_limit_hit("ip:192.0.2.7", at(1), TimeDelta::seconds(60), 1000)
            .await,
        "hit",
    );
    assert_eq!((next.count, next.window_start), (n as u32 + 1, at(0)));
    let other = ok(
        db.rate_limit_hit("ip:192.0.2.8", at(1), TimeDelta::seconds(60), 1000)
            .await,
        "hit",
    );
    assert_eq!(other.count, 1, "keys count apart");
}

pub async fn rate_limit_windows_restart_and_lock_past_the_maximum(store: Arc<dyn Store>) {
    let db = store.accounts();
    let window = TimeDelta::seconds(60);
    let hit = |ms: i64, max: u32| db.rate_limit_hit("acct:ann", at(ms), window, max);
    for (i, ms) in [0, 1000, 2000].into_iter().enumerate() {
        let c = ok(hit(ms, 3).await, "hit");
        assert_eq!(
            (c.count, c.window_start, c.locked_until),
            (i as u32 + 1, at(0), None)
        );
    }
    let over = ok(hit(3000, 3).await, "hit");
    assert_eq!((over.count, over.locked_until), (4, Some(at(60_000))));
    assert!(over.is_limited(at(59_999)) && !over.is_limited(at(60_000)));
    let fresh = ok(hit(60_000, 3).await, "hit");
    assert_eq!(
        (fresh.count, fresh.window_start, fresh.locked_until),
        (1, at(60_000), None),
        "a hit once the window has passed starts a new one"
    );
    ok(db.rate_limit_clear("acct:ann").await, "clear");
    let cleared = ok(hit(60_001, 3).await, "hit");
    assert_eq!((cleared.count, cleared.window_start), (1, at(60_001)));
    let none_allowed = ok(
        db.rate_limit_hit("acct:zero", at(0), window, 0).await,
        "hit",
    );
    assert_eq!(none_allowed.locked_until, Some(at(60_000)));
    assert!(matches!(
        db.rate_limit_hit("acct:x", at(0), TimeDelta::zero(), 3)
            .await,
        Err(StoreError::Invalid(_))
    ));
}

fn invitation(hash: &str, expires: i64) -> Invitation {
    Invitation {
        code_hash: hash.into(),
        patient_id: format!("patient-of-{hash}"),
        created_at: at(0),
        expires_at: at(expires),
        used_at: None,
        attempts: 0,
    }
}

pub async fn invitation_attempts_stop_at_the_maximum_even_when_racing(store: Arc<dyn Store>) {
    let db = store.accounts();
    let inv = invitation("inv-1", 7 * DAY);
    ok(db.create_invitation(&inv).await, "create_invitation");
    conflict(db.create_invitation(&inv).await, "an invitation twice");
    assert_eq!(ok(db.invitation("inv-1").await, "get"), Some(inv));
    let results = race(&store, 10, |s, _| async move {
        s.accounts()
            .count_invitation_attempt("inv-1", at(1), 3)
            .await
    })
    .await;
    let allowed: BTreeSet<u32> = results
        .iter()
        .filter_map(|r| match r {
            Ok(n) => *n,
            Err(e) => panic!("count_invitation_attempt failed: {e}"),
        })
        .collect();
    assert_eq!(
        allowed,
        BTreeSet::from([1, 2, 3]),
        "racing attempts never pass the maximum"
    );
    let stored = ok(db.invitation("inv-1").await, "get");
    assert_eq!(stored.map(|i| i.attempts), Some(3));
    ok(
        db.create_invitation(&invitation("inv-2", DAY)).await,
        "create",
    );
    assert_eq!(
        ok(
            db.count_invitation_attempt("inv-2", at(DAY), 3).await,
            "attempt"
        ),
        None,
        "no attempt on an expired invitation"
    );
    assert_eq!(
        ok(
            db.count_invitation_attempt("none", at(1), 3).await,
            "attempt"
        ),
        None
    );
}

pub async fn an_invitation_is_taken_once_and_never_after_it_expires(store: Arc<dyn Store>) {
    let db = store.accounts();
    ok(
        db.create_invitation(&invitation("inv-1", DAY)).await,
        "create",
    );
    let results = race(&store, 8, |s, _| async move {
        s.accounts().take_invitation("inv-1", at(5)).await
    })
    .await;
    let taken: Vec<String> = results
        .into_iter()
        .filter_map(|r| ok(r, "take_invitation"))
        .collect();
    assert_eq!(
        taken,
        vec!["patient-of-inv-1".to_string()],
        "racing redemptions: exactly one gets the patient"
    );
    let used = ok(db.invitation("inv-1").await, "get").and_then(|i| i.used_at);
    assert_eq!(used, Some(at(5)));
    assert_eq!(
        ok(
            db.count_invitation_attempt("inv-1", at(6), 3).await,
            "attempt"
        ),
        None,
        "a used invitation takes no more attempts"
    );
    ok(
        db.create_invitation(&invitation("inv-2", DAY)).await,
        "create",
    );
    assert_eq!(ok(db.take_invitation("inv-2", at(DAY)).await, "take"), None);
    assert_eq!(
        ok(db.take_invitation("inv-2", at(DAY - 1)).await, "take"),
        Some("patient-of-inv-2".to_string())
    );
    assert_eq!(ok(db.take_invitation("none", at(1)).await, "take"), None);
}

fn app(client_id: &str) -> SmartApp {
    SmartApp {
        client_id: client_id.into(),
        name: "Diabetes diary".into(),
        redirect_uris: vec![
            "https://diary.example/callback".into(),
            "com.example.diary:/oauth?x=\"1\"".into(),
        ],
        created_at: at(0),
    }
}

async fn app_and_account(store: &Arc<dyn Store>) -> (SmartApp, Account) {
    let a = app("diary");
    ok(
        store.accounts().create_smart_app(&a).await,
        "create_smart_app",
    );
    (a, account(store, "app.user", Role::Patient).await)
}

pub async fn smart_apps_round_trip_with_their_redirect_uris(store: Arc<dyn Store>) {
    let db = store.accounts();
    let a = app("diary");
    ok(db.create_smart_app(&a).await, "create_smart_app");
    assert_eq!(ok(db.smart_app("diary").await, "get"), Some(a.clone()));
    conflict(db.create_smart_app(&a).await, "a client id twice");
    assert_eq!(ok(db.smart_app("other").await, "get"), None);
}

fn code(hash: &str, client_id: &str, account_id: &str, expires: i64) -> OAuthCode {
    OAuthCode {
        code_hash: hash.into(),
        client_id: client_id.into(),
        account_id: account_id.into(),
        redirect_uri: "https://diary.example/callback".into(),
        scopes: "launch/patient patient/*.rs offline_access".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        patient_id: Some("pat-1".into()),
        created_at: at(0),
        expires_at: at(expires),
        used_at: None,
    }
}

pub async fn an_authorisation_code_is_taken_once_even_when_racing(store: Arc<dyn Store>) {
    let db = store.accounts();
    let (app, user) = app_and_account(&store).await;
    let c = code("code-1", &app.client_id, &user.account_id, MINUTE);
    ok(db.insert_oauth_code(&c).await, "insert_oauth_code");
    conflict(db.insert_oauth_code(&c).await, "a code twice");
    let results = race(&store, 8, |s, _| async move {
        s.accounts().take_oauth_code("code-1", at(10)).await
    })
    .await;
    let taken: Vec<OAuthCode> = results
        .into_iter()
        .filter_map(|r| ok(r, "take_oauth_code"))
        .collect();
    let expected = OAuthCode {
        used_at: Some(at(10)),
        ..c.clone()
    };
    assert_eq!(
        taken,
        vec![expected.clone()],
        "exactly one racer gets the code"
    );
    assert_eq!(ok(db.oauth_code("code-1").await, "get"), Some(expected));
    ok(
        db.insert_oauth_code(&code("code-2", &app.client_id, &user.account_id, MINUTE))
            .await,
        "insert",
    );
    assert_eq!(
        ok(db.take_oauth_code("code-2", at(MINUTE)).await, "take"),
        None,
        "an expired code is not taken"
    );
    assert_eq!(ok(db.oauth_code("none").await, "get"), None);
}

fn grant(id: &str, client_id: &str, account_id: &str, created: i64) -> OAuthGrant {
    OAuthGrant {
        grant_id: id.into(),
        account_id: account_id.into(),
        client_id: client_id.into(),
        scopes: "patient/*.rs offline_access".into(),
        patient_id: Some("pat-1".into()),
        created_at: at(created),
        revoked_at: None,
    }
}

pub async fn grants_are_listed_until_revoked(store: Arc<dyn Store>) {
    let db = store.accounts();
    let (app, user) = app_and_account(&store).await;
    let other = account(&store, "someone.else", Role::Patient).await;
    let (g1, g2, g3) = (
        grant("g1", &app.client_id, &user.account_id, 5),
        grant("g2", &app.client_id, &user.account_id, 1),
        grant("g3", &app.client_id, &other.account_id, 1),
    );
    for g in [&g1, &g2, &g3] {
        ok(db.create_grant(g).await, "create_grant");
    }
    conflict(db.create_grant(&g1).await, "a grant id twice");
    assert_eq!(
        ok(db.active_grants(&user.account_id).await, "list"),
        vec![g2.clone(), g1.clone()],
        "the account's grants, oldest first"
    );
    assert!(ok(db.revoke_grant("g1", at(9)).await, "revoke"));
    assert!(!ok(db.revoke_grant("g1", at(10)).await, "revoke again"));
    assert_eq!(
        ok(db.active_grants(&user.account_id).await, "list"),
        vec![g2]
    );
    let revoked = ok(db.grant("g1").await, "get").and_then(|g| g.revoked_at);
    assert_eq!(revoked, Some(at(9)));
    assert_eq!(ok(db.grant("none").await, "get"), None);
}

fn refresh(hash: &str, grant_id: &str, created: i64, expires: i64) -> RefreshToken {
    RefreshToken {
        token_hash: hash.into(),
        grant_id: grant_id.into(),
        created_at: at(created),
        expires_at: at(expires),
        used_at: None,
    }
}

pub async fn refresh_tokens_rotate_once_and_die_with_their_grant_or_credentials(
    store: Arc<dyn Store>,
) {
    let db = store.accounts();
    let (app, user) = app_and_account(&store).await;
    let cid = app.client_id.as_str();
    for g in ["g1", "g2", "g3"] {
        ok(
            db.create_grant(&grant(g, cid, &user.account_id, 0)).await,
            "create_grant",
        );
    }
    let r1 = refresh("r1", "g1", 0, DAY);
    ok(db.insert_refresh_token(&r1).await, "insert");
    conflict(db.insert_refresh_token(&r1).await, "a refresh token twice");
    let results = race(&store, 8, |s, _| async move {
        s.accounts().take_refresh_token("r1", at(10)).await
    })
    .await;
    let taken: Vec<RefreshToken> = results
        .into_iter()
        .filter_map(|r| ok(r, "take_refresh_token"))
        .collect();
    assert_eq!(taken.len(), 1, "exactly one racer rotates the token");
    let used = ok(db.refresh_token("r1").await, "get").and_then(|t| t.used_at);
    assert_eq!(used, Some(at(10)), "a used token is known as used (reuse)");

    ok(
        db.insert_refresh_token(&refresh("r2", "g1", 10, 20)).await,
        "insert",
    );
    assert_eq!(
        ok(db.take_refresh_token("r2", at(20)).await, "take"),
        None,
        "an expired token"
    );

    ok(
        db.insert_refresh_token(&refresh("r3", "g1", 10, DAY)).await,
        "insert",
    );
    assert!(ok(db.revoke_grant("g1", at(30)).await, "revoke"));
    assert_eq!(
        ok(db.take_refresh_token("r3", at(31)).await, "take"),
        None,
        "a token of a revoked grant"
    );
    let r3 = ok(db.refresh_token("r3").await, "get");
    assert_eq!(
        r3.map(|t| t.used_at),
        Some(None),
        "a refused token is not marked used"
    );

    for h in ["r4", "r5"] {
        ok(
            db.insert_refresh_token(&refresh(h, "g2", 10, DAY)).await,
            "insert",
        );
    }
    assert_eq!(
        ok(db.revoke_refresh_tokens("g2", at(40)).await, "revoke all"),
        2
    );
    assert_eq!(ok(db.take_refresh_token("r4", at(41)).await, "take"), None);

    ok(
        db.insert_refresh_token(&refresh("r6", "g3", 100, DAY))
            .await,
        "insert",
    );
    assert!(ok(
        db.update_password(&user.account_id, "$argon2id$reset", at(200))
            .await,
        "reset"
    ));
    assert_eq!(
        ok(db.take_refresh_token("r6", at(300)).await, "take"),
        None,
        "a token issued before the password changed"
    );
    ok(
        db.insert_refresh_token(&refresh("r7", "g3", 201, DAY))
            .await,
        "insert",
    );
    assert!(
        ok(db.take_refresh_token("r7", at(300)).await, "take").is_some(),
        "a token issued after the change"
    );
    ok(
        db.insert_refresh_token(&refresh("r8", "g3", 300, DAY))
            .await,
        "insert",
    );
    assert!(ok(
        db.set_account_status(&user.account_id, AccountStatus::Disabled, at(301))
            .await,
        "disable"
    ));
    assert_eq!(
        ok(db.take_refresh_token("r8", at(302)).await, "take"),
        None,
        "a token of a disabled account"
    );
    assert_eq!(ok(db.refresh_token("none").await, "get"), None);
}

/// Not a case of the suite (it needs two stores): `a` and `b` are two instances on one database,
/// as two server processes would be. Racing requests spread over both still take a code once
/// and count every rate-limit hit. Each backend runs it from its own tests.
pub async fn two_instances_take_once_and_count_every_hit(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let (app, user) = app_and_account(&a).await;
    let c = code("shared-code", &app.client_id, &user.account_id, MINUTE);
    ok(
        a.accounts().insert_oauth_code(&c).await,
        "insert_oauth_code",
    );
    let n = 16;
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let db = s.accounts();
            let taken = db.take_oauth_code("shared-code", at(1)).await;
            let hit = db
                .rate_limit_hit("ip:198.51.100.1", at(1), TimeDelta::minutes(5), 1000)
                .await;
            (taken, hit)
        }));
    }
    let mut winners = 0;
    let mut counts = BTreeSet::new();
    for t in tasks {
        let (taken, hit) = match t.await {
            Ok(v) => v,
            Err(e) => panic!("a racing task failed: {e}"),
        };
        winners += usize::from(ok(taken, "take_oauth_code").is_some());
        counts.insert(ok(hit, "rate_limit_hit").count);
    }
    assert_eq!(
        winners, 1,
        "one code raced over two instances is taken once"
    );
    assert_eq!(
        counts,
        (1..=n as u32).collect::<BTreeSet<u32>>(),
        "hits on two instances are all counted"
    );
}
