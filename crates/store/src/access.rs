//! The access policy's filter, applied in the query: what the store keeps so that SQL can say
//! which rows a subject may see, and the [`Access`] a query carries.
//!
//! The policy (`policy::decide`) answers a query with a [`Filter`] per resource type: whose rows
//! (a [`policy::PatientScope`]) and which labels. [`Filter::admits`] is the reference meaning;
//! the SQL of [`crate::sql`] reproduces it over facts the store writes beside each resource,
//! computed here, in one place, from the resource's JSON:
//!
//! - **Access index entries** ([`access_entries`]), written with the search index of every
//!   current version under parameter names no R4 search parameter has (they start with
//!   `_portico-`), so the query parser refuses them as unknown and no client can search, sort or
//!   include by them:
//!   - [`LABEL_PARAM`]: exactly one token per resource, [`LABEL_ORDINARY`], [`LABEL_SENSITIVE`]
//!     or [`LABEL_RESTRICTED`] (from [`policy::labels`]; restricted implies sensitive, so one
//!     level says both). Every resource has one, so a filter that hides labels admits only rows
//!     whose level it knows: a row the labels were never computed for is hidden, never shown.
//!   - [`AUTHOR_PARAM`]: the authoring organisation's ODS code, when the resource has one.
//!   - [`PATIENT_PARAM`]: each Patient whose compartment holds the resource, through the
//!     compartment parameters of its type ([`compartment_patients`]; a Patient is also in its
//!     own compartment, which the SQL tests by its id since a new resource's id is not known
//!     when it is indexed).
//!   - [`REFUSES_PARAM`] (Consent): each Organization the Consent refuses
//!     ([`consent_refusals`]).
//!   - [`BINARY_PARAM`] (DocumentReference): each Binary its content points at
//!     ([`binaries_of`]): a Binary has no compartment of its own and is seen through its
//!     letter.
//! - **Per-version facts** for history: when a version moves to `resource_history`, a trigger
//!   (each backend's migration) copies its label, author and patient entries to
//!   `history_access`, keyed by version; so an old version is judged by its own content, not the
//!   current one. A deletion is judged as the version it deleted.
//! - **[`reindex`]** computes all of these for data stored before they existed (or after the
//!   rules changed: [`ACCESS_INDEX_VERSION`]), run by each backend when it opens a database.
//!
//! A Binary is admitted when some current DocumentReference naming it ([`BINARY_PARAM`]) is
//! admitted by the Binary's filter, or, when no DocumentReference names it, when its own facts
//! (no patients, its own labels) are. Relationships between patients and organisations, for
//! [`policy::PatientScope::RelatedTo`], are defined in [`crate::relationships`].

mod reindex;

use std::collections::{BTreeMap, BTreeSet};

use fhir::index::{IndexEntry, IndexValue};
use policy::ResourceFacts;
use serde_json::Value;

/// The policy's filter types, which an [`Access`] is made of.
pub use policy::{Filter, PatientScope, RestrictedRule};

pub use reindex::{reindex, reindex_if_stale, ReindexConn, ACCESS_INDEX_VERSION};

/// The access level of a resource: one token per resource.
pub const LABEL_PARAM: &str = "_portico-label";
/// The system of [`LABEL_PARAM`] tokens.
pub const LABEL_SYSTEM: &str = "urn:portico:access-label";
pub const LABEL_ORDINARY: &str = "ordinary";
pub const LABEL_SENSITIVE: &str = "sensitive";
pub const LABEL_RESTRICTED: &str = "restricted";
/// The authoring organisation (token: ODS system and code).
pub const AUTHOR_PARAM: &str = "_portico-author";
/// A Patient whose compartment holds the resource (reference).
pub const PATIENT_PARAM: &str = "_portico-patient";
/// An Organization an active Consent refuses (reference).
pub const REFUSES_PARAM: &str = "_portico-refuses";
/// A Binary a DocumentReference's content points at (reference).
pub const BINARY_PARAM: &str = "_portico-binary";

/// The system of ODS organisation codes.
pub const ODS_SYSTEM: &str = policy::codes::ODS_ORGANISATION;

/// The access index entries [`PATIENT_PARAM`], [`LABEL_PARAM`] and [`AUTHOR_PARAM`]: those a
/// version's own facts are made of, copied to `history_access` when it becomes history.
pub const VERSION_FACT_PARAMS: [&str; 3] = [LABEL_PARAM, AUTHOR_PARAM, PATIENT_PARAM];

/// The filters a query applies: one per resource type it may return or look into (the searched
/// type, `_include` targets, `_revinclude` sources, chained types), as the policy decides them
/// type by type. Types not named get `otherwise`.
///
/// The store owns this rather than taking one [`Filter`] because one query touches several
/// types whose filters differ: a patient's Observation search that includes the performing
/// Practitioner needs `Only(patient)` for Observation and the reference-data filter for
/// Practitioner. A caller asks the policy about each of [`crate::SearchQuery::types_touched`]
/// and starts from `Access::uniform(Filter::nothing())`, so that a type it did not ask about
/// (an `_include` target the data names although the parameter's definition does not) shows
/// nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    by_type: BTreeMap<String, Filter>,
    otherwise: Filter,
}

impl Access {
    /// The same filter for every type.
    pub fn uniform(filter: Filter) -> Access {
        Access {
            by_type: BTreeMap::new(),
            otherwise: filter,
        }
    }

    /// Every row of every type (what system clients get).
    pub fn everything() -> Access {
        Access::uniform(Filter::everything())
    }

    /// `filter` for `resource_type`, replacing what it had.
    pub fn with(mut self, resource_type: &str, filter: Filter) -> Access {
        self.by_type.insert(resource_type.to_string(), filter);
        self
    }

    /// The filter rows of `resource_type` pass.
    pub fn filter_for(&self, resource_type: &str) -> &Filter {
        self.by_type.get(resource_type).unwrap_or(&self.otherwise)
    }

    /// The filter of types not named.
    pub fn otherwise(&self) -> &Filter {
        &self.otherwise
    }

    /// The types named, with their filters, in type order.
    pub fn named(&self) -> impl Iterator<Item = (&str, &Filter)> {
        self.by_type.iter().map(|(t, f)| (t.as_str(), f))
    }

    /// Whether every row of every type passes (nothing to add to a query).
    pub fn is_everything(&self) -> bool {
        is_everything(&self.otherwise) && self.by_type.values().all(is_everything)
    }
}

impl From<Filter> for Access {
    fn from(filter: Filter) -> Access {
        Access::uniform(filter)
    }
}

/// Whether `filter` passes every row.
pub fn is_everything(filter: &Filter) -> bool {
    filter.patients == PatientScope::Any
        && filter.hide_restricted == RestrictedRule::Show
        && !filter.hide_sensitive
}

/// The search index of a resource as the store writes it: its R4 search parameters'
/// entries ([`fhir::index::extract`]) followed by its [`access_entries`].
pub fn full_index(resource_type: &str, value: &Value) -> Vec<IndexEntry> {
    let mut index = fhir::index::extract(value);
    let access = access_entries(resource_type, value, &index);
    index.extend(access);
    index
}

/// The access index entries of a resource of `resource_type` whose R4 search index is `index`
/// (see the [module docs](self)).
pub fn access_entries(resource_type: &str, value: &Value, index: &[IndexEntry]) -> Vec<IndexEntry> {
    let labels = policy::labels(value);
    let mut out = vec![token(LABEL_PARAM, LABEL_SYSTEM, label_level(&labels))];
    if let Some(ods) = &labels.author_organisation {
        out.push(token(AUTHOR_PARAM, ODS_SYSTEM, ods));
    }
    for patient in compartment_links(resource_type, index) {
        out.push(reference(PATIENT_PARAM, "Patient", &patient));
    }
    if resource_type == "Consent" {
        for organisation in consent_refusals(value) {
            out.push(reference(REFUSES_PARAM, "Organization", &organisation));
        }
    }
    if resource_type == "DocumentReference" {
        for binary in binaries_of(value) {
            out.push(reference(BINARY_PARAM, "Binary", &binary));
        }
    }
    out
}

/// The one code of [`LABEL_PARAM`] that says both labels.
pub fn label_level(labels: &policy::Labels) -> &'static str {
    if labels.restricted {
        LABEL_RESTRICTED
    } else if labels.sensitive {
        LABEL_SENSITIVE
    } else {
        LABEL_ORDINARY
    }
}

fn token(param: &'static str, system: &str, code: &str) -> IndexEntry {
    IndexEntry {
        param,
        value: IndexValue::Token {
            system: Some(system.to_string()),
            code: code.to_string(),
        },
    }
}

fn reference(param: &'static str, target_type: &str, id: &str) -> IndexEntry {
    IndexEntry {
        param,
        value: IndexValue::Reference {
            target_type: Some(target_type.to_string()),
            target_id: Some(id.to_string()),
            url: format!("{target_type}/{id}"),
        },
    }
}

/// The Patients a resource of `resource_type` references through its type's patient
/// compartment parameters (`fhir::compartment`), sorted and without repeats. For a Patient
/// these are the Patients it links to; its own id is not among them.
pub fn compartment_links(resource_type: &str, index: &[IndexEntry]) -> Vec<String> {
    let params = fhir::compartment::patient_compartment_params(resource_type);
    let ids: BTreeSet<&str> = index
        .iter()
        .filter(|e| params.contains(&e.param))
        .filter_map(|e| match &e.value {
            IndexValue::Reference {
                target_type: Some(t),
                target_id: Some(id),
                ..
            } if t == "Patient" => Some(id.as_str()),
            _ => None,
        })
        .collect();
    ids.into_iter().map(str::to_string).collect()
}

/// The Patients whose compartment holds the resource `resource_type/id` indexed as `index`:
/// a Patient itself and those it links to; for other types [`compartment_links`]. Empty for a
/// Binary: see [`binary_admitted`].
pub fn compartment_patients(resource_type: &str, id: &str, index: &[IndexEntry]) -> Vec<String> {
    let mut patients = compartment_links(resource_type, index);
    if resource_type == "Patient" && !patients.iter().any(|p| p == id) {
        patients.push(id.to_string());
        patients.sort();
    }
    patients
}

/// The facts [`Filter::admits`] needs about a resource, computed from its JSON as the store
/// indexes it. For a Binary these are its own (no patients, its own labels); whether a filter
/// admits it depends on its DocumentReferences ([`binary_admitted`]).
pub fn resource_facts(resource_type: &str, id: &str, value: &Value) -> ResourceFacts {
    let index = fhir::index::extract(value);
    ResourceFacts {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        patients: compartment_patients(resource_type, id, &index),
        labels: policy::labels(value),
    }
}

/// Whether `filter` admits a Binary whose own facts are `own`, named by the DocumentReferences
/// whose facts are `documents` (current ones only): one admitted DocumentReference suffices;
/// with none, its own facts decide. `owners` as for [`Filter::admits`].
pub fn binary_admitted(
    filter: &Filter,
    own: &ResourceFacts,
    documents: &[ResourceFacts],
    owners: &[policy::PatientFacts],
) -> bool {
    if documents.is_empty() {
        filter.admits(own, owners)
    } else {
        documents.iter().any(|d| filter.admits(d, owners))
    }
}

/// The Organizations (ids) an active Consent refuses.
///
/// The rule: a Consent with `status` `active` refuses every Organization named by a local
/// reference in `actor.reference` of a provision whose `type` is `deny`, at the top level or
/// nested at any depth. The provision's other restrictions (period, action, purpose, data,
/// class) are not considered: refusing part of the record counts as refusing the organisation,
/// which errs on the side of the patient's privacy (staff can still break glass). A provision
/// without a `type` refuses nothing; draft, inactive (revoked), rejected and entered-in-error
/// Consents refuse nothing. References are read as the search index reads them
/// (`Organization/{id}`, or a URL ending so).
pub fn consent_refusals(consent: &Value) -> Vec<String> {
    let is_active_consent = consent.get("resourceType").and_then(Value::as_str) == Some("Consent")
        && consent.get("status").and_then(Value::as_str) == Some("active");
    if !is_active_consent {
        return Vec::new();
    }
    let mut refused = BTreeSet::new();
    let mut pending: Vec<&Value> = consent.get("provision").into_iter().collect();
    while let Some(provision) = pending.pop() {
        if provision.get("type").and_then(Value::as_str) == Some("deny") {
            for actor in array(provision.get("actor")) {
                let target = actor
                    .get("reference")
                    .and_then(|r| r.get("reference"))
                    .and_then(Value::as_str)
                    .and_then(fhir::fhirpath::parse_reference);
                if let Some(("Organization", id)) = target {
                    refused.insert(id.to_string());
                }
            }
        }
        pending.extend(array(provision.get("provision")));
    }
    refused.into_iter().collect()
}

/// The Binaries (ids) a DocumentReference's `content[].attachment.url` points at, read as the
/// search index reads references (`Binary/{id}`, or a URL ending so).
pub fn binaries_of(document: &Value) -> Vec<String> {
    let ids: BTreeSet<String> = array(document.get("content"))
        .filter_map(|c| c.get("attachment")?.get("url")?.as_str())
        .filter_map(fhir::fhirpath::parse_reference)
        .filter(|(t, _)| *t == "Binary")
        .map(|(_, id)| id.to_string())
        .collect();
    ids.into_iter().collect()
}

/// The elements of a JSON array (nothing for anything else).
fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entries_of(value: &Value) -> Vec<IndexEntry> {
        let ty = value["resourceType"].as_str().unwrap_or("").to_string();
        let index = fhir::index::extract(value);
        access_entries(&ty, value, &index)
    }

    fn codes(entries: &[IndexEntry], param: &str) -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.param == param)
            .map(|e| match &e.value {
                IndexValue::Token { code, .. } => code.clone(),
                IndexValue::Reference { target_id, .. } => target_id.clone().unwrap_or_default(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_resource_gets_exactly_one_label_level() {
        let plain = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/a"}});
        assert_eq!(codes(&entries_of(&plain), LABEL_PARAM), ["ordinary"]);
        let psy = json!({"resourceType": "Observation", "meta": {"security": [
            {"system": policy::codes::ACT_CODE, "code": "PSY"}]}});
        assert_eq!(codes(&entries_of(&psy), LABEL_PARAM), ["sensitive"]);
        let r = json!({"resourceType": "Observation", "meta": {"security": [
            {"system": policy::codes::CONFIDENTIALITY, "code": "R"}]}});
        assert_eq!(codes(&entries_of(&r), LABEL_PARAM), ["restricted"]);
    }

    #[test]
    fn author_and_compartment_patients_are_indexed() {
        let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "meta": {"tag": [{"system": ODS_SYSTEM, "code": "A81001"}]},
            "subject": {"reference": "Patient/a"},
            "performer": [{"reference": "Patient/b"}, {"reference": "Practitioner/c"}, {"reference": "Patient/a"}]});
        let e = entries_of(&o);
        assert_eq!(codes(&e, AUTHOR_PARAM), ["A81001"]);
        assert_eq!(codes(&e, PATIENT_PARAM), ["a", "b"]);
    }

    #[test]
    fn a_patient_is_in_its_own_compartment_and_those_it_links_to() {
        let p = json!({"resourceType": "Patient", "id": "p",
            "link": [{"other": {"reference": "Patient/q"}, "type": "seealso"},
                     {"other": {"reference": "RelatedPerson/r"}, "type": "seealso"}]});
        let index = fhir::index::extract(&p);
        assert_eq!(codes(&entries_of(&p), PATIENT_PARAM), ["q"]);
        assert_eq!(compartment_patients("Patient", "p", &index), ["p", "q"]);
        assert_eq!(resource_facts("Patient", "p", &p).patients, ["p", "q"]);
    }

    #[test]
    fn types_outside_the_compartment_have_no_patients() {
        let org = json!({"resourceType": "Organization", "name": "x",
            "partOf": {"reference": "Patient/a"}});
        assert!(codes(&entries_of(&org), PATIENT_PARAM).is_empty());
    }

    #[test]
    fn consents_refuse_organisations_only_when_active_and_deny() {
        let consent = |status: &str, provision: Value| json!({"resourceType": "Consent", "status": status, "provision": provision});
        let deny_org = json!({"type": "deny", "actor": [
            {"role": {"text": "x"}, "reference": {"reference": "Organization/o1"}},
            {"role": {"text": "x"}, "reference": {"reference": "Practitioner/p1"}}]});
        assert_eq!(
            consent_refusals(&consent("active", deny_org.clone())),
            ["o1"]
        );
        for status in [
            "inactive",
            "draft",
            "rejected",
            "entered-in-error",
            "proposed",
        ] {
            assert!(
                consent_refusals(&consent(status, deny_org.clone())).is_empty(),
                "{status}"
            );
        }
        let permit = json!({"type": "permit", "actor": [
            {"role": {"text": "x"}, "reference": {"reference": "Organization/o1"}}]});
        assert!(consent_refusals(&consent("active", permit)).is_empty());
        let untyped = json!({"actor": [
            {"role": {"text": "x"}, "reference": {"reference": "Organization/o1"}}]});
        assert!(consent_refusals(&consent("active", untyped)).is_empty());
        let nested = json!({"type": "permit", "provision": [{"type": "permit"},
            {"type": "deny", "actor": [{"role": {"text": "x"}, "reference": {"reference": "http://h/fhir/Organization/o2"}}]}]});
        assert_eq!(consent_refusals(&consent("active", nested)), ["o2"]);
        let e = entries_of(&consent("active", deny_org));
        assert_eq!(codes(&e, REFUSES_PARAM), ["o1"]);
        assert!(
            consent_refusals(&json!({"resourceType": "Consent", "status": "active",
            "provision": {"type": "deny", "actor": "x", "provision": 5}}))
            .is_empty()
        );
    }

    #[test]
    fn document_references_name_their_binaries() {
        let d = json!({"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": "Patient/a"},
            "content": [{"attachment": {"url": "Binary/b1"}}, {"attachment": {"url": "https://x.example/doc.pdf"}},
                        {"attachment": {"url": "Observation/o"}}, {"attachment": {}}]});
        assert_eq!(binaries_of(&d), ["b1"]);
        let e = entries_of(&d);
        assert_eq!(codes(&e, BINARY_PARAM), ["b1"]);
        assert_eq!(codes(&e, PATIENT_PARAM), ["a"]);
        assert!(binaries_of(&json!({"content": "x"})).is_empty());
    }

    #[test]
    fn access_parameter_names_are_no_r4_search_parameter() {
        for param in [
            LABEL_PARAM,
            AUTHOR_PARAM,
            PATIENT_PARAM,
            REFUSES_PARAM,
            BINARY_PARAM,
        ] {
            for ty in fhir::RESOURCE_TYPES {
                assert!(
                    fhir::search_params::lookup(ty, param).is_none(),
                    "{ty}.{param}"
                );
            }
        }
    }

    #[test]
    fn access_picks_the_filter_of_each_type() {
        let only = Filter {
            patients: PatientScope::Only(vec!["a".into()]),
            ..Filter::everything()
        };
        let access = Access::uniform(only.clone()).with("Practitioner", Filter::everything());
        assert_eq!(access.filter_for("Observation"), &only);
        assert_eq!(access.filter_for("Practitioner"), &Filter::everything());
        assert!(!access.is_everything());
        assert!(Access::everything().is_everything());
        assert!(!Access::uniform(Filter::nothing()).is_everything());
    }

    #[test]
    fn a_binary_follows_its_documents_or_else_its_own_facts() {
        let facts = |ty: &str, patients: &[&str]| ResourceFacts {
            resource_type: ty.into(),
            id: "x".into(),
            patients: patients.iter().map(|p| p.to_string()).collect(),
            labels: Default::default(),
        };
        let only_a = Filter {
            patients: PatientScope::Only(vec!["a".into()]),
            ..Filter::everything()
        };
        let own = facts("Binary", &[]);
        assert!(!binary_admitted(&only_a, &own, &[], &[]));
        assert!(binary_admitted(&Filter::everything(), &own, &[], &[]));
        let docs = [
            facts("DocumentReference", &["b"]),
            facts("DocumentReference", &["a"]),
        ];
        assert!(binary_admitted(&only_a, &own, &docs, &[]));
        assert!(!binary_admitted(&only_a, &own, &docs[..1], &[]));
    }
}
