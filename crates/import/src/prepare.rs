//! The workers' job: one line (or document) of input into the store writes it asks for, or the
//! reasons it cannot be imported. Parsing, the identity rule, reference rewriting, validation and
//! index extraction all happen here, on the worker threads, so that the store's writer only
//! writes.

use std::collections::HashMap;

use fhir::validate::json_kind;
use serde_json::Value;
use store::{Prepared, SearchQuery, StoreError, WriteOp};

use crate::bundle::{self, Action, BadEntry, Entry};
use crate::identity::{self, Identity};
use crate::references::{self, RefError, Resolution};
use crate::resolve::{Found, LookupError, Resolver};

/// The resource type counted for a line that is not a readable resource.
pub const UNREADABLE: &str = "(unreadable)";

/// Most validation issues listed for one resource.
const MAX_ISSUES: usize = 3;

/// One write, with what the summary and the reports need to know about it.
#[derive(Debug)]
pub struct Op {
    pub op: WriteOp,
    pub resource_type: String,
    /// `Type/id` (or `Type?query` for a conditional write): two writes with the same key must
    /// not be in flight together (see `commit`).
    pub key: String,
    /// The Bundle entry it came from.
    pub entry: Option<usize>,
}

/// Something that cannot be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub line: u64,
    pub entry: Option<usize>,
    pub resource_type: String,
    pub reason: String,
}

impl Reject {
    /// `Bundle.entry[3]: reason`, or the reason alone for a line.
    pub fn message(&self) -> String {
        match self.entry {
            Some(i) => format!("Bundle.entry[{i}]: {}", self.reason),
            None => self.reason.clone(),
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    /// Writes to commit (all together when `atomic`), and entries refused on the way (never
    /// any when `atomic`).
    Write {
        atomic: bool,
        ops: Vec<Op>,
        rejected: Vec<Reject>,
    },
    /// Nothing is imported: `reports` say why, and `along` are the types of the entries of a
    /// transaction refused with them.
    Rejected {
        reports: Vec<Reject>,
        along: Vec<String>,
    },
    /// A conditional reference matches nothing yet: retry once everything else is imported.
    Deferred { why: String },
    /// The store failed: the import stops.
    Failed(StoreError),
}

/// Turns the unit `text` starting on `line` into its writes. In the `last_round`, a conditional
/// reference that still matches nothing is a rejection rather than a reason to wait.
pub fn prepare(resolver: &Resolver, text: &str, line: u64, last_round: bool) -> Outcome {
    let whole = |resource_type: &str, reason: String| Outcome::Rejected {
        reports: vec![Reject {
            line,
            entry: None,
            resource_type: resource_type.to_string(),
            reason,
        }],
        along: Vec::new(),
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return whole(UNREADABLE, json_error(&e, line)),
    };
    let Value::Object(map) = value else {
        return whole(
            UNREADABLE,
            format!(
                "expected one FHIR resource (a JSON object), not {}",
                json_kind(&value)
            ),
        );
    };
    let resource_type = match map.get("resourceType") {
        Some(Value::String(t)) => t.clone(),
        _ => return whole(UNREADABLE, "resourceType is missing".into()),
    };
    let (atomic, in_bundle, entries) = if resource_type == "Bundle" {
        match bundle::expand(map) {
            Ok(x) => (x.atomic, true, x.entries),
            Err(reason) => return whole("Bundle", reason),
        }
    } else {
        let entry = Entry {
            index: 0,
            full_url: None,
            resource: Some(Value::Object(map)),
            action: Action::Store {
                request_type: None,
                request_id: None,
            },
        };
        (false, false, vec![Ok(entry)])
    };
    let mut unit = Unit {
        resolver,
        line,
        in_bundle,
        last_round,
        rejected: Vec::new(),
    };
    let mut outcome = unit.plan(entries, atomic);
    // Entries of a document spread over lines are reported at their own line.
    if in_bundle && text.contains('\n') {
        let lines = entry_lines(text, line);
        let fix = |r: &mut Reject| {
            if let Some(l) = r.entry.and_then(|i| lines.get(i)) {
                r.line = *l;
            }
        };
        match &mut outcome {
            Outcome::Write { rejected, .. } => rejected.iter_mut().for_each(fix),
            Outcome::Rejected { reports, .. } => reports.iter_mut().for_each(fix),
            _ => {}
        }
    }
    outcome
}

/// What an entry writes to.
enum Target {
    /// Store the resource as `Type/id`.
    Id(String),
    /// Delete `Type/id`.
    Delete(String),
    /// Delete what the query (kept as text for the key) finds.
    DeleteWhere(Box<SearchQuery>, String),
}

struct Planned {
    index: usize,
    full_url: Option<String>,
    resource_type: String,
    resource: Option<Value>,
    target: Target,
}

struct Unit<'a> {
    resolver: &'a Resolver,
    line: u64,
    in_bundle: bool,
    last_round: bool,
    rejected: Vec<Reject>,
}

/// The reason a line or entry failed, or the store failed.
enum Fail {
    Reject(String),
    Store(StoreError),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Unit<'_> {
    fn reject(&mut self, index: usize, resource_type: Option<&str>, reason: String) {
        self.rejected.push(Reject {
            line: self.line,
            entry: self.in_bundle.then_some(index),
            resource_type: resource_type.unwrap_or(UNREADABLE).to_string(),
            reason,
        });
    }

    fn plan(&mut self, entries: Vec<Result<Entry, BadEntry>>, atomic: bool) -> Outcome {
        // 1. Where each entry goes (the identity rule).
        let mut planned = Vec::with_capacity(entries.len());
        for e in entries {
            match e {
                Err(bad) => self.reject(bad.index, bad.resource_type.as_deref(), bad.reason),
                Ok(entry) => {
                    let index = entry.index;
                    let ty = entry
                        .resource
                        .as_ref()
                        .and_then(|r| r.get("resourceType"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    match self.target(entry) {
                        Ok(p) => planned.push(p),
                        Err(Fail::Reject(reason)) => self.reject(index, ty.as_deref(), reason),
                        Err(Fail::Store(e)) => return Outcome::Failed(e),
                    }
                }
            }
        }
        if atomic {
            // A transaction writes each resource once (FHIR); and applied again after an
            // interruption, two versions of one resource in one line would not come out the same.
            let mut seen: HashMap<String, usize> = HashMap::new();
            let mut twice = Vec::new();
            for p in &planned {
                let key = match &p.target {
                    Target::Id(id) | Target::Delete(id) => format!("{}/{id}", p.resource_type),
                    Target::DeleteWhere(_, query) => format!("{}?{query}", p.resource_type),
                };
                if let Some(first) = seen.insert(key.clone(), p.index) {
                    twice.push((p.index, p.resource_type.clone(), key, first));
                }
            }
            for (index, ty, key, first) in twice {
                self.reject(
                    index,
                    Some(&ty),
                    format!("the transaction writes {key} twice (also Bundle.entry[{first}]); a transaction may write each resource once"),
                );
            }
        }
        if atomic && !self.rejected.is_empty() {
            let reported: Vec<Option<usize>> = self.rejected.iter().map(|r| r.entry).collect();
            let along = planned
                .iter()
                .filter(|p| !reported.contains(&Some(p.index)))
                .map(|p| p.resource_type.clone())
                .collect();
            return self.refuse_all(along);
        }

        // 2. References between entries, by fullUrl; conditional references by search.
        let mut aliases = HashMap::new();
        let mut by_identifier = HashMap::new();
        for p in &planned {
            let Target::Id(id) = &p.target else { continue };
            let local = format!("{}/{id}", p.resource_type);
            if let Some(url) = &p.full_url {
                aliases.insert(url.clone(), local.clone());
            }
            if let Some(resource) = &p.resource {
                for (system, value) in identifiers(resource) {
                    by_identifier.insert(
                        format!("{}?identifier={system}|{value}", p.resource_type),
                        local.clone(),
                    );
                }
            }
        }
        let mut ops = Vec::with_capacity(planned.len());
        let mut kept_types = Vec::new();
        for mut p in planned {
            if let Some(resource) = p.resource.as_mut() {
                let resolver = self.resolver;
                let mut resolve = |reference: &str| -> Result<Resolution, RefError> {
                    if let Some(local) = by_identifier.get(reference) {
                        return Ok(Resolution::Found(local.clone()));
                    }
                    let (target_type, _) = references::conditional(reference).unwrap_or(("", ""));
                    match resolver.reference(reference) {
                        Ok(Found::One(target)) => Ok(Resolution::Found(target)),
                        Ok(Found::None) => Ok(Resolution::NotYet),
                        Ok(Found::Many) => Err(RefError::Reject(format!(
                            "the conditional reference to {target_type} ({}) matches more than one {target_type}",
                            references::described_query(reference)
                        ))),
                        Err(LookupError::Query(why)) => Err(RefError::Reject(format!(
                            "the conditional reference to {target_type} is not a valid search: {why}"
                        ))),
                        Err(LookupError::Store(e)) => Err(RefError::Store(e)),
                    }
                };
                match references::rewrite(resource, &p.resource_type, &aliases, &mut resolve) {
                    Ok(r) => {
                        if let Some(why) = r.unresolved {
                            if !self.last_round {
                                return Outcome::Deferred { why };
                            }
                            self.reject(p.index, Some(&p.resource_type), why);
                            continue;
                        }
                    }
                    Err(RefError::Reject(why)) => {
                        self.reject(p.index, Some(&p.resource_type), why);
                        continue;
                    }
                    Err(RefError::Store(e)) => return Outcome::Failed(e),
                }
            }
            // 3. Validation and the search index.
            match self.op(&mut p) {
                Ok(op) => {
                    kept_types.push(op.resource_type.clone());
                    ops.push(op);
                }
                Err(reason) => self.reject(p.index, Some(&p.resource_type), reason),
            }
        }
        if atomic && !self.rejected.is_empty() {
            return self.refuse_all(kept_types);
        }
        if ops.is_empty() && !self.rejected.is_empty() {
            return Outcome::Rejected {
                reports: std::mem::take(&mut self.rejected),
                along: Vec::new(),
            };
        }
        Outcome::Write {
            atomic,
            ops,
            rejected: std::mem::take(&mut self.rejected),
        }
    }

    fn refuse_all(&mut self, along: Vec<String>) -> Outcome {
        let mut reports = std::mem::take(&mut self.rejected);
        for r in &mut reports {
            r.reason = format!("{} (so the whole transaction is refused)", r.reason);
        }
        Outcome::Rejected { reports, along }
    }

    /// The identity rule for one entry.
    fn target(&mut self, entry: Entry) -> Result<Planned, Fail> {
        let Entry {
            index,
            full_url,
            resource,
            action,
        } = entry;
        let planned = |resource_type: String, resource: Option<Value>, target: Target| Planned {
            index,
            full_url: full_url.clone(),
            resource_type,
            resource,
            target,
        };
        match action {
            Action::Store {
                request_type,
                request_id,
            } => {
                let resource = resource.ok_or_else(|| Fail::Reject("no resource".into()))?;
                let ty = supported_type(&resource)?;
                if let Some(rt) = request_type.filter(|rt| *rt != ty) {
                    return Err(Fail::Reject(format!(
                        "the resource is a {ty} but request.url is for {rt}"
                    )));
                }
                let identity =
                    identity::identify(&resource, full_url.as_deref(), request_id.as_deref())
                        .map_err(|b| Fail::Reject(format!("{ty}.id: {}", b.0)))?;
                let id = match identity {
                    Identity::Source(id) => id,
                    Identity::Identifier { system, value } => {
                        self.by_identifier(&ty, &system, &value)?
                    }
                    Identity::Content => identity::content_id(&ty, &resource),
                };
                Ok(planned(ty, Some(resource), Target::Id(id)))
            }
            Action::StoreWhere {
                resource_type,
                query,
            } => {
                let resource = resource.ok_or_else(|| Fail::Reject("no resource".into()))?;
                let ty = supported_type(&resource)?;
                if ty != resource_type {
                    return Err(Fail::Reject(format!(
                        "the resource is a {ty} but request.url is for {resource_type}"
                    )));
                }
                let id = match identity::identify(&resource, full_url.as_deref(), None)
                    .map_err(|b| Fail::Reject(format!("{ty}.id: {}", b.0)))?
                {
                    Identity::Source(id) => id,
                    _ => {
                        let criteria = criteria(&ty, &query)?;
                        match self.resolver.find(&criteria)? {
                            Found::One(id) => id,
                            Found::None => identity::derived_id(&ty, &format!("query|{query}")),
                            Found::Many => {
                                return Err(Fail::Reject(format!(
                                    "request.url matches more than one {ty}; make the query more selective"
                                )))
                            }
                        }
                    }
                };
                Ok(planned(ty, Some(resource), Target::Id(id)))
            }
            Action::Delete { resource_type, id } => {
                check_type(&resource_type)?;
                if !fhir::types::is_valid_id(&id) {
                    return Err(Fail::Reject(format!(
                        "request.url: {id:?} is not a valid id"
                    )));
                }
                Ok(planned(resource_type, None, Target::Delete(id)))
            }
            Action::DeleteWhere {
                resource_type,
                query,
            } => {
                check_type(&resource_type)?;
                let criteria = criteria(&resource_type, &query)?;
                Ok(planned(
                    resource_type,
                    None,
                    Target::DeleteWhere(Box::new(criteria), query),
                ))
            }
        }
    }

    /// Identity rule, step 2: the stored resource with this identifier, or the derived id.
    fn by_identifier(&mut self, ty: &str, system: &str, value: &str) -> Result<String, Fail> {
        let derived = identity::derived_id(ty, &format!("identifier|{system}|{value}"));
        // A system containing '|' cannot be searched for; the derived id still identifies.
        if system.contains('|') {
            return Ok(derived);
        }
        let escape = |s: &str| s.replace('\\', "\\\\").replace(',', "\\,");
        let params = vec![(
            "identifier".to_string(),
            format!("{}|{}", escape(system), escape(value)),
        )];
        let mut q = store::query::parse(ty, &params, &store::query::ParseOptions::default())
            .map_err(|_| Fail::Reject(format!("{ty}.identifier cannot be searched for")))?;
        q.count = 2;
        match self.resolver.find(&q)? {
            Found::One(id) => Ok(id),
            Found::None => Ok(derived),
            Found::Many => Err(Fail::Reject(format!(
                "{ty}.identifier: more than one stored {ty} has this identifier, so it does not say which one this is; give the resource an id"
            ))),
        }
    }

    fn op(&mut self, p: &mut Planned) -> Result<Op, String> {
        let ty = p.resource_type.clone();
        let entry = self.in_bundle.then_some(p.index);
        match &p.target {
            Target::Id(id) => {
                let resource = p.resource.take().ok_or("no resource")?;
                let prepared = Prepared::new(resource).map_err(|e| store_reason(&e))?;
                Ok(Op {
                    key: format!("{ty}/{id}"),
                    op: WriteOp::Update {
                        id: id.clone(),
                        resource: prepared,
                        if_match: None,
                        full_url: None,
                    },
                    resource_type: ty,
                    entry,
                })
            }
            Target::Delete(id) => Ok(Op {
                key: format!("{ty}/{id}"),
                op: WriteOp::Delete {
                    resource_type: ty.clone(),
                    id: id.clone(),
                },
                resource_type: ty,
                entry,
            }),
            Target::DeleteWhere(criteria, query) => Ok(Op {
                key: format!("{ty}?{query}"),
                op: WriteOp::ConditionalDelete {
                    criteria: (**criteria).clone(),
                },
                resource_type: ty,
                entry,
            }),
        }
    }
}

fn criteria(ty: &str, query: &str) -> Result<SearchQuery, Fail> {
    Resolver::criteria(ty, query).map_err(|e| match e {
        LookupError::Query(why) => Fail::Reject(format!("request.url: {why}")),
        LookupError::Store(e) => Fail::Store(e),
    })
}

fn check_type(ty: &str) -> Result<(), Fail> {
    if fhir::is_supported_type(ty) {
        Ok(())
    } else {
        Err(Fail::Reject(format!(
            "Portico does not store {ty} resources"
        )))
    }
}

fn supported_type(resource: &Value) -> Result<String, Fail> {
    let ty = match resource.get("resourceType") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err(Fail::Reject("resourceType is missing".into())),
    };
    check_type(&ty)?;
    Ok(ty)
}

/// Every identifier of a resource with both a system and a value.
fn identifiers(resource: &Value) -> Vec<(String, String)> {
    let list: Vec<&Value> = match resource.get("identifier") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Vec::new(),
    };
    list.into_iter()
        .filter_map(|i| {
            let system = i.get("system")?.as_str()?;
            let value = i.get("value")?.as_str()?;
            Some((system.to_string(), value.to_string()))
        })
        .collect()
}

/// A store error as a line's reason: the validation issues with their FHIRPaths.
pub fn store_reason(e: &StoreError) -> String {
    match e.root() {
        StoreError::Invalid(issues) => {
            let mut parts: Vec<String> = issues
                .iter()
                .take(MAX_ISSUES)
                .map(|i| match &i.expression {
                    Some(at) => format!("{at}: {}", i.diagnostics),
                    None => i.diagnostics.clone(),
                })
                .collect();
            if issues.len() > MAX_ISSUES {
                parts.push(format!("and {} more", issues.len() - MAX_ISSUES));
            }
            parts.join("; ")
        }
        other => other.to_string(),
    }
}

fn json_error(e: &serde_json::Error, first_line: u64) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "the JSON ends too early",
        _ => "not valid JSON",
    };
    // serde_json's message ends with "at line L column C"; keep its first part and say where.
    let text = e.to_string();
    let detail = text.split(" at line ").next().unwrap_or(&text);
    if e.line() > 1 {
        format!(
            "{what}: {detail} (line {}, column {})",
            first_line + e.line() as u64 - 1,
            e.column()
        )
    } else {
        format!("{what}: {detail} (column {})", e.column())
    }
}

/// The line each entry of a Bundle document starts on (only computed when an entry is
/// reported).
fn entry_lines(text: &str, first_line: u64) -> Vec<u64> {
    #[derive(serde::Deserialize)]
    struct Entries<'a> {
        #[serde(borrow, default)]
        entry: Vec<&'a serde_json::value::RawValue>,
    }
    let Ok(parsed) = serde_json::from_str::<Entries<'_>>(text) else {
        return Vec::new();
    };
    let base = text.as_ptr() as usize;
    let mut line = first_line;
    let mut counted_to = 0usize;
    parsed
        .entry
        .iter()
        .map(|raw| {
            let at = (raw.get().as_ptr() as usize)
                .saturating_sub(base)
                .min(text.len());
            line += memchr::memchr_iter(b'\n', &text.as_bytes()[counted_to..at]).count() as u64;
            counted_to = at;
            line
        })
        .collect()
}
