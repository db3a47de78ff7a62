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

/// The most decimals of a quantity search value that count towards its precision. An `f64`
/// carries 15 to 17 significant digits, so later digits cannot change which stored values
/// match; `5.000…0` with hundreds of zeros means the same as `5.000000000000000`.
pub const MAX_QUANTITY_DECIMALS: u32 = 15;

#[derive(Debug, Clone, PartialEq)]
pub struct QuantityValue {
    pub prefix: Prefix,
    pub value: f64,
    /// Decimals written in the search value, at most [`MAX_QUANTITY_DECIMALS`]: `5.4` has one
    /// and matches [5.35, 5.45).
    decimals: u32,
    pub system: Option<String>,
    pub code: Option<String>,
}

impl QuantityValue {
    /// A quantity search value with `decimals` written after the point (more than
    /// [`MAX_QUANTITY_DECIMALS`] count as that many).
    pub fn new(
        prefix: Prefix,
        value: f64,
        decimals: u32,
        system: Option<String>,
        code: Option<String>,
    ) -> Self {
        QuantityValue {
            prefix,
            value,
            decimals: decimals.min(MAX_QUANTITY_DECIMALS),
            system,
            code,
        }
    }

    /// The decimals that define the value's precision (0 to [`MAX_QUANTITY_DECIMALS`]).
    pub fn decimals(&self) -> u32 {
        self.decimals
    }

    /// Half a unit in the last decimal: `5.4` matches [5.35, 5.45), so 0.05.
    pub fn tolerance(&self) -> f64 {
        // `decimals` is at most 15, so the power is a normal, non-zero f64.
        0.5 * 10f64.powi(-(self.decimals as i32))
    }
}

/// A decimal number, `mantissa` × 10^-`scale`, as the shortest text of an `f64` spells it: the
/// exact arithmetic behind quantity precision, shared by the SQL and the brute-force checker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decimal {
    pub(crate) mantissa: i128,
    pub(crate) scale: u32,
}

impl Decimal {
    /// None for NaN, infinities and numbers of more than 30 digits (e.g. 1e300 or 1e-300).
    pub(crate) fn of(x: f64) -> Option<Decimal> {
        if !x.is_finite() {
            return None;
        }
        // `Display` of an f64 never uses an exponent.
        let text = x.to_string();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.len() + frac.len() > 30 {
            return None;
        }
        let magnitude: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Decimal {
            mantissa: if negative { -magnitude } else { magnitude },
            scale: frac.len() as u32,
        })
    }

    /// The mantissa at a scale at least as fine as this one; None if that overflows.
    pub(crate) fn at(self, scale: u32) -> Option<i128> {
        let factor = 10i128.checked_pow(scale.checked_sub(self.scale)?)?;
        self.mantissa.checked_mul(factor)
    }

    /// The smallest `f64` whose shortest decimal text is at least this number: a stored value
    /// `x`, read as the decimal it spells, is at least this number exactly when `x >=` the
    /// result. None when the numbers are too long for exact arithmetic.
    pub(crate) fn least_f64_at_or_above(self) -> Option<f64> {
        let nearest: f64 = format!("{}e-{}", self.mantissa, self.scale)
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())?;
        let spelled = Decimal::of(nearest)?;
        let scale = spelled.scale.max(self.scale);
        // Shortest texts are ordered as the doubles are, and the nearest double's neighbours
        // spell numbers on either side of this one: the answer is the nearest or the next.
        if spelled.at(scale)? >= self.at(scale)? {
            Some(nearest)
        } else {
            Some(next_up(nearest))
        }
    }
}

/// The next `f64` above a finite `x` (`f64::next_up` needs a newer Rust than the workspace's).
fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
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
    /// Most resources one `_revinclude` adds to a page; beyond it the result says it was cut
    /// short ([`crate::SearchResult::warnings`]).
    pub revinclude_limit: usize,
    /// `_elements`: top-level elements to keep.
    pub elements: Option<Vec<String>>,
    /// The parameters that were understood, in order, for `self` and paging links
    /// (`_count`, `_offset` excluded).
    pub canonical: Vec<(String, String)>,
    /// Parameters ignored under `Prefer: handling=lenient`.
    pub ignored: Vec<String>,
    /// The access policy's filters, applied in the query to the matches (and so to paging and
    /// totals), to `_include` and `_revinclude` results and inside chains: a resource a filter
    /// does not admit is neither returned nor looked into. None: every resource (the server's
    /// own searches, system work). Build it for every type of [`SearchQuery::types_touched`].
    pub access: Option<crate::access::Access>,
}

impl SearchQuery {
    /// The resource types the query may return or look into: the searched type, `_include`
    /// targets, `_revinclude` sources and chained types (sorted, without repeats). The types
    /// whose filters its [`SearchQuery::access`] needs.
    pub fn types_touched(&self) -> Vec<&str> {
        let mut types: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        types.insert(&self.resource_type);
        for inc in &self.include {
            match inc.target_type {
                Some(t) => {
                    types.insert(t);
                }
                None => {
                    if let Some(def) = search_params::lookup(inc.source_type, inc.param) {
                        types.extend(def.targets.iter().copied());
                    }
                }
            }
        }
        types.extend(self.revinclude.iter().map(|inc| inc.source_type));
        for c in &self.conditions {
            if let Condition::Chain { targets, .. } = c {
                types.extend(targets.iter().map(|(t, _)| *t));
            }
        }
        types.into_iter().collect()
    }

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
            revinclude_limit: crate::search::REVINCLUDE_LIMIT,
            elements: None,
            canonical: Vec::new(),
            ignored: Vec::new(),
            access: None,
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
    /// Most resources one `_revinclude` adds to a page.
    pub revinclude_limit: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            lenient: false,
            base_url: None,
            default_count: 50,
            max_count: 1000,
            revinclude_limit: crate::search::REVINCLUDE_LIMIT,
        }
    }
}

/// The deepest `_offset` a search or history page may start at. Counting past hundreds of
/// thousands of rows for every page costs the database more than any client needs: to go
/// further, narrow the search (e.g. by `_lastUpdated`) and page through that.
pub const MAX_OFFSET: usize = 100_000;

/// Whether `value` is a whole number written in decimal digits only.
fn is_whole_number(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// `_count`: a whole number; larger than `max_count` (however large) means `max_count`.
/// `_count=0` asks for no entries (only the total, if `_total=accurate`).
pub fn parse_count(value: &str, max_count: usize) -> Result<usize, Issue> {
    if !is_whole_number(value) {
        return Err(bad(
            "_count",
            format!("_count must be a whole number, not {value:?}"),
        ));
    }
    // Only digits: a failed parse means a number too large for usize, i.e. above the maximum.
    Ok(value
        .parse::<usize>()
        .map_or(max_count, |n| n.min(max_count)))
}

/// `_offset`: a whole number up to [`MAX_OFFSET`].
pub fn parse_offset(value: &str) -> Result<usize, Issue> {
    if !is_whole_number(value) {
        return Err(bad(
            "_offset",
            format!("_offset must be a whole number, not {value:?}"),
        ));
    }
    match value.parse::<usize>() {
        Ok(n) if n <= MAX_OFFSET => Ok(n),
        _ => Err(Issue::error(
            IssueType::TooCostly,
            format!(
                "_offset may be at most {MAX_OFFSET}, not {value}; to reach results further in, \
                 narrow the search instead, e.g. with _lastUpdated=ge… or _lastUpdated=lt… \
                 from the last resource you received, and page through that"
            ),
        )
        .at("_offset")),
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
    q.count = opts.default_count.min(opts.max_count);
    q.revinclude_limit = opts.revinclude_limit;
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
                match parse_count(value, opts.max_count) {
                    Ok(n) => q.count = n,
                    Err(i) => issues.push(i),
                }
            }
            "_offset" => {
                keep = false;
                match parse_offset(value) {
                    Ok(n) => q.offset = n,
                    Err(i) => issues.push(i),
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
            _ if is_include_with_modifier(name) => {
                keep = false;
                let issue = match name.split_once(':') {
                    Some((base, "iterate")) => iterate_not_supported(base, name),
                    Some((base, m)) => {
                        not_supported(name, format!("modifier :{m} is not supported on {base}"))
                    }
                    None => not_supported(name, "unexpected modifier"),
                };
                ignore(&mut q, &mut issues, name, issue);
            }
            "_include" | "_revinclude" if value.ends_with(":iterate") => {
                keep = false;
                ignore(&mut q, &mut issues, name, iterate_not_supported(name, name));
            }
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

/// `_include:…` or `_revinclude:…`.
fn is_include_with_modifier(name: &str) -> bool {
    matches!(name.split_once(':'), Some(("_include" | "_revinclude", _)))
}

fn iterate_not_supported(base: &str, name: &str) -> Issue {
    not_supported(
        name,
        format!(
            "{base} with iterate is not supported: this server adds only the resources that the \
             matches reference directly; to follow their references further, search for them in \
             a second request"
        ),
    )
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
    let decimals = u32::try_from(decimals).unwrap_or(u32::MAX);
    Ok(QuantityValue::new(prefix, value, decimals, system, code))
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
        assert_eq!(q.decimals(), 2);
        assert!((q.tolerance() - 0.005).abs() < 1e-12);
        assert_eq!(q.code.as_deref(), Some("mg"));
        assert!(parse_quantity("abc").is_err());
        assert!(parse_quantity("NaN").is_err());
    }

    #[test]
    fn quantity_precision_stops_at_fifteen_decimals() {
        let long = parse_quantity(&format!("5.{}", "0".repeat(400))).unwrap();
        assert_eq!(long.decimals(), MAX_QUANTITY_DECIMALS);
        assert_eq!(long.value, 5.0);
        assert!(long.tolerance() > 0.0 && long.tolerance() < 1e-15);
        let huge = parse_quantity(&format!("5.{}", "0".repeat(5_000_000))).unwrap();
        assert_eq!(huge.decimals(), MAX_QUANTITY_DECIMALS);
        assert_eq!(
            QuantityValue::new(Prefix::Eq, 1.0, u32::MAX, None, None).decimals(),
            MAX_QUANTITY_DECIMALS
        );
    }

    fn parse_strict(params: &[(&str, &str)]) -> Result<SearchQuery, Vec<Issue>> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse("Patient", &params, &ParseOptions::default())
    }

    fn parse_lenient(params: &[(&str, &str)]) -> Result<SearchQuery, Vec<Issue>> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let opts = ParseOptions {
            lenient: true,
            ..ParseOptions::default()
        };
        parse("Patient", &params, &opts)
    }

    fn only_issue(r: Result<SearchQuery, Vec<Issue>>) -> serde_json::Value {
        match r {
            Ok(q) => panic!("expected one issue, got a query {q:?}"),
            Err(issues) => {
                assert_eq!(issues.len(), 1, "{issues:?}");
                issues[0].to_json()
            }
        }
    }

    #[test]
    fn offset_beyond_the_maximum_is_too_costly_and_says_what_to_do() {
        let at_max = MAX_OFFSET.to_string();
        assert_eq!(
            parse_strict(&[("_offset", &at_max)]).unwrap().offset,
            MAX_OFFSET
        );
        let past_max = (MAX_OFFSET + 1).to_string();
        for value in [
            past_max.as_str(),
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999",
        ] {
            let issue = only_issue(parse_strict(&[("_offset", value)]));
            assert_eq!(issue["code"], "too-costly", "{value}: {issue}");
            assert_eq!(issue["expression"][0], "_offset");
            let text = issue["diagnostics"].as_str().unwrap();
            assert!(
                text.contains(&MAX_OFFSET.to_string()) && text.contains("_lastUpdated"),
                "{text}"
            );
        }
        for value in ["-1", "1.5", "ten", "+5", ""] {
            let issue = only_issue(parse_strict(&[("_offset", value)]));
            assert_eq!(issue["code"], "invalid", "{value:?}: {issue}");
        }
        assert_eq!(parse_offset("0").unwrap(), 0);
    }

    #[test]
    fn count_is_capped_however_large_and_zero_is_allowed() {
        assert_eq!(parse_strict(&[("_count", "0")]).unwrap().count, 0);
        assert_eq!(parse_strict(&[("_count", "20")]).unwrap().count, 20);
        assert_eq!(parse_strict(&[("_count", "5000")]).unwrap().count, 1000);
        assert_eq!(
            parse_strict(&[("_count", "99999999999999999999")])
                .unwrap()
                .count,
            1000
        );
        let issue = only_issue(parse_strict(&[("_count", "-3")]));
        assert_eq!(issue["code"], "invalid");
    }

    #[test]
    fn include_iterate_is_refused_strictly_and_ignored_leniently() {
        for (name, value) in [
            ("_include", "Patient:general-practitioner:iterate"),
            ("_include:iterate", "Patient:general-practitioner"),
            ("_revinclude", "Observation:subject:iterate"),
            ("_revinclude:iterate", "Observation:subject"),
        ] {
            let issue = only_issue(parse_strict(&[("family", "x"), (name, value)]));
            assert_eq!(issue["code"], "not-supported", "{name}={value}: {issue}");
            assert_eq!(issue["expression"][0], name);
            assert!(
                issue["diagnostics"]
                    .as_str()
                    .unwrap()
                    .contains("iterate is not supported"),
                "{issue}"
            );
            let q = parse_lenient(&[("family", "x"), (name, value)]).unwrap();
            assert!(q.include.is_empty() && q.revinclude.is_empty(), "{name}");
            assert_eq!(q.ignored, vec![name.to_string()]);
            assert_eq!(
                q.canonical,
                vec![("family".to_string(), "x".to_string())],
                "an ignored include stays out of the links"
            );
        }
        let issue = only_issue(parse_strict(&[(
            "_include:recurse",
            "Patient:general-practitioner",
        )]));
        assert_eq!(issue["code"], "not-supported");
        // Without iterate, includes still parse.
        let q = parse_strict(&[("_include", "Patient:general-practitioner")]).unwrap();
        assert_eq!(q.include.len(), 1);
    }
}
