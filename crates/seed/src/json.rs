//! Small builders for the FHIR data types every resource uses.

use serde_json::{json, Value};

pub(crate) const SNOMED: &str = "http://snomed.info/sct";
pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";
pub(crate) const DMD: &str = "https://dmd.nhs.uk";
pub(crate) const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub(crate) const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub(crate) const GMC: &str = "https://fhir.hl7.org.uk/Id/gmc-number";
pub(crate) const NMC: &str = "https://fhir.hl7.org.uk/Id/nmc-number";
pub(crate) const GPHC: &str = "https://fhir.hl7.org.uk/Id/gphc-number";
pub(crate) const UBRN: &str = "https://fhir.nhs.uk/Id/UBRN";
pub(crate) const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub(crate) const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
pub(crate) const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub(crate) const V2_0074: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
pub(crate) const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub(crate) const V2_0276: &str = "http://terminology.hl7.org/CodeSystem/v2-0276";
pub(crate) const INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
pub(crate) const ETHNIC_EXTENSION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory";
pub(crate) const ETHNIC_SYSTEM: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland";

/// A CodeableConcept with one coding and the display as its text.
pub(crate) fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

/// A Reference with a display.
pub(crate) fn reference(kind: &str, id: &str, display: &str) -> Value {
    json!({"reference": format!("{kind}/{id}"), "display": display})
}

/// A Reference without a display.
pub(crate) fn reference_to(kind: &str, id: &str) -> Value {
    json!({"reference": format!("{kind}/{id}")})
}

/// A UCUM quantity.
pub(crate) fn quantity(value: f64, unit: &str, ucum: &str) -> Value {
    json!({"value": value, "unit": unit, "system": UCUM, "code": ucum})
}

/// Rounds to `places` decimal places, for values as a laboratory reports them.
pub(crate) fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// `{"resourceType": …, "id": …, "meta": {"profile": [UK Core …]}}`, to which a resource's
/// elements are added.
pub(crate) fn resource(kind: crate::kind::Kind, id: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("resourceType".into(), Value::String(kind.name().into()));
    m.insert("id".into(), Value::String(id.into()));
    if let Some(profile) = kind.profile() {
        m.insert("meta".into(), json!({"profile": [profile]}));
    }
    m
}

/// Builds a resource from its header and a JSON object of its elements.
pub(crate) fn build(kind: crate::kind::Kind, id: &str, body: Value) -> Value {
    let mut m = resource(kind, id);
    if let Value::Object(body) = body {
        m.extend(body);
    }
    Value::Object(m)
}
