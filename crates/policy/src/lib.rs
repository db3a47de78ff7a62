//! Portico's one access policy: [`decide`]`(who, action, target, now, today)`.
//!
//! Every FHIR interaction, web page and operation asks it before touching the store. It is pure:
//! the caller loads every fact first ([`PatientFacts`], [`ResourceFacts`], the subject's grant)
//! and passes the time in; the policy does no I/O, reads no clock and never panics.
//!
//! # The model
//!
//! - **Answers.** `Allow(filter)`, `BreakGlass(access)` or `Deny(denial)`. A search never fetches
//!   rows and drops them afterwards: it adds the [`Filter`] (whose patients, which labels) to its
//!   SQL, so paging and totals are right. A single resource is checked against the same filter
//!   ([`Filter::admits`]), so a read and a search always agree.
//! - **Existence never leaks.** Data outside the subject's reach is denied as `NotFound` (404),
//!   exactly like a resource that does not exist. `Forbidden` (403) is only said about data the
//!   subject could otherwise reach (a missing scope, grant feature, identity level or role).
//!   Anonymous callers get `Unauthenticated` (401) for everything.
//! - **Patients** see their own compartment, including their own restricted items. Verified
//!   below P9 they see only demographics, appointments, questionnaires and messages.
//! - **Proxies** see the granted patient's compartment while the grant is in date, limited to the
//!   grant's features (and to the reduced view below P9). Restricted items are always hidden from
//!   them. For parents and guardians the child's age counts (per-organisation [`AgeRules`],
//!   default 11/16): full below 11; from 11 the sensitive items are hidden unless a clinician
//!   allowed them; from 16 access ends unless the young person granted it. An unknown birth date
//!   counts as an adult. Proxies and patients write only through the portal's workflows:
//!   rescheduling or cancelling appointments, messages, questionnaire answers, repeat
//!   prescription requests, readings and consent; they never delete.
//! - **Staff** see patients with whom their organisation has a legitimate relationship
//!   (registration, referral, appointment, episode) and whose Consent does not refuse it, within
//!   their role (clerical staff: demographics, appointments, letters, messages and questionnaires
//!   only). Restricted items are shown only to staff of the authoring organisation. Breaking
//!   glass (a reason of at least 10 characters, at most 4 hours) waives the relationship and
//!   consent checks for one patient, never the restricted rule, and comes back as
//!   [`Decision::BreakGlass`] so the caller audits it and notifies the patient. Staff may
//!   register new patients.
//! - **System clients** (`system/` scopes only) see all patients and all labels.
//! - **Administrators** manage the organisation directory and see no patient data at all
//!   (single resources `NotFound`, queries `Forbidden`).
//! - **Scopes** only narrow: every action needs the SMART scope for its type (`r` read, vread,
//!   history and Binary content; `s` search, `$everything`, export; `c`/`u`/`d` writes), in a
//!   context the subject may use (`patient/` for the patient in context, `user/` for people,
//!   `system/` for system clients only).
//! - **Audit is append-only.** AuditEvents are never updated or deleted through the API, and only
//!   system clients may submit them.
//! - Reference data (organisations, practitioners, locations, schedules, slots, questionnaire
//!   definitions, medications) is readable by anyone signed in and written by staff and systems.

mod age;
pub mod codes;
mod decide;
mod decision;
mod error;
mod facts;
mod feature;
mod grant;
mod labels;
mod scopes;
mod who;

pub use decide::{age_band, decide, AgeBand};
pub use decision::{
    Action, BreakGlassAccess, Decision, Denial, Filter, PatientScope, RestrictedRule, Target,
};
pub use error::PolicyError;
pub use facts::{AgeRules, PatientFacts, ResourceFacts};
pub use feature::{feature_of, type_class, Feature, FeatureSet, TypeClass};
pub use grant::{feature_code, proxy_grant, PROXY_ACCESS_EXTENSION};
pub use labels::{labels, Labels};
pub use scopes::{Permissions, ScopeContext, ScopeGrant, Scopes};
pub use who::{BreakGlass, IdentityLevel, ProxyGrant, Relationship, StaffRole, Subject, Who};
