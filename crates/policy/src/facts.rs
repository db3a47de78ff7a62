//! Facts the caller loads from the database before asking: about the patients concerned and
//! about the resource. The policy reads nothing else, so a decision can be replayed from them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::labels::Labels;

/// What the policy needs to know about one patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientFacts {
    /// The Patient id.
    pub id: String,
    pub birth_date: Option<NaiveDate>,
    /// ODS codes of organisations with a legitimate relationship (registration, referral,
    /// appointment, episode of care).
    pub related_organisations: Vec<String>,
    /// ODS codes the patient's active Consent directives refuse.
    pub refused_organisations: Vec<String>,
    /// The age rules of the patient's organisation.
    pub age_rules: AgeRules,
}

impl PatientFacts {
    /// Whether staff of `organisation` may see this patient without breaking glass: a
    /// legitimate relationship, and no Consent directive refusing the organisation.
    pub fn is_reachable_by(&self, organisation: &str) -> bool {
        self.related_organisations.iter().any(|o| o == organisation)
            && !self.refused_organisations.iter().any(|o| o == organisation)
    }
}

/// When parental proxy access changes, in whole years of the child's age; configurable per
/// organisation. Below `full_until` a parent sees everything their grant covers; from then until
/// `ends_at` the record's sensitive items are hidden unless a clinician allows them; from
/// `ends_at` parental access ends unless the young person grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgeRules {
    pub full_until: u32,
    pub ends_at: u32,
}

impl Default for AgeRules {
    /// 11 and 16, as in NHS England's guidance on proxy access for children.
    fn default() -> AgeRules {
        AgeRules {
            full_until: 11,
            ends_at: 16,
        }
    }
}

/// What the policy needs to know about one resource (stored, or about to be written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFacts {
    pub resource_type: String,
    pub id: String,
    /// Ids of the patients whose compartment holds it (a Patient: itself; others: from the
    /// compartment search parameters; Binary: those of its DocumentReference). Empty: the
    /// resource is nobody's patient data.
    pub patients: Vec<String>,
    /// From [`crate::labels`] (Binary: its DocumentReference's).
    pub labels: Labels,
}
