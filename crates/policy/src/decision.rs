//! The question ([`Action`] on a [`Target`]) and the answer ([`Decision`]): allowed with the
//! [`Filter`] the query must apply, allowed by breaking glass, or denied with a [`Denial`].

use chrono::{DateTime, Utc};

use crate::facts::{PatientFacts, ResourceFacts};

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    VRead,
    /// Instance history (on a [`Target::Resource`]) or type/system history (on a
    /// [`Target::Query`]).
    History,
    Search,
    Create,
    Update,
    Delete,
    /// `Patient/{id}/$everything`: asked once per resource type, as a search confined to the
    /// patient. A `Forbidden` for one type means "leave that type out"; `NotFound` means the
    /// patient is out of reach and the whole operation answers 404.
    Everything,
    /// Bulk export: per type, confined to one patient or (system clients only) all patients.
    Export,
    /// The content of a Binary (a letter's document).
    BinaryContent,
}

impl Action {
    /// Whether the action changes data.
    pub fn is_write(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// What the action is on.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// One stored resource: read, vread, a history entry, the stored version before an update
    /// or delete, Binary content.
    Resource {
        facts: &'a ResourceFacts,
        /// Facts of the patients in `facts.patients` (missing ones count as out of reach).
        patients: &'a [PatientFacts],
    },
    /// A resource about to be written (create, or the new content of an update), its compartment
    /// and labels computed from that content. An update is asked twice: for the stored version
    /// ([`Target::Resource`]) and for the new content, so that nothing is moved into, or out of,
    /// a compartment the subject cannot reach.
    New {
        facts: &'a ResourceFacts,
        patients: &'a [PatientFacts],
    },
    /// A search, history, `$everything` or export over one resource type: the decision says
    /// which rows the query may return.
    Query {
        resource_type: &'a str,
        /// The patient the query is confined to (`Patient/{id}/$everything`, a compartment
        /// search, a patient export). Patients and proxies: always pass their own patient's
        /// facts ([`crate::Who::own_patient`]); a proxy's age rules need them.
        patient: Option<&'a PatientFacts>,
    },
}

impl Target<'_> {
    /// The resource type the target is about.
    pub fn resource_type(&self) -> &str {
        match self {
            Target::Resource { facts, .. } | Target::New { facts, .. } => &facts.resource_type,
            Target::Query { resource_type, .. } => resource_type,
        }
    }
}

/// The answer. Deliberately three-way: an access that relies on breaking glass is not an
/// `Allow`, so a caller that only matches `Allow` refuses it rather than skipping the audit and
/// the patient's notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    Allow(Filter),
    /// Allowed only because of the staff member's break-glass declaration: the caller must
    /// record it in the audit trail and notify the patient.
    BreakGlass(BreakGlassAccess),
    Deny(Denial),
}

/// An access granted by breaking glass, with what the audit and the notification need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassAccess {
    pub filter: Filter,
    /// The Patient id.
    pub patient: String,
    pub reason: String,
    pub expires: DateTime<Utc>,
}

/// Why access is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Nobody is signed in (401).
    Unauthenticated,
    /// The subject may reach this data but lacks a scope, grant feature, identity level or role
    /// for this action (403); the message says which, and names no patient data.
    Forbidden(String),
    /// Out of the subject's reach: answered exactly as for a resource that does not exist (404),
    /// so that existence does not leak.
    NotFound,
}

impl Denial {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Denial::Unauthenticated => 401,
            Denial::Forbidden(_) => 403,
            Denial::NotFound => 404,
        }
    }
}

/// The conditions a query adds (in SQL) so that only rows the subject may see come back, before
/// paging and counting. [`Filter::admits`] is the reference meaning the SQL must reproduce; the
/// policy uses it itself for single resources, so a read and a search always agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub patients: PatientScope,
    pub hide_restricted: RestrictedRule,
    /// Hide rows labelled sensitive.
    pub hide_sensitive: bool,
}

/// Whose rows a query may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientScope {
    /// Every row.
    Any,
    /// Rows in the compartment of at least one of these patients.
    Only(Vec<String>),
    /// Rows in the compartment of at least one patient who has a legitimate relationship with
    /// this organisation (ODS code) and whose Consent does not refuse it.
    RelatedTo(String),
    /// No row.
    None,
}

/// What to do with rows labelled restricted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestrictedRule {
    Show,
    Hide,
    /// Show only those written by this organisation (ODS code).
    HideUnlessAuthor(String),
}

impl Filter {
    /// Every row, whatever its labels.
    pub fn everything() -> Filter {
        Filter {
            patients: PatientScope::Any,
            hide_restricted: RestrictedRule::Show,
            hide_sensitive: false,
        }
    }

    /// No row at all.
    pub fn nothing() -> Filter {
        Filter {
            patients: PatientScope::None,
            hide_restricted: RestrictedRule::Hide,
            hide_sensitive: true,
        }
    }

    /// Whether a row with these facts passes the filter. `owners` holds the facts of the
    /// patients in `resource.patients` (needed for [`PatientScope::RelatedTo`]; a missing one
    /// counts as unrelated).
    pub fn admits(&self, resource: &ResourceFacts, owners: &[PatientFacts]) -> bool {
        self.admits_patients(resource, owners) && self.admits_labels(resource)
    }

    fn admits_patients(&self, resource: &ResourceFacts, owners: &[PatientFacts]) -> bool {
        match &self.patients {
            PatientScope::Any => true,
            PatientScope::None => false,
            PatientScope::Only(ids) => resource.patients.iter().any(|p| ids.contains(p)),
            PatientScope::RelatedTo(org) => resource
                .patients
                .iter()
                .any(|p| owners.iter().any(|o| &o.id == p && o.is_reachable_by(org))),
        }
    }

    /// Whether the labels alone pass (the patient part aside).
    pub(crate) fn admits_labels(&self, resource: &ResourceFacts) -> bool {
        let labels = &resource.labels;
        let restricted_ok = !labels.restricted
            || match &self.hide_restricted {
                RestrictedRule::Show => true,
                RestrictedRule::Hide => false,
                RestrictedRule::HideUnlessAuthor(org) => {
                    labels.author_organisation.as_deref() == Some(org.as_str())
                }
            };
        restricted_ok && !(self.hide_sensitive && labels.sensitive)
    }
}
