//! The contract every store backend must pass.
//!
//! A backend runs the whole suite from its `tests/contract.rs` with one line:
//!
//! ```no_run
//! async fn fresh_store() -> Option<std::sync::Arc<dyn store::Store>> {
//!     // A new, empty database; None when the backend cannot be tested here.
//!     None
//! }
//!
//! store::contract_tests!(fresh_store);
//! # fn main() {}
//! ```
//!
//! The macro expands into one `#[tokio::test]` per case (so a failure names the rule that
//! broke), each calling the factory for a fresh, empty store and then the case of the same name
//! in this module. When the factory returns None the test prints that it did not run and
//! returns. The calling crate needs `tokio` (with the `macros` and `rt-multi-thread` features)
//! among its dependencies.
//!
//! Every case is a `pub async fn case(store: Arc<dyn Store>)` that panics with a message saying
//! which rule failed. Resources are realistic R4 (UK Core flavoured) JSON and searches are
//! built from query-string pairs with [`crate::query::parse`], as the HTTP layer builds them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::model::{
    HistoryPage, HistoryQuery, HistoryScope, Prepared, ResourceVersion, SearchResult, WriteOp,
    WriteOutcome,
};
use crate::query::{self, ParseOptions, SearchQuery};
use crate::{Store, StoreError};

mod access;
mod accounts;
mod audit;
mod crud;
mod property;
mod scan;
mod search;
mod state;

pub use access::*;
pub use accounts::*;
pub use audit::*;
pub use crud::*;
pub use property::*;
pub use scan::*;
pub use search::*;
pub use state::*;

/// Expands into one `#[tokio::test]` per contract case; see the [module docs](crate::contract).
///
/// `$factory` is anything callable with no arguments that returns a future of
/// `Option<Arc<dyn store::Store>>`: an `async fn` path or a closure returning an async block.
#[macro_export]
macro_rules! contract_tests {
    ($factory:expr) => {
        $crate::__contract_cases!(tests $factory);
    };
}

/// The list of cases, in one place.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($mode:ident $factory:expr) => {
        $crate::__contract_each!(
            $mode $factory;
                create_assigns_id_version_1_and_last_updated,
                read_returns_exactly_the_stored_json,
                read_and_vread_of_unknown_resources_are_none,
                vread_returns_every_old_version,
                update_bumps_the_version_and_keeps_the_old_one,
                update_with_matching_if_match_succeeds,
                update_with_stale_if_match_is_a_version_conflict_and_writes_nothing,
                update_of_an_unknown_id_creates_it_with_the_client_id,
                update_with_a_body_id_other_than_the_target_is_invalid,
                identical_update_writes_no_new_version,
                delete_leaves_a_deleted_version_and_older_versions_readable,
                delete_of_nothing_is_deleted_without_a_version,
                update_after_delete_brings_the_resource_back,
                instance_history_is_newest_first_with_total,
                type_and_system_history_are_newest_first_and_honour_since,
                history_pages_cover_every_version_once,
                conditional_create_with_no_match_creates,
                conditional_create_with_one_match_returns_it,
                conditional_create_with_two_matches_is_refused,
                conditional_update_with_no_match_creates,
                conditional_update_with_one_match_updates_it,
                conditional_update_with_two_matches_is_refused,
                conditional_delete_with_no_one_or_two_matches,
                transaction_is_all_or_nothing,
                transaction_rewrites_urn_uuid_references_to_the_new_ids,
                transaction_answers_each_entry_in_order,
                concurrent_updates_with_the_same_if_match_let_exactly_one_win,
                concurrent_creates_are_all_stored,
                concurrent_conditional_creates_make_one_resource,
                search_token_code_system_and_identifier_forms,
                search_token_not_excludes_resources_with_any_matching_value,
                search_string_prefix_ignores_case_and_accents,
                search_string_exact_and_contains,
                search_date_prefixes_on_dates,
                search_date_prefixes_on_datetimes_with_time_zones,
                search_date_prefixes_on_periods,
                search_reference_by_type_and_id_by_id_and_by_type_modifier,
                search_quantity_prefixes_precision_and_units,
                search_quantity_beyond_fifteen_decimals_counts_fifteen,
                search_uri_matches_the_whole_uri,
                search_missing_true_and_false,
                search_by_id_and_last_updated,
                search_values_are_alternatives_and_parameters_all_apply,
                search_chain_through_patient_identifier,
                search_chain_with_a_type_modifier,
                search_count_pages_with_has_more_and_offset_without_overlap,
                search_count_zero_gives_only_the_total_and_the_deepest_offset_runs,
                search_sort_by_several_keys_and_descending,
                search_include_adds_each_referenced_resource_once,
                search_revinclude_adds_referring_resources_once_without_deleted,
                search_revinclude_past_its_limit_is_cut_short_and_says_so,
                search_total_accurate_and_summary_count,
                search_never_matches_a_deleted_resource,
                search_matches_only_the_current_version_after_update,
                search_agrees_with_brute_force_evaluation_on_random_data,
                filtered_searches_and_scans_agree_with_the_policy_on_random_populations,
                includes_and_revincludes_leave_out_what_the_filter_does_not_admit,
                chains_cannot_probe_another_patients_data,
                totals_and_pages_count_only_what_the_filter_admits,
                history_of_a_resource_moved_between_patients_shows_each_version_to_its_own_patient,
                relationships_and_refusals_are_read_alike_in_rust_and_sql,
                binaries_are_seen_through_their_letters,
                the_access_index_is_rebuilt_for_resources_stored_before_it,
                server_state_puts_replaces_lists_by_prefix_and_deletes,
                put_state_commits_and_rolls_back_with_the_transaction,
                compare_and_put_writes_only_over_the_expected_value,
                racing_compare_and_puts_from_one_value_have_exactly_one_winner,
                scan_pages_cover_every_current_resource_once_in_store_order,
                scan_since_and_until_bound_last_updated,
                scan_compartment_holds_exactly_the_patients_resources,
                scan_compartment_of_many_patients_agrees_with_few,
                scan_of_several_types_is_their_scans_merged_in_store_order,
                accounts_round_trip_every_field_to_the_millisecond,
                account_usernames_are_unique_ignoring_case,
                patient_nhs_numbers_and_external_subjects_are_unique,
                totp_steps_are_accepted_once_and_only_forward,
                password_changes_retire_credentials_and_rehashes_do_not,
                sign_in_failures_count_every_racing_failure_and_a_reset_clears_the_lock,
                recovery_codes_are_replaced_whole_and_each_is_used_once,
                passkeys_are_added_listed_updated_and_removed_per_account,
                sessions_are_touched_stepped_up_switched_and_ended,
                ending_all_sessions_ends_the_accounts_open_ones_but_the_kept_one,
                rate_limits_count_every_racing_hit,
                rate_limit_windows_restart_and_lock_past_the_maximum,
                invitation_attempts_stop_at_the_maximum_even_when_racing,
                an_invitation_is_taken_once_and_never_after_it_expires,
                smart_apps_round_trip_with_their_redirect_uris,
                an_authorisation_code_is_taken_once_even_when_racing,
                grants_are_listed_until_revoked,
                refresh_tokens_rotate_once_and_die_with_their_grant_or_credentials,
                appended_audit_records_are_chained_and_listed_per_patient_newest_first,
                audited_writes_leave_one_record_each_in_their_transaction,
                racing_appends_all_land_in_one_unbroken_chain,
            );
    };
}

/// `tests`: one `#[tokio::test]` per case. `check`: the same functions without the test
/// attribute, so that the crate's own tests compile every expansion without running it.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_each {
    (tests $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::__contract_run!($factory, $case)
            }
        )*
    };
    (check $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[allow(dead_code)]
            async fn $case() {
                $crate::__contract_run!($factory, $case)
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_run {
    ($factory:expr, $case:ident) => {
        match ($factory)().await {
            Some(store) => $crate::contract::$case(store).await,
            None => eprintln!(
                "contract case {} did not run: this backend has no test database configured",
                stringify!($case)
            ),
        }
    };
}

// ----- Building resources -----

/// The NHS number system (DESIGN.md, Identifiers).
pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const UCUM: &str = "http://unitsofmeasure.org";

/// A valid NHS number (Modulus 11 check digit) for each `serial` below 400 million; distinct
/// serials give distinct numbers. Small serials are in the 999 test range.
pub fn nhs_number(serial: u32) -> String {
    let offset = 2 * u64::from(serial);
    let base = if offset < 1_000_000 {
        999_000_000 + offset
    } else {
        100_000_000 + offset
    };
    // `base` ends in an even digit; `base + 1` differs only in its last digit, whose weight
    // is 2, so their check digits differ and at most one of them is the invalid 10.
    let check_digit = |n: u64| {
        let digits: Vec<u8> = n.to_string().bytes().map(|d| d - b'0').collect();
        fhir::nhs_number::check_digit(&digits)
    };
    let (number, check) = match check_digit(base) {
        Some(c) => (base, c),
        None => (base + 1, check_digit(base + 1).unwrap_or(0)),
    };
    format!("{number}{check}")
}

/// A Patient with an NHS number, one official name and optional gender and birth date.
pub fn patient(family: &str, given: &str, nhs: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
        "identifier": [{"system": NHS_NUMBER, "value": nhs}],
        "active": true,
        "name": [{"use": "official", "family": family, "given": [given]}],
    })
}

/// `patient` with `birthDate` and `gender` set.
pub fn patient_born(family: &str, given: &str, nhs: &str, birth_date: &str, gender: &str) -> Value {
    let mut p = patient(family, given, nhs);
    p["birthDate"] = json!(birth_date);
    p["gender"] = json!(gender);
    p
}

/// A final laboratory Observation coded in LOINC with a UCUM `valueQuantity`, about
/// `subject` (`Patient/…`), taken at `effective` (a dateTime).
pub fn observation(
    subject: &str,
    loinc: &str,
    display: &str,
    value: f64,
    unit: &str,
    effective: &str,
) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"
        }]}],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
        "subject": {"reference": subject},
        "effectiveDateTime": effective,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    })
}

/// A booked outpatient Appointment with the patient and a practitioner as participants.
pub fn appointment(patient_ref: &str, practitioner_ref: &str, start: &str, end: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "status": "booked",
        "serviceType": [{"coding": [{"system": SNOMED, "code": "394802001", "display": "General medicine"}]}],
        "start": start,
        "end": end,
        "participant": [
            {"actor": {"reference": patient_ref}, "required": "required", "status": "accepted"},
            {"actor": {"reference": practitioner_ref}, "required": "required", "status": "accepted"}
        ]
    })
}

/// An active, confirmed Condition coded in SNOMED CT.
pub fn condition(subject: &str, snomed: &str, display: &str) -> Value {
    json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"
        }]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed"
        }]},
        "code": {"coding": [{"system": SNOMED, "code": snomed, "display": display}]},
        "subject": {"reference": subject},
    })
}

/// Validates and indexes a resource the suite built; the suite's resources must be valid.
pub fn prepared(value: Value) -> Prepared {
    match Prepared::new(value.clone()) {
        Ok(p) => p,
        Err(e) => panic!("the contract suite built an invalid resource ({e:?}): {value}"),
    }
}

pub fn create_op(value: Value) -> WriteOp {
    WriteOp::Create {
        resource: prepared(value),
        if_none_exist: None,
        full_url: None,
    }
}

pub fn update_op(id: &str, value: Value, if_match: Option<i64>) -> WriteOp {
    WriteOp::Update {
        id: id.to_string(),
        resource: prepared(value),
        if_match,
        full_url: None,
    }
}

// ----- Doing things to the store -----

/// Creates a resource and returns its first version.
pub async fn create(store: &dyn Store, value: Value) -> ResourceVersion {
    match store.write(create_op(value)).await {
        Ok(WriteOutcome::Created(v)) => v,
        other => panic!("create should answer Created, got {other:?}"),
    }
}

/// Updates (or creates with a client id) and returns the new current version.
pub async fn update(store: &dyn Store, id: &str, value: Value) -> ResourceVersion {
    match store.write(update_op(id, value, None)).await {
        Ok(WriteOutcome::Updated {
            version,
            changed: true,
        })
        | Ok(WriteOutcome::Created(version)) => version,
        other => panic!("update of {id} should write a new version, got {other:?}"),
    }
}

/// Deletes and returns the deletion's version.
pub async fn delete(store: &dyn Store, resource_type: &str, id: &str) -> ResourceVersion {
    let op = WriteOp::Delete {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
    };
    match store.write(op).await {
        Ok(WriteOutcome::Deleted {
            version: Some(v), ..
        }) => v,
        other => {
            panic!("delete of {resource_type}/{id} should write a deleted version, got {other:?}")
        }
    }
}

pub async fn read(store: &dyn Store, resource_type: &str, id: &str) -> Option<ResourceVersion> {
    match store.read(resource_type, id).await {
        Ok(v) => v,
        Err(e) => panic!("read of {resource_type}/{id} failed: {e}"),
    }
}

pub async fn vread(
    store: &dyn Store,
    resource_type: &str,
    id: &str,
    version: i64,
) -> Option<ResourceVersion> {
    match store.vread(resource_type, id, version).await {
        Ok(v) => v,
        Err(e) => panic!("vread of {resource_type}/{id}/_history/{version} failed: {e}"),
    }
}

pub async fn history(
    store: &dyn Store,
    scope: HistoryScope,
    since: Option<DateTime<Utc>>,
    count: usize,
    offset: usize,
) -> HistoryPage {
    let q = HistoryQuery {
        scope,
        since,
        count,
        offset,
        access: None,
    };
    match store.history(&q).await {
        Ok(page) => page,
        Err(e) => panic!("history {q:?} failed: {e}"),
    }
}

/// Query-string pairs as the HTTP layer hands them to the parser.
pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses a search the suite wrote; it must be valid.
pub fn query(resource_type: &str, pairs: &[(&str, &str)]) -> SearchQuery {
    match query::parse(resource_type, &params(pairs), &ParseOptions::default()) {
        Ok(q) => q,
        Err(issues) => panic!("{resource_type}?{pairs:?} should parse, got {issues:?}"),
    }
}

pub async fn search(
    store: &dyn Store,
    resource_type: &str,
    pairs: &[(&str, &str)],
) -> SearchResult {
    let q = query(resource_type, pairs);
    match store.search(&q).await {
        Ok(r) => r,
        Err(e) => panic!("search {resource_type}?{pairs:?} failed: {e}"),
    }
}

/// The ids of every match, fetched page by page (`count` per page), sorted; checks that pages
/// do not overlap and that `has_more` is set exactly when another page follows.
pub async fn search_all_ids(store: &dyn Store, q: &SearchQuery, count: usize) -> Vec<String> {
    let mut q = q.clone();
    q.count = count.max(1);
    q.offset = 0;
    let mut ids: Vec<String> = Vec::new();
    loop {
        let page = match store.search(&q).await {
            Ok(r) => r,
            Err(e) => panic!(
                "search {:?} at offset {} failed: {e}",
                q.canonical, q.offset
            ),
        };
        assert!(
            page.matches.len() <= q.count,
            "a page holds at most _count matches"
        );
        for m in &page.matches {
            assert_eq!(
                m.resource_type, q.resource_type,
                "a search returns only its type"
            );
            assert!(!m.deleted, "a search never returns a deleted resource");
            assert!(
                !ids.contains(&m.id),
                "{} appears on two pages of {:?}",
                m.id,
                q.canonical
            );
            ids.push(m.id.clone());
        }
        if !page.has_more {
            break;
        }
        assert_eq!(
            page.matches.len(),
            q.count,
            "a page followed by another is full"
        );
        q.offset += q.count;
        assert!(
            q.offset < 100_000,
            "paging of {:?} does not end",
            q.canonical
        );
    }
    ids.sort();
    ids
}

/// The sorted ids of every match of `Type?pairs`.
pub async fn search_ids(
    store: &dyn Store,
    resource_type: &str,
    pairs: &[(&str, &str)],
) -> Vec<String> {
    search_all_ids(store, &query(resource_type, pairs), 1000).await
}

/// Sorted owned copies, to compare with [`search_ids`].
pub fn ids(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The ids of versions, in order.
pub fn ids_of(versions: &[ResourceVersion]) -> Vec<String> {
    versions.iter().map(|v| v.id.clone()).collect()
}

/// Runs `Type?query` for each `(query value of param, expected ids)` and reports every mismatch
/// at once.
pub async fn expect_searches(
    store: &dyn Store,
    resource_type: &str,
    cases: &[(&str, &str, Vec<String>)],
) {
    let mut wrong = Vec::new();
    for (param, value, expected) in cases {
        let got = search_ids(store, resource_type, &[(param, value)]).await;
        if &got != expected {
            wrong.push(format!(
                "{resource_type}?{param}={value}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "searches answered wrongly:\n{}",
        wrong.join("\n")
    );
}

/// Waits until the clock has moved past `t` by a few milliseconds, so the next write's
/// `lastUpdated` is later than every earlier one.
pub async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
}

/// The error of a failed write, or a panic naming what was expected.
pub fn expect_err<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) -> StoreError {
    match r {
        Err(e) => e,
        Ok(v) => panic!("{what} should fail, got {v:?}"),
    }
}

/// The resource a version holds, parsed.
pub fn body(v: &ResourceVersion) -> Value {
    match v.parse() {
        Ok(value) => value,
        Err(e) => panic!(
            "{}/{} version {} is unreadable: {e}",
            v.resource_type, v.id, v.version_id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::nhs_number;

    fn valid(n: &str) -> bool {
        let d: Vec<u32> = n.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = d[..9]
            .iter()
            .zip((2..=10u32).rev())
            .map(|(d, w)| d * w)
            .sum();
        let check = (11 - sum % 11) % 11;
        n.len() == 10 && check != 10 && check == d[9]
    }

    #[test]
    fn nhs_numbers_are_valid_and_distinct() {
        let serials: Vec<u32> = (0..5000)
            .chain([499_999, 500_000, 1_500_000, 399_999_999])
            .collect();
        let numbers: std::collections::HashSet<String> =
            serials.iter().map(|&s| nhs_number(s)).collect();
        assert_eq!(numbers.len(), serials.len());
        for n in &numbers {
            assert!(valid(n), "{n} is not a valid NHS number");
        }
        assert_eq!(nhs_number(0), "9990000018");
        assert!(!valid("9990000019") && !valid("9990000000"));
    }
}

/// Every case in the macro's list exists and the expansion compiles (nothing here runs).
#[cfg(test)]
mod expansion_compiles {
    crate::__contract_cases!(check(|| async { None::<std::sync::Arc<dyn crate::Store>> }));
}
