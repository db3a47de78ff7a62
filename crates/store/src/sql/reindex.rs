//! The statements of [`crate::access::reindex`]: reading every version in pages and replacing
//! its access rows.

use fhir::index::{IndexEntry, IndexValue};

use super::{to_i64, Builder, Dialect, Sql, SqlValue, VERSION_COLUMNS};
use crate::access::{
    AUTHOR_PARAM, BINARY_PARAM, LABEL_PARAM, PATIENT_PARAM, REFUSES_PARAM, VERSION_FACT_PARAMS,
};
use crate::model::ResourceVersion;

/// Every access index parameter, as they are kept in `idx_token` and `idx_reference`.
const TOKEN_PARAMS: [&str; 2] = [LABEL_PARAM, AUTHOR_PARAM];
const REFERENCE_PARAMS: [&str; 3] = [PATIENT_PARAM, REFUSES_PARAM, BINARY_PARAM];

fn list(b: &mut Builder, values: &[&str]) {
    b.push("(");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        b.text(v);
    }
    b.push(")");
}

/// Up to `limit` current, non-deleted resources after `rid` `after`, in `rid` order, selecting
/// [`VERSION_COLUMNS`] and `rid`, locked against writers where the dialect can.
pub fn current_page(d: &dyn Dialect, after: i64, limit: usize) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT ")
        .push(VERSION_COLUMNS)
        .push(", rid FROM resources WHERE rid > ")
        .int(after)
        .push(" AND deleted = 0 ORDER BY rid LIMIT ")
        .int(to_i64(limit))
        .push(d.row_lock());
    b.finish()
}

/// Up to `limit` older, non-deleted versions after the key `after` (type, id, version), in key
/// order, selecting [`VERSION_COLUMNS`] and a 0 in place of a `rid`.
pub fn history_page(d: &dyn Dialect, after: (&str, &str, i64), limit: usize) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT ")
        .push(VERSION_COLUMNS)
        .push(", CAST(0 AS BIGINT) FROM resource_history WHERE deleted = 0 AND (res_type, res_id, version_id) > (")
        .text(after.0)
        .push(", ")
        .text(after.1)
        .push(", ")
        .int(after.2)
        .push(") ORDER BY res_type, res_id, version_id LIMIT ")
        .int(to_i64(limit));
    b.finish()
}

/// Replaces the access index rows of the current resource `rid` by those of `entries` (which
/// may hold other entries too; only the access ones are written).
pub fn replace_access_rows(
    d: &dyn Dialect,
    rid: i64,
    resource_type: &str,
    entries: &[IndexEntry],
) -> Vec<Sql> {
    let mut out = Vec::new();
    for (table, params) in [
        ("idx_token", &TOKEN_PARAMS[..]),
        ("idx_reference", &REFERENCE_PARAMS[..]),
    ] {
        let mut b = Builder::new(d);
        b.push("DELETE FROM ")
            .push(table)
            .push(" WHERE rid = ")
            .int(rid)
            .push(" AND param IN ");
        list(&mut b, params);
        out.push(b.finish());
    }
    let mut tokens: Vec<Vec<SqlValue>> = Vec::new();
    let mut references: Vec<Vec<SqlValue>> = Vec::new();
    let text = |s: &str| SqlValue::Text(s.to_string());
    for e in entries {
        match &e.value {
            IndexValue::Token {
                system: Some(system),
                code,
            } if TOKEN_PARAMS.contains(&e.param) => tokens.push(vec![
                SqlValue::Int(rid),
                text(resource_type),
                text(e.param),
                text(system),
                text(code),
            ]),
            IndexValue::Reference {
                target_type: Some(target_type),
                target_id: Some(target_id),
                url,
            } if REFERENCE_PARAMS.contains(&e.param) => references.push(vec![
                SqlValue::Int(rid),
                text(resource_type),
                text(e.param),
                text(target_type),
                text(target_id),
                text(url),
            ]),
            _ => {}
        }
    }
    if !tokens.is_empty() {
        out.push(insert(
            d,
            "INSERT INTO idx_token (rid, res_type, param, system, code) VALUES ",
            tokens,
        ));
    }
    if !references.is_empty() {
        out.push(insert(
            d,
            "INSERT INTO idx_reference (rid, res_type, param, target_type, target_id, url) VALUES ",
            references,
        ));
    }
    out
}

/// Replaces the `history_access` rows of `version` by its facts among `entries`.
pub fn replace_version_facts(
    d: &dyn Dialect,
    version: &ResourceVersion,
    entries: &[IndexEntry],
) -> Vec<Sql> {
    let key = |b: &mut Builder| {
        b.text(&version.resource_type)
            .push(", ")
            .text(&version.id)
            .push(", ")
            .int(version.version_id);
    };
    let mut delete = Builder::new(d);
    delete.push("DELETE FROM history_access WHERE (res_type, res_id, version_id) = (");
    key(&mut delete);
    delete.push(")");
    let mut out = vec![delete.finish()];
    let mut rows: Vec<Vec<SqlValue>> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| VERSION_FACT_PARAMS.contains(&e.param))
    {
        let value = match &e.value {
            IndexValue::Token { code, .. } => code,
            IndexValue::Reference {
                target_id: Some(id),
                ..
            } => id,
            _ => continue,
        };
        let row = vec![
            SqlValue::Text(version.resource_type.clone()),
            SqlValue::Text(version.id.clone()),
            SqlValue::Int(version.version_id),
            SqlValue::Text(e.param.to_string()),
            SqlValue::Text(value.clone()),
        ];
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    if !rows.is_empty() {
        out.push(insert(
            d,
            "INSERT INTO history_access (res_type, res_id, version_id, param, value) VALUES ",
            rows,
        ));
    }
    out
}

/// `head` followed by one parenthesised tuple per row.
fn insert(d: &dyn Dialect, head: &str, rows: Vec<Vec<SqlValue>>) -> Sql {
    let mut b = Builder::new(d);
    b.push(head);
    for (i, row) in rows.into_iter().enumerate() {
        b.push(if i == 0 { "(" } else { ", (" });
        for (j, value) in row.into_iter().enumerate() {
            if j > 0 {
                b.push(", ");
            }
            b.bind(value);
        }
        b.push(")");
    }
    b.finish()
}

/// Records that the access index was built by the rules of `version` (in the one-row table
/// `access_index`).
pub fn record_version(d: &dyn Dialect, version: &str) -> Vec<Sql> {
    let mut delete = Builder::new(d);
    delete.push("DELETE FROM access_index");
    let mut insert = Builder::new(d);
    insert
        .push("INSERT INTO access_index (version) VALUES (")
        .text(version)
        .push(")");
    vec![delete.finish(), insert.finish()]
}

/// A count that is not 0 when the access index was built by the rules of `version`.
pub fn version_is(d: &dyn Dialect, version: &str) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT COUNT(*) FROM access_index WHERE version = ")
        .text(version);
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::SqliteDialect;
    use serde_json::json;

    #[test]
    fn only_access_rows_are_replaced() {
        let value = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/a"}});
        let entries = crate::access::full_index("Observation", &value);
        let statements = replace_access_rows(&SqliteDialect, 7, "Observation", &entries);
        assert_eq!(statements.len(), 4, "{statements:?}");
        assert!(statements[0]
            .text
            .starts_with("DELETE FROM idx_token WHERE rid = ?1 AND param IN"));
        let tokens = &statements[2];
        assert!(tokens.text.starts_with("INSERT INTO idx_token"));
        assert!(tokens.params.contains(&SqlValue::Text("ordinary".into())));
        assert!(
            !tokens.params.contains(&SqlValue::Text("final".into())),
            "not the status"
        );
        let references = &statements[3];
        assert_eq!(references.params.len(), 6, "one patient row");
    }

    #[test]
    fn version_facts_are_the_label_author_and_patients() {
        let value = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/a"}});
        let v = ResourceVersion {
            resource_type: "Observation".into(),
            id: "o".into(),
            version_id: 2,
            last_updated: chrono::DateTime::from_timestamp_millis(0).unwrap_or_default(),
            deleted: false,
            json: value.to_string(),
        };
        let statements = replace_version_facts(
            &SqliteDialect,
            &v,
            &crate::access::full_index("Observation", &value),
        );
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1].params.len(), 10, "label and patient rows");
    }
}
