//! The resource types Portico serves.

/// Every resource type in scope, in the order the CapabilityStatement lists them.
pub const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "RelatedPerson",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "HealthcareService",
    "Schedule",
    "Slot",
    "Appointment",
    "ServiceRequest",
    "Task",
    "DocumentReference",
    "Binary",
    "Communication",
    "Questionnaire",
    "QuestionnaireResponse",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "DiagnosticReport",
    "Immunization",
    "Encounter",
    "Consent",
    "AuditEvent",
    "Provenance",
    "Flag",
    "Group",
];

pub fn is_supported_type(name: &str) -> bool {
    RESOURCE_TYPES.contains(&name)
}

/// A FHIR logical id: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
