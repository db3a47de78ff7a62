//! The CapabilityStatement at `/fhir/metadata`: exactly the types, interactions and search
//! parameters this server supports. Built once at start.

use fhir::search_params::{self, ParamType};
use serde_json::{json, Value};

/// Search parameter types the query parser understands (others are not listed).
fn searchable(t: ParamType) -> bool {
    matches!(
        t,
        ParamType::Token
            | ParamType::String
            | ParamType::Date
            | ParamType::Reference
            | ParamType::Quantity
            | ParamType::Uri
    )
}

fn resource_entry(resource_type: &str) -> Value {
    let params = search_params::for_type(resource_type);
    let mut search_param = vec![
        json!({"name": "_id", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id", "type": "token"}),
        json!({"name": "_lastUpdated", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated", "type": "date"}),
    ];
    for p in params.iter().filter(|p| searchable(p.param_type)) {
        if p.code == "_id" || p.code == "_lastUpdated" {
            continue;
        }
        search_param
            .push(json!({"name": p.code, "definition": p.url, "type": p.param_type.code()}));
    }
    let search_include: Vec<String> = params
        .iter()
        .filter(|p| p.param_type == ParamType::Reference)
        .map(|p| format!("{resource_type}:{}", p.code))
        .collect();
    let mut search_rev_include = Vec::new();
    for source in fhir::RESOURCE_TYPES {
        for p in search_params::for_type(source) {
            if p.param_type == ParamType::Reference
                && (p.targets.is_empty() || p.targets.contains(&resource_type))
            {
                search_rev_include.push(format!("{source}:{}", p.code));
            }
        }
    }
    let interactions: Vec<Value> = [
        "read",
        "vread",
        "update",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    .iter()
    .map(|c| json!({"code": c}))
    .collect();
    let mut entry = json!({
        "type": resource_type,
        "profile": format!("http://hl7.org/fhir/StructureDefinition/{resource_type}"),
        "interaction": interactions,
        "versioning": "versioned-update",
        "readHistory": true,
        "updateCreate": true,
        "conditionalCreate": true,
        "conditionalRead": "not-supported",
        "conditionalUpdate": true,
        "conditionalDelete": "single",
        "searchInclude": search_include,
        "searchRevInclude": search_rev_include,
        "searchParam": search_param,
    });
    let operations = type_operations(resource_type);
    if !operations.is_empty() {
        entry["operation"] = Value::Array(operations);
    }
    entry
}

/// The operations on a type: `$everything` and `$export` on Patient, `$export` on Group.
fn type_operations(resource_type: &str) -> Vec<Value> {
    match resource_type {
        "Patient" => vec![
            json!({
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                "documentation": "The patient's compartment as a searchset Bundle, the Patient first; _type, _since, _count (paged with a next link). Referenced resources outside the compartment are not included.",
            }),
            json!({
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                "documentation": "Bulk Data export of every patient's compartment (Prefer: respond-async); status at /fhir/$export-status/{job}.",
            }),
        ],
        "Group" => vec![json!({
            "name": "export",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
            "documentation": "Bulk Data export of the compartments of the group's member patients (Prefer: respond-async).",
        })],
        _ => Vec::new(),
    }
}

/// The CapabilityStatement as JSON text. `public_url` has no trailing slash.
pub fn capability_statement(public_url: &str) -> String {
    let resources: Vec<Value> = fhir::RESOURCE_TYPES
        .iter()
        .map(|t| resource_entry(t))
        .collect();
    let statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": fhir::datetime::format_instant(chrono::Utc::now()),
        "publisher": "Portico",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": {"name": "Portico", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Portico FHIR R4 API", "url": format!("{public_url}/fhir")},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": {
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": format!("{public_url}/oauth/token")}],
                }],
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }],
                    "text": "OAuth2 client credentials with SMART system scopes",
                }],
                "description": "Every request except /fhir/metadata needs an access token from POST /oauth/token (grant_type=client_credentials), sent as Authorization: Bearer <token>.",
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                "documentation": "Bulk Data export (Prefer: respond-async; _type, _since, _outputFormat=application/fhir+ndjson); poll the Content-Location /fhir/$export-status/{job}; files at /fhir/$export-file/{job}/{name}; DELETE the status URL to cancel. Needs a read scope for every type exported.",
            }],
        }],
    });
    statement.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_type_with_its_interactions() {
        let v: Value = serde_json::from_str(&capability_statement("http://h")).unwrap();
        assert_eq!(v["fhirVersion"], "4.0.1");
        let resources = v["rest"][0]["resource"].as_array().unwrap();
        assert_eq!(resources.len(), fhir::RESOURCE_TYPES.len());
        let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
        assert_eq!(patient["conditionalDelete"], "single");
        assert!(patient["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "_id"));
        assert_eq!(
            v["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"],
            "http://h/oauth/token"
        );
    }

    #[test]
    fn advertises_everything_and_bulk_export() {
        let v: Value = serde_json::from_str(&capability_statement("http://h")).unwrap();
        assert_eq!(v["rest"][0]["operation"][0]["name"], "export");
        let patient = v["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Patient")
            .unwrap();
        let names: Vec<&str> = patient["operation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["everything", "export"]);
    }
}
