//! A proxy's grant, read from the RelatedPerson that links the proxy to the patient: the one
//! place that says how a RelatedPerson becomes a [`ProxyGrant`].
//!
//! - **Relationship**: from `RelatedPerson.relationship` (v3-RoleCode): a mother, father or
//!   parent (`MTH`, `FTH`, `PRN`, `NMTH`, `NFTH`, `STPPRN`, `ADOPTP`…) is a parent; `GUARD` a
//!   guardian; `CAREGIVER` or a personal relationship a carer; anything else other.
//! - **Dates**: `RelatedPerson.period` (start and end, inclusive); no start means since always.
//!   An inactive RelatedPerson (`active: false`) grants nothing.
//! - **What it opens**: the Portico extension [`PROXY_ACCESS_EXTENSION`] with sub-extensions
//!   `feature` (code, repeating: the [`Feature`] names in kebab case, e.g. `appointments`),
//!   `young-person-consented` (boolean: the young person, 16 or over, granted it) and
//!   `clinician-allows-sensitive` (boolean). Without the extension, parents and guardians get
//!   every feature (the age rules still apply) and everyone else gets none: a carer's access is
//!   always granted explicitly.

use chrono::NaiveDate;
use serde_json::Value;

use crate::feature::{Feature, FeatureSet};
use crate::who::{ProxyGrant, Relationship};

/// The extension on RelatedPerson saying what a proxy may see and do.
pub const PROXY_ACCESS_EXTENSION: &str =
    "https://fhir.portico.health/StructureDefinition/proxy-access";

/// The code of a [`Feature`] in the extension.
pub fn feature_code(feature: Feature) -> &'static str {
    match feature {
        Feature::Demographics => "demographics",
        Feature::Appointments => "appointments",
        Feature::Letters => "letters",
        Feature::Messages => "messages",
        Feature::Record => "record",
        Feature::Prescriptions => "prescriptions",
        Feature::Questionnaires => "questionnaires",
        Feature::Readings => "readings",
        Feature::Consent => "consent",
        Feature::Audit => "audit",
    }
}

fn feature_named(code: &str) -> Option<Feature> {
    Feature::ALL.into_iter().find(|f| feature_code(*f) == code)
}

const PARENT_CODES: &[&str] = &[
    "MTH", "FTH", "PRN", "NMTH", "NFTH", "NPRN", "STPMTH", "STPFTH", "STPPRN", "ADOPTM", "ADOPTF",
    "ADOPTP", "FMTH", "FFTH", "GESTM",
];
const CARER_CODES: &[&str] = &[
    "CAREGIVER",
    "ONESELF",
    "FAMMEMB",
    "SPS",
    "HUSB",
    "WIFE",
    "DOMPART",
    "CHILD",
    "SON",
    "DAU",
];

fn relationship(related_person: &Value) -> Relationship {
    let codes = related_person
        .get("relationship")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|cc| cc.get("coding").and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("code").and_then(Value::as_str));
    let mut found = Relationship::Other;
    for code in codes {
        if PARENT_CODES.contains(&code) {
            return Relationship::Parent;
        }
        if code == "GUARD" {
            found = Relationship::Guardian;
        } else if CARER_CODES.contains(&code) && found == Relationship::Other {
            found = Relationship::Carer;
        }
    }
    found
}

fn date(v: Option<&Value>) -> Option<NaiveDate> {
    // A date or the date part of a dateTime.
    let text = v?.as_str()?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// The id in a `Patient/{id}` reference.
fn patient_id(related_person: &Value) -> Option<String> {
    let reference = related_person.get("patient")?.get("reference")?.as_str()?;
    let id = reference.strip_prefix("Patient/")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// The grant a RelatedPerson gives (None when it names no patient or is inactive).
pub fn proxy_grant(related_person: &Value) -> Option<ProxyGrant> {
    if related_person.get("resourceType").and_then(Value::as_str) != Some("RelatedPerson") {
        return None;
    }
    if related_person.get("active").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    let id = related_person.get("id")?.as_str()?.to_string();
    let patient = patient_id(related_person)?;
    let relationship = relationship(related_person);
    let period = related_person.get("period");
    let start = date(period.and_then(|p| p.get("start"))).unwrap_or(NaiveDate::MIN);
    let end = date(period.and_then(|p| p.get("end")));
    let access = related_person
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(PROXY_ACCESS_EXTENSION));
    let (features, young_person_consented, clinician_allows_sensitive) = match access {
        None if relationship.is_parental() => (FeatureSet::all(), false, false),
        None => (FeatureSet::empty(), false, false),
        Some(ext) => {
            let parts: Vec<&Value> = ext
                .get("extension")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            let flag = |url: &str| {
                parts.iter().any(|p| {
                    p.get("url").and_then(Value::as_str) == Some(url)
                        && p.get("valueBoolean").and_then(Value::as_bool) == Some(true)
                })
            };
            let features = parts
                .iter()
                .filter(|p| p.get("url").and_then(Value::as_str) == Some("feature"))
                .filter_map(|p| p.get("valueCode").and_then(Value::as_str))
                .filter_map(feature_named)
                .collect();
            (
                features,
                flag("young-person-consented"),
                flag("clinician-allows-sensitive"),
            )
        }
    };
    Some(ProxyGrant {
        related_person: id,
        patient,
        relationship,
        features,
        start,
        end,
        young_person_consented,
        clinician_allows_sensitive,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rp(extra: Value) -> Value {
        let mut v = json!({
            "resourceType": "RelatedPerson",
            "id": "rp-1",
            "patient": {"reference": "Patient/child-1"},
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}],
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    }

    #[test]
    fn a_mother_without_the_extension_gets_every_feature_from_always() {
        let g = proxy_grant(&rp(json!({}))).expect("a grant");
        assert_eq!(g.related_person, "rp-1");
        assert_eq!(g.patient, "child-1");
        assert_eq!(g.relationship, Relationship::Parent);
        assert_eq!(g.features, FeatureSet::all());
        assert_eq!((g.start, g.end), (NaiveDate::MIN, None));
        assert!(!g.young_person_consented && !g.clinician_allows_sensitive);
    }

    #[test]
    fn a_carer_without_the_extension_gets_nothing_and_with_it_what_it_lists() {
        let carer = json!({"relationship": [{"coding": [{"code": "CAREGIVER"}]}]});
        let g = proxy_grant(&rp(carer.clone())).expect("a grant");
        assert_eq!(g.relationship, Relationship::Carer);
        assert_eq!(g.features, FeatureSet::empty());
        let mut with = carer;
        with["extension"] = json!([{"url": PROXY_ACCESS_EXTENSION, "extension": [
            {"url": "feature", "valueCode": "appointments"},
            {"url": "feature", "valueCode": "prescriptions"},
            {"url": "feature", "valueCode": "no-such-feature"},
            {"url": "clinician-allows-sensitive", "valueBoolean": true}
        ]}]);
        let g = proxy_grant(&rp(with)).expect("a grant");
        let expected: FeatureSet = [Feature::Appointments, Feature::Prescriptions]
            .into_iter()
            .collect();
        assert_eq!(g.features, expected);
        assert!(g.clinician_allows_sensitive && !g.young_person_consented);
    }

    #[test]
    fn dates_relationships_and_refusals() {
        let g = proxy_grant(&rp(json!({
            "period": {"start": "2020-01-31", "end": "2026-12-31T23:00:00Z"},
            "relationship": [{"coding": [{"code": "GUARD"}]}]
        })))
        .expect("a grant");
        assert_eq!(g.relationship, Relationship::Guardian);
        assert_eq!(g.start, NaiveDate::from_ymd_opt(2020, 1, 31).unwrap());
        assert_eq!(g.end, NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(
            proxy_grant(&rp(
                json!({"relationship": [{"coding": [{"code": "NOTE"}]}]})
            ))
            .map(|g| g.relationship),
            Some(Relationship::Other)
        );
        assert!(proxy_grant(&rp(json!({"active": false}))).is_none());
        assert!(proxy_grant(&rp(json!({"patient": {"reference": "Group/x"}}))).is_none());
        assert!(proxy_grant(&rp(json!({"patient": {"reference": "Patient/a/b"}}))).is_none());
        assert!(proxy_grant(&json!({"resourceType": "Patient", "id": "x"})).is_none());
        assert!(proxy_grant(&json!(null)).is_none());
    }

    #[test]
    fn every_feature_has_a_code_that_reads_back() {
        for f in Feature::ALL {
            assert_eq!(feature_named(feature_code(f)), Some(f));
        }
    }
}
