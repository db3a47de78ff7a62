//! The patient compartment, from the R4 CompartmentDefinition in
//! `definitions/compartmentdefinition-patient.json`: which search parameters of each resource
//! type link a resource to a patient.
//!
//! A Patient resource is the root of its own compartment: `Patient/123` is in the compartment
//! of patient 123 by its id, which no search parameter expresses. The definition also lists
//! `link` for Patient, which puts a Patient in the compartment of the other Patients it links
//! to (`Patient.link.other`), so [`patient_compartment_params`]`("Patient")` is `["link"]`;
//! callers deciding whether a Patient belongs to a compartment check its id first.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::definitions::COMPARTMENT_PATIENT;

#[derive(Deserialize)]
struct CompartmentDefinition {
    resource: Vec<CompartmentResource>,
}

#[derive(Deserialize)]
struct CompartmentResource {
    code: String,
    #[serde(default)]
    param: Vec<String>,
}

/// The definition as written; [`PARAMS`] borrows from it.
static DEFINITION: LazyLock<CompartmentDefinition> = LazyLock::new(|| {
    // The definition is embedded at build time; should it not parse, the compartment is empty
    // and the tests below fail.
    serde_json::from_str(COMPARTMENT_PATIENT).unwrap_or(CompartmentDefinition {
        resource: Vec::new(),
    })
});

/// Every resource type the definition lists, with the codes of its linking parameters.
static PARAMS: LazyLock<HashMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
    let def: &'static CompartmentDefinition = &DEFINITION;
    def.resource
        .iter()
        .map(|r| {
            (
                r.code.as_str(),
                r.param.iter().map(String::as_str).collect(),
            )
        })
        .collect()
});

/// The codes of the search parameters that put a resource of `resource_type` in a patient's
/// compartment (`Observation` → `["subject", "performer"]`). Empty for types that are never in
/// it (`Practitioner`, `Binary`) and for unknown types. See the module documentation for Patient.
pub fn patient_compartment_params(resource_type: &str) -> &'static [&'static str] {
    PARAMS.get(resource_type).map_or(&[], |v| v.as_slice())
}

/// Whether `name` is an R4 resource type. The CompartmentDefinition lists every resource type
/// of the version (with or without linking parameters), which makes it the table of them.
pub fn is_r4_resource_type(name: &str) -> bool {
    PARAMS.contains_key(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search_params::{lookup, ParamType};
    use crate::RESOURCE_TYPES;

    #[test]
    fn observation_is_linked_by_subject_and_performer() {
        assert_eq!(
            patient_compartment_params("Observation"),
            ["subject", "performer"]
        );
    }

    #[test]
    fn appointment_is_linked_by_actor() {
        assert_eq!(patient_compartment_params("Appointment"), ["actor"]);
    }

    #[test]
    fn patient_is_linked_to_the_patients_it_links_to() {
        assert_eq!(patient_compartment_params("Patient"), ["link"]);
    }

    #[test]
    fn types_outside_the_compartment_have_no_params() {
        for t in [
            "Practitioner",
            "Organization",
            "Location",
            "Binary",
            "Questionnaire",
            "Slot",
            "HealthcareService",
        ] {
            assert!(patient_compartment_params(t).is_empty(), "{t}");
        }
        assert!(patient_compartment_params("NoSuchType").is_empty());
    }

    #[test]
    fn every_compartment_param_of_a_type_in_scope_is_a_reference_param_we_support() {
        for t in RESOURCE_TYPES {
            assert!(is_r4_resource_type(t), "{t}");
            for code in patient_compartment_params(t) {
                let def = lookup(t, code)
                    .unwrap_or_else(|| panic!("{t}.{code} is not a supported search parameter"));
                assert_eq!(def.param_type, ParamType::Reference, "{t}.{code}");
            }
        }
    }

    #[test]
    fn all_r4_resource_types_are_known() {
        assert_eq!(PARAMS.len(), 145);
        assert!(is_r4_resource_type("Medication"));
        assert!(!is_r4_resource_type("Id"));
        assert!(!is_r4_resource_type("StructureDefinitionX"));
    }
}
