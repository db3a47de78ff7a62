//! The resource types the generator writes: a subset of [`fhir::RESOURCE_TYPES`].

/// One resource type the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Organization,
    Location,
    HealthcareService,
    Practitioner,
    PractitionerRole,
    Schedule,
    Slot,
    Patient,
    RelatedPerson,
    Encounter,
    Appointment,
    Condition,
    AllergyIntolerance,
    MedicationRequest,
    Immunization,
    Observation,
    DiagnosticReport,
    ServiceRequest,
    DocumentReference,
    Binary,
}

impl Kind {
    /// Every kind, in the order the shared part and then a record are written.
    pub const ALL: [Kind; 20] = [
        Kind::Organization,
        Kind::Location,
        Kind::HealthcareService,
        Kind::Practitioner,
        Kind::PractitionerRole,
        Kind::Schedule,
        Kind::Slot,
        Kind::Patient,
        Kind::RelatedPerson,
        Kind::Encounter,
        Kind::Appointment,
        Kind::Condition,
        Kind::AllergyIntolerance,
        Kind::MedicationRequest,
        Kind::Immunization,
        Kind::Observation,
        Kind::DiagnosticReport,
        Kind::ServiceRequest,
        Kind::DocumentReference,
        Kind::Binary,
    ];

    /// The FHIR resource type name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Organization => "Organization",
            Kind::Location => "Location",
            Kind::HealthcareService => "HealthcareService",
            Kind::Practitioner => "Practitioner",
            Kind::PractitionerRole => "PractitionerRole",
            Kind::Schedule => "Schedule",
            Kind::Slot => "Slot",
            Kind::Patient => "Patient",
            Kind::RelatedPerson => "RelatedPerson",
            Kind::Encounter => "Encounter",
            Kind::Appointment => "Appointment",
            Kind::Condition => "Condition",
            Kind::AllergyIntolerance => "AllergyIntolerance",
            Kind::MedicationRequest => "MedicationRequest",
            Kind::Immunization => "Immunization",
            Kind::Observation => "Observation",
            Kind::DiagnosticReport => "DiagnosticReport",
            Kind::ServiceRequest => "ServiceRequest",
            Kind::DocumentReference => "DocumentReference",
            Kind::Binary => "Binary",
        }
    }

    /// The kind named `name`, if the generator writes it.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Position in [`Kind::ALL`]: indexes per-type buffers and counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A number unique to the kind, part of every hashed id's key.
    pub(crate) fn tag(self) -> u64 {
        self as u64 + 1
    }

    /// The short word in readable ids (`pat-0001-obs-3`).
    pub(crate) fn short(self) -> &'static str {
        match self {
            Kind::Organization => "org",
            Kind::Location => "loc",
            Kind::HealthcareService => "hs",
            Kind::Practitioner => "pr",
            Kind::PractitionerRole => "role",
            Kind::Schedule => "sch",
            Kind::Slot => "slot",
            Kind::Patient => "pat",
            Kind::RelatedPerson => "rp",
            Kind::Encounter => "enc",
            Kind::Appointment => "appt",
            Kind::Condition => "cond",
            Kind::AllergyIntolerance => "allergy",
            Kind::MedicationRequest => "med",
            Kind::Immunization => "imm",
            Kind::Observation => "obs",
            Kind::DiagnosticReport => "dr",
            Kind::ServiceRequest => "ref",
            Kind::DocumentReference => "letter",
            Kind::Binary => "letter-bin",
        }
    }

    /// The UK Core profile for the type, where UK Core has one.
    pub(crate) fn profile(self) -> Option<&'static str> {
        Some(match self {
            Kind::Organization => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Organization",
            Kind::Location => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Location",
            Kind::HealthcareService => {
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-HealthcareService"
            }
            Kind::Practitioner => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Practitioner",
            Kind::PractitionerRole => {
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-PractitionerRole"
            }
            Kind::Schedule => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Schedule",
            Kind::Slot => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Slot",
            Kind::Patient => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient",
            Kind::RelatedPerson => {
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-RelatedPerson"
            }
            Kind::Encounter => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Encounter",
            Kind::Appointment => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Appointment",
            Kind::Condition => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Condition",
            Kind::AllergyIntolerance => {
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-AllergyIntolerance"
            }
            Kind::MedicationRequest => {
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-MedicationRequest"
            }
            Kind::Immunization => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Immunization",
            Kind::Observation => "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation",
            Kind::DiagnosticReport => {
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-DiagnosticReport"
            }
            Kind::ServiceRequest => {
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-ServiceRequest"
            }
            Kind::DocumentReference => {
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-DocumentReference"
            }
            Kind::Binary => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_served_resource_type_and_indexes_all() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert!(fhir::types::is_supported_type(k.name()), "{k:?}");
            assert_eq!(k.index(), i);
            assert_eq!(Kind::from_name(k.name()), Some(*k));
        }
    }
}
