//! `POST /fhir`: batch and transaction Bundles.
//!
//! Every entry is decided by the access policy as the interaction it is
//! ([`rest::gate_write`] for writes, the read interactions for GET entries). A transaction's
//! writes are decided entry by entry before anything runs — one refused fails the whole
//! transaction — then go to the store as one `Store::transaction_audited` (all or nothing, each
//! resource written leaving its audit record); its reads (GET entries) run after the commit and
//! report their own status. A batch runs every entry on its own, concurrently, and reports each
//! entry's result, a refused one with its own error.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};
use store::{HistoryScope, StoreError, WriteOp};

use crate::access::{Gate, Requester};
use crate::bundle;
use crate::error::WebError;
use crate::http::{self, body_bytes, json_body, negotiate, parse_query, prefer, Reply, Return};
use crate::rest::{self, check_type, criteria, prepare};
use crate::AppState;

/// A GET entry.
enum ReadRequest {
    Read {
        resource_type: String,
        id: String,
    },
    VRead {
        resource_type: String,
        id: String,
        vid: String,
    },
    Search {
        resource_type: String,
        params: Vec<(String, String)>,
    },
    History {
        scope: HistoryScope,
        params: Vec<(String, String)>,
    },
}

enum Planned {
    Write(Box<WriteOp>),
    Read(ReadRequest),
}

/// One parsed entry.
struct Entry {
    planned: Planned,
}

fn entry_error(index: usize, e: WebError) -> WebError {
    WebError::Entry {
        index,
        source: Box::new(e),
    }
}

pub async fn bundle(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let params = parse_query(query.as_deref())?;
    negotiate(&headers, &params)?;
    let body = body_bytes(body, state.config.max_body_bytes)?;
    let value = json_body(&headers, &body)?;
    http::check_resource_type(&value, "Bundle")?;
    let Value::Object(mut bundle) = value else {
        return Err(WebError::bad_request("the body must be a Bundle"));
    };
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let entries = match bundle.remove("entry") {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(WebError::bad_request_at(
                format!(
                    "Bundle.entry must be an array, not {}",
                    http::json_kind(&other)
                ),
                "Bundle.entry",
            ))
        }
    };
    let pref = prefer(&headers);
    let reply = match kind.as_str() {
        "transaction" => transaction(&state, &requester, entries, pref.ret, pref.lenient).await?,
        "batch" => batch(&state, &requester, entries, pref.ret, pref.lenient).await,
        other => {
            return Err(WebError::bad_request_at(
                format!("POST /fhir takes a Bundle of type batch or transaction, not {other:?}"),
                "Bundle.type",
            ))
        }
    };
    Ok(reply.into_http(&state.base))
}

async fn transaction(
    state: &AppState,
    requester: &Requester,
    entries: Vec<Value>,
    ret: Return,
    lenient: bool,
) -> Result<Reply, WebError> {
    let gate = Gate::new(state, requester).await?;
    let mut parsed = Vec::with_capacity(entries.len());
    let mut break_glass = false;
    for (i, e) in entries.into_iter().enumerate() {
        let mut entry = parse_entry(state, e).map_err(|e| entry_error(i, e))?;
        if let Planned::Write(op) = &mut entry.planned {
            match rest::gate_write(&gate, op).await {
                Ok(bg) => break_glass |= bg,
                Err(e) => {
                    let (action, entity) = rest::write_audit(op);
                    let e = rest::audit_refusal(state, requester, action, entity, e).await;
                    return Err(entry_error(i, e));
                }
            }
        }
        parsed.push(entry);
    }
    let mut ops = Vec::new();
    let mut op_entries = Vec::new();
    let mut reads = Vec::new();
    for (i, entry) in parsed.into_iter().enumerate() {
        match entry.planned {
            Planned::Write(op) => {
                ops.push(*op);
                op_entries.push(i);
            }
            Planned::Read(r) => reads.push((i, r)),
        }
    }
    let mut replies: Vec<Option<(Reply, bool)>> =
        (0..op_entries.len() + reads.len()).map(|_| None).collect();
    if !ops.is_empty() {
        let outcomes = state
            .store
            .transaction_audited(ops, Some(&requester.audit))
            .await
            .map_err(|e| match e {
                StoreError::Entry { index, source } => entry_error(
                    op_entries.get(index).copied().unwrap_or(index),
                    WebError::Store(*source),
                ),
                e if op_entries.len() == 1 && is_entry_error(&e) => {
                    entry_error(op_entries[0], WebError::Store(e))
                }
                e => WebError::Store(e),
            })?;
        for (outcome, i) in outcomes.into_iter().zip(&op_entries) {
            replies[*i] = Some((rest::write_reply(outcome, ret), false));
        }
        if break_glass {
            rest::audit_break_glass_write(state, requester, "Bundle".into()).await?;
        }
    }
    for (i, r) in reads {
        replies[i] = Some(run_read(state, requester, r, lenient).await);
    }
    let replies: Vec<(Reply, bool)> = replies.into_iter().flatten().collect();
    Ok(Reply::json(
        StatusCode::OK,
        bundle::response_bundle(&state.base, "transaction-response", &replies),
    ))
}

/// Errors that belong to one entry rather than to the database as a whole.
fn is_entry_error(e: &StoreError) -> bool {
    !matches!(e, StoreError::Unavailable | StoreError::Database(_))
}

async fn batch(
    state: &AppState,
    requester: &Requester,
    entries: Vec<Value>,
    ret: Return,
    lenient: bool,
) -> Reply {
    let runs = entries.into_iter().map(|e| async move {
        let entry = match parse_entry(state, e) {
            Ok(entry) => entry,
            Err(e) => return error_reply(&e),
        };
        match entry.planned {
            // Single-entry transactions run concurrently; the store batches their commits.
            Planned::Write(op) => match rest::write_interaction(state, requester, *op).await {
                Ok(outcome) => (rest::write_reply(outcome, ret), false),
                Err(e) => error_reply(&e),
            },
            Planned::Read(r) => run_read(state, requester, r, lenient).await,
        }
    });
    let replies = futures::future::join_all(runs).await;
    Reply::json(
        StatusCode::OK,
        bundle::response_bundle(&state.base, "batch-response", &replies),
    )
}

fn error_reply(e: &WebError) -> (Reply, bool) {
    (Reply::json(e.status(), e.outcome_json().to_string()), true)
}

async fn run_read(
    state: &AppState,
    requester: &Requester,
    r: ReadRequest,
    lenient: bool,
) -> (Reply, bool) {
    let result = match r {
        ReadRequest::Read { resource_type, id } => {
            rest::read_interaction(state, requester, &resource_type, &id)
                .await
                .map(|mut reply| {
                    reply.full_url = Some(format!("{resource_type}/{id}"));
                    reply
                })
        }
        ReadRequest::VRead {
            resource_type,
            id,
            vid,
        } => rest::vread_interaction(state, requester, &resource_type, &id, &vid).await,
        ReadRequest::Search {
            resource_type,
            params,
        } => rest::search_interaction(state, requester, &resource_type, &params, lenient).await,
        ReadRequest::History { scope, params } => {
            rest::history_interaction(state, requester, scope, &params, lenient).await
        }
    };
    match result {
        Ok(reply) => (reply, false),
        Err(e) => error_reply(&e),
    }
}

fn string_field<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    at: &str,
) -> Result<Option<&'a str>, WebError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(WebError::bad_request_at(
            format!(
                "{at}.{name} must be a string, not {}",
                http::json_kind(other)
            ),
            format!("{at}.{name}"),
        )),
    }
}

fn parse_entry(state: &AppState, entry: Value) -> Result<Entry, WebError> {
    let Value::Object(mut entry) = entry else {
        return Err(WebError::bad_request(
            "a Bundle entry must be a JSON object",
        ));
    };
    let request = match entry.remove("request") {
        Some(Value::Object(r)) => r,
        _ => {
            return Err(WebError::bad_request_at(
                "the entry has no request; give request.method and request.url",
                "Bundle.entry.request",
            ))
        }
    };
    let at = "Bundle.entry.request";
    let method = string_field(&request, "method", at)?.unwrap_or("");
    let Some(url) = string_field(&request, "url", at)? else {
        return Err(WebError::bad_request_at(
            "request.url is missing",
            "Bundle.entry.request.url",
        ));
    };
    let if_match = match string_field(&request, "ifMatch", at)? {
        None => None,
        Some(t) => Some(http::parse_etag(t).ok_or_else(|| {
            WebError::bad_request_at(
                "request.ifMatch must be a version ETag such as W/\"3\"",
                "Bundle.entry.request.ifMatch",
            )
        })?),
    };
    let if_none_exist = string_field(&request, "ifNoneExist", at)?.map(str::to_string);
    let full_url = string_field(&entry, "fullUrl", "Bundle.entry")?.map(str::to_string);

    // The URL relative to the FHIR base.
    let relative = url.strip_prefix(&*state.base).unwrap_or(url);
    let relative = relative.trim_start_matches('/');
    let (path, query) = match relative.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (relative, None),
    };
    let params = parse_query(query)?;
    let segments: Vec<&str> = path.split('/').collect();
    let resource_type = segments.first().copied().unwrap_or("").to_string();
    let system_history = resource_type == "_history" && segments.len() == 1;
    if !system_history {
        check_type(&resource_type)?;
    }
    let resource = entry.remove("resource");
    let need_resource = |resource: Option<Value>| {
        resource.ok_or_else(|| {
            WebError::bad_request_at(
                format!("a {method} entry needs a resource"),
                "Bundle.entry.resource",
            )
        })
    };
    let entry = match (method, segments.as_slice()) {
        ("GET", ["_history"]) => Entry {
            planned: Planned::Read(ReadRequest::History {
                scope: HistoryScope::System,
                params,
            }),
        },
        ("GET", [_]) => Entry {
            planned: Planned::Read(ReadRequest::Search {
                resource_type: resource_type.clone(),
                params,
            }),
        },
        ("GET", [_, "_history"]) => Entry {
            planned: Planned::Read(ReadRequest::History {
                scope: HistoryScope::Type {
                    resource_type: resource_type.clone(),
                },
                params,
            }),
        },
        ("GET", [_, id]) => Entry {
            planned: Planned::Read(ReadRequest::Read {
                resource_type: resource_type.clone(),
                id: id.to_string(),
            }),
        },
        ("GET", [_, id, "_history"]) => Entry {
            planned: Planned::Read(ReadRequest::History {
                scope: HistoryScope::Instance {
                    resource_type: resource_type.clone(),
                    id: id.to_string(),
                },
                params,
            }),
        },
        ("GET", [_, id, "_history", vid]) => Entry {
            planned: Planned::Read(ReadRequest::VRead {
                resource_type: resource_type.clone(),
                id: id.to_string(),
                vid: vid.to_string(),
            }),
        },
        ("POST", [_]) => {
            let resource = prepare(need_resource(resource)?, &resource_type)?;
            let condition = match if_none_exist {
                None => None,
                Some(text) => Some(rest::if_none_exist(state, &resource_type, &text)?),
            };
            Entry {
                planned: Planned::Write(Box::new(WriteOp::Create {
                    resource,
                    if_none_exist: condition,
                    full_url,
                })),
            }
        }
        ("PUT", [_]) if query.is_some() => {
            let criteria = criteria(state, &resource_type, &params, "a conditional update")?;
            Entry {
                planned: Planned::Write(Box::new(WriteOp::ConditionalUpdate {
                    criteria,
                    resource: prepare(need_resource(resource)?, &resource_type)?,
                    if_match,
                    full_url,
                })),
            }
        }
        ("PUT", [_, id]) => {
            let value = need_resource(resource)?;
            http::check_resource_type(&value, &resource_type)?;
            if value.get("id").is_none() {
                return Err(WebError::bad_request_at(
                    format!("an update must carry the resource's id: add \"id\": \"{id}\""),
                    format!("{resource_type}.id"),
                ));
            }
            Entry {
                planned: Planned::Write(Box::new(WriteOp::Update {
                    id: id.to_string(),
                    resource: store::Prepared::new(value)?,
                    if_match,
                    full_url,
                })),
            }
        }
        ("DELETE", [_]) if query.is_some() => Entry {
            planned: Planned::Write(Box::new(WriteOp::ConditionalDelete {
                criteria: criteria(state, &resource_type, &params, "a conditional delete")?,
            })),
        },
        ("DELETE", [_, id]) => Entry {
            planned: Planned::Write(Box::new(WriteOp::Delete {
                resource_type: resource_type.clone(),
                id: id.to_string(),
            })),
        },
        ("GET" | "POST" | "PUT" | "DELETE", _) => {
            return Err(WebError::bad_request_at(
                format!("{method} {url} is not an interaction this server supports in a Bundle"),
                "Bundle.entry.request.url",
            ))
        }
        _ => {
            return Err(WebError::MethodNotAllowed {
                method: method.to_string(),
                path: url.to_string(),
            })
        }
    };
    Ok(entry)
}
