//! Who is asking: the signed-in subject, as the web layer established it, with its scopes.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::feature::FeatureSet;
use crate::scopes::Scopes;

/// Who is asking, and with which scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub subject: Subject,
    pub scopes: Scopes,
}

impl Who {
    /// The one patient whose data a patient or proxy may reach (their own, or the granted one);
    /// `None` for staff, systems, administrators and anonymous callers. The web layer passes this
    /// patient's facts with every query it asks about.
    pub fn own_patient(&self) -> Option<&str> {
        match &self.subject {
            Subject::Patient { patient, .. } => Some(patient),
            Subject::Proxy { grant, .. } => Some(&grant.patient),
            _ => None,
        }
    }
}

/// The kinds of subject the policy knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Nobody signed in: refused everything (401).
    Anonymous,
    /// A signed-in patient acting for themselves.
    Patient {
        /// The Patient resource id.
        patient: String,
        identity_level: IdentityLevel,
    },
    /// Someone acting for another person through a RelatedPerson grant (parent, carer).
    Proxy {
        grant: ProxyGrant,
        /// The proxy's own identity level: below P9 they get the reduced view.
        identity_level: IdentityLevel,
    },
    /// A staff member of one organisation, in one role.
    Staff {
        /// The PractitionerRole id (for the audit trail).
        practitioner_role: String,
        /// The ODS code of the staff member's organisation.
        organisation: String,
        role: StaffRole,
        /// A break-glass declaration, if the staff member made one.
        break_glass: Option<BreakGlass>,
    },
    /// A backend API client (OAuth2 client credentials); only `system/` scopes count.
    System { client_id: String },
    /// A portal administrator: manages accounts, clients and the organisation directory; never
    /// clinical data.
    Admin,
}

/// How strongly the person's identity was verified (NHS login levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IdentityLevel {
    /// Not verified.
    P0,
    /// Basic checks.
    P5,
    /// Fully verified: the only level that may see the clinical record and letters.
    P9,
}

impl IdentityLevel {
    /// Whether this level opens the whole record, not just the reduced view.
    pub fn is_full(self) -> bool {
        self == IdentityLevel::P9
    }
}

/// The role a staff member acts in. Clinicians see the whole record; clerical staff the
/// administrative part only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StaffRole {
    Clinician,
    /// Appointments, letters, messages, demographics, questionnaires; not the clinical record.
    Clerical,
}

/// How the proxy is related to the patient; only parents and guardians are subject to the age
/// rules (their access comes from parental responsibility, which changes as the child grows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Relationship {
    Parent,
    Guardian,
    Carer,
    Other,
}

impl Relationship {
    /// Whether the age rules ([`crate::AgeRules`]) apply to this relationship.
    pub fn is_parental(self) -> bool {
        matches!(self, Relationship::Parent | Relationship::Guardian)
    }
}

/// A proxy's grant, as recorded on the RelatedPerson and its Consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyGrant {
    /// The RelatedPerson id.
    pub related_person: String,
    /// The patient the grant is for.
    pub patient: String,
    pub relationship: Relationship,
    /// Which parts of the record the grant covers.
    pub features: FeatureSet,
    /// First day the grant is valid (Europe/London date).
    pub start: NaiveDate,
    /// Last day the grant is valid, inclusive; `None`: open-ended.
    pub end: Option<NaiveDate>,
    /// The young person (past the parental age limit) granted this access themselves.
    pub young_person_consented: bool,
    /// For a child between the age limits: a clinician allowed the proxy to see sensitive items.
    pub clinician_allows_sensitive: bool,
}

impl ProxyGrant {
    /// Whether `today` lies within the grant's dates (both ends inclusive).
    pub fn is_active(&self, today: NaiveDate) -> bool {
        self.start <= today && self.end.is_none_or(|end| today <= end)
    }
}

/// A staff member's declaration that they need a patient's record without a legitimate
/// relationship (an emergency). It waives the relationship and consent checks for that patient
/// only, never the restricted-item rule, and every access under it is reported to the caller to
/// audit and to notify the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    /// The Patient id.
    pub patient: String,
    /// Why; recorded in the audit trail and shown to the patient.
    pub reason: String,
    /// When the access ends.
    pub expires: DateTime<Utc>,
}

impl BreakGlass {
    /// The shortest reason accepted (characters, after trimming): long enough to force a
    /// sentence, not a click-through "x".
    pub const MIN_REASON_CHARS: usize = 10;
    /// The longest break-glass window, counted from `now`: declaring it again is cheap, an
    /// open-ended one is not reviewable.
    pub const MAX_HOURS: i64 = 4;

    /// Checks the declaration at `now`. [`crate::decide`] ignores a declaration that fails this
    /// (as if none had been made); the web layer calls it to tell the clinician why.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), PolicyError> {
        if self.reason.trim().chars().count() < Self::MIN_REASON_CHARS {
            return Err(PolicyError::BreakGlassReason {
                min: Self::MIN_REASON_CHARS,
            });
        }
        if self.expires <= now {
            return Err(PolicyError::BreakGlassExpired);
        }
        if self.expires - now > TimeDelta::hours(Self::MAX_HOURS) {
            return Err(PolicyError::BreakGlassTooLong {
                max_hours: Self::MAX_HOURS,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    fn grant(start: NaiveDate, end: Option<NaiveDate>) -> ProxyGrant {
        ProxyGrant {
            related_person: "rp".into(),
            patient: "p".into(),
            relationship: Relationship::Carer,
            features: FeatureSet::all(),
            start,
            end,
            young_person_consented: false,
            clinician_allows_sensitive: false,
        }
    }

    #[test]
    fn grant_is_active_on_its_first_and_last_day_only() {
        let g = grant(date(2024, 1, 10), Some(date(2024, 1, 20)));
        assert!(!g.is_active(date(2024, 1, 9)));
        assert!(g.is_active(date(2024, 1, 10)));
        assert!(g.is_active(date(2024, 1, 20)));
        assert!(!g.is_active(date(2024, 1, 21)));
    }

    #[test]
    fn open_ended_grant_stays_active() {
        let g = grant(date(2024, 1, 10), None);
        assert!(g.is_active(date(2099, 1, 1)));
        assert!(!g.is_active(date(2024, 1, 9)));
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn bg(reason: &str, expires_in_minutes: i64) -> BreakGlass {
        BreakGlass {
            patient: "p".into(),
            reason: reason.into(),
            expires: now() + TimeDelta::minutes(expires_in_minutes),
        }
    }

    #[test]
    fn break_glass_needs_a_reason_of_ten_characters_after_trimming() {
        assert_eq!(
            bg("   short   ", 60).validate(now()),
            Err(PolicyError::BreakGlassReason { min: 10 })
        );
        assert_eq!(bg("unconscious in A&E", 60).validate(now()), Ok(()));
    }

    #[test]
    fn break_glass_expires() {
        assert_eq!(
            bg("unconscious in A&E", 0).validate(now()),
            Err(PolicyError::BreakGlassExpired)
        );
        assert_eq!(bg("unconscious in A&E", 1).validate(now()), Ok(()));
    }

    #[test]
    fn break_glass_lasts_at_most_four_hours() {
        assert_eq!(bg("unconscious in A&E", 240).validate(now()), Ok(()));
        assert_eq!(
            bg("unconscious in A&E", 241).validate(now()),
            Err(PolicyError::BreakGlassTooLong { max_hours: 4 })
        );
    }
}
