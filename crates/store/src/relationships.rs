//! Which resources give an organisation a legitimate relationship with a patient, and which
//! Consents refuse one: defined once, in [`RELATIONSHIPS`] and
//! [`crate::access::consent_refusals`], and used twice: by [`related_organisations`] and
//! [`refused_organisations`] (for the web layer to fill `policy::PatientFacts`), and by the SQL
//! of `PatientScope::RelatedTo` (`crate::sql`), so that a single read and a search agree.
//!
//! A relationship is a current (not deleted) resource of a row's type that names the patient
//! through the row's patient parameter (a Patient: itself) and an Organization through the
//! row's organisation parameter — directly, or through one intermediate resource (a Location,
//! HealthcareService or PractitionerRole) whose own parameter names the Organization. Resources
//! whose `status` is `entered-in-error` are mistakes and do not count; every other status does
//! (a cancelled appointment still shows the organisation was involved). Organisations are
//! referenced by id and known to the policy by their ODS code: the `identifier` of the
//! Organization in the ODS system ([`crate::access::ODS_SYSTEM`]).

use std::collections::BTreeSet;

use fhir::index::{IndexEntry, IndexValue};

use crate::access::ODS_SYSTEM;
use crate::error::Result;
use crate::model::ResourceVersion;
use crate::query::{Condition, ReferenceValue, SearchQuery, Test, TokenSystem, TokenValue};
use crate::{Store, StoreError};

/// Why an organisation is related to a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// GP registration, or the organisation managing the patient's record.
    Registration,
    /// An encounter (episode of care) the organisation provided.
    Episode,
    /// A referral the organisation sent or received.
    Referral,
    /// An appointment at one of the organisation's locations, services or roles.
    Appointment,
}

/// One intermediate resource between the relationship and the Organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub resource_type: &'static str,
    /// Its reference parameter naming the Organization.
    pub organisation_param: &'static str,
}

/// One way a resource relates a patient to an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relationship {
    pub kind: Kind,
    pub resource_type: &'static str,
    /// The reference parameter naming the Patient; None when the resource is the Patient.
    pub patient_param: Option<&'static str>,
    /// The reference parameter naming the Organization, or the [`Hop`] resource.
    pub organisation_param: &'static str,
    pub hop: Option<Hop>,
}

impl Relationship {
    /// The type the organisation parameter must point at: Organization, or the hop's type.
    pub fn points_at(&self) -> &'static str {
        self.hop.map_or("Organization", |h| h.resource_type)
    }

    /// Whether resources of this type have a `status` that can say they were entered in error.
    pub fn has_status(&self) -> bool {
        fhir::search_params::lookup(self.resource_type, "status").is_some()
    }
}

/// The status of a resource recorded by mistake, which establishes nothing.
pub const ENTERED_IN_ERROR: &str = "entered-in-error";

const fn direct(
    kind: Kind,
    resource_type: &'static str,
    patient_param: Option<&'static str>,
    organisation_param: &'static str,
) -> Relationship {
    Relationship {
        kind,
        resource_type,
        patient_param,
        organisation_param,
        hop: None,
    }
}

const fn via(
    kind: Kind,
    resource_type: &'static str,
    patient_param: Option<&'static str>,
    organisation_param: &'static str,
    hop_type: &'static str,
    hop_param: &'static str,
) -> Relationship {
    Relationship {
        kind,
        resource_type,
        patient_param,
        organisation_param,
        hop: Some(Hop {
            resource_type: hop_type,
            organisation_param: hop_param,
        }),
    }
}

/// Every relationship. EpisodeOfCare is not a type this server stores yet; when it is, its
/// `patient` and `organization` belong here.
pub const RELATIONSHIPS: &[Relationship] = &[
    // Patient.managingOrganization.
    direct(Kind::Registration, "Patient", None, "organization"),
    // Patient.generalPractitioner: the practice, or a GP's role at it.
    direct(Kind::Registration, "Patient", None, "general-practitioner"),
    via(
        Kind::Registration,
        "Patient",
        None,
        "general-practitioner",
        "PractitionerRole",
        "organization",
    ),
    // Encounter.serviceProvider.
    direct(
        Kind::Episode,
        "Encounter",
        Some("patient"),
        "service-provider",
    ),
    // ServiceRequest.performer and ServiceRequest.requester.
    direct(
        Kind::Referral,
        "ServiceRequest",
        Some("patient"),
        "performer",
    ),
    direct(
        Kind::Referral,
        "ServiceRequest",
        Some("patient"),
        "requester",
    ),
    // Appointment.participant.actor: Location.managingOrganization,
    // HealthcareService.providedBy, PractitionerRole.organization.
    via(
        Kind::Appointment,
        "Appointment",
        Some("patient"),
        "actor",
        "Location",
        "organization",
    ),
    via(
        Kind::Appointment,
        "Appointment",
        Some("patient"),
        "actor",
        "HealthcareService",
        "organization",
    ),
    via(
        Kind::Appointment,
        "Appointment",
        Some("patient"),
        "actor",
        "PractitionerRole",
        "organization",
    ),
];

/// Resources fetched per search while collecting relationships.
const PAGE: usize = 1000;
/// Ids named per `_id` search.
const ID_CHUNK: usize = 100;

/// The ODS codes of the organisations [`RELATIONSHIPS`] relate to Patient `patient_id`, sorted,
/// without repeats: `policy::PatientFacts::related_organisations`.
pub async fn related_organisations(store: &dyn Store, patient_id: &str) -> Result<Vec<String>> {
    if !fhir::types::is_valid_id(patient_id) {
        return Ok(Vec::new());
    }
    let mut organisations: BTreeSet<String> = BTreeSet::new();
    let mut hops: Vec<(Hop, BTreeSet<String>)> = Vec::new();
    for rel in RELATIONSHIPS {
        let resources = all_matches(store, relationship_query(rel, patient_id)).await?;
        for resource in &resources {
            let index = fhir::index::extract(&resource.parse()?);
            let targets = references(&index, rel.organisation_param, rel.points_at());
            match rel.hop {
                None => organisations.extend(targets),
                Some(hop) => match hops.iter_mut().find(|(h, _)| *h == hop) {
                    Some((_, ids)) => ids.extend(targets),
                    None => hops.push((hop, targets.collect())),
                },
            }
        }
    }
    for (hop, ids) in hops {
        for resource in by_ids(store, hop.resource_type, ids).await? {
            let index = fhir::index::extract(&resource.parse()?);
            organisations.extend(references(&index, hop.organisation_param, "Organization"));
        }
    }
    ods_codes(store, organisations).await
}

/// The ODS codes of the organisations the patient's active Consents refuse
/// ([`crate::access::consent_refusals`]), sorted, without repeats:
/// `policy::PatientFacts::refused_organisations`.
pub async fn refused_organisations(store: &dyn Store, patient_id: &str) -> Result<Vec<String>> {
    if !fhir::types::is_valid_id(patient_id) {
        return Ok(Vec::new());
    }
    let mut q = SearchQuery::all("Consent");
    q.conditions.push(names_patient("patient", patient_id));
    let mut organisations = BTreeSet::new();
    for consent in all_matches(store, q).await? {
        organisations.extend(crate::access::consent_refusals(&consent.parse()?));
    }
    ods_codes(store, organisations).await
}

/// The ODS codes of the current Organizations with these ids, sorted, without repeats.
pub async fn ods_codes(
    store: &dyn Store,
    organisation_ids: impl IntoIterator<Item = String>,
) -> Result<Vec<String>> {
    let mut codes = BTreeSet::new();
    for organisation in by_ids(store, "Organization", organisation_ids).await? {
        let index = fhir::index::extract(&organisation.parse()?);
        codes.extend(index.iter().filter_map(|e| match &e.value {
            IndexValue::Token {
                system: Some(system),
                code,
            } if e.param == "identifier" && system == ODS_SYSTEM => Some(code.clone()),
            _ => None,
        }));
    }
    Ok(codes.into_iter().collect())
}

/// The search for the resources of `rel` naming the patient.
fn relationship_query(rel: &Relationship, patient_id: &str) -> SearchQuery {
    let mut q = SearchQuery::all(rel.resource_type);
    q.conditions.push(match rel.patient_param {
        Some(param) => names_patient(param, patient_id),
        None => Condition::Id(vec![patient_id.to_string()]),
    });
    if rel.has_status() {
        q.conditions.push(Condition::Param {
            code: "status",
            test: Test::Token {
                values: vec![TokenValue {
                    system: TokenSystem::Any,
                    code: Some(ENTERED_IN_ERROR.to_string()),
                }],
                negate: true,
            },
        });
    }
    q
}

fn names_patient(param: &'static str, patient_id: &str) -> Condition {
    Condition::Param {
        code: param,
        test: Test::Reference(vec![ReferenceValue::Local {
            resource_type: Some("Patient".to_string()),
            id: patient_id.to_string(),
        }]),
    }
}

/// The ids of `target_type` resources that `param` entries of `index` reference.
fn references<'a>(
    index: &'a [IndexEntry],
    param: &'a str,
    target_type: &'a str,
) -> impl Iterator<Item = String> + 'a {
    index.iter().filter_map(move |e| match &e.value {
        IndexValue::Reference {
            target_type: Some(t),
            target_id: Some(id),
            ..
        } if e.param == param && t == target_type => Some(id.clone()),
        _ => None,
    })
}

/// The current resources of `resource_type` with these ids.
async fn by_ids(
    store: &dyn Store,
    resource_type: &str,
    ids: impl IntoIterator<Item = String>,
) -> Result<Vec<ResourceVersion>> {
    let ids: Vec<String> = ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut found = Vec::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut q = SearchQuery::all(resource_type);
        q.conditions.push(Condition::Id(chunk.to_vec()));
        found.extend(all_matches(store, q).await?);
    }
    Ok(found)
}

/// Every match of `q`, page by page.
async fn all_matches(store: &dyn Store, mut q: SearchQuery) -> Result<Vec<ResourceVersion>> {
    q.count = PAGE;
    q.offset = 0;
    let mut all = Vec::new();
    loop {
        let page = store.search(&q).await?;
        all.extend(page.matches);
        if !page.has_more {
            return Ok(all);
        }
        q.offset += PAGE;
        if q.offset > crate::query::MAX_OFFSET {
            return Err(StoreError::invalid(fhir::Issue::error(
                fhir::IssueType::TooCostly,
                format!(
                    "a patient has more than {} {} resources to look through for relationships",
                    crate::query::MAX_OFFSET,
                    q.resource_type
                ),
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir::search_params::{lookup, ParamType};

    fn targets(resource_type: &str, param: &str) -> Vec<&'static str> {
        match lookup(resource_type, param) {
            Some(def) if def.param_type == ParamType::Reference => def.targets.clone(),
            other => panic!("{resource_type}.{param} is not a reference parameter: {other:?}"),
        }
    }

    #[test]
    fn every_relationship_uses_reference_parameters_that_point_where_it_says() {
        for rel in RELATIONSHIPS {
            assert!(fhir::is_supported_type(rel.resource_type), "{rel:?}");
            if let Some(p) = rel.patient_param {
                assert!(
                    targets(rel.resource_type, p).contains(&"Patient"),
                    "{rel:?}"
                );
            } else {
                assert_eq!(rel.resource_type, "Patient");
            }
            assert!(
                targets(rel.resource_type, rel.organisation_param).contains(&rel.points_at()),
                "{rel:?}"
            );
            if let Some(hop) = rel.hop {
                assert!(fhir::is_supported_type(hop.resource_type), "{rel:?}");
                assert!(
                    targets(hop.resource_type, hop.organisation_param).contains(&"Organization"),
                    "{rel:?}"
                );
            }
        }
    }

    #[test]
    fn each_kind_of_relationship_is_there() {
        for kind in [
            Kind::Registration,
            Kind::Episode,
            Kind::Referral,
            Kind::Appointment,
        ] {
            assert!(RELATIONSHIPS.iter().any(|r| r.kind == kind), "{kind:?}");
        }
        assert!(!RELATIONSHIPS[0].has_status(), "a Patient has no status");
        assert!(RELATIONSHIPS.iter().any(Relationship::has_status));
    }
}
