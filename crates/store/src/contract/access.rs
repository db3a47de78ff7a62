//! The access policy's filter applied in the query ([`crate::access`]): searches, totals,
//! paging, `_include`, `_revinclude`, chains, scans and history return exactly what
//! [`policy::Filter::admits`] admits, with the patients' relationships read by
//! [`crate::relationships`] — on random populations and on the adversarial cases one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use policy::{Filter, PatientFacts, PatientScope, ResourceFacts, RestrictedRule};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{json, Map, Value};

use super::*;
use crate::access::{self, Access, ODS_SYSTEM};
use crate::relationships;
use crate::scan::ScanQuery;

/// The ODS codes of the population's organisations `org0`..`org2` (`org3` has none).
const ODS: [&str; 3] = ["A81001", "B82002", "C83003"];
/// An ODS code no organisation has.
const UNKNOWN_ODS: &str = "Z99999";
const ORGANISATIONS: usize = 4;
const PATIENTS: usize = 6;
/// How many random filters are checked against one random population.
const FILTERS: u32 = 40;
/// Every type the population holds, in the order they are searched.
const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Encounter",
    "ServiceRequest",
    "Appointment",
    "Consent",
    "DocumentReference",
    "Binary",
    "Organization",
    "Location",
    "HealthcareService",
    "PractitionerRole",
];

// ----- Resources -----

/// The access label a resource is written with (`meta.security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Ordinary,
    /// Mental health (ActCode PSY).
    Sensitive,
    /// Confidentiality R.
    Restricted,
}

/// `value` with `meta` carrying `label` and the authoring organisation's ODS code.
pub fn labelled(mut value: Value, label: Label, author: Option<&str>) -> Value {
    let mut meta = Map::new();
    let security = match label {
        Label::Ordinary => None,
        Label::Sensitive => Some(json!([{"system": policy::codes::ACT_CODE, "code": "PSY"}])),
        Label::Restricted => Some(json!([{"system": policy::codes::CONFIDENTIALITY, "code": "R"}])),
    };
    if let Some(s) = security {
        meta.insert("security".into(), s);
    }
    if let Some(ods) = author {
        meta.insert("tag".into(), json!([{"system": ODS_SYSTEM, "code": ods}]));
    }
    if !meta.is_empty() {
        value["meta"] = Value::Object(meta);
    }
    value
}

pub fn organisation(ods: Option<&str>) -> Value {
    let mut v = json!({"resourceType": "Organization", "active": true, "name": "Practice"});
    if let Some(code) = ods {
        v["identifier"] = json!([{"system": ODS_SYSTEM, "value": code}]);
    }
    v
}

fn location(organisation: &str) -> Value {
    json!({"resourceType": "Location", "status": "active", "name": "Clinic",
        "managingOrganization": {"reference": organisation}})
}

fn service(organisation: &str) -> Value {
    json!({"resourceType": "HealthcareService", "active": true, "name": "Clinic",
        "providedBy": {"reference": organisation}})
}

fn role(organisation: &str) -> Value {
    json!({"resourceType": "PractitionerRole", "active": true,
        "organization": {"reference": organisation}})
}

/// A Patient (NHS number from `serial`) with optional managing organisation, general
/// practitioner (an Organization or PractitionerRole reference) and link to another Patient.
fn registered(serial: u32, managing: Option<&str>, gp: Option<&str>, link: Option<&str>) -> Value {
    let mut v = patient("Smith", "Ann", &nhs_number(serial));
    if let Some(o) = managing {
        v["managingOrganization"] = json!({"reference": o});
    }
    if let Some(g) = gp {
        v["generalPractitioner"] = json!([{"reference": g}]);
    }
    if let Some(l) = link {
        v["link"] = json!([{"other": {"reference": l}, "type": "seealso"}]);
    }
    v
}

fn encounter(patient: &str, provider: &str, status: &str) -> Value {
    json!({"resourceType": "Encounter", "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": patient}, "serviceProvider": {"reference": provider}})
}

fn referral(patient: &str, organisation: &str, as_requester: bool, status: &str) -> Value {
    let mut v = json!({"resourceType": "ServiceRequest", "status": status, "intent": "order",
        "subject": {"reference": patient}});
    if as_requester {
        v["requester"] = json!({"reference": organisation});
    } else {
        v["performer"] = json!([{"reference": organisation}]);
    }
    v
}

fn visit(patient: &str, actor: &str, status: &str) -> Value {
    json!({"resourceType": "Appointment", "status": status,
    "start": "2024-03-10T09:00:00Z", "end": "2024-03-10T09:15:00Z",
    "participant": [
        {"actor": {"reference": patient}, "status": "accepted"},
        {"actor": {"reference": actor}, "status": "accepted"}
    ]})
}

/// A privacy Consent of `patient` whose provision (nested under a permit when `nested`) is of
/// `kind` (`deny` or `permit`) for `organisation`.
pub fn consent(patient: &str, status: &str, kind: &str, organisation: &str, nested: bool) -> Value {
    let provision = json!({"type": kind, "actor": [{
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
        "reference": {"reference": organisation}
    }]});
    let provision = if nested {
        json!({"type": "permit", "provision": [provision]})
    } else {
        provision
    };
    json!({"resourceType": "Consent", "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": provision})
}

/// An Observation coded `code`, about `subject`, optionally performed by `performer` and with
/// `member` as a member.
pub fn item(
    subject: Option<&str>,
    code: &str,
    label: Label,
    author: Option<&str>,
    performer: Option<&str>,
    member: Option<&str>,
) -> Value {
    let mut v = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]}});
    if let Some(s) = subject {
        v["subject"] = json!({"reference": s});
    }
    if let Some(p) = performer {
        v["performer"] = json!([{"reference": p}]);
    }
    if let Some(m) = member {
        v["hasMember"] = json!([{"reference": m}]);
    }
    labelled(v, label, author)
}

fn letter(subject: &str, binary: &str, label: Label, author: Option<&str>) -> Value {
    labelled(
        json!({"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": subject},
            "content": [{"attachment": {"contentType": "application/pdf", "url": format!("Binary/{binary}")}}]}),
        label,
        author,
    )
}

fn binary(label: Label) -> Value {
    labelled(
        json!({"resourceType": "Binary", "contentType": "application/pdf", "data": "JVBERi0xLjQ="}),
        label,
        None,
    )
}

/// Writes `value` as `Type/id` (created with that id, or updated).
async fn put(store: &dyn Store, id: &str, value: Value) -> ResourceVersion {
    update(store, id, value).await
}

// ----- Filters -----

/// Rows of these patients, every label.
pub fn only(patients: &[&str]) -> Filter {
    Filter {
        patients: PatientScope::Only(patients.iter().map(|p| p.to_string()).collect()),
        hide_restricted: RestrictedRule::Show,
        hide_sensitive: false,
    }
}

/// `filter` with these label rules.
fn hiding(filter: Filter, rule: RestrictedRule, hide_sensitive: bool) -> Filter {
    Filter {
        hide_restricted: rule,
        hide_sensitive,
        ..filter
    }
}

/// What the policy gives every subject for reference data: every row, restricted ones hidden.
fn reference_data() -> Filter {
    hiding(Filter::everything(), RestrictedRule::Hide, false)
}

/// The sorted ids of every match of `q` under `access`, page by page.
async fn ids_under(
    store: &dyn Store,
    q: &SearchQuery,
    access: Option<Access>,
    count: usize,
) -> Vec<String> {
    let mut q = q.clone();
    q.access = access;
    search_all_ids(store, &q, count).await
}

async fn search_under(store: &dyn Store, q: &SearchQuery, access: Option<Access>) -> SearchResult {
    let mut q = q.clone();
    q.access = access;
    match store.search(&q).await {
        Ok(r) => r,
        Err(e) => panic!("search {:?} failed: {e}", q.canonical),
    }
}

fn included_ids(r: &SearchResult) -> Vec<String> {
    let mut v: Vec<String> = r
        .included
        .iter()
        .map(|v| format!("{}/{}", v.resource_type, v.id))
        .collect();
    v.sort();
    v
}

async fn history_under(
    store: &dyn Store,
    scope: HistoryScope,
    access: Option<Access>,
) -> HistoryPage {
    let q = HistoryQuery {
        scope,
        since: None,
        count: 100,
        offset: 0,
        access,
    };
    match store.history(&q).await {
        Ok(p) => p,
        Err(e) => panic!("history {q:?} failed: {e}"),
    }
}

/// `Type/id/version` of each version, in order (deletions marked).
fn versions_of(page: &HistoryPage) -> Vec<String> {
    page.versions
        .iter()
        .map(|v| {
            let mark = if v.deleted { " deleted" } else { "" };
            format!("{}/{}/{}{mark}", v.resource_type, v.id, v.version_id)
        })
        .collect()
}

// ----- The adversarial cases -----

/// Patients `pa` and `pb`; Practitioners `dr` and (restricted) `dr-secret`; `oa` about `pa`,
/// performed by both practitioners, with member `ob`; `ob` about `pb` (code `X`), with member
/// `oa`; `oa-secret`, a restricted member of `oa2` (both about `pa`).
async fn two_patients_pointing_at_each_other(store: &dyn Store) {
    put(store, "pa", registered(1, None, None, None)).await;
    put(store, "pb", registered(2, None, None, None)).await;
    let practitioner = json!({"resourceType": "Practitioner", "name": [{"family": "Jones"}]});
    put(store, "dr", practitioner.clone()).await;
    put(
        store,
        "dr-secret",
        labelled(practitioner, Label::Restricted, None),
    )
    .await;
    let mut oa = item(
        Some("Patient/pa"),
        "A",
        Label::Ordinary,
        None,
        None,
        Some("Observation/ob"),
    );
    oa["performer"] =
        json!([{"reference": "Practitioner/dr"}, {"reference": "Practitioner/dr-secret"}]);
    put(store, "oa", oa).await;
    put(
        store,
        "ob",
        item(
            Some("Patient/pb"),
            "X",
            Label::Ordinary,
            None,
            None,
            Some("Observation/oa"),
        ),
    )
    .await;
    put(
        store,
        "oa-secret",
        item(Some("Patient/pa"), "Y", Label::Restricted, None, None, None),
    )
    .await;
    put(
        store,
        "oa2",
        item(
            Some("Patient/pa"),
            "B",
            Label::Ordinary,
            None,
            None,
            Some("Observation/oa-secret"),
        ),
    )
    .await;
}

/// What patient `pa` gets: their own compartment, reference data without restricted items.
fn patient_a() -> Access {
    Access::uniform(only(&["pa"])).with("Practitioner", reference_data())
}

pub async fn includes_and_revincludes_leave_out_what_the_filter_does_not_admit(
    store: Arc<dyn Store>,
) {
    let store = &*store;
    two_patients_pointing_at_each_other(store).await;
    let a = Some(patient_a());

    let members = query(
        "Observation",
        &[("_id", "oa"), ("_include", "Observation:has-member")],
    );
    let unfiltered = search_under(store, &members, None).await;
    assert_eq!(
        included_ids(&unfiltered),
        ["Observation/ob"],
        "the include would reach pb's item"
    );
    let filtered = search_under(store, &members, a.clone()).await;
    assert_eq!(ids_of(&filtered.matches), ["oa"]);
    assert!(
        filtered.included.is_empty(),
        "pb's Observation is left out: {:?}",
        included_ids(&filtered)
    );

    let performers = query(
        "Observation",
        &[("_id", "oa"), ("_include", "Observation:performer")],
    );
    assert_eq!(
        included_ids(&search_under(store, &performers, None).await),
        ["Practitioner/dr", "Practitioner/dr-secret"]
    );
    assert_eq!(
        included_ids(&search_under(store, &performers, a.clone()).await),
        ["Practitioner/dr"],
        "reference data is included under its own filter, which hides restricted items"
    );

    let subjects = query("Observation", &[("_include", "Observation:subject")]);
    let r = search_under(store, &subjects, a.clone()).await;
    let mut matched = ids_of(&r.matches);
    matched.sort();
    assert_eq!(matched, ["oa", "oa-secret", "oa2"]);
    assert_eq!(included_ids(&r), ["Patient/pa"]);

    let referrers = query(
        "Observation",
        &[("_id", "oa"), ("_revinclude", "Observation:has-member")],
    );
    assert_eq!(
        included_ids(&search_under(store, &referrers, None).await),
        ["Observation/ob"]
    );
    assert!(
        search_under(store, &referrers, a.clone())
            .await
            .included
            .is_empty(),
        "pb's Observation pointing at pa's is left out"
    );

    let everyone = query("Patient", &[("_revinclude", "Observation:subject")]);
    let r = search_under(store, &everyone, a).await;
    assert_eq!(ids_of(&r.matches), ["pa"]);
    assert_eq!(
        included_ids(&r),
        ["Observation/oa", "Observation/oa-secret", "Observation/oa2"]
    );
}

pub async fn chains_cannot_probe_another_patients_data(store: Arc<dyn Store>) {
    let store = &*store;
    two_patients_pointing_at_each_other(store).await;
    let probe = query("Observation", &[("has-member.code", "X")]);
    assert_eq!(
        ids_under(store, &probe, None, 10).await,
        ["oa"],
        "without a filter the chain matches through pb's Observation"
    );
    assert!(
        ids_under(store, &probe, Some(patient_a()), 10)
            .await
            .is_empty(),
        "pa must not learn that pb's Observation has code X"
    );
    let typed = query("Observation", &[("has-member:Observation.code", "X")]);
    assert!(ids_under(store, &typed, Some(patient_a()), 10)
        .await
        .is_empty());
    let total = {
        let mut q = probe.clone();
        q.total = true;
        search_under(store, &q, Some(patient_a())).await.total
    };
    assert_eq!(total, Some(0), "nor from the total");

    // Labels count inside the chain: a proxy (restricted hidden) cannot find the parent of a
    // restricted item by its code.
    let secret = query("Observation", &[("has-member.code", "Y")]);
    assert_eq!(
        ids_under(store, &secret, Some(patient_a()), 10).await,
        ["oa2"]
    );
    let proxy = Access::uniform(hiding(only(&["pa"]), RestrictedRule::Hide, false));
    assert!(ids_under(store, &secret, Some(proxy), 10).await.is_empty());

    // `_has` is not supported: refused, or ignored under lenient handling (which can only widen
    // the search, within the filter).
    let has = params(&[("_has:Observation:has-member:code", "X")]);
    assert!(query::parse("Observation", &has, &ParseOptions::default()).is_err());
    let lenient = ParseOptions {
        lenient: true,
        ..ParseOptions::default()
    };
    let ignored = match query::parse("Observation", &has, &lenient) {
        Ok(q) => q,
        Err(e) => panic!("a lenient search ignores _has: {e:?}"),
    };
    assert_eq!(
        ids_under(store, &ignored, Some(patient_a()), 10).await,
        ["oa", "oa-secret", "oa2"]
    );
}

pub async fn totals_and_pages_count_only_what_the_filter_admits(store: Arc<dyn Store>) {
    let store = &*store;
    put(store, "pa", registered(1, None, None, None)).await;
    put(store, "pb", registered(2, None, None, None)).await;
    let labels = [Label::Ordinary, Label::Sensitive, Label::Restricted];
    let mut expected = Vec::new();
    for i in 0..9 {
        let label = labels[i % 3];
        let id = format!("a{i}");
        put(
            store,
            &id,
            item(Some("Patient/pa"), "A", label, Some(ODS[0]), None, None),
        )
        .await;
        if label != Label::Restricted {
            expected.push(id);
        }
        put(
            store,
            &format!("b{i}"),
            item(Some("Patient/pb"), "A", label, None, None, None),
        )
        .await;
    }
    expected.sort();
    let access = Access::uniform(hiding(only(&["pa"]), RestrictedRule::Hide, false));
    let all = query("Observation", &[("code", "A")]);
    for count in [1, 2, 5, 6, 100] {
        assert_eq!(
            ids_under(store, &all, Some(access.clone()), count).await,
            expected,
            "pages of {count} hold every admitted resource exactly once"
        );
    }
    let mut counted = all.clone();
    counted.total = true;
    counted.count = 2;
    let page = search_under(store, &counted, Some(access.clone())).await;
    assert_eq!(page.total, Some(expected.len() as u64));
    assert!(page.has_more);
    let mut summary = all.clone();
    summary.summary_count = true;
    assert_eq!(
        search_under(store, &summary, Some(access.clone()))
            .await
            .total,
        Some(expected.len() as u64)
    );
    let mut last = all.clone();
    last.count = 2;
    last.offset = expected.len() - 1;
    let page = search_under(store, &last, Some(access)).await;
    assert_eq!(page.matches.len(), 1);
    assert!(!page.has_more, "no page after the last admitted resource");

    // Staff of the authoring organisation see its restricted items; the sensitive filter hides
    // restricted ones too.
    let author = Access::uniform(hiding(
        only(&["pa"]),
        RestrictedRule::HideUnlessAuthor(ODS[0].to_string()),
        false,
    ));
    assert_eq!(ids_under(store, &all, Some(author), 4).await.len(), 9);
    let sensitive = Access::uniform(hiding(only(&["pa", "pb"]), RestrictedRule::Show, true));
    assert_eq!(ids_under(store, &all, Some(sensitive), 4).await.len(), 6);
    assert!(
        ids_under(store, &all, Some(Access::uniform(Filter::nothing())), 4)
            .await
            .is_empty()
    );
}

pub async fn history_of_a_resource_moved_between_patients_shows_each_version_to_its_own_patient(
    store: Arc<dyn Store>,
) {
    let store = &*store;
    put(store, "pa", registered(1, None, None, None)).await;
    put(store, "pb", registered(2, None, None, None)).await;
    let about = |p: &str, label| item(Some(&format!("Patient/{p}")), "A", label, None, None, None);
    put(store, "moved", about("pa", Label::Restricted)).await;
    put(store, "moved", about("pb", Label::Ordinary)).await;
    put(store, "moved", about("pb", Label::Sensitive)).await;
    delete(store, "Observation", "moved").await;
    let instance = || HistoryScope::Instance {
        resource_type: "Observation".into(),
        id: "moved".into(),
    };
    let a = Some(Access::uniform(only(&["pa"])));
    let b = Some(Access::uniform(only(&["pb"])));
    let page = history_under(store, instance(), a.clone()).await;
    assert_eq!(
        versions_of(&page),
        ["Observation/moved/1"],
        "pa sees only the version about pa"
    );
    assert_eq!(page.total, 1);
    let page = history_under(store, instance(), b.clone()).await;
    assert_eq!(
        versions_of(&page),
        [
            "Observation/moved/4 deleted",
            "Observation/moved/3",
            "Observation/moved/2"
        ],
        "pb sees the versions about pb, and the deletion of one"
    );
    assert_eq!(page.total, 3);
    let b_no_sensitive = Some(Access::uniform(hiding(
        only(&["pb"]),
        RestrictedRule::Show,
        true,
    )));
    assert_eq!(
        versions_of(&history_under(store, instance(), b_no_sensitive).await),
        ["Observation/moved/2"],
        "each version is judged by its own labels; a deletion by the version it deleted"
    );
    let no_restricted = Some(Access::uniform(hiding(
        Filter::everything(),
        RestrictedRule::Hide,
        false,
    )));
    assert_eq!(
        history_under(store, instance(), no_restricted).await.total,
        3
    );

    // Brought back about pa: the new version is pa's, the old ones stay as they were.
    put(store, "moved", about("pa", Label::Ordinary)).await;
    assert_eq!(
        versions_of(&history_under(store, instance(), a.clone()).await),
        ["Observation/moved/5", "Observation/moved/1"]
    );
    assert_eq!(history_under(store, instance(), b.clone()).await.total, 3);

    let of_type = || HistoryScope::Type {
        resource_type: "Observation".into(),
    };
    assert_eq!(history_under(store, of_type(), a.clone()).await.total, 2);
    assert_eq!(history_under(store, of_type(), None).await.total, 5);
    let system = history_under(store, HistoryScope::System, a).await;
    assert_eq!(
        versions_of(&system),
        ["Observation/moved/5", "Observation/moved/1", "Patient/pa/1"]
    );
    assert_eq!(system.total, 3);
    assert_eq!(
        history_under(store, instance(), Some(Access::uniform(Filter::nothing())))
            .await
            .total,
        0
    );
}

pub async fn relationships_and_refusals_are_read_alike_in_rust_and_sql(store: Arc<dyn Store>) {
    let store = &*store;
    for (i, ods) in ODS.iter().enumerate() {
        put(store, &format!("org{i}"), organisation(Some(ods))).await;
        put(
            store,
            &format!("loc{i}"),
            location(&format!("Organization/org{i}")),
        )
        .await;
        put(
            store,
            &format!("svc{i}"),
            service(&format!("Organization/org{i}")),
        )
        .await;
        put(
            store,
            &format!("role{i}"),
            role(&format!("Organization/org{i}")),
        )
        .await;
    }
    put(store, "org3", organisation(None)).await;
    let (a, b, c) = (
        "Organization/org0",
        "Organization/org1",
        "Organization/org2",
    );
    put(store, "p1", registered(1, Some(a), None, None)).await;
    put(
        store,
        "p2",
        registered(2, None, Some("PractitionerRole/role1"), None),
    )
    .await;
    put(store, "p3", registered(3, None, None, None)).await;
    put(store, "e3", encounter("Patient/p3", c, "finished")).await;
    put(
        store,
        "e3-error",
        encounter("Patient/p3", a, "entered-in-error"),
    )
    .await;
    put(store, "p4", registered(4, None, None, None)).await;
    put(store, "r4", referral("Patient/p4", b, false, "active")).await;
    put(
        store,
        "r4-from",
        referral("Patient/p4", a, true, "completed"),
    )
    .await;
    put(store, "p5", registered(5, None, Some(c), None)).await;
    put(store, "v5", visit("Patient/p5", "Location/loc2", "booked")).await;
    put(
        store,
        "v5-cancelled",
        visit("Patient/p5", "HealthcareService/svc0", "cancelled"),
    )
    .await;
    put(store, "p6", registered(6, None, None, None)).await;
    put(
        store,
        "v6",
        visit("Patient/p6", "PractitionerRole/role1", "booked"),
    )
    .await;
    put(
        store,
        "c6",
        consent("Patient/p6", "active", "deny", b, true),
    )
    .await;
    put(
        store,
        "c6-revoked",
        consent("Patient/p6", "inactive", "deny", a, false),
    )
    .await;
    put(
        store,
        "c6-permit",
        consent("Patient/p6", "active", "permit", c, false),
    )
    .await;
    put(
        store,
        "p7",
        registered(7, Some("Organization/org3"), None, None),
    )
    .await;
    put(store, "e7", encounter("Patient/p7", a, "finished")).await;
    delete(store, "Encounter", "e7").await;

    let expected: [(&str, &[&str], &[&str]); 7] = [
        ("p1", &[ODS[0]], &[]),
        ("p2", &[ODS[1]], &[]),
        ("p3", &[ODS[2]], &[]),
        ("p4", &[ODS[0], ODS[1]], &[]),
        ("p5", &[ODS[0], ODS[2]], &[]),
        ("p6", &[ODS[1]], &[ODS[1]]),
        ("p7", &[], &[]),
    ];
    let mut facts = BTreeMap::new();
    for (p, related, refused) in expected {
        let got = match relationships::related_organisations(store, p).await {
            Ok(v) => v,
            Err(e) => panic!("related organisations of {p}: {e}"),
        };
        assert_eq!(got, related, "organisations related to {p}");
        let got_refused = match relationships::refused_organisations(store, p).await {
            Ok(v) => v,
            Err(e) => panic!("refused organisations of {p}: {e}"),
        };
        assert_eq!(got_refused, refused, "organisations {p} refuses");
        facts.insert(p.to_string(), patient_facts(p, got, got_refused));
    }
    assert!(relationships::related_organisations(store, "nobody")
        .await
        .is_ok_and(|v| v.is_empty()));

    // The SQL agrees, organisation by organisation.
    let patients = query("Patient", &[]);
    for ods in ODS.iter().chain([&UNKNOWN_ODS]) {
        let filter = Filter {
            patients: PatientScope::RelatedTo(ods.to_string()),
            ..Filter::everything()
        };
        let mut expected: Vec<String> = facts
            .values()
            .filter(|f| f.is_reachable_by(ods))
            .map(|f| f.id.clone())
            .collect();
        expected.sort();
        assert_eq!(
            ids_under(store, &patients, Some(Access::uniform(filter)), 3).await,
            expected,
            "patients staff of {ods} may see"
        );
    }
}

fn patient_facts(id: &str, related: Vec<String>, refused: Vec<String>) -> PatientFacts {
    PatientFacts {
        id: id.to_string(),
        birth_date: None,
        related_organisations: related,
        refused_organisations: refused,
        age_rules: Default::default(),
    }
}

/// Writes `value` as `Type/id` the way a store without the access index did: its R4 search
/// entries only.
pub async fn put_without_access_entries(store: &dyn Store, id: &str, value: Value) {
    let mut resource = prepared(value);
    resource.index = fhir::index::extract(&resource.value);
    let op = WriteOp::Update {
        id: id.to_string(),
        resource,
        if_match: None,
        full_url: None,
    };
    if let Err(e) = store.write(op).await {
        panic!("writing {id} failed: {e}");
    }
}

/// Stores, without access entries, `pa` and `pb`, `old` (about `pa`, restricted, then moved to
/// `pb`) and `plain` (about `pa`).
pub async fn store_data_from_before_the_access_index(store: &dyn Store) {
    put_without_access_entries(store, "pa", registered(1, None, None, None)).await;
    put_without_access_entries(store, "pb", registered(2, None, None, None)).await;
    put_without_access_entries(
        store,
        "old",
        item(Some("Patient/pa"), "A", Label::Restricted, None, None, None),
    )
    .await;
    put_without_access_entries(
        store,
        "old",
        item(Some("Patient/pb"), "A", Label::Ordinary, None, None, None),
    )
    .await;
    put_without_access_entries(
        store,
        "plain",
        item(Some("Patient/pa"), "A", Label::Ordinary, None, None, None),
    )
    .await;
}

/// Whether `store` answers [`store_data_from_before_the_access_index`]'s data as its access
/// index says it should (true), or hides it all from filters that hide anything (false);
/// panics on anything in between.
pub async fn access_index_is_complete(store: &dyn Store) -> bool {
    let observations = query("Observation", &[]);
    let everything = ids_under(store, &observations, Some(Access::everything()), 10).await;
    assert_eq!(
        everything,
        ["old", "plain"],
        "a filter that hides nothing shows everything"
    );
    let a = ids_under(
        store,
        &observations,
        Some(Access::uniform(only(&["pa"]))),
        10,
    )
    .await;
    let no_restricted = Access::uniform(hiding(Filter::everything(), RestrictedRule::Hide, false));
    let labelled = ids_under(store, &observations, Some(no_restricted.clone()), 10).await;
    let old = || HistoryScope::Instance {
        resource_type: "Observation".into(),
        id: "old".into(),
    };
    let history_a =
        versions_of(&history_under(store, old(), Some(Access::uniform(only(&["pa"])))).await);
    let history_labelled = versions_of(&history_under(store, old(), Some(no_restricted)).await);
    if a.is_empty() && labelled.is_empty() && history_a.is_empty() && history_labelled.is_empty() {
        return false;
    }
    assert_eq!(a, ["plain"], "pa's compartment after the rebuild");
    assert_eq!(
        labelled,
        ["old", "plain"],
        "the current version of old is not restricted"
    );
    assert_eq!(history_a, ["Observation/old/1"], "the old version was pa's");
    assert_eq!(
        history_labelled,
        ["Observation/old/2"],
        "the old version was restricted"
    );
    true
}

pub async fn the_access_index_is_rebuilt_for_resources_stored_before_it(store: Arc<dyn Store>) {
    let store = &*store;
    store_data_from_before_the_access_index(store).await;
    assert!(
        !access_index_is_complete(store).await,
        "without access entries, everything is hidden from filters that hide anything"
    );
    match store.reindex_access().await {
        Ok(n) => assert!(n >= 5, "every version was recomputed, got {n}"),
        Err(e) => panic!("the access reindex failed: {e}"),
    }
    assert!(access_index_is_complete(store).await);
    // Again: nothing changes, nothing is doubled.
    if let Err(e) = store.reindex_access().await {
        panic!("the second access reindex failed: {e}");
    }
    assert!(access_index_is_complete(store).await);
    let mut counted = query("Observation", &[]);
    counted.total = true;
    let total = search_under(store, &counted, Some(Access::uniform(only(&["pa", "pb"])))).await;
    assert_eq!(total.total, Some(2));
    let page = history_under(
        store,
        HistoryScope::Instance {
            resource_type: "Observation".into(),
            id: "old".into(),
        },
        Some(Access::uniform(only(&["pa", "pb"]))),
    )
    .await;
    assert_eq!(page.total, 2, "no version's facts were doubled");
}

pub async fn binaries_are_seen_through_their_letters(store: Arc<dyn Store>) {
    let store = &*store;
    put(store, "pa", registered(1, None, None, None)).await;
    put(store, "pb", registered(2, None, None, None)).await;
    put(store, "bin-a", binary(Label::Ordinary)).await;
    put(store, "bin-b", binary(Label::Ordinary)).await;
    put(store, "bin-secret", binary(Label::Ordinary)).await;
    put(store, "orphan", binary(Label::Restricted)).await;
    put(
        store,
        "doc-a",
        letter("Patient/pa", "bin-a", Label::Ordinary, None),
    )
    .await;
    put(
        store,
        "doc-b",
        letter("Patient/pb", "bin-b", Label::Ordinary, None),
    )
    .await;
    put(
        store,
        "doc-secret",
        letter("Patient/pa", "bin-secret", Label::Restricted, None),
    )
    .await;
    let binaries = query("Binary", &[]);
    let a = Access::uniform(only(&["pa"]));
    assert_eq!(
        ids_under(store, &binaries, Some(a.clone()), 2).await,
        ["bin-a", "bin-secret"]
    );
    let proxy = Access::uniform(hiding(only(&["pa"]), RestrictedRule::Hide, false));
    assert_eq!(ids_under(store, &binaries, Some(proxy), 2).await, ["bin-a"]);
    let any_no_restricted = Access::uniform(reference_data());
    assert_eq!(
        ids_under(store, &binaries, Some(any_no_restricted), 2).await,
        ["bin-a", "bin-b"],
        "the restricted orphan and the restricted letter's Binary are hidden"
    );
    // A letter moved to pb takes its Binary with it, in search and in history.
    put(
        store,
        "doc-a",
        letter("Patient/pb", "bin-a", Label::Ordinary, None),
    )
    .await;
    assert_eq!(
        ids_under(store, &binaries, Some(a.clone()), 2).await,
        ["bin-secret"]
    );
    let bin_a = HistoryScope::Instance {
        resource_type: "Binary".into(),
        id: "bin-a".into(),
    };
    assert_eq!(history_under(store, bin_a.clone(), Some(a)).await.total, 0);
    assert_eq!(
        history_under(store, bin_a, Some(Access::uniform(only(&["pb"]))))
            .await
            .total,
        1
    );
}

// ----- Random populations -----

#[derive(Debug, Clone)]
enum Gp {
    Practice(usize),
    Role(usize),
}

#[derive(Debug, Clone)]
struct PatientSpec {
    managing: Option<usize>,
    gp: Option<Gp>,
    link: Option<usize>,
}

#[derive(Debug, Clone)]
enum RelationshipSpec {
    Encounter {
        patient: usize,
        organisation: usize,
        in_error: bool,
    },
    Referral {
        patient: usize,
        organisation: usize,
        as_requester: bool,
        in_error: bool,
    },
    /// `actor`: 0 Location, 1 HealthcareService, 2 PractitionerRole; `status`: 0 booked,
    /// 1 cancelled, 2 entered in error.
    Visit {
        patient: usize,
        actor: usize,
        organisation: usize,
        status: usize,
    },
}

#[derive(Debug, Clone)]
struct ConsentSpec {
    patient: usize,
    active: bool,
    deny: bool,
    organisation: usize,
    nested: bool,
}

#[derive(Debug, Clone)]
struct ItemSpec {
    subject: Option<usize>,
    performer: Option<usize>,
    label: Label,
    author: Option<usize>,
    member: Option<usize>,
}

#[derive(Debug, Clone)]
struct LetterSpec {
    subject: usize,
    label: Label,
    author: Option<usize>,
    binary_label: Label,
}

#[derive(Debug, Clone)]
struct Population {
    patients: Vec<PatientSpec>,
    relationships: Vec<RelationshipSpec>,
    consents: Vec<ConsentSpec>,
    items: Vec<ItemSpec>,
    letters: Vec<LetterSpec>,
    orphan_label: Label,
    /// Items moved to another patient after creation.
    moves: Vec<(usize, usize)>,
    deleted_items: Vec<usize>,
    deleted_relationship: Option<usize>,
    deleted_patient: Option<usize>,
}

fn label() -> impl Strategy<Value = Label> {
    prop_oneof![
        3 => Just(Label::Ordinary),
        1 => Just(Label::Sensitive),
        1 => Just(Label::Restricted),
    ]
}

fn patient_spec() -> impl Strategy<Value = PatientSpec> {
    (
        proptest::option::weighted(0.3, 0..ORGANISATIONS),
        proptest::option::weighted(
            0.4,
            prop_oneof![
                (0..ORGANISATIONS).prop_map(Gp::Practice),
                (0..ORGANISATIONS).prop_map(Gp::Role)
            ],
        ),
        proptest::option::weighted(0.15, 0..PATIENTS),
    )
        .prop_map(|(managing, gp, link)| PatientSpec { managing, gp, link })
}

fn relationship_spec() -> impl Strategy<Value = RelationshipSpec> {
    let in_error = proptest::bool::weighted(0.2);
    prop_oneof![
        (0..PATIENTS, 0..ORGANISATIONS, in_error).prop_map(|(patient, organisation, in_error)| {
            RelationshipSpec::Encounter {
                patient,
                organisation,
                in_error,
            }
        }),
        (0..PATIENTS, 0..ORGANISATIONS, any::<bool>(), in_error).prop_map(
            |(patient, organisation, as_requester, in_error)| RelationshipSpec::Referral {
                patient,
                organisation,
                as_requester,
                in_error,
            }
        ),
        (0..PATIENTS, 0..3usize, 0..ORGANISATIONS, 0..3usize).prop_map(
            |(patient, actor, organisation, status)| RelationshipSpec::Visit {
                patient,
                actor,
                organisation,
                status,
            }
        ),
    ]
}

fn consent_spec() -> impl Strategy<Value = ConsentSpec> {
    (
        0..PATIENTS,
        proptest::bool::weighted(0.8),
        proptest::bool::weighted(0.8),
        0..ORGANISATIONS,
        any::<bool>(),
    )
        .prop_map(
            |(patient, active, deny, organisation, nested)| ConsentSpec {
                patient,
                active,
                deny,
                organisation,
                nested,
            },
        )
}

fn item_spec() -> impl Strategy<Value = ItemSpec> {
    (
        proptest::option::weighted(0.9, 0..PATIENTS),
        proptest::option::weighted(0.15, 0..PATIENTS),
        label(),
        proptest::option::weighted(0.6, 0..ODS.len()),
        proptest::option::weighted(0.2, 0..16usize),
    )
        .prop_map(|(subject, performer, label, author, member)| ItemSpec {
            subject,
            performer,
            label,
            author,
            member,
        })
}

fn letter_spec() -> impl Strategy<Value = LetterSpec> {
    (
        0..PATIENTS,
        label(),
        proptest::option::of(0..ODS.len()),
        label(),
    )
        .prop_map(|(subject, label, author, binary_label)| LetterSpec {
            subject,
            label,
            author,
            binary_label,
        })
}

fn population() -> impl Strategy<Value = Population> {
    (
        proptest::collection::vec(patient_spec(), PATIENTS),
        proptest::collection::vec(relationship_spec(), 10),
        proptest::collection::vec(consent_spec(), 4),
        proptest::collection::vec(item_spec(), 16),
        proptest::collection::vec(letter_spec(), 3),
        label(),
        proptest::collection::vec((0..16usize, 0..PATIENTS), 2),
        proptest::collection::vec(0..16usize, 1),
        proptest::option::of(0..10usize),
        proptest::option::of(0..PATIENTS),
    )
        .prop_map(
            |(
                patients,
                relationships,
                consents,
                items,
                letters,
                orphan_label,
                moves,
                deleted_items,
                deleted_relationship,
                deleted_patient,
            )| Population {
                patients,
                relationships,
                consents,
                items,
                letters,
                orphan_label,
                moves,
                deleted_items,
                deleted_relationship,
                deleted_patient,
            },
        )
}

fn organisation_ref(i: usize) -> String {
    format!("Organization/org{i}")
}

fn patient_ref(i: usize) -> String {
    format!("Patient/p{i}")
}

fn item_json(spec: &ItemSpec) -> Value {
    item(
        spec.subject.map(patient_ref).as_deref(),
        "A",
        spec.label,
        spec.author.map(|a| ODS[a]),
        spec.performer.map(patient_ref).as_deref(),
        spec.member.map(|m| format!("Observation/o{m}")).as_deref(),
    )
}

fn relationship_json(spec: &RelationshipSpec) -> Value {
    match spec {
        RelationshipSpec::Encounter {
            patient,
            organisation,
            in_error,
        } => encounter(
            &patient_ref(*patient),
            &organisation_ref(*organisation),
            if *in_error {
                "entered-in-error"
            } else {
                "finished"
            },
        ),
        RelationshipSpec::Referral {
            patient,
            organisation,
            as_requester,
            in_error,
        } => referral(
            &patient_ref(*patient),
            &organisation_ref(*organisation),
            *as_requester,
            if *in_error {
                "entered-in-error"
            } else {
                "active"
            },
        ),
        RelationshipSpec::Visit {
            patient,
            actor,
            organisation,
            status,
        } => {
            let actor = match actor {
                0 => format!("Location/loc{organisation}"),
                1 => format!("HealthcareService/svc{organisation}"),
                _ => format!("PractitionerRole/role{organisation}"),
            };
            let status = ["booked", "cancelled", "entered-in-error"][status % 3];
            visit(&patient_ref(*patient), &actor, status)
        }
    }
}

/// Every resource of the population, as `(id, JSON)` in writing order; then the changes.
fn population_resources(pop: &Population) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for i in 0..ORGANISATIONS {
        out.push((format!("org{i}"), organisation(ODS.get(i).copied())));
        out.push((format!("loc{i}"), location(&organisation_ref(i))));
        out.push((format!("svc{i}"), service(&organisation_ref(i))));
        out.push((format!("role{i}"), role(&organisation_ref(i))));
    }
    for (i, p) in pop.patients.iter().enumerate() {
        let gp = p.gp.as_ref().map(|g| match g {
            Gp::Practice(o) => organisation_ref(*o),
            Gp::Role(o) => format!("PractitionerRole/role{o}"),
        });
        let value = registered(
            i as u32 + 1,
            p.managing.map(organisation_ref).as_deref(),
            gp.as_deref(),
            p.link.filter(|l| *l != i).map(patient_ref).as_deref(),
        );
        out.push((format!("p{i}"), value));
    }
    for (i, r) in pop.relationships.iter().enumerate() {
        out.push((format!("rel{i}"), relationship_json(r)));
    }
    for (i, c) in pop.consents.iter().enumerate() {
        let kind = if c.deny { "deny" } else { "permit" };
        let status = if c.active { "active" } else { "inactive" };
        out.push((
            format!("consent{i}"),
            consent(
                &patient_ref(c.patient),
                status,
                kind,
                &organisation_ref(c.organisation),
                c.nested,
            ),
        ));
    }
    for (i, spec) in pop.items.iter().enumerate() {
        out.push((format!("o{i}"), item_json(spec)));
    }
    for (i, l) in pop.letters.iter().enumerate() {
        out.push((format!("bin{i}"), binary(l.binary_label)));
        out.push((
            format!("doc{i}"),
            letter(
                &patient_ref(l.subject),
                &format!("bin{i}"),
                l.label,
                l.author.map(|a| ODS[a]),
            ),
        ));
    }
    out.push(("orphan".to_string(), binary(pop.orphan_label)));
    for (item, patient) in &pop.moves {
        let mut spec = pop.items[*item].clone();
        spec.subject = Some(*patient);
        out.push((format!("o{item}"), item_json(&spec)));
    }
    out
}

async fn store_population(store: &dyn Store, pop: &Population) {
    for (id, value) in population_resources(pop) {
        put_any(store, &id, value).await;
    }
    for i in &pop.deleted_items {
        delete(store, "Observation", &format!("o{i}")).await;
    }
    if let Some(r) = pop.deleted_relationship {
        let ty = match pop.relationships[r] {
            RelationshipSpec::Encounter { .. } => "Encounter",
            RelationshipSpec::Referral { .. } => "ServiceRequest",
            RelationshipSpec::Visit { .. } => "Appointment",
        };
        delete(store, ty, &format!("rel{r}")).await;
    }
    if let Some(p) = pop.deleted_patient {
        delete(store, "Patient", &format!("p{p}")).await;
    }
}

/// [`put`], accepting an update that changes nothing (a move to the same patient).
async fn put_any(store: &dyn Store, id: &str, value: Value) {
    if let Err(e) = store.write(update_op(id, value, None)).await {
        panic!("writing {id} failed: {e}");
    }
}

/// What the brute force knows: every current resource, and the facts of every patient.
struct World {
    /// `(type, id)` → JSON.
    live: BTreeMap<(String, String), Value>,
    patients: BTreeMap<String, PatientFacts>,
}

async fn every_current_resource(store: &dyn Store) -> BTreeMap<(String, String), Value> {
    let mut live = BTreeMap::new();
    for ty in TYPES {
        let mut q = SearchQuery::all(ty);
        q.count = 1000;
        let r = match store.search(&q).await {
            Ok(r) => r,
            Err(e) => panic!("listing {ty} failed: {e}"),
        };
        assert!(!r.has_more, "the population fits in one page");
        for v in r.matches {
            live.insert((v.resource_type.clone(), v.id.clone()), body(&v));
        }
    }
    live
}

impl World {
    async fn load(store: &dyn Store) -> World {
        let live = every_current_resource(store).await;
        let mut ids: BTreeSet<String> = (0..PATIENTS).map(|i| format!("p{i}")).collect();
        for ((ty, id), value) in &live {
            ids.extend(access::resource_facts(ty, id, value).patients);
        }
        let mut patients = BTreeMap::new();
        for id in ids {
            let related = relationships::related_organisations(store, &id).await;
            let refused = relationships::refused_organisations(store, &id).await;
            match (related, refused) {
                (Ok(related), Ok(refused)) => {
                    patients.insert(id.clone(), patient_facts(&id, related, refused));
                }
                (r, f) => panic!("facts of {id}: {r:?} {f:?}"),
            }
        }
        World { live, patients }
    }

    fn owners(&self, facts: &[&ResourceFacts]) -> Vec<PatientFacts> {
        facts
            .iter()
            .flat_map(|f| f.patients.iter())
            .filter_map(|p| self.patients.get(p).cloned())
            .collect()
    }

    /// Whether `filter` admits `Type/id`, by `policy::Filter::admits`.
    fn admits(&self, filter: &Filter, ty: &str, id: &str, value: &Value) -> bool {
        let facts = access::resource_facts(ty, id, value);
        if ty != "Binary" {
            return filter.admits(&facts, &self.owners(&[&facts]));
        }
        let documents: Vec<ResourceFacts> = self
            .live
            .iter()
            .filter(|((t, _), v)| {
                t == "DocumentReference" && access::binaries_of(v).iter().any(|b| b == id)
            })
            .map(|((t, i), v)| access::resource_facts(t, i, v))
            .collect();
        let all: Vec<&ResourceFacts> = documents.iter().chain([&facts]).collect();
        access::binary_admitted(filter, &facts, &documents, &self.owners(&all))
    }

    /// The sorted ids of the resources of `ty` that `access` admits.
    fn expected(&self, access: &Access, ty: &str) -> Vec<String> {
        self.live
            .iter()
            .filter(|((t, id), v)| t == ty && self.admits(access.filter_for(ty), t, id, v))
            .map(|((_, id), _)| id.clone())
            .collect()
    }
}

fn filter_strategy() -> impl Strategy<Value = Filter> {
    let patient = select(
        (0..PATIENTS)
            .map(|i| format!("p{i}"))
            .chain(["nobody".to_string()])
            .collect::<Vec<_>>(),
    );
    let ods = select(
        ODS.iter()
            .chain([&UNKNOWN_ODS])
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    let scope = prop_oneof![
        1 => Just(PatientScope::Any),
        1 => Just(PatientScope::None),
        3 => proptest::collection::vec(patient, 0..3).prop_map(PatientScope::Only),
        4 => ods.clone().prop_map(PatientScope::RelatedTo),
    ];
    let rule = prop_oneof![
        Just(RestrictedRule::Show),
        Just(RestrictedRule::Hide),
        ods.prop_map(RestrictedRule::HideUnlessAuthor),
    ];
    (scope, rule, proptest::bool::weighted(0.3)).prop_map(
        |(patients, hide_restricted, hide_sensitive)| Filter {
            patients,
            hide_restricted,
            hide_sensitive,
        },
    )
}

/// A filter for most types and another for a random few, as the policy answers type by type.
fn access_strategy() -> impl Strategy<Value = Access> {
    (
        filter_strategy(),
        filter_strategy(),
        proptest::sample::subsequence(TYPES.to_vec(), 0..4),
    )
        .prop_map(|(most, other, types)| {
            types.into_iter().fold(Access::uniform(most), |access, t| {
                access.with(t, other.clone())
            })
        })
}

/// Deterministic: the same population and filters on every run and every backend.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        fork: false,
        timeout: 0,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn generate_population() -> Result<Population, String> {
    population()
        .new_tree(&mut runner(1))
        .map(|tree| tree.current())
        .map_err(|reason| format!("could not generate a population: {reason}"))
}

/// Every current resource a scan of every type under `access` returns, page by page.
fn scanned(
    store: &dyn Store,
    handle: &tokio::runtime::Handle,
    access: &Access,
    limit: usize,
) -> Result<BTreeSet<(String, String)>, TestCaseError> {
    let mut q = ScanQuery {
        resource_types: TYPES.iter().map(|t| t.to_string()).collect(),
        access: Some(access.clone()),
        ..ScanQuery::all("Patient", limit)
    };
    let mut seen = BTreeSet::new();
    loop {
        let page = handle
            .block_on(store.scan(&q))
            .map_err(|e| TestCaseError::fail(format!("scan failed: {e}")))?;
        for v in &page.resources {
            if !seen.insert((v.resource_type.clone(), v.id.clone())) {
                return Err(TestCaseError::fail(format!(
                    "{}/{} scanned twice",
                    v.resource_type, v.id
                )));
            }
        }
        match page.next_after {
            Some(after) => q.after = after,
            None => return Ok(seen),
        }
    }
}

/// The ids of `ty` resources that `param` entries of `value`'s index reference.
fn referenced(value: &Value, param: &str, ty: &str) -> Vec<String> {
    fhir::index::extract(value)
        .into_iter()
        .filter(|e| e.param == param)
        .filter_map(|e| match e.value {
            fhir::index::IndexValue::Reference {
                target_type: Some(t),
                target_id: Some(id),
                ..
            } if t == ty => Some(id),
            _ => None,
        })
        .collect()
}

/// Observations with their members and subjects included, those pointing at them
/// rev-included, and a chain through their members: only admitted resources come back, and
/// every admitted one does.
fn check_includes_and_chains(
    store: &dyn Store,
    handle: &tokio::runtime::Handle,
    world: &World,
    access: &Access,
) -> Result<(), TestCaseError> {
    let admitted = |ty: &str, id: &str| {
        world
            .live
            .get(&(ty.to_string(), id.to_string()))
            .is_some_and(|v| world.admits(access.filter_for(ty), ty, id, v))
    };
    let matches = world.expected(access, "Observation");
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for m in &matches {
        let value = &world.live[&("Observation".to_string(), m.clone())];
        for member in referenced(value, "has-member", "Observation") {
            if admitted("Observation", &member) {
                expected.insert(format!("Observation/{member}"));
            }
        }
        for subject in referenced(value, "subject", "Patient") {
            if admitted("Patient", &subject) {
                expected.insert(format!("Patient/{subject}"));
            }
        }
    }
    for ((ty, id), value) in &world.live {
        let points_at_a_match = referenced(value, "has-member", "Observation")
            .iter()
            .any(|member| matches.contains(member));
        if ty == "Observation" && points_at_a_match && admitted(ty, id) {
            expected.insert(format!("Observation/{id}"));
        }
    }
    for m in &matches {
        expected.remove(&format!("Observation/{m}"));
    }
    let mut q = query(
        "Observation",
        &[
            ("_include", "Observation:has-member"),
            ("_include", "Observation:subject"),
            ("_revinclude", "Observation:has-member"),
        ],
    );
    q.count = 1000;
    q.access = Some(access.clone());
    let r = handle
        .block_on(store.search(&q))
        .map_err(|e| TestCaseError::fail(format!("the include search failed: {e}")))?;
    let got: BTreeSet<String> = included_ids(&r).into_iter().collect();
    if got != expected {
        return Err(TestCaseError::fail(format!(
            "Observation includes: the store returned {got:?}, Filter::admits {expected:?}"
        )));
    }

    let mut chained: Vec<String> = matches
        .iter()
        .filter(|m| {
            let value = &world.live[&("Observation".to_string(), (*m).clone())];
            referenced(value, "has-member", "Observation")
                .iter()
                .any(|member| admitted("Observation", member))
        })
        .cloned()
        .collect();
    chained.sort();
    let mut q = query("Observation", &[("has-member.code", "A")]);
    q.access = Some(access.clone());
    let got = handle.block_on(search_all_ids(store, &q, 1000));
    if got != chained {
        return Err(TestCaseError::fail(format!(
            "Observation?has-member.code=A: the store returned {got:?}, Filter::admits {chained:?}"
        )));
    }
    Ok(())
}

fn check_filters(
    store: Arc<dyn Store>,
    handle: tokio::runtime::Handle,
    world: World,
) -> Result<(), String> {
    let strategy = (access_strategy(), 1..=7usize);
    let result = runner(FILTERS).run(&strategy, |(access, count)| {
        let mut every = BTreeSet::new();
        for ty in TYPES {
            let expected = world.expected(&access, ty);
            every.extend(expected.iter().map(|id| (ty.to_string(), id.clone())));
            let mut q = SearchQuery::all(ty);
            q.access = Some(access.clone());
            let got = handle.block_on(search_all_ids(&*store, &q, count));
            if got != expected {
                return Err(TestCaseError::fail(format!(
                    "{ty} under {:?}: the store returned {got:?}, Filter::admits {expected:?}",
                    access.filter_for(ty)
                )));
            }
            q.total = true;
            q.count = 1;
            let total = handle
                .block_on(store.search(&q))
                .map_err(|e| TestCaseError::fail(format!("{ty} with _total failed: {e}")))?
                .total;
            if total != Some(expected.len() as u64) {
                return Err(TestCaseError::fail(format!(
                    "{ty}: _total {total:?}, but {} are admitted",
                    expected.len()
                )));
            }
        }
        check_includes_and_chains(&*store, &handle, &world, &access)?;
        let got = scanned(&*store, &handle, &access, count)?;
        if got != every {
            let extra: Vec<_> = got.difference(&every).collect();
            let missing: Vec<_> = every.difference(&got).collect();
            return Err(TestCaseError::fail(format!(
                "a scan of every type returned {extra:?} it should not have, and left out {missing:?}"
            )));
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, (access, count))) => Err(format!(
            "the store disagrees with Filter::admits under {access:?} (pages of {count}):\n{reason}"
        )),
        Err(TestError::Abort(reason)) => Err(format!("the property test stopped: {reason}")),
    }
}

pub async fn filtered_searches_and_scans_agree_with_the_policy_on_random_populations(
    store: Arc<dyn Store>,
) {
    let pop = match generate_population() {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    store_population(&*store, &pop).await;
    let world = World::load(&*store).await;
    assert!(
        world
            .patients
            .values()
            .any(|p| !p.related_organisations.is_empty()),
        "the population relates some patient to an organisation"
    );
    assert!(
        world
            .patients
            .values()
            .any(|p| !p.refused_organisations.is_empty()),
        "the population has a refusing consent"
    );
    let handle = tokio::runtime::Handle::current();
    // The property runner is synchronous: run it on a blocking thread that drives the store's
    // futures on this runtime.
    let outcome = tokio::task::spawn_blocking(move || check_filters(store, handle, world)).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(disagreement)) => panic!("{disagreement}"),
        Err(e) => panic!("the property test's thread failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populations_are_valid_fhir_and_deterministic() {
        let a = generate_population().unwrap_or_else(|e| panic!("{e}"));
        let b = generate_population().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        for (id, value) in population_resources(&a) {
            if let Err(issues) = fhir::validate::validate(&value) {
                panic!("{id} is invalid: {issues:?}\n{value}");
            }
        }
        for value in [
            consent("Patient/p", "active", "deny", "Organization/o", true),
            letter("Patient/p", "b", Label::Restricted, Some(ODS[0])),
            binary(Label::Sensitive),
            visit("Patient/p", "Location/l", "booked"),
        ] {
            if let Err(issues) = fhir::validate::validate(&value) {
                panic!("invalid: {issues:?}\n{value}");
            }
        }
    }

    #[test]
    fn the_population_exercises_every_rule() {
        let pop = generate_population().unwrap_or_else(|e| panic!("{e}"));
        let labels: BTreeSet<String> = pop.items.iter().map(|i| format!("{:?}", i.label)).collect();
        assert_eq!(labels.len(), 3, "ordinary, sensitive and restricted items");
        assert!(pop.consents.iter().any(|c| c.active && c.deny));
        assert!(pop
            .relationships
            .iter()
            .any(|r| matches!(r, RelationshipSpec::Visit { .. })));
        assert!(pop.items.iter().any(|i| i.author.is_some()));
    }

    #[test]
    fn access_parameters_cannot_be_searched_sorted_or_included() {
        let strict = ParseOptions::default();
        for param in [
            access::LABEL_PARAM,
            access::AUTHOR_PARAM,
            access::PATIENT_PARAM,
            access::REFUSES_PARAM,
            access::BINARY_PARAM,
        ] {
            for (name, value) in [
                (param.to_string(), "restricted".to_string()),
                (format!("{param}:missing"), "true".to_string()),
                (format!("subject.{param}"), "x".to_string()),
                ("_sort".to_string(), param.to_string()),
                ("_include".to_string(), format!("Observation:{param}")),
                ("_revinclude".to_string(), format!("Observation:{param}")),
            ] {
                let pairs = vec![(name.clone(), value.clone())];
                assert!(
                    query::parse("Observation", &pairs, &strict).is_err(),
                    "{name}={value} must be refused"
                );
                let lenient = ParseOptions {
                    lenient: true,
                    ..ParseOptions::default()
                };
                if let Ok(q) = query::parse("Observation", &pairs, &lenient) {
                    assert!(
                        q.conditions.is_empty() && q.sort.is_empty() && q.include.is_empty(),
                        "{name}={value} must not be applied"
                    );
                }
            }
        }
    }

    #[test]
    fn queries_name_every_type_they_touch() {
        let q = query(
            "Observation",
            &[
                ("_include", "Observation:subject"),
                ("_revinclude", "DiagnosticReport:result"),
                ("performer:Practitioner.name", "x"),
            ],
        );
        let touched = q.types_touched();
        for t in [
            "Observation",
            "Patient",
            "Group",
            "DiagnosticReport",
            "Practitioner",
        ] {
            assert!(touched.contains(&t), "{t} in {touched:?}");
        }
    }
}
