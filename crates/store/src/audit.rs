//! The audit trail: one record for every access and change, kept in a plain table beside the
//! resources and chained by hashes so that editing, removing or reordering a record is
//! detectable (`portico audit verify`).
//!
//! A record is written in the same database transaction as the change it describes
//! ([`crate::WriteOp::Audit`]), and a read is answered only once its record is durable (the SQLite
//! writer commits read records in its group commits; other backends batch them), so no access
//! goes unrecorded and none is dropped.
//!
//! **The chain.** Records are numbered `1, 2, 3…` in the order the chain takes them; record `n`
//! carries `hash(n) = SHA-256(hash(n-1) ‖ n ‖ detail)` (hex), with `hash(0)` sixty-four zeros
//! ([`GENESIS`]) and `detail` the record's canonical JSON ([`AuditRecord::detail`]). Changing a
//! record's detail breaks its own hash; removing or reordering records breaks the next one's.
//! Cutting records off the end cannot be seen from inside the database: `portico audit verify`
//! prints the last hash so that an operator can keep it elsewhere and compare later.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `hash(0)`: what the first record chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    Anonymous,
    Patient,
    Proxy,
    Staff,
    Admin,
    /// A system API client (OAuth2 client credentials).
    System,
    /// A SMART app acting for a signed-in user.
    App,
    /// Portico itself (imports, HL7 feeds, background work).
    Portico,
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    Read,
    Vread,
    Search,
    History,
    Create,
    Update,
    Delete,
    Everything,
    Export,
    BinaryContent,
    SignIn,
    SignInFailed,
    SignOut,
    BreakGlass,
    GrantApp,
    RevokeApp,
    CredentialChange,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    Success,
    /// Refused by the access policy or authentication.
    Denied,
    /// The request was wrong or the server failed.
    Failed,
}

/// One access or change. Identifiers only (account, client, resource ids): never names, NHS
/// numbers or search values, so the trail can be shown to the patient it concerns and kept
/// longer than the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, to the millisecond.
    #[serde(with = "millis")]
    pub recorded: DateTime<Utc>,
    pub agent_kind: AgentKind,
    /// The account id, client id or `portico`.
    pub agent: String,
    /// ODS code of the agent's organisation (staff, system clients of an organisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// The person a proxy or app acted for (Patient id), when not the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// Whose record was touched (Patient id), when one patient's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    pub action: AuditAction,
    /// `Type/id` or `Type/id/_history/n` of the resource, or the resource type of a search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Why: `patient-access`, `treatment`, `operations`, `system`, `break-glass`…
    pub purpose: String,
    /// The break-glass reason the clinician gave (break-glass access only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub outcome: AuditOutcome,
    /// The HTTP status or similar code of the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The client's network address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl AuditRecord {
    /// The canonical JSON the chain hashes and the table stores (field order fixed by the
    /// struct, absent options left out).
    pub fn detail(&self) -> String {
        // Serialising plain strings, enums and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_detail(detail: &str) -> Result<AuditRecord, serde_json::Error> {
        serde_json::from_str(detail)
    }

    /// Whether this record was break-glass access (highlighted to the patient).
    pub fn is_break_glass(&self) -> bool {
        self.purpose == "break-glass" || self.action == AuditAction::BreakGlass
    }
}

/// Who is acting, on whose behalf and why: what every record of one request shares. The store
/// turns it into one record per write of a transaction ([`AuditContext::record`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditContext {
    pub agent_kind: AgentKind,
    pub agent: String,
    pub organisation: Option<String>,
    pub on_behalf_of: Option<String>,
    pub purpose: String,
    pub reason: Option<String>,
    pub source: Option<String>,
}

impl AuditContext {
    /// Portico's own work (imports, feeds, background jobs).
    pub fn portico(purpose: &str) -> AuditContext {
        AuditContext {
            agent_kind: AgentKind::Portico,
            agent: "portico".to_string(),
            organisation: None,
            on_behalf_of: None,
            purpose: purpose.to_string(),
            reason: None,
            source: None,
        }
    }

    /// A record of `action` on `entity` (of `patient`'s record) with this context.
    pub fn record(
        &self,
        recorded: DateTime<Utc>,
        action: AuditAction,
        entity: Option<String>,
        patient: Option<String>,
        outcome: AuditOutcome,
        status: Option<u16>,
    ) -> AuditRecord {
        AuditRecord {
            recorded,
            agent_kind: self.agent_kind,
            agent: self.agent.clone(),
            organisation: self.organisation.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            patient,
            action,
            entity,
            purpose: self.purpose.clone(),
            reason: self.reason.clone(),
            outcome,
            status,
            source: self.source.clone(),
        }
    }
}

/// The patient whose record a resource belongs to, from its search index (the first of
/// [`crate::access::compartment_patients`]; None for data that is no one's, e.g. an
/// Organization).
pub fn patient_of(
    resource_type: &str,
    id: &str,
    index: &[fhir::index::IndexEntry],
) -> Option<String> {
    crate::access::compartment_patients(resource_type, id, index)
        .into_iter()
        .next()
}

/// One page of a patient's trail, newest first ([`crate::Store::audit_for_patient`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; None at the end.
    pub next_before: Option<i64>,
}

/// A stored record: its place in the chain, its detail and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    pub fn record(&self) -> Result<AuditRecord, serde_json::Error> {
        AuditRecord::from_detail(&self.detail)
    }
}

/// `hash(seq)` from the previous hash and the record's detail.
pub fn chain_hash(prev_hash: &str, seq: i64, detail: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(seq.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(detail.as_bytes());
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Extends a chain: give it the last stored `(seq, hash)` (none for an empty trail) and it
/// numbers and hashes the records that follow.
#[derive(Debug, Clone)]
pub struct Chain {
    seq: i64,
    hash: String,
}

impl Chain {
    pub fn after(last: Option<(i64, String)>) -> Chain {
        match last {
            Some((seq, hash)) => Chain { seq, hash },
            None => Chain {
                seq: 0,
                hash: GENESIS.to_string(),
            },
        }
    }

    /// The next entry of the chain for `record`.
    pub fn append(&mut self, record: &AuditRecord) -> AuditEntry {
        self.append_detail(record.detail())
    }

    pub fn append_detail(&mut self, detail: String) -> AuditEntry {
        let seq = self.seq + 1;
        let hash = chain_hash(&self.hash, seq, &detail);
        let entry = AuditEntry {
            seq,
            detail,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        };
        self.seq = seq;
        entry
    }

    pub fn last_seq(&self) -> i64 {
        self.seq
    }

    pub fn last_hash(&self) -> &str {
        &self.hash
    }
}

/// What verifying a trail found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Records checked.
    pub checked: u64,
    /// The last record's sequence number and hash (keep them elsewhere to detect truncation).
    pub last: Option<(i64, String)>,
    /// The first fault found, if any (verification stops there).
    pub fault: Option<ChainFault>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainFault {
    #[error(
        "record {seq}: expected sequence number {expected} (records are missing or reordered)"
    )]
    Gap { seq: i64, expected: i64 },
    #[error("record {seq}: its previous-hash does not match record {}'s hash (a record before it was changed or removed)", .seq - 1)]
    BrokenLink { seq: i64 },
    #[error("record {seq}: its hash does not match its content (the record was changed)")]
    Altered { seq: i64 },
}

/// Checks entries in sequence order, starting from the first record, incrementally: feed it
/// pages with [`Verifier::check`] and read the result with [`Verifier::finish`].
#[derive(Debug, Clone)]
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
    checked: u64,
    fault: Option<ChainFault>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            expected_seq: 1,
            prev_hash: GENESIS.to_string(),
            checked: 0,
            fault: None,
        }
    }
}

impl Verifier {
    /// Checks one entry; false once a fault has been found (stop feeding it).
    pub fn check(&mut self, entry: &AuditEntry) -> bool {
        if self.fault.is_some() {
            return false;
        }
        let fault = if entry.seq != self.expected_seq {
            Some(ChainFault::Gap {
                seq: entry.seq,
                expected: self.expected_seq,
            })
        } else if entry.prev_hash != self.prev_hash {
            Some(ChainFault::BrokenLink { seq: entry.seq })
        } else if chain_hash(&entry.prev_hash, entry.seq, &entry.detail) != entry.hash {
            Some(ChainFault::Altered { seq: entry.seq })
        } else {
            None
        };
        if let Some(fault) = fault {
            self.fault = Some(fault);
            return false;
        }
        self.checked += 1;
        self.expected_seq += 1;
        self.prev_hash = entry.hash.clone();
        true
    }

    pub fn finish(self) -> Verification {
        let last = (self.checked > 0).then(|| (self.expected_seq - 1, self.prev_hash));
        Verification {
            checked: self.checked,
            last,
            fault: self.fault,
        }
    }
}

/// Milliseconds since the epoch, as the tables keep times.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

mod millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(super::to_millis(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        Ok(super::from_millis(i64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: i64) -> AuditRecord {
        AuditRecord {
            recorded: from_millis(1_700_000_000_000 + n),
            agent_kind: AgentKind::Staff,
            agent: format!("account-{n}"),
            organisation: Some("RX1".into()),
            on_behalf_of: None,
            patient: Some("pat-0001".into()),
            action: AuditAction::Read,
            entity: Some(format!("Observation/o{n}")),
            purpose: "treatment".into(),
            reason: None,
            outcome: AuditOutcome::Success,
            status: Some(200),
            source: Some("127.0.0.1".into()),
        }
    }

    fn trail(n: i64) -> Vec<AuditEntry> {
        let mut chain = Chain::after(None);
        (1..=n).map(|i| chain.append(&record(i))).collect()
    }

    fn verify(entries: &[AuditEntry]) -> Verification {
        let mut v = Verifier::default();
        for e in entries {
            if !v.check(e) {
                break;
            }
        }
        v.finish()
    }

    #[test]
    fn a_record_round_trips_through_its_detail() {
        let r = record(7);
        assert_eq!(AuditRecord::from_detail(&r.detail()).unwrap(), r);
        assert!(
            !r.detail().contains("reason"),
            "absent options are left out"
        );
    }

    #[test]
    fn an_intact_trail_verifies_and_reports_its_last_hash() {
        let entries = trail(5);
        let v = verify(&entries);
        assert_eq!(v.fault, None);
        assert_eq!(v.checked, 5);
        assert_eq!(v.last, Some((5, entries[4].hash.clone())));
        assert_eq!(verify(&[]).last, None);
    }

    #[test]
    fn a_chain_continues_from_the_last_stored_entry() {
        let whole = trail(4);
        let mut resumed = Chain::after(Some((2, whole[1].hash.clone())));
        assert_eq!(resumed.append(&record(3)), whole[2]);
        assert_eq!(resumed.append(&record(4)), whole[3]);
    }

    #[test]
    fn an_altered_record_is_found() {
        let mut entries = trail(5);
        entries[2].detail = entries[2].detail.replace("account-3", "account-9");
        assert_eq!(verify(&entries).fault, Some(ChainFault::Altered { seq: 3 }));
    }

    #[test]
    fn a_rehashed_altered_record_breaks_the_next_link() {
        let mut entries = trail(5);
        entries[2].detail = entries[2].detail.replace("account-3", "account-9");
        entries[2].hash = chain_hash(&entries[2].prev_hash, 3, &entries[2].detail);
        assert_eq!(
            verify(&entries).fault,
            Some(ChainFault::BrokenLink { seq: 4 })
        );
    }

    #[test]
    fn a_removed_record_is_found() {
        let mut entries = trail(5);
        entries.remove(1);
        assert_eq!(
            verify(&entries).fault,
            Some(ChainFault::Gap {
                seq: 3,
                expected: 2
            })
        );
    }

    #[test]
    fn a_removed_and_renumbered_record_is_found() {
        let mut entries = trail(5);
        entries.remove(1);
        for (i, e) in entries.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(
            verify(&entries).fault,
            Some(ChainFault::BrokenLink { seq: 2 })
        );
    }

    #[test]
    fn swapped_records_are_found() {
        let mut entries = trail(5);
        entries.swap(1, 2);
        assert!(verify(&entries).fault.is_some());
    }
}
