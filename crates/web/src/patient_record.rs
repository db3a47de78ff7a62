//! What a patient's record is on this server, for `Patient/$everything` and Bulk Data export:
//! the resource types of the patient compartment (R4 CompartmentDefinition, see
//! [`fhir::compartment`]), and the `_type` and `_since` parameters both operations take.
//!
//! The record is the compartment only. R4 allows `$everything` to add the Practitioners,
//! Organizations and other resources the record points at; they are shared by many patients and
//! readable on their own, so they are left out, and `_type` naming a type that is never in a
//! compartment is refused rather than silently answered with nothing.

use chrono::{DateTime, Utc};
use fhir::{Issue, IssueType};

use crate::error::WebError;

/// Whether resources of `resource_type` can be in a patient's compartment.
pub fn in_compartment(resource_type: &str) -> bool {
    resource_type == "Patient"
        || !fhir::compartment::patient_compartment_params(resource_type).is_empty()
}

/// The types of a patient's record, Patient first, then in the CapabilityStatement's order.
pub fn compartment_types() -> Vec<&'static str> {
    fhir::RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|t| in_compartment(t))
        .collect()
}

/// The types named by every `_type` value (each a comma-separated list), without repeats and in
/// the server's order; None when no `_type` was given. `compartment_only` refuses types that are
/// never in a patient's compartment.
pub fn parse_types(
    values: &[&str],
    compartment_only: bool,
) -> Result<Option<Vec<&'static str>>, WebError> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut named: Vec<&str> = Vec::new();
    for value in values {
        for t in value.split(',').map(str::trim) {
            if t.is_empty() {
                return Err(bad_type(
                    "_type has an empty entry; list resource types separated by commas, e.g. _type=Patient,Observation".into(),
                ));
            }
            let Some(known) = fhir::RESOURCE_TYPES.iter().find(|k| **k == t) else {
                return Err(bad_type(format!(
                    "_type names {:?}, which is not a resource type this server stores; see /fhir/metadata for the list",
                    t.chars().take(64).collect::<String>()
                )));
            };
            if compartment_only && !in_compartment(known) {
                return Err(bad_type(format!(
                    "_type names {known}, which is never in a patient's compartment; a patient's \
                     record holds only {}",
                    compartment_types().join(", ")
                )));
            }
            named.push(known);
        }
    }
    Ok(Some(
        fhir::RESOURCE_TYPES
            .iter()
            .copied()
            .filter(|t| named.contains(t))
            .collect(),
    ))
}

fn bad_type(message: String) -> WebError {
    WebError::BadRequest(Issue::error(IssueType::Invalid, message).at("_type"))
}

/// `_since`: an instant (or a date-time, taken at its start). Resources last updated strictly
/// after it are included.
pub fn parse_since(value: &str) -> Result<DateTime<Utc>, WebError> {
    fhir::datetime::parse_datetime(value)
        .and_then(|d| DateTime::from_timestamp_millis(d.range.low))
        .ok_or_else(|| {
            WebError::BadRequest(
                Issue::error(
                    IssueType::Invalid,
                    format!(
                        "_since must be an instant such as 2024-01-31T09:00:00Z, not {:?}",
                        value.chars().take(64).collect::<String>()
                    ),
                )
                .at("_since"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compartment_types_start_with_patient_and_leave_out_shared_resources() {
        let types = compartment_types();
        assert_eq!(types[0], "Patient");
        for t in ["Observation", "Appointment", "Condition", "Encounter"] {
            assert!(types.contains(&t), "{t}");
        }
        for t in ["Practitioner", "Organization", "Location", "Binary"] {
            assert!(!types.contains(&t), "{t}");
        }
    }

    #[test]
    fn types_are_merged_deduplicated_and_ordered() {
        let types = parse_types(&["Observation,Patient", "Condition,Observation"], true)
            .unwrap()
            .unwrap();
        assert_eq!(types, ["Patient", "Condition", "Observation"]);
        assert_eq!(parse_types(&[], true).unwrap(), None);
    }

    #[test]
    fn unknown_empty_and_non_compartment_types_are_refused() {
        assert!(parse_types(&["Nope"], false).is_err());
        assert!(parse_types(&["Patient,"], false).is_err());
        assert!(parse_types(&["Practitioner"], true).is_err());
        assert_eq!(
            parse_types(&["Practitioner"], false).unwrap().unwrap(),
            ["Practitioner"]
        );
    }

    #[test]
    fn since_takes_instants_and_refuses_anything_else() {
        let t = parse_since("2024-01-31T09:00:00Z").unwrap();
        assert_eq!(t.timestamp_millis(), 1_706_691_600_000);
        assert!(parse_since("yesterday").is_err());
    }
}
