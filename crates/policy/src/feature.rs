//! Which resource types are patient data, and which part of the record ([`Feature`]) each belongs
//! to: the one table grants, identity levels and staff roles are checked against.

use serde::{Deserialize, Serialize};

/// A part of the record, as proxies are granted it and staff roles and identity levels open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Feature {
    Demographics,
    Appointments,
    Letters,
    Messages,
    /// The clinical record: problems, medicines, allergies, results, immunisations, encounters.
    Record,
    Prescriptions,
    Questionnaires,
    /// Readings the patient submits (remote monitoring).
    Readings,
    Consent,
    /// Who accessed the record.
    Audit,
}

impl Feature {
    /// Every feature, in declaration order.
    pub const ALL: [Feature; 10] = [
        Feature::Demographics,
        Feature::Appointments,
        Feature::Letters,
        Feature::Messages,
        Feature::Record,
        Feature::Prescriptions,
        Feature::Questionnaires,
        Feature::Readings,
        Feature::Consent,
        Feature::Audit,
    ];

    /// What someone whose identity is verified below P9 may see of their own (or their
    /// patient's) data: enough to run appointments and messages, nothing clinical.
    pub fn in_reduced_view(self) -> bool {
        matches!(
            self,
            Feature::Demographics
                | Feature::Appointments
                | Feature::Questionnaires
                | Feature::Messages
        )
    }

    /// What clerical staff may see and write.
    pub fn for_clerical_staff(self) -> bool {
        matches!(
            self,
            Feature::Demographics
                | Feature::Appointments
                | Feature::Letters
                | Feature::Messages
                | Feature::Questionnaires
        )
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of [`Feature`]s (a proxy grant's coverage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FeatureSet(u16);

impl FeatureSet {
    pub fn empty() -> FeatureSet {
        FeatureSet(0)
    }

    pub fn all() -> FeatureSet {
        Feature::ALL.into_iter().collect()
    }

    pub fn contains(self, feature: Feature) -> bool {
        self.0 & feature.bit() != 0
    }

    /// This set with `feature` added.
    pub fn with(self, feature: Feature) -> FeatureSet {
        FeatureSet(self.0 | feature.bit())
    }

    /// This set without `feature`.
    pub fn without(self, feature: Feature) -> FeatureSet {
        FeatureSet(self.0 & !feature.bit())
    }

    pub fn iter(self) -> impl Iterator<Item = Feature> {
        Feature::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl FromIterator<Feature> for FeatureSet {
    fn from_iter<I: IntoIterator<Item = Feature>>(iter: I) -> FeatureSet {
        iter.into_iter().fold(FeatureSet::empty(), FeatureSet::with)
    }
}

/// What kind of data a resource type holds, for access purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    /// Patient data, in a patient's compartment, belonging to this part of the record.
    PatientData(Feature),
    /// Shared reference data (the directory, schedules, questionnaire definitions): readable by
    /// anyone signed in, written by staff and systems.
    Reference,
    /// Readable and writable by staff and systems only (Group: cohorts and lists of patients).
    StaffOnly,
    /// A type the policy does not know: only system clients may touch it.
    Unknown,
}

/// The directory types a portal administrator may write.
pub(crate) fn is_directory(resource_type: &str) -> bool {
    matches!(
        resource_type,
        "Organization" | "Practitioner" | "PractitionerRole" | "Location" | "HealthcareService"
    )
}

/// The one table of resource types. Binary has no compartment of its own: the caller passes the
/// patients and labels of its DocumentReference, and it counts as a letter.
pub fn type_class(resource_type: &str) -> TypeClass {
    use Feature::*;
    use TypeClass::*;
    match resource_type {
        "Patient" | "RelatedPerson" => PatientData(Demographics),
        "Appointment" | "ServiceRequest" => PatientData(Appointments),
        "Encounter"
        | "EpisodeOfCare"
        | "Condition"
        | "Observation"
        | "DiagnosticReport"
        | "AllergyIntolerance"
        | "Immunization"
        | "MedicationStatement"
        | "Procedure"
        | "Flag" => PatientData(Record),
        // Workflow requests about the patient's care: kept with the clinical record until a
        // portal workflow needs a narrower home for them.
        "Task" => PatientData(Record),
        "MedicationRequest" => PatientData(Prescriptions),
        "DocumentReference" | "Binary" => PatientData(Letters),
        "Communication" | "CommunicationRequest" => PatientData(Messages),
        "QuestionnaireResponse" => PatientData(Questionnaires),
        "Consent" => PatientData(Consent),
        "AuditEvent" | "Provenance" => PatientData(Audit),
        "Organization" | "Practitioner" | "PractitionerRole" | "Location" | "HealthcareService"
        | "Schedule" | "Slot" | "Questionnaire" | "Medication" => Reference,
        "Group" => StaffOnly,
        _ => Unknown,
    }
}

/// The part of the record a resource type belongs to; `None` for data that is not patient data.
pub fn feature_of(resource_type: &str) -> Option<Feature> {
    match type_class(resource_type) {
        TypeClass::PatientData(f) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resource types Portico serves (`fhir::RESOURCE_TYPES`, copied because this crate
    /// depends on no other Portico crate): each must have a class, none may fall to Unknown.
    const SERVED: &[&str] = &[
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

    #[test]
    fn every_served_type_is_classified() {
        for t in SERVED {
            assert_ne!(type_class(t), TypeClass::Unknown, "{t}");
        }
    }

    #[test]
    fn table_matches_the_issue() {
        use Feature::*;
        let expected = [
            ("Patient", Demographics),
            ("RelatedPerson", Demographics),
            ("Appointment", Appointments),
            ("ServiceRequest", Appointments),
            ("Encounter", Record),
            ("EpisodeOfCare", Record),
            ("Condition", Record),
            ("Observation", Record),
            ("DiagnosticReport", Record),
            ("AllergyIntolerance", Record),
            ("Immunization", Record),
            ("MedicationStatement", Record),
            ("Procedure", Record),
            ("Flag", Record),
            ("MedicationRequest", Prescriptions),
            ("DocumentReference", Letters),
            ("Binary", Letters),
            ("Communication", Messages),
            ("CommunicationRequest", Messages),
            ("QuestionnaireResponse", Questionnaires),
            ("Consent", Consent),
            ("AuditEvent", Audit),
        ];
        for (t, f) in expected {
            assert_eq!(feature_of(t), Some(f), "{t}");
        }
        for t in [
            "Organization",
            "Practitioner",
            "PractitionerRole",
            "Location",
            "HealthcareService",
            "Schedule",
            "Slot",
            "Questionnaire",
            "Medication",
        ] {
            assert_eq!(type_class(t), TypeClass::Reference, "{t}");
        }
        assert_eq!(type_class("Group"), TypeClass::StaffOnly);
        assert_eq!(type_class("Basic"), TypeClass::Unknown);
        assert_eq!(type_class("observation"), TypeClass::Unknown);
    }

    #[test]
    fn feature_set_holds_what_was_added() {
        let s = FeatureSet::empty()
            .with(Feature::Appointments)
            .with(Feature::Audit);
        assert!(s.contains(Feature::Appointments));
        assert!(s.contains(Feature::Audit));
        assert!(!s.contains(Feature::Record));
        assert_eq!(s.iter().count(), 2);
        assert!(!s.without(Feature::Audit).contains(Feature::Audit));
        assert_eq!(FeatureSet::all().iter().count(), Feature::ALL.len());
    }
}
