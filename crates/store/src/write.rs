//! The rules of every write, shared by the backends: versioning, `If-Match`, conditional
//! create/update/delete, transactions with `urn:uuid:` references, the JSON as stored, and
//! portal-state writes that commit with the resources ([`WriteOp::PutState`]).
//!
//! A backend supplies [`WriteTx`], a handle on one open database transaction; [`apply`] runs a
//! list of operations in it and either all succeed or the backend rolls the transaction back.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fhir::index::IndexEntry;
use serde_json::{Map, Value};

use crate::audit::{self, AuditAction, AuditContext, AuditOutcome, AuditRecord};
use crate::error::{Result, StoreError};
use crate::model::{Prepared, ResourceVersion, WriteOp, WriteOutcome};
use crate::query::SearchQuery;
use crate::search::ReadConn;
use crate::sql::{self, Dialect};

/// One open transaction of a backend.
#[async_trait]
pub trait WriteTx: ReadConn {
    /// The current version of `Type/id`, locked against concurrent writers until commit where the
    /// backend has concurrent writers.
    async fn current(&mut self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>>;
    /// Writes `version` as the new current version (moving the previous current version, if
    /// `replaces_existing`, to history) and replaces the resource's index rows with `index`
    /// (none when `version.deleted`).
    async fn put(
        &mut self,
        version: &ResourceVersion,
        replaces_existing: bool,
        index: &[IndexEntry],
    ) -> Result<()>;
    /// Serialises transactions that use the same key until commit (conditional writes on a
    /// backend with concurrent writers); a no-op where there is one writer.
    async fn lock(&mut self, key: &str) -> Result<()>;
    /// Stores `value` under `key` in the portal state, in this transaction
    /// ([`WriteOp::PutState`]).
    async fn put_state(&mut self, key: &str, value: &str) -> Result<()>;
    /// Appends audit records to the trail, in this transaction ([`crate::audit`]).
    async fn append_audit(&mut self, records: &[AuditRecord]) -> Result<()>;
}

/// What each entry turned into once conditions and ids were resolved.
enum Plan {
    Create { id: String },
    Existing(ResourceVersion),
    Write { id: String },
    Delete { resource_type: String, id: String },
    Nothing { resource_type: String },
    State,
}

/// Runs `ops` in `tx`. On error the caller must roll the transaction back.
/// With `audit`, every resource write also leaves an audit record in the same transaction
/// ([`audit_records`]).
pub async fn apply(
    tx: &mut dyn WriteTx,
    d: &dyn Dialect,
    mut ops: Vec<WriteOp>,
    now: DateTime<Utc>,
    audit: Option<&AuditContext>,
) -> Result<Vec<WriteOutcome>> {
    let single = ops.len() == 1;
    let wrap = |index: usize, e: StoreError| {
        if single {
            e
        } else {
            StoreError::Entry {
                index,
                source: Box::new(e),
            }
        }
    };

    // 1. Resolve every entry's target id, so references between entries can be rewritten.
    let mut plans = Vec::with_capacity(ops.len());
    let mut aliases: HashMap<String, String> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let plan = resolve(tx, d, op).await.map_err(|e| wrap(i, e))?;
        let (full_url, ty) = match op {
            WriteOp::Create {
                full_url, resource, ..
            }
            | WriteOp::Update {
                full_url, resource, ..
            }
            | WriteOp::ConditionalUpdate {
                full_url, resource, ..
            } => (full_url, &resource.resource_type),
            _ => (&None, &String::new()),
        };
        if let Some(url) = full_url {
            let id = match &plan {
                Plan::Create { id } | Plan::Write { id } => id.clone(),
                Plan::Existing(v) => v.id.clone(),
                _ => String::new(),
            };
            if !id.is_empty() {
                aliases.insert(url.clone(), format!("{ty}/{id}"));
            }
        }
        plans.push(plan);
    }

    // 2. Rewrite references to other entries (`urn:uuid:…`, or their fullUrl) into `Type/id`.
    if !aliases.is_empty() {
        for op in ops.iter_mut() {
            if let WriteOp::Create { resource, .. }
            | WriteOp::Update { resource, .. }
            | WriteOp::ConditionalUpdate { resource, .. } = op
            {
                if rewrite_references(&mut resource.value, &aliases) {
                    resource.reindex();
                }
            }
        }
    }

    // 3. Write, deletes first (as FHIR orders a transaction), answering in entry order.
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| !matches!(plans[i], Plan::Delete { .. }));
    let mut outcomes: Vec<Option<WriteOutcome>> = vec![None; ops.len()];
    let mut patients: Vec<Option<String>> = vec![None; ops.len()];
    let mut ops: Vec<Option<WriteOp>> = ops.into_iter().map(Some).collect();
    let mut plans: Vec<Option<Plan>> = plans.into_iter().map(Some).collect();
    for i in order {
        let (Some(op), Some(plan)) = (ops[i].take(), plans[i].take()) else {
            continue;
        };
        let patient = match audit {
            Some(_) => audited_patient(tx, &op, &plan)
                .await
                .map_err(|e| wrap(i, e))?,
            None => None,
        };
        let outcome = execute(tx, op, plan, now).await.map_err(|e| wrap(i, e))?;
        patients[i] = patient;
        outcomes[i] = Some(outcome);
    }
    let outcomes: Vec<WriteOutcome> = outcomes.into_iter().flatten().collect();
    if let Some(context) = audit {
        let records = audit_records(context, &outcomes, patients, now);
        if !records.is_empty() {
            tx.append_audit(&records).await?;
        }
    }
    Ok(outcomes)
}

async fn find(
    tx: &mut dyn WriteTx,
    d: &dyn Dialect,
    criteria: &SearchQuery,
) -> Result<Vec<ResourceVersion>> {
    let mut q = criteria.clone();
    q.count = 2;
    q.offset = 0;
    q.include.clear();
    q.revinclude.clear();
    q.sort.clear();
    tx.lock(&format!("{}?{:?}", q.resource_type, q.canonical))
        .await?;
    let mut rows = tx.versions(&sql::search_page(d, &q)).await?;
    rows.truncate(2);
    Ok(rows)
}

fn check_id(resource: &Prepared, id: &str) -> Result<()> {
    match resource.value.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id != id => Err(StoreError::invalid(
            fhir::Issue::error(
                fhir::IssueType::Invalid,
                format!("the resource's id {body_id:?} does not match the id in the URL {id:?}"),
            )
            .at(format!("{}.id", resource.resource_type)),
        )),
        _ if !fhir::types::is_valid_id(id) => Err(StoreError::invalid(
            fhir::Issue::error(
                fhir::IssueType::Invalid,
                format!("{id:?} is not a valid id: use 1-64 letters, digits, '-' or '.'"),
            )
            .at(format!("{}.id", resource.resource_type)),
        )),
        _ => Ok(()),
    }
}

async fn resolve(tx: &mut dyn WriteTx, d: &dyn Dialect, op: &WriteOp) -> Result<Plan> {
    Ok(match op {
        WriteOp::Create { if_none_exist, .. } => match if_none_exist {
            None => Plan::Create { id: new_id() },
            Some(criteria) => {
                let mut found = find(tx, d, criteria).await?;
                match found.len() {
                    0 => Plan::Create { id: new_id() },
                    1 => Plan::Existing(found.remove(0)),
                    n => return Err(StoreError::MultipleMatches { count: n }),
                }
            }
        },
        WriteOp::Update { id, resource, .. } => {
            check_id(resource, id)?;
            Plan::Write { id: id.clone() }
        }
        WriteOp::ConditionalUpdate {
            criteria, resource, ..
        } => {
            let found = find(tx, d, criteria).await?;
            match found.as_slice() {
                [] => match resource.value.get("id").and_then(Value::as_str) {
                    Some(id) => {
                        check_id(resource, id)?;
                        Plan::Write { id: id.to_string() }
                    }
                    None => Plan::Create { id: new_id() },
                },
                [one] => {
                    check_id(resource, &one.id)?;
                    Plan::Write { id: one.id.clone() }
                }
                more => return Err(StoreError::MultipleMatches { count: more.len() }),
            }
        }
        WriteOp::Delete { resource_type, id } => Plan::Delete {
            resource_type: resource_type.clone(),
            id: id.clone(),
        },
        WriteOp::PutState { .. } => Plan::State,
        WriteOp::ConditionalDelete { criteria } => {
            let found = find(tx, d, criteria).await?;
            match found.as_slice() {
                [] => Plan::Nothing {
                    resource_type: criteria.resource_type.clone(),
                },
                [one] => Plan::Delete {
                    resource_type: one.resource_type.clone(),
                    id: one.id.clone(),
                },
                more => return Err(StoreError::MultipleMatches { count: more.len() }),
            }
        }
    })
}

/// Whose record an operation touches, for its audit record: from the new content's index, or
/// for a deletion from the content being deleted.
async fn audited_patient(
    tx: &mut dyn WriteTx,
    op: &WriteOp,
    plan: &Plan,
) -> Result<Option<String>> {
    Ok(match (op, plan) {
        (
            WriteOp::Create { resource, .. }
            | WriteOp::Update { resource, .. }
            | WriteOp::ConditionalUpdate { resource, .. },
            Plan::Create { id } | Plan::Write { id },
        ) => audit::patient_of(&resource.resource_type, id, &resource.index),
        (_, Plan::Existing(v)) => {
            let index = fhir::index::extract(&v.parse()?);
            audit::patient_of(&v.resource_type, &v.id, &index)
        }
        (_, Plan::Delete { resource_type, id }) => match tx.current(resource_type, id).await? {
            Some(c) if !c.deleted => {
                let index = fhir::index::extract(&c.parse()?);
                audit::patient_of(resource_type, id, &index)
            }
            _ => None,
        },
        _ => None,
    })
}

/// One audit record per resource written (state writes leave none): what was done, to which
/// version, of whose record.
fn audit_records(
    context: &AuditContext,
    outcomes: &[WriteOutcome],
    patients: Vec<Option<String>>,
    now: DateTime<Utc>,
) -> Vec<AuditRecord> {
    outcomes
        .iter()
        .zip(patients)
        .filter_map(|(outcome, patient)| {
            let (action, status) = match outcome {
                WriteOutcome::Created(_) => (AuditAction::Create, 201),
                WriteOutcome::Updated { .. } => (AuditAction::Update, 200),
                WriteOutcome::Existing(_) => (AuditAction::Create, 200),
                WriteOutcome::Deleted { version: None, .. } => return None,
                WriteOutcome::Deleted { .. } => (AuditAction::Delete, 204),
                WriteOutcome::StatePut => return None,
            };
            let v = outcome.version()?;
            let entity = format!("{}/{}/_history/{}", v.resource_type, v.id, v.version_id);
            Some(context.record(
                now,
                action,
                Some(entity),
                patient,
                AuditOutcome::Success,
                Some(status),
            ))
        })
        .collect()
}

async fn execute(
    tx: &mut dyn WriteTx,
    op: WriteOp,
    plan: Plan,
    now: DateTime<Utc>,
) -> Result<WriteOutcome> {
    match plan {
        Plan::State => match op {
            WriteOp::PutState { key, value } => {
                tx.put_state(&key, &value).await?;
                Ok(WriteOutcome::StatePut)
            }
            _ => Err(StoreError::Database(
                "a state write planned for another operation".into(),
            )),
        },
        Plan::Existing(v) => Ok(WriteOutcome::Existing(v)),
        Plan::Nothing { resource_type } => Ok(WriteOutcome::Deleted {
            resource_type,
            id: String::new(),
            version: None,
        }),
        Plan::Create { id } => {
            let mut resource = match op {
                WriteOp::Create { resource, .. } | WriteOp::ConditionalUpdate { resource, .. } => {
                    resource
                }
                _ => {
                    return Err(StoreError::Database(
                        "create planned for a non-create".into(),
                    ))
                }
            };
            let version = stored_version(&mut resource, &id, 1, now)?;
            tx.put(&version, false, &resource.index).await?;
            Ok(WriteOutcome::Created(version))
        }
        Plan::Write { id } => {
            let (mut resource, if_match) = match op {
                WriteOp::Update {
                    resource, if_match, ..
                }
                | WriteOp::ConditionalUpdate {
                    resource, if_match, ..
                } => (resource, if_match),
                _ => {
                    return Err(StoreError::Database(
                        "update planned for a non-update".into(),
                    ))
                }
            };
            let current = tx.current(&resource.resource_type, &id).await?;
            let current_version = current.as_ref().map(|c| c.version_id).unwrap_or(0);
            if let Some(expected) = if_match {
                if expected != current_version {
                    return Err(StoreError::VersionConflict {
                        resource_type: resource.resource_type.clone(),
                        id,
                        expected,
                        current: current_version,
                    });
                }
            }
            if let Some(c) = current.as_ref().filter(|c| !c.deleted) {
                if same_content(&c.parse()?, &resource.value) {
                    return Ok(WriteOutcome::Updated {
                        version: c.clone(),
                        changed: false,
                    });
                }
            }
            let version = stored_version(&mut resource, &id, current_version + 1, now)?;
            tx.put(&version, current.is_some(), &resource.index).await?;
            Ok(match current {
                None => WriteOutcome::Created(version),
                Some(_) => WriteOutcome::Updated {
                    version,
                    changed: true,
                },
            })
        }
        Plan::Delete { resource_type, id } => {
            let current = tx.current(&resource_type, &id).await?;
            match current {
                Some(c) if !c.deleted => {
                    let version = ResourceVersion {
                        resource_type: resource_type.clone(),
                        id: id.clone(),
                        version_id: c.version_id + 1,
                        last_updated: now,
                        deleted: true,
                        json: String::new(),
                    };
                    tx.put(&version, true, &[]).await?;
                    Ok(WriteOutcome::Deleted {
                        resource_type,
                        id,
                        version: Some(version),
                    })
                }
                _ => Ok(WriteOutcome::Deleted {
                    resource_type,
                    id,
                    version: None,
                }),
            }
        }
    }
}

/// A new server-assigned id: a time-ordered UUID (version 7), so that new rows land at the end
/// of the `(res_type, res_id)` index instead of on a random page of it (one random page write
/// fewer per create; the creation time it carries is in `meta.lastUpdated` anyway).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The JSON as stored and served: `resourceType`, `id`, `meta` (with `versionId` and
/// `lastUpdated` set by the server) first, then the rest in the order given.
///
/// This runs on the single SQLite writer, so the text is written straight from the resource's
/// body, without first building the stored form as a new JSON object (building it, and hashing
/// every key into it, was an eighth of the writer's time in a bulk import).
fn stored_version(
    resource: &mut Prepared,
    id: &str,
    version_id: i64,
    now: DateTime<Utc>,
) -> Result<ResourceVersion> {
    let Value::Object(body) = &resource.value else {
        return Err(StoreError::invalid(fhir::Issue::error(
            fhir::IssueType::Structure,
            "a resource must be a JSON object",
        )));
    };
    let json = stored_json(
        &resource.resource_type,
        id,
        body,
        &version_id.to_string(),
        &fhir::datetime::format_instant(now),
    )
    .map_err(|e| StoreError::Database(format!("could not serialise resource: {e}")))?;
    Ok(ResourceVersion {
        resource_type: resource.resource_type.clone(),
        id: id.to_string(),
        version_id,
        last_updated: now,
        deleted: false,
        json,
    })
}

/// The stored text of `body` as `resource_type/id`: the same as serialising the object
/// `{resourceType, id, meta: body.meta + {versionId, lastUpdated}, ...rest of body}`.
fn stored_json(
    resource_type: &str,
    id: &str,
    body: &Map<String, Value>,
    version_id: &str,
    last_updated: &str,
) -> serde_json::Result<String> {
    fn member(out: &mut Vec<u8>, first: &mut bool, key: &str) -> serde_json::Result<()> {
        if !std::mem::take(first) {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        Ok(())
    }
    let mut out = Vec::with_capacity(1024);
    let mut first = true;
    out.push(b'{');
    member(&mut out, &mut first, "resourceType")?;
    serde_json::to_writer(&mut out, resource_type)?;
    member(&mut out, &mut first, "id")?;
    serde_json::to_writer(&mut out, id)?;
    member(&mut out, &mut first, "meta")?;
    out.push(b'{');
    let mut first_in_meta = true;
    let (mut wrote_version, mut wrote_updated) = (false, false);
    if let Some(Value::Object(meta)) = body.get("meta") {
        for (k, v) in meta {
            member(&mut out, &mut first_in_meta, k)?;
            match k.as_str() {
                "versionId" => {
                    wrote_version = true;
                    serde_json::to_writer(&mut out, version_id)?;
                }
                "lastUpdated" => {
                    wrote_updated = true;
                    serde_json::to_writer(&mut out, last_updated)?;
                }
                _ => serde_json::to_writer(&mut out, v)?,
            }
        }
    }
    if !wrote_version {
        member(&mut out, &mut first_in_meta, "versionId")?;
        serde_json::to_writer(&mut out, version_id)?;
    }
    if !wrote_updated {
        member(&mut out, &mut first_in_meta, "lastUpdated")?;
        serde_json::to_writer(&mut out, last_updated)?;
    }
    out.push(b'}');
    for (k, v) in body {
        if !matches!(k.as_str(), "resourceType" | "id" | "meta") {
            member(&mut out, &mut first, k)?;
            serde_json::to_writer(&mut out, v)?;
        }
    }
    out.push(b'}');
    // serde_json writes UTF-8 only.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// Whether two resources differ in anything but `id`, `meta.versionId` and `meta.lastUpdated`.
pub fn same_content(stored: &Value, incoming: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            m.remove("id");
            let empty_meta = if let Some(Value::Object(meta)) = m.get_mut("meta") {
                meta.remove("versionId");
                meta.remove("lastUpdated");
                meta.is_empty()
            } else {
                false
            };
            if empty_meta {
                m.remove("meta");
            }
        }
        v
    }
    strip(stored) == strip(incoming)
}

/// Replaces `reference` values found in `aliases`; returns whether anything changed.
fn rewrite_references(v: &mut Value, aliases: &HashMap<String, String>) -> bool {
    match v {
        Value::Object(m) => {
            let mut changed = false;
            for (k, child) in m.iter_mut() {
                if k == "reference" {
                    if let Value::String(s) = child {
                        if let Some(target) = aliases.get(s.as_str()) {
                            *s = target.clone();
                            changed = true;
                        }
                        continue;
                    }
                }
                changed |= rewrite_references(child, aliases);
            }
            changed
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |c, x| rewrite_references(x, aliases) | c),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_to_other_entries_are_rewritten() {
        let mut aliases = HashMap::new();
        aliases.insert("urn:uuid:abc".to_string(), "Patient/42".to_string());
        let mut v = json!({"resourceType": "Observation", "subject": {"reference": "urn:uuid:abc"}, "performer": [{"reference": "urn:uuid:other"}]});
        assert!(rewrite_references(&mut v, &aliases));
        assert_eq!(v["subject"]["reference"], "Patient/42");
        assert_eq!(v["performer"][0]["reference"], "urn:uuid:other");
    }

    /// The stored form as it was first defined: a new object in that order, serialised.
    fn stored_json_by_building_the_object(
        resource_type: &str,
        id: &str,
        body: &Map<String, Value>,
        version_id: &str,
        last_updated: &str,
    ) -> String {
        let mut body = body.clone();
        let mut out = Map::new();
        out.insert("resourceType".into(), json!(resource_type));
        out.insert("id".into(), json!(id));
        let mut meta = match body.remove("meta") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        meta.insert("versionId".into(), json!(version_id));
        meta.insert("lastUpdated".into(), json!(last_updated));
        out.insert("meta".into(), Value::Object(meta));
        for (k, v) in body {
            if !matches!(k.as_str(), "resourceType" | "id") {
                out.insert(k, v);
            }
        }
        Value::Object(out).to_string()
    }

    #[test]
    fn stored_json_is_the_object_in_server_order() {
        let bodies = [
            json!({"resourceType": "Patient", "name": [{"family": "O\"Brien \u{e9}"}], "id": "x"}),
            json!({"active": true, "meta": {"profile": ["p"], "versionId": "9", "tag": []}, "resourceType": "Patient"}),
            json!({"resourceType": "Patient", "meta": {"lastUpdated": "2020-01-01T00:00:00Z"}}),
            json!({"resourceType": "Patient", "meta": "not an object", "gender": "other"}),
            json!({}),
        ];
        for body in bodies {
            let Value::Object(map) = body else {
                panic!("object")
            };
            assert_eq!(
                stored_json("Patient", "p-1", &map, "3", "2024-05-01T10:00:00.000Z").expect("json"),
                stored_json_by_building_the_object(
                    "Patient",
                    "p-1",
                    &map,
                    "3",
                    "2024-05-01T10:00:00.000Z"
                )
            );
        }
    }

    #[test]
    fn same_content_ignores_server_meta() {
        let a = json!({"resourceType": "Patient", "id": "1", "meta": {"versionId": "3", "lastUpdated": "2024-01-01T00:00:00Z"}, "active": true});
        let b = json!({"resourceType": "Patient", "active": true});
        assert!(same_content(&a, &b));
        let c = json!({"resourceType": "Patient", "active": false});
        assert!(!same_content(&a, &c));
    }
}
