//! The R4 search parameters of the resource types in scope, derived from
//! `definitions/search-parameters.json`, and extraction of their index values.
//!
//! Every parameter whose `base` names a type in scope (or `Resource`, or `DomainResource` for
//! the types that are one) applies to it, with only the branches of its FHIRPath expression
//! that start at that type: `AllergyIntolerance.patient | Condition.subject.where(…)` is
//! `AllergyIntolerance.patient` for AllergyIntolerance. The expressions are compiled once
//! ([`crate::fhirpath`]); what cannot be indexed (composite and special parameters, those
//! without an expression, anything the FHIRPath subset cannot compile) is listed by
//! [`left_out`].

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use crate::datetime::{parse_datetime, Range};
use crate::definitions::SEARCH_PARAMETERS;
use crate::fhirpath::{self, Expr, Item, Shape, ValueType};
use crate::index::{normalize_string, IndexEntry, IndexValue};
use crate::types::RESOURCE_TYPES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Token,
    String,
    Date,
    Reference,
    Quantity,
    Uri,
    Number,
    Composite,
    Special,
}

impl ParamType {
    pub fn code(self) -> &'static str {
        match self {
            ParamType::Token => "token",
            ParamType::String => "string",
            ParamType::Date => "date",
            ParamType::Reference => "reference",
            ParamType::Quantity => "quantity",
            ParamType::Uri => "uri",
            ParamType::Number => "number",
            ParamType::Composite => "composite",
            ParamType::Special => "special",
        }
    }

    /// The type named `code` in a SearchParameter (`token`, `date`, …).
    pub fn parse(code: &str) -> Option<ParamType> {
        Some(match code {
            "token" => ParamType::Token,
            "string" => ParamType::String,
            "date" => ParamType::Date,
            "reference" => ParamType::Reference,
            "quantity" => ParamType::Quantity,
            "uri" => ParamType::Uri,
            "number" => ParamType::Number,
            "composite" => ParamType::Composite,
            "special" => ParamType::Special,
            _ => return None,
        })
    }
}

/// One search parameter as it applies to one resource type.
#[derive(Debug)]
pub struct SearchParamDef {
    /// e.g. `birthdate`, `_tag`.
    pub code: &'static str,
    /// The resource type this definition applies to (`Patient`), never `Resource`.
    pub resource_type: &'static str,
    pub param_type: ParamType,
    /// Canonical URL of the SearchParameter, for the CapabilityStatement.
    pub url: &'static str,
    /// The part of the R4 FHIRPath expression that applies to `resource_type`.
    pub expression: &'static str,
    /// For reference parameters: the resource types it may point to.
    pub targets: Vec<&'static str>,
    /// Empty: the embedded R4 definitions are trimmed of their descriptions.
    pub description: &'static str,
}

/// Why a search parameter of a type in scope is not supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Omission {
    /// `_text`, `_content`, `_query`, …: no FHIRPath expression to index by.
    NoExpression,
    /// Composite and special parameters are not indexed.
    ParamType(ParamType),
    /// The expression uses FHIRPath outside the supported subset, or no value it can reach
    /// can be indexed as the parameter's type.
    Unsupported(String),
    /// A second definition of a code the type already has.
    Duplicate,
}

/// A search parameter of a type in scope that Portico does not support, and why.
#[derive(Debug, Clone)]
pub struct LeftOut {
    pub resource_type: &'static str,
    pub code: &'static str,
    pub url: &'static str,
    pub reason: Omission,
}

/// The definition of `code` on `resource_type`, if Portico supports searching by it.
pub fn lookup(resource_type: &str, code: &str) -> Option<&'static SearchParamDef> {
    let registry: &'static Registry = &REGISTRY;
    let params = registry.by_type.get(resource_type)?;
    let i = params
        .sorted
        .binary_search_by(|&i| registry.defs[i].code.cmp(code))
        .ok()?;
    registry.defs.get(params.sorted[i])
}

/// Every supported search parameter of a type (for the CapabilityStatement), sorted by code.
pub fn for_type(resource_type: &str) -> Vec<&'static SearchParamDef> {
    let registry: &'static Registry = &REGISTRY;
    registry
        .by_type
        .get(resource_type)
        .map(|p| p.sorted.iter().map(|&i| &registry.defs[i]).collect())
        .unwrap_or_default()
}

/// The search parameters of the types in scope that are not supported, and why.
pub fn left_out() -> &'static [LeftOut] {
    &REGISTRY.left_out
}

/// Every index entry of every supported search parameter of the resource's type, except `_id`
/// and `_lastUpdated`, which the store keeps in columns of its own.
pub(crate) fn extract_all(resource: &Value) -> Vec<IndexEntry> {
    let registry: &'static Registry = &REGISTRY;
    let Some(params) = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(|t| registry.by_type.get(t))
    else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for &i in &params.extracted {
        let def = &registry.defs[i];
        let start = entries.len();
        let mut sink = Sink {
            entries: &mut entries,
            start,
            param: def.code,
        };
        for item in registry.exprs[i].evaluate(resource) {
            extract_item(def.param_type, &item, &mut sink);
        }
    }
    entries
}

// ---------------------------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Bundle {
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    resource: SearchParameter,
}

#[derive(Deserialize)]
struct SearchParameter {
    url: String,
    code: String,
    #[serde(default)]
    base: Vec<String>,
    #[serde(rename = "type")]
    param_type: String,
    expression: Option<String>,
    #[serde(default)]
    target: Vec<String>,
}

/// The definitions as written; the statics below borrow from them.
static DEFINITIONS: LazyLock<Vec<SearchParameter>> = LazyLock::new(|| {
    // Embedded at build time; should it not parse, nothing is searchable and the tests fail.
    serde_json::from_str::<Bundle>(SEARCH_PARAMETERS)
        .map(|b| b.entry.into_iter().map(|e| e.resource).collect())
        .unwrap_or_default()
});

/// One definition applied to one type in scope, with the branches of its expression that
/// start at that type (empty when none do or it has no expression).
struct Candidate {
    sp: &'static SearchParameter,
    resource_type: &'static str,
    expression: String,
}

static CANDIDATES: LazyLock<Vec<Candidate>> = LazyLock::new(|| {
    let definitions: &'static [SearchParameter] = &DEFINITIONS;
    let mut out = Vec::new();
    for sp in definitions {
        for &t in RESOURCE_TYPES {
            let applies = sp.base.iter().any(|b| {
                b == t || ((b == "Resource" || b == "DomainResource") && fhirpath::type_is_a(t, b))
            });
            if !applies {
                continue;
            }
            let expression = sp
                .expression
                .as_deref()
                .map(|e| branches_for(e, t).join(" | "))
                .unwrap_or_default();
            out.push(Candidate {
                sp,
                resource_type: t,
                expression,
            });
        }
    }
    out
});

struct TypeParams {
    /// Indexes into `defs`, sorted by code.
    sorted: Vec<usize>,
    /// The parameters `extract_all` evaluates: all but `_id` and `_lastUpdated`.
    extracted: Vec<usize>,
}

struct Registry {
    defs: Vec<SearchParamDef>,
    /// The compiled expression of each of `defs`.
    exprs: Vec<Expr>,
    by_type: HashMap<&'static str, TypeParams>,
    left_out: Vec<LeftOut>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::build);

impl Registry {
    fn build() -> Registry {
        let candidates: &'static [Candidate] = &CANDIDATES;
        let mut r = Registry {
            defs: Vec::new(),
            exprs: Vec::new(),
            by_type: HashMap::new(),
            left_out: Vec::new(),
        };
        for c in candidates {
            let sp = c.sp;
            let mut leave_out = |reason| {
                r.left_out.push(LeftOut {
                    resource_type: c.resource_type,
                    code: &sp.code,
                    url: &sp.url,
                    reason,
                })
            };
            let param_type = match ParamType::parse(&sp.param_type) {
                Some(t @ (ParamType::Composite | ParamType::Special | ParamType::Number)) => {
                    // No index table holds numbers (none of the R4 parameters in scope is one).
                    leave_out(Omission::ParamType(t));
                    continue;
                }
                Some(t) => t,
                None => {
                    leave_out(Omission::Unsupported(format!(
                        "unknown parameter type {}",
                        sp.param_type
                    )));
                    continue;
                }
            };
            if sp.expression.is_none() {
                leave_out(Omission::NoExpression);
                continue;
            }
            if c.expression.is_empty() {
                leave_out(Omission::Unsupported(format!(
                    "no branch of the expression starts at {}",
                    c.resource_type
                )));
                continue;
            }
            let expr = match Expr::compile(c.resource_type, &c.expression) {
                Ok(e) => e,
                Err(e) => {
                    leave_out(Omission::Unsupported(e.0));
                    continue;
                }
            };
            if !expr
                .result_types()
                .iter()
                .any(|t| indexable(param_type, *t))
            {
                leave_out(Omission::Unsupported(format!(
                    "no value of {} can be indexed as {}",
                    c.expression,
                    param_type.code()
                )));
                continue;
            }
            let exists = r
                .defs
                .iter()
                .any(|d| d.resource_type == c.resource_type && d.code == sp.code);
            if exists {
                leave_out(Omission::Duplicate);
                continue;
            }
            r.defs.push(SearchParamDef {
                code: &sp.code,
                resource_type: c.resource_type,
                param_type,
                url: &sp.url,
                expression: &c.expression,
                targets: sp.target.iter().map(String::as_str).collect(),
                description: "",
            });
            r.exprs.push(expr);
        }
        for (i, d) in r.defs.iter().enumerate() {
            let p = r
                .by_type
                .entry(d.resource_type)
                .or_insert_with(|| TypeParams {
                    sorted: Vec::new(),
                    extracted: Vec::new(),
                });
            p.sorted.push(i);
            if !matches!(d.code, "_id" | "_lastUpdated") {
                p.extracted.push(i);
            }
        }
        let defs = &r.defs;
        for p in r.by_type.values_mut() {
            p.sorted.sort_by_key(|&i| defs[i].code);
        }
        r
    }
}

/// The top-level `|` branches of `expression` that start at `resource_type` (or `Resource`,
/// `DomainResource`), possibly inside parentheses: `(Observation.value as Quantity)`.
fn branches_for<'e>(expression: &'e str, resource_type: &str) -> Vec<&'e str> {
    let mut branches = Vec::new();
    let mut depth = 0i32;
    let mut quoted: Option<char> = None;
    let mut start = 0;
    for (i, c) in expression.char_indices() {
        match (quoted, c) {
            (Some(q), c) if c == q => quoted = None,
            (Some(_), _) => {}
            (None, '\'' | '`') => quoted = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, '|') if depth == 0 => {
                branches.push(expression[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    branches.push(expression[start..].trim());
    branches
        .into_iter()
        .filter(|b| {
            let head = b.trim_start_matches(|c: char| c == '(' || c.is_whitespace());
            let root = head
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            root == resource_type || root == "Resource" || root == "DomainResource"
        })
        .collect()
}

/// Whether values of static type `t` yield index entries for a parameter of type `p`.
fn indexable(p: ParamType, t: ValueType) -> bool {
    let shape = match t {
        ValueType::Element(ty) => ty.shape(),
        ValueType::Boolean => return p == ParamType::Token,
        ValueType::String => Shape::String,
        ValueType::Number | ValueType::Resolved => return false,
    };
    match p {
        ParamType::Token => matches!(
            shape,
            Shape::Boolean
                | Shape::String
                | Shape::Uri
                | Shape::Coding
                | Shape::CodeableConcept
                | Shape::Identifier
                | Shape::ContactPoint
        ),
        ParamType::String => matches!(
            shape,
            Shape::String | Shape::Uri | Shape::HumanName | Shape::Address
        ),
        ParamType::Date => matches!(shape, Shape::DateTime | Shape::Period | Shape::Timing),
        ParamType::Reference => matches!(shape, Shape::Reference | Shape::Uri | Shape::String),
        ParamType::Quantity => matches!(shape, Shape::Quantity | Shape::Money | Shape::Range),
        ParamType::Uri => matches!(shape, Shape::Uri | Shape::String),
        ParamType::Number | ParamType::Composite | ParamType::Special => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

/// Collects the entries of one parameter, dropping duplicates of that parameter's entries.
struct Sink<'e> {
    entries: &'e mut Vec<IndexEntry>,
    start: usize,
    param: &'static str,
}

impl Sink<'_> {
    fn push(&mut self, value: IndexValue) {
        if !self.entries[self.start..].iter().any(|e| e.value == value) {
            self.entries.push(IndexEntry {
                param: self.param,
                value,
            });
        }
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The strings of an element that may be one string or an array of them (`HumanName.given`).
fn strings<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    let (one, many) = match v.get(key) {
        Some(Value::String(s)) => (Some(s.as_str()), None),
        Some(Value::Array(a)) => (None, Some(a.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

fn extract_item(p: ParamType, item: &Item<'_>, sink: &mut Sink<'_>) {
    match *item {
        Item::Node { value, ty } => match p {
            ParamType::Token => token(value, ty.shape(), sink),
            ParamType::String => string(value, ty.shape(), sink),
            ParamType::Date => date(value, ty.shape(), sink),
            ParamType::Reference => reference(value, ty.shape(), sink),
            ParamType::Quantity => quantity(value, ty.shape(), sink),
            ParamType::Uri => {
                if let (Shape::Uri | Shape::String, Some(s)) = (ty.shape(), value.as_str()) {
                    if !s.is_empty() {
                        sink.push(IndexValue::Uri(s.to_owned()));
                    }
                }
            }
            ParamType::Number | ParamType::Composite | ParamType::Special => {}
        },
        Item::Boolean(b) if p == ParamType::Token => sink.push(IndexValue::Token {
            system: None,
            code: b.to_string(),
        }),
        _ => {}
    }
}

fn push_token(sink: &mut Sink<'_>, system: Option<&str>, code: Option<&str>) {
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        sink.push(IndexValue::Token {
            system: system.filter(|s| !s.is_empty()).map(str::to_owned),
            code: code.to_owned(),
        });
    }
}

fn token(v: &Value, shape: Shape, sink: &mut Sink<'_>) {
    match shape {
        Shape::Boolean => {
            if let Some(b) = v.as_bool() {
                push_token(sink, None, Some(if b { "true" } else { "false" }));
            }
        }
        Shape::String | Shape::Uri => push_token(sink, None, v.as_str()),
        Shape::Coding => push_token(sink, str_field(v, "system"), str_field(v, "code")),
        Shape::CodeableConcept => {
            if let Some(Value::Array(codings)) = v.get("coding") {
                for c in codings {
                    push_token(sink, str_field(c, "system"), str_field(c, "code"));
                }
            }
        }
        Shape::Identifier => push_token(sink, str_field(v, "system"), str_field(v, "value")),
        Shape::ContactPoint => push_token(sink, None, str_field(v, "value")),
        _ => {}
    }
}

fn push_string(sink: &mut Sink<'_>, s: &str) {
    let normalized = normalize_string(s);
    if !normalized.is_empty() {
        sink.push(IndexValue::String {
            normalized,
            exact: s.to_owned(),
        });
    }
}

fn string(v: &Value, shape: Shape, sink: &mut Sink<'_>) {
    let parts: &[&str] = match shape {
        Shape::String | Shape::Uri => {
            if let Some(s) = v.as_str() {
                push_string(sink, s);
            }
            return;
        }
        Shape::HumanName => &["family", "given", "prefix", "suffix", "text"],
        Shape::Address => &[
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
            "text",
        ],
        _ => return,
    };
    for key in parts {
        for s in strings(v, key) {
            push_string(sink, s);
        }
    }
}

fn instant_range(v: &Value) -> Option<Range> {
    parse_datetime(v.as_str()?).map(|d| d.range)
}

fn date(v: &Value, shape: Shape, sink: &mut Sink<'_>) {
    match shape {
        Shape::DateTime => {
            if let Some(r) = instant_range(v) {
                sink.push(IndexValue::Date(r));
            }
        }
        Shape::Period => {
            // A bound that is present but unreadable makes the whole period unreadable.
            let low = match v.get("start") {
                Some(s) => match instant_range(s) {
                    Some(r) => Some(r.low),
                    None => return,
                },
                None => None,
            };
            let high = match v.get("end") {
                Some(e) => match instant_range(e) {
                    Some(r) => Some(r.high),
                    None => return,
                },
                None => None,
            };
            if low.is_none() && high.is_none() {
                return;
            }
            let range = Range {
                low: low.unwrap_or(i64::MIN),
                high: high.unwrap_or(i64::MAX),
            };
            if range.low <= range.high {
                sink.push(IndexValue::Date(range));
            }
        }
        Shape::Timing => {
            if let Some(Value::Array(events)) = v.get("event") {
                for r in events.iter().filter_map(instant_range) {
                    sink.push(IndexValue::Date(r));
                }
            }
        }
        _ => {}
    }
}

fn push_reference(sink: &mut Sink<'_>, s: &str) {
    if s.is_empty() || s.starts_with('#') {
        return; // contained resources are not indexed on their own
    }
    let target = fhirpath::parse_reference(s);
    sink.push(IndexValue::Reference {
        target_type: target.map(|(t, _)| t.to_owned()),
        target_id: target.map(|(_, id)| id.to_owned()),
        url: s.to_owned(),
    });
}

fn reference(v: &Value, shape: Shape, sink: &mut Sink<'_>) {
    match shape {
        // A Reference with only an identifier or a display points at nothing searchable.
        Shape::Reference => {
            if let Some(s) = str_field(v, "reference") {
                push_reference(sink, s);
            }
        }
        Shape::Uri | Shape::String => {
            if let Some(s) = v.as_str() {
                push_reference(sink, s);
            }
        }
        _ => {}
    }
}

fn push_quantity(sink: &mut Sink<'_>, v: &Value) {
    let Some(value) = v.get("value").and_then(Value::as_f64) else {
        return;
    };
    sink.push(IndexValue::Quantity {
        value,
        system: str_field(v, "system").map(str::to_owned),
        code: str_field(v, "code")
            .or_else(|| str_field(v, "unit"))
            .map(str::to_owned),
    });
}

fn quantity(v: &Value, shape: Shape, sink: &mut Sink<'_>) {
    match shape {
        Shape::Quantity => push_quantity(sink, v),
        Shape::Money => {
            if let Some(value) = v.get("value").and_then(Value::as_f64) {
                sink.push(IndexValue::Quantity {
                    value,
                    system: Some("urn:iso:std:iso:4217".to_owned()),
                    code: str_field(v, "currency").map(str::to_owned),
                });
            }
        }
        // As HAPI does: a Range is indexed as its two bounds.
        Shape::Range => {
            for bound in ["low", "high"] {
                if let Some(q) = v.get(bound) {
                    push_quantity(sink, q);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datetime::parse_datetime;
    use proptest::prelude::*;
    use serde_json::json;

    fn values<'e>(entries: &'e [IndexEntry], param: &str) -> Vec<&'e IndexValue> {
        entries
            .iter()
            .filter(|e| e.param == param)
            .map(|e| &e.value)
            .collect()
    }

    fn token(system: Option<&str>, code: &str) -> IndexValue {
        IndexValue::Token {
            system: system.map(str::to_owned),
            code: code.to_owned(),
        }
    }

    fn reference(ty: Option<&str>, id: Option<&str>, url: &str) -> IndexValue {
        IndexValue::Reference {
            target_type: ty.map(str::to_owned),
            target_id: id.map(str::to_owned),
            url: url.to_owned(),
        }
    }

    fn exact_strings(entries: &[IndexEntry], param: &str) -> Vec<String> {
        values(entries, param)
            .into_iter()
            .filter_map(|v| match v {
                IndexValue::String { exact, .. } => Some(exact.clone()),
                _ => None,
            })
            .collect()
    }

    fn range(s: &str) -> Range {
        parse_datetime(s)
            .map(|d| d.range)
            .unwrap_or(Range { low: 0, high: 0 })
    }

    #[test]
    fn every_param_of_every_type_in_scope_parses() {
        let unsupported: Vec<_> = left_out()
            .iter()
            .filter(|l| matches!(l.reason, Omission::Unsupported(_) | Omission::Duplicate))
            .collect();
        assert!(unsupported.is_empty(), "{unsupported:#?}");

        let counts: Vec<(&str, usize)> = RESOURCE_TYPES
            .iter()
            .map(|t| (*t, for_type(t).len()))
            .collect();
        let expected = [
            ("Patient", 29),
            ("RelatedPerson", 23),
            ("Practitioner", 23),
            ("PractitionerRole", 19),
            ("Organization", 19),
            ("Location", 20),
            ("HealthcareService", 18),
            ("Schedule", 13),
            ("Slot", 14),
            ("Appointment", 23),
            ("ServiceRequest", 28),
            ("Task", 25),
            ("DocumentReference", 30),
            ("Binary", 6),
            ("Communication", 21),
            ("Questionnaire", 23),
            ("QuestionnaireResponse", 17),
            ("Condition", 27),
            ("AllergyIntolerance", 22),
            ("MedicationRequest", 22),
            ("MedicationStatement", 17),
            ("Observation", 36),
            ("DiagnosticReport", 22),
            ("Immunization", 22),
            ("Encounter", 29),
            ("Consent", 21),
            ("AuditEvent", 24),
            ("Provenance", 16),
            ("Flag", 12),
            ("Group", 15),
        ];
        assert_eq!(counts, expected);
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), 636);

        // What is left out is left out by design: no expression, composite, special.
        let mut by_design: Vec<String> = left_out()
            .iter()
            .filter(|l| !matches!(l.reason, Omission::NoExpression))
            .map(|l| format!("{}.{} {:?}", l.resource_type, l.code, l.reason))
            .collect();
        by_design.sort();
        assert_eq!(
            by_design,
            [
                "DocumentReference.relationship ParamType(Composite)",
                "Group.characteristic-value ParamType(Composite)",
                "Location.near ParamType(Special)",
                "Observation.code-value-concept ParamType(Composite)",
                "Observation.code-value-date ParamType(Composite)",
                "Observation.code-value-quantity ParamType(Composite)",
                "Observation.code-value-string ParamType(Composite)",
                "Observation.combo-code-value-concept ParamType(Composite)",
                "Observation.combo-code-value-quantity ParamType(Composite)",
                "Observation.component-code-value-concept ParamType(Composite)",
                "Observation.component-code-value-quantity ParamType(Composite)",
                "Questionnaire.context-type-quantity ParamType(Composite)",
                "Questionnaire.context-type-value ParamType(Composite)",
            ]
        );
        let no_expression: Vec<&str> = left_out()
            .iter()
            .filter(|l| l.reason == Omission::NoExpression && l.resource_type == "Patient")
            .map(|l| l.code)
            .collect();
        assert_eq!(no_expression, ["_text", "_content", "_query"]);
    }

    #[test]
    fn for_type_is_sorted_by_code_and_lookup_finds_each() {
        for t in RESOURCE_TYPES {
            let defs = for_type(t);
            assert!(defs.windows(2).all(|w| w[0].code < w[1].code), "{t}");
            for d in defs {
                assert_eq!(d.resource_type, *t);
                assert!(std::ptr::eq(lookup(t, d.code).unwrap(), d));
            }
        }
        assert!(lookup("Patient", "no-such-param").is_none());
        assert!(lookup("NoSuchType", "_id").is_none());
        assert!(for_type("NoSuchType").is_empty());
    }

    #[test]
    fn resource_params_apply_to_every_type_in_scope() {
        for t in RESOURCE_TYPES {
            for (code, ty) in [
                ("_id", ParamType::Token),
                ("_lastUpdated", ParamType::Date),
                ("_tag", ParamType::Token),
                ("_security", ParamType::Token),
                ("_profile", ParamType::Uri),
                ("_source", ParamType::Uri),
            ] {
                let def = lookup(t, code).unwrap_or_else(|| panic!("{t} {code}"));
                assert_eq!(def.param_type, ty);
            }
        }
        assert_eq!(lookup("Patient", "_id").unwrap().expression, "Resource.id");
    }

    #[test]
    fn id_and_last_updated_are_not_extracted() {
        let entries = extract_all(&json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"lastUpdated": "2024-01-01T00:00:00Z"},
        }));
        assert!(values(&entries, "_id").is_empty());
        assert!(values(&entries, "_lastUpdated").is_empty());
    }

    #[test]
    fn meta_tag_security_profile_and_source_are_indexed() {
        let entries = extract_all(&json!({
            "resourceType": "Binary",
            "meta": {
                "tag": [{"system": "http://t", "code": "demo"}],
                "security": [{"system": "http://s", "code": "R"}],
                "profile": ["http://p/Profile"],
                "source": "http://source#1",
            },
        }));
        assert_eq!(values(&entries, "_tag"), [&token(Some("http://t"), "demo")]);
        assert_eq!(
            values(&entries, "_security"),
            [&token(Some("http://s"), "R")]
        );
        assert_eq!(
            values(&entries, "_profile"),
            [&IndexValue::Uri("http://p/Profile".into())]
        );
        assert_eq!(
            values(&entries, "_source"),
            [&IndexValue::Uri("http://source#1".into())]
        );
    }

    #[test]
    fn a_shared_expression_keeps_only_the_types_own_branch() {
        let def = lookup("Condition", "patient").unwrap();
        assert_eq!(
            def.expression,
            "Condition.subject.where(resolve() is Patient)"
        );
        assert_eq!(
            def.url,
            "http://hl7.org/fhir/SearchParameter/clinical-patient"
        );
        assert!(def.targets.contains(&"Patient"));
        assert_eq!(
            lookup("AllergyIntolerance", "patient").unwrap().expression,
            "AllergyIntolerance.patient"
        );
        assert_eq!(
            lookup("Observation", "value-quantity").unwrap().expression,
            "(Observation.value as Quantity) | (Observation.value as SampledData)"
        );
    }

    #[test]
    fn reference_targets_come_from_the_definition() {
        let def = lookup("Appointment", "actor").unwrap();
        assert_eq!(def.param_type, ParamType::Reference);
        for t in ["Patient", "Practitioner", "Location", "RelatedPerson"] {
            assert!(def.targets.contains(&t), "{t}");
        }
        assert!(lookup("Patient", "birthdate").unwrap().targets.is_empty());
    }

    #[test]
    fn observation_value_quantity_is_indexed_with_ucum_code() {
        let entries = extract_all(&json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {
                "value": 72.5,
                "unit": "beats/minute",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
        }));
        assert_eq!(
            values(&entries, "value-quantity"),
            [&IndexValue::Quantity {
                value: 72.5,
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("/min".into()),
            }]
        );
        assert_eq!(values(&entries, "combo-value-quantity").len(), 1);
        assert!(values(&entries, "component-value-quantity").is_empty());
        assert!(values(&entries, "value-string").is_empty());
    }

    #[test]
    fn quantity_without_code_is_indexed_by_unit() {
        let entries = extract_all(&json!({
            "resourceType": "Observation",
            "valueQuantity": {"value": 5, "unit": "mmol/L"},
        }));
        assert_eq!(
            values(&entries, "value-quantity"),
            [&IndexValue::Quantity {
                value: 5.0,
                system: None,
                code: Some("mmol/L".into()),
            }]
        );
    }

    #[test]
    fn observation_component_values_are_indexed() {
        let entries = extract_all(&json!({
            "resourceType": "Observation",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
                },
            ],
        }));
        assert_eq!(values(&entries, "component-value-quantity").len(), 2);
        assert_eq!(values(&entries, "combo-value-quantity").len(), 2);
        assert_eq!(values(&entries, "component-code").len(), 2);
        assert_eq!(values(&entries, "combo-code").len(), 3);
        assert_eq!(
            values(&entries, "code"),
            [&token(Some("http://loinc.org"), "85354-9")]
        );
    }

    #[test]
    fn observation_value_string_covers_strings_and_concept_text() {
        let text = extract_all(&json!({"resourceType": "Observation", "valueString": "Négatif"}));
        assert_eq!(
            values(&text, "value-string"),
            [&IndexValue::String {
                normalized: "negatif".into(),
                exact: "Négatif".into(),
            }]
        );
        let concept = extract_all(&json!({
            "resourceType": "Observation",
            "valueCodeableConcept": {"text": "Positive", "coding": [{"system": "http://snomed.info/sct", "code": "10828004"}]},
        }));
        assert_eq!(exact_strings(&concept, "value-string"), ["Positive"]);
        assert_eq!(
            values(&concept, "value-concept"),
            [&token(Some("http://snomed.info/sct"), "10828004")]
        );
    }

    #[test]
    fn identical_values_are_indexed_once_per_param() {
        let coding = json!({"coding": [{"system": "http://loinc.org", "code": "8867-4"}]});
        let entries = extract_all(&json!({
            "resourceType": "Observation",
            "code": coding,
            "component": [{"code": coding}, {"code": coding}],
            "category": [coding, coding],
        }));
        assert_eq!(values(&entries, "combo-code").len(), 1);
        assert_eq!(values(&entries, "component-code").len(), 1);
        assert_eq!(values(&entries, "category").len(), 1);
    }

    #[test]
    fn appointment_patient_param_only_indexes_patient_actors() {
        let entries = extract_all(&json!({
            "resourceType": "Appointment",
            "status": "booked",
            "participant": [
                {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
                {"actor": {"reference": "https://example.org/fhir/Location/l1"}, "status": "accepted"},
                {"actor": {"identifier": {"value": "x"}}, "status": "accepted"},
            ],
        }));
        assert_eq!(
            values(&entries, "patient"),
            [&reference(Some("Patient"), Some("p1"), "Patient/p1")]
        );
        assert_eq!(
            values(&entries, "practitioner"),
            [&reference(
                Some("Practitioner"),
                Some("d1"),
                "Practitioner/d1"
            )]
        );
        assert_eq!(
            values(&entries, "location"),
            [&reference(
                Some("Location"),
                Some("l1"),
                "https://example.org/fhir/Location/l1"
            )]
        );
        assert_eq!(values(&entries, "actor").len(), 3);
        assert_eq!(values(&entries, "part-status"), [&token(None, "accepted")]);
        assert_eq!(values(&entries, "status"), [&token(None, "booked")]);
    }

    #[test]
    fn chained_reference_full_url_is_parsed() {
        let entries = extract_all(&json!({
            "resourceType": "Observation",
            "subject": {"reference": "https://fhir.example.org/r4/Patient/123/_history/2"},
        }));
        let expected = reference(
            Some("Patient"),
            Some("123"),
            "https://fhir.example.org/r4/Patient/123/_history/2",
        );
        assert_eq!(values(&entries, "subject"), [&expected]);
        assert_eq!(values(&entries, "patient"), [&expected]);
    }

    #[test]
    fn contained_identifier_only_and_urn_references() {
        let entries = extract_all(&json!({
            "resourceType": "Observation",
            "subject": {"reference": "#p1"},
            "performer": [
                {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "1"}},
                {"reference": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000000"},
                {"display": "Dr Who"},
            ],
        }));
        assert!(values(&entries, "subject").is_empty());
        assert!(values(&entries, "patient").is_empty());
        assert_eq!(
            values(&entries, "performer"),
            [&reference(
                None,
                None,
                "urn:uuid:0a1b2c3d-0000-4000-8000-000000000000"
            )]
        );
    }

    #[test]
    fn subject_that_is_a_group_is_not_the_patient() {
        let entries = extract_all(&json!({
            "resourceType": "Condition",
            "subject": {"reference": "Group/g1"},
        }));
        assert_eq!(values(&entries, "subject").len(), 1);
        assert!(values(&entries, "patient").is_empty());
    }

    #[test]
    fn questionnaire_canonical_is_indexed_as_written() {
        let entries = extract_all(&json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "https://portico.example/fhir/Questionnaire/phq9|1.0",
            "status": "completed",
        }));
        assert_eq!(
            values(&entries, "questionnaire"),
            [&reference(
                Some("Questionnaire"),
                Some("phq9"),
                "https://portico.example/fhir/Questionnaire/phq9|1.0"
            )]
        );
        let plain = extract_all(&json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "http://example.org/phq-9",
        }));
        assert_eq!(
            values(&plain, "questionnaire"),
            [&reference(None, None, "http://example.org/phq-9")]
        );
    }

    #[test]
    fn patient_name_indexes_family_and_given_separately() {
        let entries = extract_all(&json!({
            "resourceType": "Patient",
            "name": [
                {"family": "O'Brien", "given": ["Zoë", "Anne"], "prefix": ["Ms"], "text": "Zoë Anne O'Brien"},
                {"family": "Smith"},
            ],
        }));
        let name = values(&entries, "name");
        assert!(name.contains(&&IndexValue::String {
            normalized: "zoe".into(),
            exact: "Zoë".into(),
        }));
        assert_eq!(
            exact_strings(&entries, "name"),
            ["O'Brien", "Zoë", "Anne", "Ms", "Zoë Anne O'Brien", "Smith"]
        );
        assert_eq!(exact_strings(&entries, "family"), ["O'Brien", "Smith"]);
        assert_eq!(exact_strings(&entries, "given"), ["Zoë", "Anne"]);
        assert!(exact_strings(&entries, "phonetic").contains(&"Smith".to_owned()));
    }

    #[test]
    fn patient_address_indexes_each_part() {
        let entries = extract_all(&json!({
            "resourceType": "Patient",
            "address": [{
                "use": "home",
                "line": ["1 High Street", "Flat 2"],
                "city": "Leeds",
                "district": "West Yorkshire",
                "postalCode": "LS1 1AA",
                "country": "GB",
            }],
        }));
        assert_eq!(
            exact_strings(&entries, "address"),
            [
                "1 High Street",
                "Flat 2",
                "Leeds",
                "West Yorkshire",
                "LS1 1AA",
                "GB"
            ]
        );
        assert_eq!(exact_strings(&entries, "address-city"), ["Leeds"]);
        assert_eq!(exact_strings(&entries, "address-postalcode"), ["LS1 1AA"]);
        assert_eq!(values(&entries, "address-use"), [&token(None, "home")]);
    }

    #[test]
    fn telecom_params_filter_by_system_and_index_the_value() {
        let entries = extract_all(&json!({
            "resourceType": "Patient",
            "telecom": [
                {"system": "phone", "value": "07700 900123"},
                {"system": "email", "value": "zoe@example.org"},
            ],
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
        }));
        assert_eq!(values(&entries, "phone"), [&token(None, "07700 900123")]);
        assert_eq!(values(&entries, "email"), [&token(None, "zoe@example.org")]);
        assert_eq!(values(&entries, "telecom").len(), 2);
        assert_eq!(
            values(&entries, "identifier"),
            [&token(
                Some("https://fhir.nhs.uk/Id/nhs-number"),
                "9000000009"
            )]
        );
    }

    #[test]
    fn booleans_and_codes_are_tokens() {
        let entries = extract_all(&json!({
            "resourceType": "Patient",
            "active": true,
            "gender": "female",
            "birthDate": "1980-05",
        }));
        assert_eq!(values(&entries, "active"), [&token(None, "true")]);
        assert_eq!(values(&entries, "gender"), [&token(None, "female")]);
        assert_eq!(
            values(&entries, "birthdate"),
            [&IndexValue::Date(range("1980-05"))]
        );
    }

    #[test]
    fn deceased_is_false_unless_recorded() {
        let deceased = |extra: Value| {
            let mut p = json!({"resourceType": "Patient"});
            if let (Value::Object(p), Value::Object(extra)) = (&mut p, extra) {
                p.extend(extra);
            }
            values(&extract_all(&p), "deceased")
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(deceased(json!({})), [token(None, "false")]);
        assert_eq!(
            deceased(json!({"deceasedBoolean": false})),
            [token(None, "false")]
        );
        assert_eq!(
            deceased(json!({"deceasedBoolean": true})),
            [token(None, "true")]
        );
        assert_eq!(
            deceased(json!({"deceasedDateTime": "2024-01-01"})),
            [token(None, "true")]
        );
        let entries =
            extract_all(&json!({"resourceType": "Patient", "deceasedDateTime": "2024-01-01"}));
        assert_eq!(
            values(&entries, "death-date"),
            [&IndexValue::Date(range("2024-01-01"))]
        );
    }

    #[test]
    fn condition_onset_period_indexes_range() {
        let entries = extract_all(&json!({
            "resourceType": "Condition",
            "onsetPeriod": {"start": "2023-03-01", "end": "2023-03-15T12:00:00Z"},
        }));
        assert_eq!(
            values(&entries, "onset-date"),
            [&IndexValue::Date(Range {
                low: range("2023-03-01").low,
                high: range("2023-03-15T12:00:00Z").high,
            })]
        );
    }

    #[test]
    fn open_period_extends_to_the_end_of_time() {
        let entries = extract_all(&json!({
            "resourceType": "Encounter",
            "period": {"start": "2024-06-01T09:00:00+01:00"},
        }));
        assert_eq!(
            values(&entries, "date"),
            [&IndexValue::Date(Range {
                low: range("2024-06-01T08:00:00Z").low,
                high: i64::MAX,
            })]
        );
        let ended = extract_all(&json!({"resourceType": "Encounter", "period": {"end": "2024"}}));
        assert_eq!(
            values(&ended, "date"),
            [&IndexValue::Date(Range {
                low: i64::MIN,
                high: range("2024").high,
            })]
        );
    }

    #[test]
    fn unparsable_dates_are_skipped() {
        let entries = extract_all(&json!({
            "resourceType": "Condition",
            "onsetDateTime": "yesterday",
            "recordedDate": "2024-02-30",
            "abatementPeriod": {"start": "2024-01-01", "end": "soon"},
        }));
        assert!(values(&entries, "onset-date").is_empty());
        assert!(values(&entries, "recorded-date").is_empty());
        assert!(values(&entries, "abatement-date").is_empty());
    }

    #[test]
    fn condition_onset_age_range_indexes_both_bounds() {
        let entries = extract_all(&json!({
            "resourceType": "Condition",
            "onsetRange": {
                "low": {"value": 40, "system": "http://unitsofmeasure.org", "code": "a"},
                "high": {"value": 45, "system": "http://unitsofmeasure.org", "code": "a"},
            },
        }));
        let ages: Vec<f64> = values(&entries, "onset-age")
            .into_iter()
            .filter_map(|v| match v {
                IndexValue::Quantity { value, .. } => Some(*value),
                _ => None,
            })
            .collect();
        assert_eq!(ages, [40.0, 45.0]);
        let age = extract_all(&json!({
            "resourceType": "Condition",
            "onsetAge": {"value": 3, "system": "http://unitsofmeasure.org", "code": "a"},
            "onsetString": "childhood",
        }));
        assert_eq!(values(&age, "onset-age").len(), 1);
        assert_eq!(exact_strings(&age, "onset-info"), ["childhood"]);
    }

    #[test]
    fn encounter_length_is_a_duration_quantity() {
        let entries = extract_all(&json!({
            "resourceType": "Encounter",
            "length": {"value": 30, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"},
        }));
        assert_eq!(
            values(&entries, "length"),
            [&IndexValue::Quantity {
                value: 30.0,
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("min".into()),
            }]
        );
    }

    #[test]
    fn timing_events_are_dates() {
        let entries = extract_all(&json!({
            "resourceType": "MedicationRequest",
            "dosageInstruction": [{"timing": {"event": ["2024-01-01T08:00:00Z", "2024-01-02T08:00:00Z"]}}],
            "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "322236009"}]},
            "medicationReference": {"reference": "Medication/m1"},
        }));
        assert_eq!(values(&entries, "date").len(), 2);
        assert_eq!(
            values(&entries, "code"),
            [&token(Some("http://snomed.info/sct"), "322236009")]
        );
        assert_eq!(
            values(&entries, "medication"),
            [&reference(Some("Medication"), Some("m1"), "Medication/m1")]
        );
    }

    #[test]
    fn audit_event_patient_comes_from_agents_and_entities() {
        let entries = extract_all(&json!({
            "resourceType": "AuditEvent",
            "agent": [{"who": {"reference": "Patient/p1"}}, {"who": {"reference": "Practitioner/d1"}}],
            "entity": [{"what": {"reference": "Patient/p2"}}, {"what": {"reference": "Patient/p1"}}],
            "recorded": "2024-01-01T00:00:00.123Z",
        }));
        let patients: Vec<_> = values(&entries, "patient")
            .into_iter()
            .filter_map(|v| match v {
                IndexValue::Reference { target_id, .. } => target_id.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(patients, ["p1", "p2"]);
        assert_eq!(values(&entries, "date").len(), 1);
    }

    #[test]
    fn uri_params_index_the_uri() {
        let entries = extract_all(&json!({
            "resourceType": "Questionnaire",
            "url": "https://portico.example/Questionnaire/phq9",
            "item": [{"linkId": "1", "definition": "http://loinc.org/44250-9"}],
        }));
        assert_eq!(
            values(&entries, "url"),
            [&IndexValue::Uri(
                "https://portico.example/Questionnaire/phq9".into()
            )]
        );
        assert_eq!(values(&entries, "definition").len(), 1);
    }

    #[test]
    fn documents_that_are_not_resources_in_scope_yield_nothing() {
        for doc in [
            json!(null),
            json!([1, 2]),
            json!("Patient"),
            json!({"resourceType": "Medication", "code": {"text": "x"}}),
            json!({"resourceType": 7}),
            json!({"name": [{"family": "Smith"}]}),
        ] {
            assert!(extract_all(&doc).is_empty(), "{doc}");
        }
    }

    #[test]
    fn wrongly_shaped_values_are_skipped_not_fatal() {
        let entries = extract_all(&json!({
            "resourceType": "Patient",
            "name": "Smith",
            "telecom": {"system": "phone", "value": 7},
            "identifier": [null, 3, {"value": ""}, {"system": "s", "value": "v"}],
            "birthDate": 1980,
            "active": "yes",
            "generalPractitioner": [{"reference": 5}, {"reference": ""}],
        }));
        assert_eq!(values(&entries, "identifier"), [&token(Some("s"), "v")]);
        assert!(values(&entries, "name").is_empty());
        assert!(values(&entries, "birthdate").is_empty());
        assert!(values(&entries, "general-practitioner").is_empty());
        assert!(values(&entries, "active").is_empty());
    }

    const KEYS: &[&str] = &[
        "name",
        "given",
        "family",
        "subject",
        "reference",
        "value",
        "valueQuantity",
        "valueString",
        "valueCodeableConcept",
        "valuePeriod",
        "code",
        "coding",
        "system",
        "period",
        "start",
        "end",
        "telecom",
        "identifier",
        "participant",
        "actor",
        "onsetPeriod",
        "onsetDateTime",
        "onsetAge",
        "onsetRange",
        "low",
        "high",
        "meta",
        "tag",
        "security",
        "profile",
        "source",
        "component",
        "effectiveDateTime",
        "effectivePeriod",
        "extension",
        "url",
        "deceasedBoolean",
        "deceasedDateTime",
        "address",
        "line",
        "city",
        "event",
        "timing",
        "dosageInstruction",
        "questionnaire",
        "agent",
        "who",
        "entity",
        "what",
        "length",
        "unit",
        "currency",
        "text",
        "status",
        "active",
        "category",
        "for",
        "performer",
        "item",
        "definition",
        "link",
        "other",
        "birthDate",
        "issued",
    ];

    const STRINGS: &[&str] = &[
        "",
        "2024",
        "2024-02-30",
        "2024-01-01T10:00:00Z",
        "2024-01-01T10:00:00.5+14:00",
        "Patient/1",
        "#x",
        "http://a/Patient/1/_history/2",
        "Patient/",
        "/",
        "phone",
        "email",
        "Zoë",
        "urn:uuid:1",
        "Questionnaire/q|2",
        "Patient?x=1",
        "_history/1",
    ];

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            prop::sample::select(STRINGS).prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 96, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn extraction_never_panics_on_arbitrary_json(
            ty in prop::sample::select(RESOURCE_TYPES),
            fields in prop::collection::vec((prop::sample::select(KEYS), arb_json()), 0..10),
            other in arb_json(),
        ) {
            let mut resource = serde_json::Map::new();
            resource.insert("resourceType".into(), Value::from(ty));
            for (k, v) in fields {
                resource.insert(k.to_owned(), v);
            }
            let entries = extract_all(&Value::Object(resource));
            for e in &entries {
                prop_assert!(lookup(ty, e.param).is_some());
                prop_assert!(e.param != "_id" && e.param != "_lastUpdated");
            }
            let _ = extract_all(&other);
        }
    }
}
