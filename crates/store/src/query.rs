//! A FHIR search, parsed from its query parameters into a backend-neutral form.
//!
//! Parameters joined by `&` must all match (AND); comma-separated values of one parameter are
//! alternatives (OR). The parser knows each type's R4 search parameters (`fhir::search_params`)
//! and rejects what it does not understand unless the client asked for lenient handling.

use fhir::datetime::{self, Range};
use fhir::index::normalize_string;
use fhir::search_params::{self, ParamType};
use fhir::{Issue, IssueType};

/// Comparison prefixes of date and quantity values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
}

impl Prefix {
    fn split(s: &str) -> (Prefix, &str) {
        let p = match s.get(..2) {
            Some("eq") => Prefix::Eq,
            Some("ne") => Prefix::Ne,
            Some("gt") => Prefix::Gt,
            Some("lt") => Prefix::Lt,
            Some("ge") => Prefix::Ge,
            Some("le") => Prefix::Le,
            Some("sa") => Prefix::Sa,
            Some("eb") => Prefix::Eb,
            _ => return (Prefix::Eq, s),
        };
        (p, &s[2..])
    }
}

/// A date search value: prefix and the range the value covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateValue {
    pub prefix: Prefix,
    pub range: Range,
}

/// Which systems a token value accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSystem {
    /// `code`: any system (or none).
    Any,
    /// `|code`: only values without a system.
    None,
    /// `system|code` or `system|`.
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenValue {
    pub system: TokenSystem,
    /// None for `system|` (any code in the system).
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMode {
    /// Default: starts with, ignoring case and accents.
    StartsWith,
    /// `:exact`: equals, case and accents included.
    Exact,
    /// `:contains`: contains, ignoring case and accents.
    Contains,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceValue {
    /// A local resource: `Patient/123`, `123` (type from `:Type` or any target), or an absolute
    /// URL under this server's base.
    Local {
        resource_type: Option<String>,
        id: String,
    },
    /// Any other absolute URL or canonical, compared as written.
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantityValue {
    pub prefix: Prefix,
    pub value: f64,
    /// Half a unit in the last given digit: `5.4` matches [5.35, 5.45).
    pub tolerance: f64,
    pub system: Option<String>,
    pub code: Option<String>,
}

/// How one parameter's values are tested.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Token {
        values: Vec<TokenValue>,
        /// `:not`: resources with no matching value (including none at all).
        negate: bool,
    },
    String {
        /// Normalised for StartsWith/Contains, as written for Exact.
        values: Vec<String>,
        mode: StringMode,
    },
    Date(Vec<DateValue>),
    Reference(Vec<ReferenceValue>),
    Quantity(Vec<QuantityValue>),
    Uri(Vec<String>),
}

/// One condition; a query's conditions must all hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `_id`.
    Id(Vec<String>),
    /// `_lastUpdated`.
    LastUpdated(Vec<DateValue>),
    /// A search parameter of the type.
    Param { code: &'static str, test: Test },
    /// `param:missing=true|false`.
    Missing {
        code: &'static str,
        param_type: ParamType,
        missing: bool,
    },
    /// `ref.param=value`: resources whose reference `code` points to a resource of one of the
    /// target types that matches that type's condition.
    Chain {
        code: &'static str,
        targets: Vec<(&'static str, Box<Condition>)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortBy {
    Id,
    LastUpdated,
    Param {
        code: &'static str,
        param_type: ParamType,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub by: SortBy,
    pub descending: bool,
}

/// `_include=Source:param[:Target]` or `_revinclude=Source:param[:Target]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    pub source_type: &'static str,
    pub param: &'static str,
    pub target_type: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub resource_type: String,
    pub conditions: Vec<Condition>,
    pub sort: Vec<SortKey>,
    pub count: usize,
    pub offset: usize,
    /// `_total=accurate`.
    pub total: bool,
    /// `_summary=count`: only the total.
    pub summary_count: bool,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
    /// `_elements`: top-level elements to keep.
    pub elements: Option<Vec<String>>,
    /// The parameters that were understood, in order, for `self` and paging links
    /// (`_count`, `_offset` excluded).
    pub canonical: Vec<(String, String)>,
    /// Parameters ignored under `Prefer: handling=lenient`.
    pub ignored: Vec<String>,
}

impl SearchQuery {
    /// A query for every resource of a type.
    pub fn all(resource_type: &str) -> Self {
        SearchQuery {
            resource_type: resource_type.to_string(),
            conditions: Vec::new(),
            sort: Vec::new(),
            count: 50,
            offset: 0,
            total: false,
            summary_count: false,
            include: Vec::new(),
            revinclude: Vec::new(),
            elements: None,
            canonical: Vec::new(),
            ignored: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// `Prefer: handling=lenient`: unknown parameters are ignored rather than refused.
    pub lenient: bool,
    /// This server's FHIR base (`http://host/fhir`), so absolute references to it are local.
    pub base_url: Option<String>,
    pub default_count: usize,
    pub max_count: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            lenient: false,
            base_url: None,
            default_count: 50,
            max_count: 1000,
        }
    }
}

/// Parameters that are not search criteria and are handled by the HTTP layer.
const TRANSPORT_PARAMS: &[&str] = &["_format", "_pretty"];

fn bad(param: &str, msg: impl Into<String>) -> Issue {
    Issue::error(IssueType::Invalid, msg).at(param.to_string())
}

fn not_supported(param: &str, msg: impl Into<String>) -> Issue {
    Issue::error(IssueType::NotSupported, msg).at(param.to_string())
}

/// Parses a search on `resource_type` from its (already percent-decoded) query parameters.
pub fn parse(
    resource_type: &str,
    params: &[(String, String)],
    opts: &ParseOptions,
) -> Result<SearchQuery, Vec<Issue>> {
    let mut q = SearchQuery::all(resource_type);
    q.count = opts.default_count;
    let mut issues = Vec::new();
    let ignore = |q: &mut SearchQuery, issues: &mut Vec<Issue>, name: &str, issue: Issue| {
        if opts.lenient {
            q.ignored.push(name.to_string());
        } else {
            issues.push(issue);
        }
    };
    for (name, value) in params {
        let name = name.as_str();
        if TRANSPORT_PARAMS.contains(&name) {
            continue;
        }
        let mut keep = true;
        match name {
            "_count" => {
                keep = false;
                match value.parse::<usize>() {
                    Ok(n) => q.count = n.min(opts.max_count),
                    Err(_) => issues.push(bad(
                        name,
                        format!("_count must be a whole number, not {value:?}"),
                    )),
                }
            }
            "_offset" => {
                keep = false;
                match value.parse::<usize>() {
                    Ok(n) => q.offset = n,
                    Err(_) => issues.push(bad(
                        name,
                        format!("_offset must be a whole number, not {value:?}"),
                    )),
                }
            }
            "_total" => match value.as_str() {
                "accurate" => q.total = true,
                "none" | "estimate" => {}
                _ => issues.push(bad(name, "_total must be none, estimate or accurate")),
            },
            "_summary" => match value.as_str() {
                "count" => q.summary_count = true,
                "false" => {}
                _ => ignore(
                    &mut q,
                    &mut issues,
                    name,
                    not_supported(name, "only _summary=count and _summary=false are supported"),
                ),
            },
            "_elements" => {
                let list: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                q.elements = Some(list);
            }
            "_sort" => match parse_sort(resource_type, value) {
                Ok(keys) => q.sort = keys,
                Err(i) => issues.push(i),
            },
            "_include" | "_revinclude" => {
                let rev = name == "_revinclude";
                match parse_include(resource_type, value, rev) {
                    Ok(inc) if rev => q.revinclude.push(inc),
                    Ok(inc) => q.include.push(inc),
                    Err(i) => issues.push(i),
                }
            }
            _ => match parse_condition(resource_type, name, value, opts) {
                Ok(c) => q.conditions.push(c),
                Err(ParamError::Unknown(issue)) => {
                    keep = false;
                    ignore(&mut q, &mut issues, name, issue)
                }
                Err(ParamError::Invalid(issue)) => issues.push(issue),
            },
        }
        if keep {
            q.canonical.push((name.to_string(), value.clone()));
        }
    }
    if issues.is_empty() {
        Ok(q)
    } else {
        Err(issues)
    }
}

enum ParamError {
    /// The parameter is not known on this type (ignored when lenient).
    Unknown(Issue),
    /// The parameter is known but its value or modifier is wrong.
    Invalid(Issue),
}

fn parse_sort(resource_type: &str, value: &str) -> Result<Vec<SortKey>, Issue> {
    let mut keys = Vec::new();
    for raw in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (descending, code) = match raw.strip_prefix('-') {
            Some(c) => (true, c),
            None => (false, raw),
        };
        let by = match code {
            "_id" => SortBy::Id,
            "_lastUpdated" => SortBy::LastUpdated,
            _ => match search_params::lookup(resource_type, code) {
                Some(def) if sortable(def.param_type) => SortBy::Param {
                    code: def.code,
                    param_type: def.param_type,
                },
                Some(_) => {
                    return Err(not_supported(
                        "_sort",
                        format!("cannot sort {resource_type} by {code}: its type cannot be sorted"),
                    ))
                }
                None => {
                    return Err(bad(
                        "_sort",
                        format!("{resource_type} has no search parameter {code:?} to sort by"),
                    ))
                }
            },
        };
        keys.push(SortKey { by, descending });
    }
    Ok(keys)
}

fn sortable(t: ParamType) -> bool {
    matches!(
        t,
        ParamType::String
            | ParamType::Token
            | ParamType::Date
            | ParamType::Reference
            | ParamType::Quantity
            | ParamType::Uri
    )
}

fn parse_include(resource_type: &str, value: &str, rev: bool) -> Result<Include, Issue> {
    let name = if rev { "_revinclude" } else { "_include" };
    let value = value.strip_suffix(":iterate").unwrap_or(value);
    let mut parts = value.split(':');
    let (Some(source), Some(param)) = (parts.next(), parts.next()) else {
        return Err(bad(
            name,
            format!("{name} must be Type:parameter[:TargetType], not {value:?}"),
        ));
    };
    let target = parts.next();
    let Some(def) =
        search_params::lookup(source, param).filter(|d| d.param_type == ParamType::Reference)
    else {
        return Err(bad(
            name,
            format!("{source} has no reference search parameter {param:?}"),
        ));
    };
    if !rev && source != resource_type {
        return Err(bad(
            name,
            format!("_include must start with the searched type {resource_type}, not {source}"),
        ));
    }
    let target_type = match target {
        None => None,
        Some(t) => match def.targets.iter().find(|x| **x == t) {
            Some(x) => Some(*x),
            None => return Err(bad(name, format!("{source}.{param} cannot point to {t}"))),
        },
    };
    if rev
        && target_type.is_none()
        && !def.targets.contains(&resource_type)
        && !def.targets.is_empty()
    {
        return Err(bad(
            name,
            format!("{source}.{param} never points to {resource_type}"),
        ));
    }
    Ok(Include {
        source_type: def.resource_type,
        param: def.code,
        target_type,
    })
}

fn parse_condition(
    resource_type: &str,
    name: &str,
    value: &str,
    opts: &ParseOptions,
) -> Result<Condition, ParamError> {
    // Chaining: `subject:Patient.name=…` or `patient.identifier=…` (one level).
    if let Some((head, rest)) = name.split_once('.') {
        return parse_chain(resource_type, name, head, rest, value, opts);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    };
    if value.is_empty() {
        return Err(ParamError::Invalid(bad(
            name,
            format!("{name} has no value; give one or leave the parameter out"),
        )));
    }
    match code {
        "_id" => {
            if modifier.is_some() {
                return Err(ParamError::Invalid(not_supported(
                    name,
                    "_id takes no modifier",
                )));
            }
            return Ok(Condition::Id(split_values(value)));
        }
        "_lastUpdated" => {
            if modifier.is_some() {
                return Err(ParamError::Invalid(not_supported(
                    name,
                    "_lastUpdated takes no modifier",
                )));
            }
            return parse_dates(name, value)
                .map(Condition::LastUpdated)
                .map_err(ParamError::Invalid);
        }
        _ => {}
    }
    let Some(def) = search_params::lookup(resource_type, code) else {
        return Err(ParamError::Unknown(not_supported(
            name,
            format!("{resource_type} has no search parameter {code:?}; see /fhir/metadata for the supported ones"),
        )));
    };
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => {
                return Err(ParamError::Invalid(bad(
                    name,
                    ":missing takes true or false",
                )))
            }
        };
        return Ok(Condition::Missing {
            code: def.code,
            param_type: def.param_type,
            missing,
        });
    }
    let invalid = ParamError::Invalid;
    let test = match def.param_type {
        ParamType::Token => {
            let negate = match modifier {
                None => false,
                Some("not") => true,
                Some(m) => {
                    return Err(invalid(not_supported(
                        name,
                        format!(
                        "modifier :{m} is not supported on token parameters (use :not or :missing)"
                    ),
                    )))
                }
            };
            Test::Token {
                values: split_values(value).iter().map(|v| parse_token(v)).collect(),
                negate,
            }
        }
        ParamType::String => {
            let mode = match modifier {
                None => StringMode::StartsWith,
                Some("exact") => StringMode::Exact,
                Some("contains") => StringMode::Contains,
                Some(m) => return Err(invalid(not_supported(name, format!("modifier :{m} is not supported on string parameters (use :exact, :contains or :missing)")))),
            };
            let values = split_values(value)
                .into_iter()
                .map(|v| {
                    if mode == StringMode::Exact {
                        v
                    } else {
                        normalize_string(&v)
                    }
                })
                .collect();
            Test::String { values, mode }
        }
        ParamType::Date => {
            if let Some(m) = modifier {
                return Err(invalid(not_supported(
                    name,
                    format!("modifier :{m} is not supported on date parameters"),
                )));
            }
            Test::Date(parse_dates(name, value).map_err(invalid)?)
        }
        ParamType::Reference => {
            let type_modifier = match modifier {
                None => None,
                Some(m) => match def.targets.iter().find(|t| **t == m) {
                    Some(t) => Some(*t),
                    None => {
                        return Err(invalid(not_supported(
                            name,
                            format!(
                                "modifier :{m} is not supported here; {code} may point to {}",
                                def.targets.join(", ")
                            ),
                        )))
                    }
                },
            };
            let values = split_values(value)
                .iter()
                .map(|v| parse_reference(v, type_modifier, opts.base_url.as_deref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| invalid(bad(name, m)))?;
            Test::Reference(values)
        }
        ParamType::Quantity => {
            if let Some(m) = modifier {
                return Err(invalid(not_supported(
                    name,
                    format!("modifier :{m} is not supported on quantity parameters"),
                )));
            }
            let values = split_values(value)
                .iter()
                .map(|v| parse_quantity(v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| invalid(bad(name, m)))?;
            Test::Quantity(values)
        }
        ParamType::Uri => {
            if let Some(m) = modifier {
                return Err(invalid(not_supported(
                    name,
                    format!("modifier :{m} is not supported on uri parameters"),
                )));
            }
            Test::Uri(split_values(value))
        }
        other => {
            return Err(ParamError::Unknown(not_supported(
                name,
                format!("{} search parameters are not supported", other.code()),
            )))
        }
    };
    Ok(Condition::Param {
        code: def.code,
        test,
    })
}

fn parse_chain(
    resource_type: &str,
    name: &str,
    head: &str,
    rest: &str,
    value: &str,
    opts: &ParseOptions,
) -> Result<Condition, ParamError> {
    let (code, type_modifier) = match head.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (head, None),
    };
    let Some(def) =
        search_params::lookup(resource_type, code).filter(|d| d.param_type == ParamType::Reference)
    else {
        return Err(ParamError::Unknown(not_supported(
            name,
            format!("{resource_type} has no reference search parameter {code:?} to chain through"),
        )));
    };
    if rest.contains('.') {
        return Err(ParamError::Invalid(not_supported(
            name,
            "only one level of chaining is supported",
        )));
    }
    let candidates: Vec<&'static str> = match type_modifier {
        Some(t) => match def.targets.iter().find(|x| **x == t) {
            Some(x) => vec![*x],
            None => {
                return Err(ParamError::Invalid(bad(
                    name,
                    format!("{code} cannot point to {t}"),
                )))
            }
        },
        None => def.targets.clone(),
    };
    let inner_code = rest.split(':').next().unwrap_or(rest);
    let mut targets = Vec::new();
    for t in candidates {
        if !fhir::is_supported_type(t) {
            continue;
        }
        let known = matches!(inner_code, "_id" | "_lastUpdated")
            || search_params::lookup(t, inner_code).is_some();
        if !known {
            continue;
        }
        match parse_condition(t, rest, value, opts) {
            Ok(c) => targets.push((t, Box::new(c))),
            Err(ParamError::Invalid(i)) => return Err(ParamError::Invalid(i.at(name.to_string()))),
            Err(ParamError::Unknown(_)) => {}
        }
    }
    if targets.is_empty() {
        return Err(ParamError::Unknown(not_supported(
            name,
            format!("no type that {resource_type}.{code} points to has a search parameter {inner_code:?}"),
        )));
    }
    Ok(Condition::Chain {
        code: def.code,
        targets,
    })
}

/// Splits on unescaped commas and removes `\` escapes (`\,` `\|` `\$` `\\`).
fn split_values(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => cur.push('\\'),
            },
            ',' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.retain(|v| !v.is_empty());
    out
}

fn parse_token(v: &str) -> TokenValue {
    match v.split_once('|') {
        None => TokenValue {
            system: TokenSystem::Any,
            code: Some(v.to_string()),
        },
        Some(("", code)) => TokenValue {
            system: TokenSystem::None,
            code: Some(code.to_string()),
        },
        Some((system, "")) => TokenValue {
            system: TokenSystem::Is(system.to_string()),
            code: None,
        },
        Some((system, code)) => TokenValue {
            system: TokenSystem::Is(system.to_string()),
            code: Some(code.to_string()),
        },
    }
}

fn parse_dates(name: &str, value: &str) -> Result<Vec<DateValue>, Issue> {
    split_values(value)
        .iter()
        .map(|v| {
            let (prefix, rest) = Prefix::split(v);
            datetime::parse_search_value(rest)
                .map(|d| DateValue { prefix, range: d.range })
                .ok_or_else(|| {
                    bad(
                        name,
                        format!("{v:?} is not a date; use a prefix (eq, ne, gt, lt, ge, le, sa, eb) and YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss]+zz:zz"),
                    )
                })
        })
        .collect()
}

fn parse_reference(
    v: &str,
    type_modifier: Option<&str>,
    base: Option<&str>,
) -> Result<ReferenceValue, String> {
    let local_part = match base {
        Some(b) => v.strip_prefix(b).and_then(|r| r.strip_prefix('/')),
        None => None,
    };
    let relative = local_part.unwrap_or(v);
    let is_absolute = local_part.is_none() && (v.contains("://") || v.starts_with("urn:"));
    if is_absolute {
        return Ok(ReferenceValue::Url(v.to_string()));
    }
    let segments: Vec<&str> = relative.split('/').collect();
    let (t, id) = match segments.as_slice() {
        [id] => (type_modifier.map(str::to_string), *id),
        [t, id] | [t, id, "_history", _] => {
            if let Some(m) = type_modifier {
                if m != *t {
                    return Err(format!(
                        "{v:?} is a {t} reference but the modifier asks for {m}"
                    ));
                }
            }
            (Some(t.to_string()), *id)
        }
        _ => {
            return Err(format!(
                "{v:?} is not a reference; use Type/id, id or an absolute URL"
            ))
        }
    };
    if !fhir::types::is_valid_id(id) {
        return Err(format!("{id:?} is not a valid resource id"));
    }
    Ok(ReferenceValue::Local {
        resource_type: t,
        id: id.to_string(),
    })
}

fn parse_quantity(v: &str) -> Result<QuantityValue, String> {
    let (prefix, rest) = Prefix::split(v);
    let mut parts = rest.splitn(3, '|');
    let number = parts.next().unwrap_or("");
    let system = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    let code = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    let value: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("{v:?} is not a quantity; use [prefix]number[|system|code], e.g. gt5.4|http://unitsofmeasure.org|mg"))?;
    let decimals = number
        .split_once('.')
        .map(|(_, frac)| frac.bytes().take_while(u8::is_ascii_digit).count())
        .unwrap_or(0);
    let tolerance = 0.5 * 10f64.powi(-(decimals as i32));
    Ok(QuantityValue {
        prefix,
        value,
        tolerance,
        system,
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_values_honours_escapes() {
        assert_eq!(split_values(r"a,b\,c,,d\\"), vec!["a", "b,c", "d\\"]);
    }

    #[test]
    fn token_forms() {
        assert_eq!(parse_token("abc").system, TokenSystem::Any);
        assert_eq!(parse_token("|abc").system, TokenSystem::None);
        let t = parse_token("http://x|");
        assert_eq!(t.system, TokenSystem::Is("http://x".into()));
        assert_eq!(t.code, None);
    }

    #[test]
    fn reference_forms() {
        assert_eq!(
            parse_reference("Patient/1", None, None).unwrap(),
            ReferenceValue::Local {
                resource_type: Some("Patient".into()),
                id: "1".into()
            }
        );
        assert_eq!(
            parse_reference("http://h/fhir/Patient/1", None, Some("http://h/fhir")).unwrap(),
            ReferenceValue::Local {
                resource_type: Some("Patient".into()),
                id: "1".into()
            }
        );
        assert!(matches!(
            parse_reference("http://other/Patient/1", None, Some("http://h/fhir")).unwrap(),
            ReferenceValue::Url(_)
        ));
        assert!(parse_reference("a/b/c", None, None).is_err());
    }

    #[test]
    fn quantity_tolerance_follows_precision() {
        let q = parse_quantity("gt5.40|http://unitsofmeasure.org|mg").unwrap();
        assert_eq!(q.prefix, Prefix::Gt);
        assert!((q.tolerance - 0.005).abs() < 1e-12);
        assert_eq!(q.code.as_deref(), Some("mg"));
        assert!(parse_quantity("abc").is_err());
        assert!(parse_quantity("NaN").is_err());
    }
}
