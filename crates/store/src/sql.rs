//! The SQL both backends run, built in one place so that they cannot drift apart.
//!
//! Both schemas (see each backend's migrations) have the same tables and columns:
//! - `resources(rid, res_type, res_id, version_id, last_updated, deleted, content)`: the current
//!   version of every resource (`last_updated` in epoch milliseconds, `deleted` 0/1, `content`
//!   empty for deletions);
//! - `resource_history(res_type, res_id, version_id, last_updated, deleted, content)`: every
//!   older version;
//! - one index table per search parameter type, keyed by the resource's `rid` and holding only
//!   current, non-deleted versions: `idx_token(system, code)`, `idx_string(value_norm,
//!   value_exact)`, `idx_date(low, high)`, `idx_reference(target_type, target_id, url)`,
//!   `idx_quantity(value, system, code)`, `idx_uri(value)`, each with `rid, res_type, param`.
//!
//! Access filters ([`crate::access`]) add conditions on access index rows of the same tables, and
//! on `history_access(res_type, res_id, version_id, param, value)`: the access facts of every
//! older version, copied there by a trigger when the version leaves `resources`.
//!
//! The differences between the dialects are how a bind parameter is written and how a read
//! locks the rows it reads.

mod filter;
pub mod reindex;

use fhir::datetime::Range;
use fhir::search_params::ParamType;

use self::filter::Facts;
use crate::access::{Access, PatientScope};
use crate::query::{
    Condition, DateValue, Decimal, Include, Prefix, QuantityValue, ReferenceValue, SearchQuery,
    SortBy, StringMode, Test, TokenSystem, TokenValue,
};

pub trait Dialect: Send + Sync {
    /// The text of the `n`th (1-based) bind parameter.
    fn placeholder(&self, n: usize) -> String;

    /// What ends a `SELECT` that locks the rows it reads against concurrent writers until the
    /// transaction ends (nothing where a transaction already excludes every other writer).
    fn row_lock(&self) -> &'static str {
        ""
    }

    /// How a value is tested against the rows of an uncorrelated subquery that must be
    /// computed once per statement, not once per row: the text before and after the subquery,
    /// for membership or (`negated`) its absence. The subquery must not yield NULL.
    fn member_of(&self, negated: bool) -> (&'static str, &'static str) {
        if negated {
            (" NOT IN (", ")")
        } else {
            (" IN (", ")")
        }
    }
}

pub struct SqliteDialect;
pub struct PostgresDialect;

impl Dialect for SqliteDialect {
    fn placeholder(&self, n: usize) -> String {
        format!("?{n}")
    }
}

impl Dialect for PostgresDialect {
    fn placeholder(&self, n: usize) -> String {
        format!("${n}")
    }

    fn row_lock(&self) -> &'static str {
        " FOR UPDATE"
    }

    /// Without statistics (a freshly loaded database) PostgreSQL turned `IN (subquery)` into
    /// a nested loop that ran the relationship subqueries for every row: 19 s instead of 0.06 s
    /// for a page of 60,000 Observations. `ARRAY(subquery)` is an init plan, run once, and
    /// `= ANY(…)` on an indexed column is an index condition.
    fn member_of(&self, negated: bool) -> (&'static str, &'static str) {
        if negated {
            (" <> ALL(ARRAY(", "))")
        } else {
            (" = ANY(ARRAY(", "))")
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Real(f64),
}

/// A statement and its bind parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<SqlValue>,
}

/// The columns every version-returning statement selects, in this order.
pub const VERSION_COLUMNS: &str = "res_type, res_id, version_id, last_updated, deleted, content";

struct Builder<'d> {
    d: &'d dyn Dialect,
    text: String,
    params: Vec<SqlValue>,
}

impl<'d> Builder<'d> {
    fn new(d: &'d dyn Dialect) -> Self {
        Builder {
            d,
            text: String::with_capacity(256),
            params: Vec::new(),
        }
    }

    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    fn bind(&mut self, v: SqlValue) -> &mut Self {
        self.params.push(v);
        let p = self.d.placeholder(self.params.len());
        self.text.push_str(&p);
        self
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.bind(SqlValue::Text(s.to_string()))
    }

    fn int(&mut self, i: i64) -> &mut Self {
        self.bind(SqlValue::Int(i))
    }

    fn real(&mut self, f: f64) -> &mut Self {
        self.bind(SqlValue::Real(f))
    }

    fn list(&mut self, values: &[String]) -> &mut Self {
        self.push("(");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text(v);
        }
        self.push(")")
    }

    fn finish(self) -> Sql {
        Sql {
            text: self.text,
            params: self.params,
        }
    }
}

/// A count or offset as an SQL integer; past `i64::MAX` (which the parser never lets through)
/// it saturates rather than wrapping to a negative number.
fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn index_table(t: ParamType) -> &'static str {
    match t {
        ParamType::Token => "idx_token",
        ParamType::String => "idx_string",
        ParamType::Date => "idx_date",
        ParamType::Reference => "idx_reference",
        ParamType::Quantity => "idx_quantity",
        _ => "idx_uri",
    }
}

pub fn read(d: &dyn Dialect, resource_type: &str, id: &str) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT ")
        .push(VERSION_COLUMNS)
        .push(" FROM resources WHERE res_type = ")
        .text(resource_type)
        .push(" AND res_id = ")
        .text(id);
    b.finish()
}

pub fn vread(d: &dyn Dialect, resource_type: &str, id: &str, version_id: i64) -> Sql {
    let mut b = Builder::new(d);
    for (i, table) in ["resources", "resource_history"].iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        b.push("SELECT ")
            .push(VERSION_COLUMNS)
            .push(" FROM ")
            .push(table)
            .push(" WHERE res_type = ")
            .text(resource_type)
            .push(" AND res_id = ")
            .text(id)
            .push(" AND version_id = ")
            .int(version_id);
    }
    b.finish()
}

fn history_source(b: &mut Builder, scope: &crate::model::HistoryScope, since: Option<i64>) {
    use crate::model::HistoryScope;
    b.push("(");
    for (i, table) in ["resources", "resource_history"].iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        b.push("SELECT ")
            .push(VERSION_COLUMNS)
            .push(" FROM ")
            .push(table)
            .push(" WHERE 1 = 1");
        match scope {
            HistoryScope::Instance { resource_type, id } => {
                b.push(" AND res_type = ")
                    .text(resource_type)
                    .push(" AND res_id = ")
                    .text(id);
            }
            HistoryScope::Type { resource_type } => {
                b.push(" AND res_type = ").text(resource_type);
            }
            HistoryScope::System => {}
        }
        if let Some(s) = since {
            b.push(" AND last_updated >= ").int(s);
        }
    }
    b.push(") h");
}

pub fn history(d: &dyn Dialect, q: &crate::model::HistoryQuery) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT ").push(VERSION_COLUMNS).push(" FROM ");
    history_source(&mut b, &q.scope, q.since.map(|t| t.timestamp_millis()));
    history_access(&mut b, q);
    b.push(" ORDER BY last_updated DESC, res_type, res_id, version_id DESC LIMIT ")
        .int(to_i64(q.count))
        .push(" OFFSET ")
        .int(to_i64(q.offset));
    b.finish()
}

pub fn history_count(d: &dyn Dialect, q: &crate::model::HistoryQuery) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT COUNT(*) FROM ");
    history_source(&mut b, &q.scope, q.since.map(|t| t.timestamp_millis()));
    history_access(&mut b, q);
    b.finish()
}

/// ` WHERE …` keeping the versions (of the history source `h`) that the query's access admits,
/// each judged by its own facts.
fn history_access(b: &mut Builder, q: &crate::model::HistoryQuery) {
    use crate::model::HistoryScope;
    let Some(access) = &q.access else {
        return;
    };
    b.push(" WHERE 1 = 1");
    match &q.scope {
        HistoryScope::Instance { resource_type, .. } | HistoryScope::Type { resource_type } => {
            filter::restrict(
                b,
                Facts::Version("h"),
                resource_type,
                access.filter_for(resource_type),
            );
        }
        HistoryScope::System => filter::restrict_any(b, Facts::Version("h"), access),
    }
}

/// `FROM resources r WHERE …` for a query's conditions and access.
fn where_clause(b: &mut Builder, q: &SearchQuery) {
    b.push(" FROM resources r WHERE r.res_type = ")
        .text(&q.resource_type)
        .push(" AND r.deleted = 0");
    let access = q.access.as_ref();
    // A few patients' records are found fastest from their compartment: let it drive, and
    // check the conditions on each of their rows.
    let compartment_drives = access.is_some_and(|a| {
        matches!(&a.filter_for(&q.resource_type).patients, PatientScope::Only(ids) if !ids.is_empty())
    });
    conditions(
        b,
        "r",
        &q.resource_type,
        &q.conditions,
        access,
        !compartment_drives,
    );
    if let Some(access) = access {
        filter::restrict(
            b,
            Facts::Current("r"),
            &q.resource_type,
            access.filter_for(&q.resource_type),
        );
    }
}

/// Appends ` AND …` for each condition. The most selective one is written as `rid IN (…)` so
/// the database starts from its index rows; the others become correlated `EXISTS` lookups
/// through the index tables' `(rid, param)` index, so no other condition's full list of matches
/// is ever built.
/// Chained conditions look into other resources only through what `access` admits of them.
/// Without `may_drive`, every condition is a correlated lookup (something else drives).
fn conditions(
    b: &mut Builder,
    alias: &str,
    resource_type: &str,
    cs: &[Condition],
    access: Option<&Access>,
    may_drive: bool,
) {
    let driver = cs
        .iter()
        .enumerate()
        .filter(|_| may_drive)
        .filter_map(|(i, c)| driver_rank(c).map(|r| (r, i)))
        .min()
        .map(|(_, i)| i);
    for (i, c) in cs.iter().enumerate() {
        b.push(" AND ");
        condition(b, alias, resource_type, c, driver == Some(i), access);
    }
}

/// How well a condition narrows the search from its index rows (lower is better); None for
/// conditions that cannot drive (negations, `:missing`, `_id`/`_lastUpdated` on the row itself).
fn driver_rank(c: &Condition) -> Option<u8> {
    match c {
        Condition::Id(_) | Condition::LastUpdated(_) | Condition::Missing { .. } => None,
        Condition::Param { test, .. } => match test {
            Test::Token { negate: true, .. } => None,
            Test::Reference(_) => Some(0),
            Test::Token { .. } => Some(1),
            Test::Uri(_) => Some(2),
            Test::String { mode, .. } if *mode != StringMode::Contains => Some(3),
            Test::Date(_) => Some(5),
            Test::Quantity(_) => Some(6),
            Test::String { .. } => Some(7),
        },
        Condition::Chain { .. } => Some(4),
    }
}

/// The page of matches: `count + 1` rows so the caller knows whether there is a next page.
pub fn search_page(d: &dyn Dialect, q: &SearchQuery) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT r.res_type, r.res_id, r.version_id, r.last_updated, r.deleted, r.content");
    where_clause(&mut b, q);
    b.push(" ORDER BY ");
    for key in &q.sort {
        let dir = if key.descending { "DESC" } else { "ASC" };
        match &key.by {
            SortBy::Id => {
                b.push("r.res_id ").push(dir);
            }
            SortBy::LastUpdated => {
                b.push("r.last_updated ").push(dir);
            }
            SortBy::Param { code, param_type } => {
                let (agg, col) = sort_column(*param_type, key.descending);
                b.push("(SELECT ")
                    .push(agg)
                    .push("(s.")
                    .push(col)
                    .push(") FROM ")
                    .push(index_table(*param_type))
                    .push(" s WHERE s.rid = r.rid AND s.param = ")
                    .text(code)
                    .push(") ")
                    .push(dir)
                    .push(" NULLS LAST");
            }
        }
        b.push(", ");
    }
    b.push("r.rid LIMIT ")
        .int(to_i64(q.count).saturating_add(1))
        .push(" OFFSET ")
        .int(to_i64(q.offset));
    b.finish()
}

fn sort_column(t: ParamType, descending: bool) -> (&'static str, &'static str) {
    let agg = if descending { "MAX" } else { "MIN" };
    let col = match t {
        ParamType::String => "value_norm",
        ParamType::Token => "code",
        ParamType::Date if descending => "high",
        ParamType::Date => "low",
        ParamType::Reference => "url",
        ParamType::Quantity => "value",
        _ => "value",
    };
    (agg, col)
}

pub fn search_count(d: &dyn Dialect, q: &SearchQuery) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT COUNT(*)");
    where_clause(&mut b, q);
    b.finish()
}

/// Resources that the page's resources reference through `inc.param`, of those `access` admits.
pub fn include(
    d: &dyn Dialect,
    inc: &Include,
    page_ids: &[String],
    access: Option<&Access>,
) -> Sql {
    let mut b = Builder::new(d);
    // Row-value IN: each referenced resource is looked up by its (type, id) key.
    b.push("SELECT t.res_type, t.res_id, t.version_id, t.last_updated, t.deleted, t.content FROM resources t WHERE t.deleted = 0 AND (t.res_type, t.res_id) IN (SELECT i.target_type, i.target_id FROM idx_reference i WHERE i.res_type = ")
        .text(inc.source_type)
        .push(" AND i.param = ")
        .text(inc.param)
        .push(" AND i.target_type IS NOT NULL AND i.rid IN (SELECT p.rid FROM resources p WHERE p.res_type = ")
        .text(inc.source_type)
        .push(" AND p.res_id IN ")
        .list(page_ids)
        .push("))");
    if let Some(t) = inc.target_type {
        b.push(" AND t.res_type = ").text(t);
    }
    if let Some(access) = access {
        filter::restrict_any(&mut b, Facts::Current("t"), access);
    }
    b.finish()
}

/// Resources of `inc.source_type` that point at one of the page's resources through
/// `inc.param`, of those `access` admits.
pub fn revinclude(
    d: &dyn Dialect,
    inc: &Include,
    page_type: &str,
    page_ids: &[String],
    limit: usize,
    access: Option<&Access>,
) -> Sql {
    let mut b = Builder::new(d);
    b.push("SELECT s.res_type, s.res_id, s.version_id, s.last_updated, s.deleted, s.content FROM resources s WHERE s.res_type = ")
        .text(inc.source_type)
        .push(" AND s.deleted = 0 AND s.rid IN (SELECT i.rid FROM idx_reference i WHERE i.res_type = ")
        .text(inc.source_type)
        .push(" AND i.param = ")
        .text(inc.param)
        .push(" AND i.target_type = ")
        .text(page_type)
        .push(" AND i.target_id IN ")
        .list(page_ids)
        .push(")");
    if let Some(access) = access {
        filter::restrict(
            &mut b,
            Facts::Current("s"),
            inc.source_type,
            access.filter_for(inc.source_type),
        );
    }
    b.push(" ORDER BY s.rid LIMIT ").int(to_i64(limit));
    b.finish()
}

/// A page of a scan ([`crate::scan`]): current, non-deleted resources of the query's types after
/// the cursor, in `rid` order, at most `limit` rows, selecting [`VERSION_COLUMNS`] and then `rid`.
pub fn scan(d: &dyn Dialect, q: &crate::scan::ScanQuery, limit: usize) -> Sql {
    use crate::scan::{Compartment, COMPARTMENT_DRIVE_LIMIT};
    // In a compartment, only types that can be in one.
    let types: Vec<String> = q
        .resource_types
        .iter()
        .filter(|t| q.compartment.is_none() || in_compartment(t))
        .cloned()
        .collect();
    let mut b = Builder::new(d);
    b.push("SELECT r.res_type, r.res_id, r.version_id, r.last_updated, r.deleted, r.content, r.rid FROM resources r WHERE ");
    match types.as_slice() {
        [] => {
            b.push("1 = 0");
        }
        [one] => {
            b.push("r.res_type = ").text(one);
        }
        many => {
            b.push("r.res_type IN ").list(many);
        }
    }
    b.push(" AND r.deleted = 0 AND r.rid > ").int(q.after);
    if let Some(t) = q.updated_after {
        b.push(" AND r.last_updated > ").int(t.timestamp_millis());
    }
    if let Some(t) = q.updated_until {
        b.push(" AND r.last_updated <= ").int(t.timestamp_millis());
    }
    match &q.compartment {
        None => {}
        Some(Compartment::Patients(ids)) if ids.len() <= COMPARTMENT_DRIVE_LIMIT => {
            // Starts from the rows naming the patients, from the cursor on: their own rows (for
            // Patient) and the index rows pointing at them, for every type in one `rid IN (…
            // UNION ALL …)` (an OR of conditions makes PostgreSQL read every row of the type).
            b.push(" AND r.rid IN (");
            for (i, t) in types.iter().enumerate() {
                if i > 0 {
                    b.push(" UNION ALL ");
                }
                compartment_rows(&mut b, t, ids, q.after);
            }
            if types.is_empty() {
                b.push("SELECT 0 WHERE 1 = 0");
            }
            b.push(")");
        }
        Some(c) => {
            // Walks the types in rid order and checks each resource's own references.
            b.push(" AND (");
            for (i, t) in types.iter().enumerate() {
                if i > 0 {
                    b.push(" OR ");
                }
                if types.len() > 1 {
                    b.push("(r.res_type = ").text(t).push(" AND ");
                }
                compartment_check(&mut b, t, c);
                if types.len() > 1 {
                    b.push(")");
                }
            }
            if types.is_empty() {
                b.push("1 = 0");
            }
            b.push(")");
        }
    }
    match (&q.access, types.as_slice()) {
        (None, _) => {}
        (Some(access), [one]) => {
            filter::restrict(&mut b, Facts::Current("r"), one, access.filter_for(one))
        }
        (Some(access), _) => filter::restrict_any(&mut b, Facts::Current("r"), access),
    }
    b.push(" ORDER BY r.rid LIMIT ").int(to_i64(limit));
    b.finish()
}

/// Whether resources of `resource_type` can be in a patient's compartment: Patient, and the
/// types the compartment definition gives parameters.
fn in_compartment(resource_type: &str) -> bool {
    resource_type == "Patient"
        || !fhir::compartment::patient_compartment_params(resource_type).is_empty()
}

fn compartment_params(resource_type: &str) -> Vec<String> {
    fhir::compartment::patient_compartment_params(resource_type)
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// `SELECT rid …` of the resources of `resource_type` after `after` in the compartments of
/// `ids`, from the index: the patients' own rows (Patient), and rows referencing them through
/// the type's compartment parameters.
fn compartment_rows(b: &mut Builder, resource_type: &str, ids: &[String], after: i64) {
    let params = compartment_params(resource_type);
    if resource_type == "Patient" {
        b.push("SELECT p.rid FROM resources p WHERE p.res_type = 'Patient' AND p.res_id IN ")
            .list(ids)
            .push(" AND p.rid > ")
            .int(after);
        if !params.is_empty() {
            b.push(" UNION ALL ");
        }
    }
    if !params.is_empty() {
        b.push("SELECT x.rid FROM idx_reference x WHERE x.res_type = ")
            .text(resource_type)
            .push(" AND x.param IN ")
            .list(&params)
            .push(" AND x.target_id IN ")
            .list(ids)
            .push(" AND x.target_type = 'Patient' AND x.rid > ")
            .int(after);
    }
}

/// A condition on the row `r` (of `resource_type`) being in the compartment `c`, checked from
/// its own index rows.
fn compartment_check(b: &mut Builder, resource_type: &str, c: &crate::scan::Compartment) {
    use crate::scan::Compartment;
    let params = compartment_params(resource_type);
    let is_patient = resource_type == "Patient";
    match c {
        // Every Patient is in its own compartment.
        Compartment::AnyPatient if is_patient => {
            b.push("1 = 1");
        }
        Compartment::AnyPatient => {
            b.push("EXISTS (SELECT 1 FROM idx_reference x WHERE x.rid = r.rid AND x.param IN ")
                .list(&params)
                .push(" AND x.target_type = 'Patient')");
        }
        Compartment::Patients(ids) => {
            b.push("(");
            if is_patient {
                b.push("r.res_id IN ").list(ids).push(" OR ");
            }
            b.push("EXISTS (SELECT 1 FROM idx_reference x WHERE x.rid = r.rid AND x.param IN ")
                .list(&params)
                .push(" AND x.target_type = 'Patient' AND x.target_id IN ")
                .list(ids)
                .push("))");
        }
    }
}

/// Appends one condition on the resource row `alias` (of type `resource_type`): as
/// `alias.rid IN (…)` when it `drives` the search, else as a correlated `EXISTS`. A chain looks
/// only at the targets `access` admits, so that it cannot reveal anything about the others.
fn condition(
    b: &mut Builder,
    alias: &str,
    resource_type: &str,
    c: &Condition,
    drives: bool,
    access: Option<&Access>,
) {
    // Opens the index-row subquery on `table` for parameter `code`: either the driving
    // `rid IN (SELECT rid …` or the correlated `[NOT] EXISTS (SELECT 1 … WHERE x.rid = alias.rid`.
    let open = |b: &mut Builder, table: &str, code: &str, negate: bool| {
        if drives && !negate {
            b.push(alias)
                .push(".rid IN (SELECT x.rid FROM ")
                .push(table)
                .push(" x WHERE x.res_type = ")
                .text(resource_type);
        } else {
            b.push(if negate {
                "NOT EXISTS (SELECT 1 FROM "
            } else {
                "EXISTS (SELECT 1 FROM "
            })
            .push(table)
            .push(" x WHERE x.rid = ")
            .push(alias)
            .push(".rid");
        }
        b.push(" AND x.param = ").text(code);
    };
    match c {
        Condition::Id(ids) => {
            b.push(alias).push(".res_id IN ").list(ids);
        }
        Condition::LastUpdated(values) => {
            let col = format!("{alias}.last_updated");
            or_group(b, values, |b, v| date_test(b, &col, &col, v));
        }
        Condition::Missing {
            code,
            param_type,
            missing,
        } => {
            open(b, index_table(*param_type), code, *missing);
            b.push(")");
        }
        Condition::Param { code, test } => {
            let (table, negate) = match test {
                Test::Token { negate, .. } => ("idx_token", *negate),
                Test::String { .. } => ("idx_string", false),
                Test::Date(_) => ("idx_date", false),
                Test::Reference(_) => ("idx_reference", false),
                Test::Quantity(_) => ("idx_quantity", false),
                Test::Uri(_) => ("idx_uri", false),
            };
            open(b, table, code, negate);
            b.push(" AND ");
            index_test(b, test);
            b.push(")");
        }
        Condition::Chain { code, targets } => {
            open(b, "idx_reference", code, false);
            b.push(" AND (");
            for (i, (target, inner)) in targets.iter().enumerate() {
                if i > 0 {
                    b.push(" OR ");
                }
                b.push("(x.target_type = ")
                    .text(target)
                    .push(
                        " AND x.target_id IN (SELECT t.res_id FROM resources t WHERE t.res_type = ",
                    )
                    .text(target)
                    .push(" AND t.deleted = 0");
                conditions(
                    b,
                    "t",
                    target,
                    std::slice::from_ref(inner.as_ref()),
                    access,
                    true,
                );
                if let Some(access) = access {
                    filter::restrict(b, Facts::Current("t"), target, access.filter_for(target));
                }
                b.push("))");
            }
            b.push("))");
        }
    }
}

fn or_group<T>(b: &mut Builder, values: &[T], mut f: impl FnMut(&mut Builder, &T)) {
    b.push("(");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            b.push(" OR ");
        }
        b.push("(");
        f(b, v);
        b.push(")");
    }
    if values.is_empty() {
        b.push("1 = 0");
    }
    b.push(")");
}

/// Matching rows of an index table (unaliased columns).
fn index_test(b: &mut Builder, test: &Test) {
    match test {
        Test::Token { values, .. } => or_group(b, values, token_test),
        Test::String { values, mode } => or_group(b, values, |b, v| string_test(b, v, *mode)),
        Test::Date(values) => or_group(b, values, |b, v| date_test(b, "low", "high", v)),
        Test::Reference(values) => or_group(b, values, reference_test),
        Test::Quantity(values) => or_group(b, values, quantity_test),
        Test::Uri(values) => {
            b.push("value IN ").list(values);
        }
    }
}

fn token_test(b: &mut Builder, v: &TokenValue) {
    let mut first = true;
    let mut and = |b: &mut Builder| {
        if !first {
            b.push(" AND ");
        }
        first = false;
    };
    match &v.system {
        TokenSystem::Any => {}
        TokenSystem::None => {
            and(b);
            b.push("system IS NULL");
        }
        TokenSystem::Is(s) => {
            and(b);
            b.push("system = ").text(s);
        }
    }
    if let Some(code) = &v.code {
        and(b);
        b.push("code = ").text(code);
    }
    if first {
        b.push("1 = 1");
    }
}

/// Escapes `%`, `_` and `\` for `LIKE … ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn string_test(b: &mut Builder, v: &str, mode: StringMode) {
    match mode {
        StringMode::Exact => {
            b.push("value_exact = ").text(v);
        }
        StringMode::StartsWith => {
            // A range on the normalised value uses the index; both schemas compare these
            // columns by code point (SQLite BINARY, PostgreSQL COLLATE "C").
            let mut upper = v.to_string();
            upper.push(char::MAX);
            b.push("value_norm >= ")
                .text(v)
                .push(" AND value_norm < ")
                .text(&upper);
        }
        StringMode::Contains => {
            b.push("value_norm LIKE ")
                .text(&format!("%{}%", like_escape(v)))
                .push(" ESCAPE '\\'");
        }
    }
}

/// The R4 date comparisons between a stored range `[low, high]` and a search value's range.
fn date_test(b: &mut Builder, low: &str, high: &str, v: &DateValue) {
    let Range { low: vl, high: vh } = v.range;
    let eq = |b: &mut Builder| {
        // `low <= vh` follows from the other two (low <= high); it is there so that an index
        // on `low` answers with a narrow range.
        b.push(low)
            .push(" >= ")
            .int(vl)
            .push(" AND ")
            .push(low)
            .push(" <= ")
            .int(vh)
            .push(" AND ")
            .push(high)
            .push(" <= ")
            .int(vh);
    };
    match v.prefix {
        Prefix::Eq => eq(b),
        Prefix::Ne => {
            b.push("NOT (");
            eq(b);
            b.push(")");
        }
        Prefix::Gt => {
            b.push(high).push(" > ").int(vh);
        }
        Prefix::Lt => {
            b.push(low).push(" < ").int(vl);
        }
        Prefix::Ge => {
            b.push(high).push(" > ").int(vh).push(" OR (");
            eq(b);
            b.push(")");
        }
        Prefix::Le => {
            b.push(low).push(" < ").int(vl).push(" OR (");
            eq(b);
            b.push(")");
        }
        Prefix::Sa => {
            b.push(low).push(" > ").int(vh);
        }
        Prefix::Eb => {
            b.push(high).push(" < ").int(vl);
        }
    }
}

fn reference_test(b: &mut Builder, v: &ReferenceValue) {
    match v {
        ReferenceValue::Local {
            resource_type: Some(t),
            id,
        } => {
            b.push("target_id = ")
                .text(id)
                .push(" AND target_type = ")
                .text(t);
        }
        ReferenceValue::Local {
            resource_type: None,
            id,
        } => {
            b.push("target_id = ").text(id);
        }
        ReferenceValue::Url(u) => {
            b.push("url = ").text(u);
        }
    }
}

/// The bounds of a quantity's implicit range, [value - ½ unit, value + ½ unit) of its last
/// decimal, computed in decimal and only then converted to `f64`: in binary `5.4 - 0.05` is
/// 5.3500000000000005, which would leave out a stored 5.35. Each bound is the first double
/// that spells a decimal at or above it, so that `value >= low AND value < high` holds for
/// exactly the stored values whose decimals lie in the range, as [`crate::eval`] decides. Numbers too long for
/// exact decimal arithmetic (beyond 30 digits) fall back to binary arithmetic, as
/// [`crate::eval`] does. Total: no input overflows or panics.
fn precision_bounds(v: &QuantityValue) -> (f64, f64) {
    let exact = || {
        let centre = Decimal::of(v.value)?;
        // One digit past the last decimal holds the half unit.
        let digits = v.decimals() + 1;
        let scale = digits.max(centre.scale);
        let mantissa = centre.at(scale)?;
        let half = 10i128.checked_pow(scale - digits)?.checked_mul(5)?;
        let low = Decimal {
            mantissa: mantissa.checked_sub(half)?,
            scale,
        };
        let high = Decimal {
            mantissa: mantissa.checked_add(half)?,
            scale,
        };
        Some((low.least_f64_at_or_above()?, high.least_f64_at_or_above()?))
    };
    exact().unwrap_or((v.value - v.tolerance(), v.value + v.tolerance()))
}

fn quantity_test(b: &mut Builder, v: &QuantityValue) {
    let (low, high) = precision_bounds(v);
    match v.prefix {
        Prefix::Eq => {
            b.push("value >= ")
                .real(low)
                .push(" AND value < ")
                .real(high);
        }
        Prefix::Ne => {
            b.push("NOT (value >= ")
                .real(low)
                .push(" AND value < ")
                .real(high)
                .push(")");
        }
        Prefix::Gt | Prefix::Sa => {
            b.push("value > ").real(v.value);
        }
        Prefix::Lt | Prefix::Eb => {
            b.push("value < ").real(v.value);
        }
        Prefix::Ge => {
            b.push("value >= ").real(v.value);
        }
        Prefix::Le => {
            b.push("value <= ").real(v.value);
        }
    }
    if let Some(s) = &v.system {
        b.push(" AND system = ").text(s);
    }
    if let Some(c) = &v.code {
        b.push(" AND code = ").text(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_differ_only_by_dialect() {
        let a = read(&SqliteDialect, "Patient", "1");
        let b = read(&PostgresDialect, "Patient", "1");
        assert_eq!(a.params, b.params);
        assert_eq!(a.text.replace("?1", "$1").replace("?2", "$2"), b.text);
    }

    fn quantity(value: &str) -> QuantityValue {
        let params = vec![("value-quantity".to_string(), value.to_string())];
        let q = crate::query::parse("Observation", &params, &Default::default())
            .unwrap_or_else(|e| panic!("{value:?} should parse: {e:?}"));
        match &q.conditions[..] {
            [Condition::Param {
                test: Test::Quantity(values),
                ..
            }] => values[0].clone(),
            other => panic!("{value:?} is not one quantity: {other:?}"),
        }
    }

    #[test]
    fn quantity_bounds_are_the_written_decimals() {
        assert_eq!(precision_bounds(&quantity("5.4")), (5.35, 5.45));
        assert_eq!(precision_bounds(&quantity("5.40")), (5.395, 5.405));
        assert_eq!(precision_bounds(&quantity("5")), (4.5, 5.5));
        assert_eq!(precision_bounds(&quantity("0.3")), (0.25, 0.35));
        assert_eq!(precision_bounds(&quantity("-0.3")), (-0.35, -0.25));
        assert_eq!(precision_bounds(&quantity("120")), (119.5, 120.5));
    }

    #[test]
    fn quantity_bounds_of_hundreds_of_decimals_are_those_of_fifteen() {
        let long = format!("5.{}", "0".repeat(400));
        let fifteen = format!("5.{}", "0".repeat(15));
        let (low, high) = precision_bounds(&quantity(&long));
        assert_eq!((low, high), precision_bounds(&quantity(&fifteen)));
        assert!(low <= 5.0 && 5.0 < high, "[{low}, {high}) must hold 5");
        assert!(low > 4.99999999999999 && high < 5.00000000000001);
        // Fifteen decimals on a larger number still leave the number itself inside.
        let (low, high) = precision_bounds(&quantity(&format!("1234.{}", "0".repeat(400))));
        assert!(
            low <= 1234.0 && 1234.0 < high,
            "[{low}, {high}) must hold 1234"
        );
        // Too long for exact decimals: binary bounds, still no overflow.
        let (low, high) = precision_bounds(&quantity(&format!("1{}", "0".repeat(300))));
        assert!(low.is_finite() && high.is_finite());
        let (low, high) = precision_bounds(&quantity(&format!("0.{}1", "0".repeat(400))));
        assert!(low < 0.0 && high > 0.0, "[{low}, {high})");
    }

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_escape("50%_a\\"), "50\\%\\_a\\\\");
    }
}
