//! The subset of FHIRPath that the R4 search-parameter expressions of the types in scope use.
//!
//! An expression is compiled once against the R4 structure definitions (`definitions/`), so every
//! step knows the FHIR type of what it reaches: `Observation.value` becomes a lookup of
//! `valueQuantity`, `valueString`, … each tagged with its type, and `Patient.telecom` is known to
//! hold ContactPoints rather than Identifiers although both have `system` and `value`.
//! Evaluation borrows from the resource and never copies JSON.
//!
//! Supported: member navigation (arrays flattened, choice elements), `|`, parentheses, `$this`,
//! string/boolean/number literals, `=`, `!=`, `and`, `or`, `xor`, `implies`, `is`/`as` (operator
//! and function), and the functions `where`, `exists`, `empty`, `not`, `first`, `ofType`,
//! `resolve` (which only tells the type of the referenced resource, enough for
//! `where(resolve() is Patient)`) and `extension(url)`. Anything else is a [`CompileError`].

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use crate::definitions::{STRUCTURE_RESOURCES, STRUCTURE_TYPES};

// ---------------------------------------------------------------------------------------------
// The element model: which elements each type has, and their types.
// ---------------------------------------------------------------------------------------------

/// A FHIR type known from the structure definitions: a resource, a data type, a primitive, or a
/// backbone element (named by its path, e.g. `Observation.component`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ty(u32);

impl fmt::Debug for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ty({})", self.name())
    }
}

/// What a value of a type looks like, as far as search indexing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Boolean,
    /// string, markdown, code, id, base64Binary, xhtml.
    String,
    /// uri, url, canonical, oid, uuid.
    Uri,
    /// date, dateTime, instant.
    DateTime,
    Time,
    /// integer, positiveInt, unsignedInt.
    Integer,
    Decimal,
    Coding,
    CodeableConcept,
    Identifier,
    ContactPoint,
    HumanName,
    Address,
    Period,
    Timing,
    /// Quantity and its specialisations: Age, Count, Distance, Duration.
    Quantity,
    Money,
    Range,
    Reference,
    SampledData,
    /// Resources, backbone elements and every other complex type.
    Other,
}

struct TypeInfo {
    name: String,
    base: Option<Ty>,
    shape: Shape,
    elements: HashMap<String, Element>,
}

struct Element {
    /// For a choice element (`value[x]`), the JSON key of each allowed type (`valueQuantity`).
    keys: Vec<(Box<str>, Ty)>,
}

struct Model {
    types: Vec<TypeInfo>,
    by_name: HashMap<String, Ty>,
}

static MODEL: LazyLock<Model> = LazyLock::new(Model::build);

impl Ty {
    /// The type called `name` (`Patient`, `HumanName`, `dateTime`, `Observation.component`).
    pub fn named(name: &str) -> Option<Ty> {
        MODEL.by_name.get(name).copied()
    }

    pub fn name(self) -> &'static str {
        MODEL.info(self).map_or("", |t| t.name.as_str())
    }

    pub fn shape(self) -> Shape {
        MODEL.info(self).map_or(Shape::Other, |t| t.shape)
    }

    /// Whether a value of this type is also a `other` (same type or a specialisation of it).
    pub fn is_a(self, other: Ty) -> bool {
        let mut cur = Some(self);
        // The chain is short (Age → Quantity → Element); the bound guards a malformed model.
        for _ in 0..16 {
            match cur {
                Some(t) if t == other => return true,
                Some(t) => cur = MODEL.info(t).and_then(|i| i.base),
                None => return false,
            }
        }
        false
    }
}

/// Whether resource type `name` is `base` or derives from it (`Patient` is a `DomainResource`;
/// `Binary` is a `Resource` but not a `DomainResource`).
pub fn type_is_a(name: &str, base: &str) -> bool {
    match (Ty::named(name), Ty::named(base)) {
        (Some(t), Some(b)) => t.is_a(b),
        _ => false,
    }
}

#[derive(Deserialize)]
struct SdBundle {
    entry: Vec<SdEntry>,
}

#[derive(Deserialize)]
struct SdEntry {
    resource: Sd,
}

#[derive(Deserialize)]
struct Sd {
    #[serde(rename = "type")]
    type_name: String,
    kind: String,
    #[serde(rename = "baseDefinition")]
    base_definition: Option<String>,
    derivation: Option<String>,
    snapshot: Option<Snapshot>,
}

#[derive(Deserialize)]
struct Snapshot {
    element: Vec<ElementDef>,
}

#[derive(Deserialize)]
struct ElementDef {
    path: String,
    #[serde(rename = "type", default)]
    types: Vec<TypeRef>,
    #[serde(rename = "contentReference")]
    content_reference: Option<String>,
}

#[derive(Deserialize)]
struct TypeRef {
    code: String,
}

/// FHIRPath system types as the structure definitions name them, mapped to FHIR primitives.
fn system_type(code: &str) -> &str {
    match code.strip_prefix("http://hl7.org/fhirpath/System.") {
        Some("String") => "string",
        Some("Boolean") => "boolean",
        Some("Date") => "date",
        Some("DateTime") => "dateTime",
        Some("Decimal") => "decimal",
        Some("Integer") => "integer",
        Some("Time") => "time",
        _ => code,
    }
}

fn own_shape(name: &str) -> Option<Shape> {
    Some(match name {
        "boolean" => Shape::Boolean,
        "string" | "markdown" | "code" | "id" | "base64Binary" | "xhtml" => Shape::String,
        "uri" | "url" | "canonical" | "oid" | "uuid" => Shape::Uri,
        "date" | "dateTime" | "instant" => Shape::DateTime,
        "time" => Shape::Time,
        "integer" | "positiveInt" | "unsignedInt" => Shape::Integer,
        "decimal" => Shape::Decimal,
        "Coding" => Shape::Coding,
        "CodeableConcept" => Shape::CodeableConcept,
        "Identifier" => Shape::Identifier,
        "ContactPoint" => Shape::ContactPoint,
        "HumanName" => Shape::HumanName,
        "Address" => Shape::Address,
        "Period" => Shape::Period,
        "Timing" => Shape::Timing,
        "Quantity" => Shape::Quantity,
        "Money" => Shape::Money,
        "Range" => Shape::Range,
        "Reference" => Shape::Reference,
        "SampledData" => Shape::SampledData,
        _ => return None,
    })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Model {
    fn info(&self, t: Ty) -> Option<&TypeInfo> {
        self.types.get(t.0 as usize)
    }

    fn element(&self, t: Ty, name: &str) -> Option<&Element> {
        self.info(t)?.elements.get(name)
    }

    fn intern(&mut self, name: &str) -> Ty {
        if let Some(t) = self.by_name.get(name) {
            return *t;
        }
        let t = Ty(self.types.len() as u32);
        self.types.push(TypeInfo {
            name: name.to_owned(),
            base: None,
            shape: Shape::Other,
            elements: HashMap::new(),
        });
        self.by_name.insert(name.to_owned(), t);
        t
    }

    fn build() -> Model {
        let mut m = Model {
            types: Vec::new(),
            by_name: HashMap::new(),
        };
        for text in [STRUCTURE_TYPES, STRUCTURE_RESOURCES] {
            // The embedded definitions are part of the build; if they could not be read the
            // model is empty and every expression fails to compile (a test catches that).
            let Ok(bundle) = serde_json::from_str::<SdBundle>(text) else {
                continue;
            };
            for sd in bundle.entry.into_iter().map(|e| e.resource) {
                if sd.derivation.as_deref() == Some("constraint") {
                    continue; // profiles such as SimpleQuantity are not types of their own
                }
                m.add_definition(sd);
            }
        }
        for i in 0..m.types.len() {
            let shape = {
                let mut cur = Some(Ty(i as u32));
                let mut found = Shape::Other;
                for _ in 0..16 {
                    let Some(info) = cur.and_then(|t| m.info(t)) else {
                        break;
                    };
                    if let Some(s) = own_shape(&info.name) {
                        found = s;
                        break;
                    }
                    cur = info.base;
                }
                found
            };
            m.types[i].shape = shape;
        }
        m
    }

    fn add_definition(&mut self, sd: Sd) {
        let t = self.intern(&sd.type_name);
        if let Some(base) = sd
            .base_definition
            .as_deref()
            .and_then(|b| b.rsplit('/').next())
        {
            let b = self.intern(base);
            self.types[t.0 as usize].base = Some(b);
        }
        if sd.kind == "primitive-type" {
            return; // `.value` of a primitive is the JSON value itself
        }
        let Some(snapshot) = sd.snapshot else {
            return;
        };
        for el in snapshot.element {
            let Some((parent, name)) = el.path.rsplit_once('.') else {
                continue;
            };
            let (name, choice) = match name.strip_suffix("[x]") {
                Some(n) => (n, true),
                None => (name, false),
            };
            let mut keys = Vec::new();
            if let Some(target) = el.content_reference.as_deref() {
                let target = target.trim_start_matches('#');
                keys.push((name.into(), self.intern(target)));
            } else {
                for tr in &el.types {
                    let code = system_type(&tr.code);
                    let ty = if code == "BackboneElement" || code == "Element" {
                        self.intern(&el.path)
                    } else {
                        self.intern(code)
                    };
                    let key: Box<str> = if choice {
                        format!("{name}{}", capitalize(code)).into()
                    } else {
                        name.into()
                    };
                    keys.push((key, ty));
                }
            }
            let p = self.intern(parent);
            self.types[p.0 as usize]
                .elements
                .insert(name.to_owned(), Element { keys });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// One item of a FHIRPath result.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// An element of the resource with its FHIR type.
    Node {
        value: &'a Value,
        ty: Ty,
    },
    Boolean(bool),
    String(&'a str),
    Number(f64),
    /// The result of `resolve()`: all that is known is the type of the referenced resource.
    Resolved(&'a str),
}

impl Item<'_> {
    fn same_as(&self, other: &Item<'_>) -> bool {
        match (self, other) {
            (Item::Node { value: a, ty: ta }, Item::Node { value: b, ty: tb }) => {
                std::ptr::eq(*a, *b) && ta == tb
            }
            _ => equals(self, other),
        }
    }
}

enum Prim<'a> {
    Bool(bool),
    Str(&'a str),
    Num(f64),
    Json(&'a Value),
    Resolved(&'a str),
}

fn prim<'a>(item: &Item<'a>) -> Prim<'a> {
    match *item {
        Item::Node { value, .. } => match value {
            Value::Bool(b) => Prim::Bool(*b),
            Value::String(s) => Prim::Str(s),
            Value::Number(n) => n.as_f64().map_or(Prim::Json(value), Prim::Num),
            _ => Prim::Json(value),
        },
        Item::Boolean(b) => Prim::Bool(b),
        Item::String(s) => Prim::Str(s),
        Item::Number(n) => Prim::Num(n),
        Item::Resolved(t) => Prim::Resolved(t),
    }
}

fn equals(a: &Item<'_>, b: &Item<'_>) -> bool {
    match (prim(a), prim(b)) {
        (Prim::Bool(x), Prim::Bool(y)) => x == y,
        (Prim::Str(x), Prim::Str(y)) => x == y,
        (Prim::Num(x), Prim::Num(y)) => x == y,
        (Prim::Json(x), Prim::Json(y)) => x == y,
        (Prim::Resolved(x), Prim::Resolved(y)) => x == y,
        _ => false,
    }
}

/// FHIRPath's singleton evaluation of a collection as a boolean: empty is unknown, one boolean
/// is itself, any other single item is true; several items are an error, treated as unknown.
fn to_bool(items: &[Item<'_>]) -> Option<bool> {
    match items {
        [Item::Boolean(b)] => Some(*b),
        [Item::Node {
            value: Value::Bool(b),
            ..
        }] => Some(*b),
        [_] => Some(true),
        _ => None,
    }
}

/// The resource type and id a reference points to, when it has the `Type/id` shape: relative
/// (`Patient/123`), absolute (`https://example.org/fhir/Patient/123`), optionally versioned
/// (`…/_history/2`) or, for canonicals, with `|version`. Local (`#p1`), conditional
/// (`Patient?identifier=…`) and `urn:` references have none.
pub fn parse_reference(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('#') || s.contains('?') || s.starts_with("urn:") {
        return None;
    }
    let s = s.split('|').next().unwrap_or(s);
    let mut segments = s.rsplit('/');
    let last = segments.next()?;
    let before = segments.next()?;
    let (ty, id) = if before == "_history" {
        let id = segments.next()?;
        (segments.next()?, id)
    } else {
        (before, last)
    };
    (crate::compartment::is_r4_resource_type(ty) && crate::types::is_valid_id(id))
        .then_some((ty, id))
}

// ---------------------------------------------------------------------------------------------
// Compiled expressions
// ---------------------------------------------------------------------------------------------

/// Why an expression could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError(pub String);

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CompileError {}

fn err<T>(msg: impl Into<String>) -> Result<T, CompileError> {
    Err(CompileError(msg.into()))
}

/// A FHIRPath expression compiled for one resource type.
#[derive(Debug)]
pub struct Expr {
    root: Ty,
    node: Node,
    types: Vec<ValueType>,
}

#[derive(Debug)]
struct Step {
    from: Ty,
    keys: &'static [(Box<str>, Ty)],
}

#[derive(Debug)]
struct TypeSpec {
    name: Box<str>,
    ty: Option<Ty>,
}

impl TypeSpec {
    fn matches(&self, item: &Item<'_>) -> bool {
        match *item {
            Item::Node { ty, .. } => self.ty.is_some_and(|s| ty.is_a(s)),
            Item::Resolved(t) => {
                &*self.name == t || matches!(&*self.name, "Resource" | "DomainResource")
            }
            Item::Boolean(_) => &*self.name == "boolean",
            Item::String(_) => &*self.name == "string",
            Item::Number(_) => matches!(&*self.name, "decimal" | "integer"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logic {
    And,
    Or,
    Xor,
    Implies,
}

#[derive(Debug)]
enum Literal {
    Boolean(bool),
    String(Box<str>),
    Number(f64),
}

#[derive(Debug)]
enum Node {
    /// The input of the expression: the resource at the top, the current item inside `where`.
    Focus,
    Literal(Literal),
    Child {
        input: Box<Node>,
        steps: Vec<Step>,
    },
    Where {
        input: Box<Node>,
        criteria: Box<Node>,
    },
    Exists(Box<Node>),
    Empty(Box<Node>),
    Not(Box<Node>),
    First(Box<Node>),
    Resolve(Box<Node>),
    /// `as` and `ofType`: keep the items of the type.
    OfType {
        input: Box<Node>,
        spec: TypeSpec,
    },
    Is {
        input: Box<Node>,
        spec: TypeSpec,
    },
    Extension {
        input: Box<Node>,
        url: Box<str>,
        ty: Ty,
    },
    Union(Vec<Node>),
    Equals {
        left: Box<Node>,
        right: Box<Node>,
        negate: bool,
    },
    Logic {
        op: Logic,
        left: Box<Node>,
        right: Box<Node>,
    },
}

impl Expr {
    /// Compiles `expression` for resources of type `resource_type`.
    pub fn compile(resource_type: &str, expression: &str) -> Result<Expr, CompileError> {
        let Some(root) = Ty::named(resource_type) else {
            return err(format!("unknown resource type {resource_type}"));
        };
        let tokens = lex(expression)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let (node, types) = p.expr(&[ValueType::Element(root)])?;
        if let Some(t) = p.peek() {
            return err(format!("unexpected {t}"));
        }
        Ok(Expr { root, node, types })
    }

    /// What the items of the result can be.
    pub fn result_types(&self) -> &[ValueType] {
        &self.types
    }

    /// Evaluates the expression with `resource` as its input.
    pub fn evaluate<'a>(&'a self, resource: &'a Value) -> Vec<Item<'a>> {
        let focus = [Item::Node {
            value: resource,
            ty: self.root,
        }];
        self.node.eval(&focus)
    }
}

fn push_flat<'a>(out: &mut Vec<Item<'a>>, v: &'a Value, ty: Ty) {
    match v {
        Value::Array(items) => out.extend(
            items
                .iter()
                .filter(|i| !i.is_null())
                .map(|value| Item::Node { value, ty }),
        ),
        Value::Null => {}
        value => out.push(Item::Node { value, ty }),
    }
}

fn boolean(b: Option<bool>) -> Vec<Item<'static>> {
    b.map(Item::Boolean).into_iter().collect()
}

impl Node {
    fn eval<'a>(&'a self, focus: &[Item<'a>]) -> Vec<Item<'a>> {
        match self {
            Node::Focus => focus.to_vec(),
            Node::Literal(l) => vec![match l {
                Literal::Boolean(b) => Item::Boolean(*b),
                Literal::String(s) => Item::String(s),
                Literal::Number(n) => Item::Number(*n),
            }],
            Node::Child { input, steps } => {
                let mut out = Vec::new();
                for item in input.eval(focus) {
                    let Item::Node { value, ty } = item else {
                        continue;
                    };
                    let Some(step) = steps.iter().find(|s| s.from == ty) else {
                        continue;
                    };
                    for (key, ty) in step.keys {
                        if let Some(v) = value.get(&**key) {
                            push_flat(&mut out, v, *ty);
                        }
                    }
                }
                out
            }
            Node::Where { input, criteria } => input
                .eval(focus)
                .into_iter()
                .filter(|item| to_bool(&criteria.eval(std::slice::from_ref(item))) == Some(true))
                .collect(),
            Node::Exists(input) => vec![Item::Boolean(!input.eval(focus).is_empty())],
            Node::Empty(input) => vec![Item::Boolean(input.eval(focus).is_empty())],
            Node::Not(input) => boolean(to_bool(&input.eval(focus)).map(|b| !b)),
            Node::First(input) => input.eval(focus).into_iter().take(1).collect(),
            Node::Resolve(input) => input
                .eval(focus)
                .into_iter()
                .filter_map(|item| match item {
                    Item::Node { value, ty } => {
                        let s = match ty.shape() {
                            Shape::Reference => value.get("reference")?.as_str()?,
                            Shape::Uri | Shape::String => value.as_str()?,
                            _ => return None,
                        };
                        parse_reference(s).map(|(t, _)| Item::Resolved(t))
                    }
                    Item::Resolved(_) => Some(item),
                    _ => None,
                })
                .collect(),
            Node::OfType { input, spec } => input
                .eval(focus)
                .into_iter()
                .filter(|i| spec.matches(i))
                .collect(),
            Node::Is { input, spec } => match input.eval(focus).as_slice() {
                [item] => vec![Item::Boolean(spec.matches(item))],
                _ => Vec::new(),
            },
            Node::Extension { input, url, ty } => {
                let mut out = Vec::new();
                for item in input.eval(focus) {
                    let Item::Node { value, .. } = item else {
                        continue;
                    };
                    let Some(Value::Array(exts)) = value.get("extension") else {
                        continue;
                    };
                    for ext in exts {
                        if ext.get("url").and_then(Value::as_str) == Some(url) {
                            out.push(Item::Node {
                                value: ext,
                                ty: *ty,
                            });
                        }
                    }
                }
                out
            }
            Node::Union(branches) => {
                let mut out: Vec<Item<'a>> = Vec::new();
                for b in branches {
                    for item in b.eval(focus) {
                        if !out.iter().any(|o| o.same_as(&item)) {
                            out.push(item);
                        }
                    }
                }
                out
            }
            Node::Equals {
                left,
                right,
                negate,
            } => {
                let l = left.eval(focus);
                let r = right.eval(focus);
                if l.is_empty() || r.is_empty() {
                    return Vec::new();
                }
                let eq = l.len() == r.len() && l.iter().zip(&r).all(|(a, b)| equals(a, b));
                vec![Item::Boolean(eq != *negate)]
            }
            Node::Logic { op, left, right } => {
                let l = to_bool(&left.eval(focus));
                // Short-circuit where the left side decides.
                match (op, l) {
                    (Logic::And, Some(false)) => return vec![Item::Boolean(false)],
                    (Logic::Or, Some(true)) => return vec![Item::Boolean(true)],
                    (Logic::Implies, Some(false)) => return vec![Item::Boolean(true)],
                    _ => {}
                }
                let r = to_bool(&right.eval(focus));
                boolean(match op {
                    Logic::And => match (l, r) {
                        (Some(true), Some(true)) => Some(true),
                        (_, Some(false)) => Some(false),
                        _ => None,
                    },
                    Logic::Or => match (l, r) {
                        (Some(false), Some(false)) => Some(false),
                        (_, Some(true)) => Some(true),
                        _ => None,
                    },
                    Logic::Xor => l.zip(r).map(|(a, b)| a != b),
                    Logic::Implies => match (l, r) {
                        (_, Some(true)) => Some(true),
                        (Some(true), r) => r,
                        _ => None,
                    },
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier; `true` when it was written `` `delimited` `` (never a keyword then).
    Ident(String, bool),
    Str(String),
    Num(f64),
    Dot,
    LParen,
    RParen,
    Comma,
    Pipe,
    Eq,
    Ne,
    This,
    /// Any operator or token outside the subset (`<`, `+`, `[`, `%resource`, …).
    Unsupported(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s, _) => write!(f, "identifier {s}"),
            Tok::Str(s) => write!(f, "string '{s}'"),
            Tok::Num(n) => write!(f, "number {n}"),
            Tok::Dot => f.write_str("'.'"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::Comma => f.write_str("','"),
            Tok::Pipe => f.write_str("'|'"),
            Tok::Eq => f.write_str("'='"),
            Tok::Ne => f.write_str("'!='"),
            Tok::This => f.write_str("$this"),
            Tok::Unsupported(s) => write!(f, "unsupported {s:?}"),
        }
    }
}

fn lex(src: &str) -> Result<Vec<Tok>, CompileError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let tok = match c {
            '.' => Tok::Dot,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '|' => Tok::Pipe,
            '=' => Tok::Eq,
            '!' if chars.get(i) == Some(&'=') => {
                i += 1;
                Tok::Ne
            }
            '\'' | '`' => {
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return err("unterminated string or identifier"),
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let e = chars.get(i + 1).copied();
                            i += 2;
                            match e {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some('f') => s.push('\u{c}'),
                                Some(e @ ('\'' | '"' | '`' | '\\' | '/')) => s.push(e),
                                _ => return err("unsupported escape in string"),
                            }
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                if c == '`' {
                    Tok::Ident(s, true)
                } else {
                    Tok::Str(s)
                }
            }
            c if c.is_ascii_digit() => {
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                match text.parse::<f64>() {
                    Ok(n) => Tok::Num(n),
                    Err(_) => return err(format!("bad number {text}")),
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' || c == '%' => {
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                match c {
                    '$' if text == "$this" => Tok::This,
                    '$' | '%' => Tok::Unsupported(text),
                    _ => Tok::Ident(text, false),
                }
            }
            other => Tok::Unsupported(other.to_string()),
        };
        toks.push(tok);
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------------
// Parser and static typing
// ---------------------------------------------------------------------------------------------

/// What an expression's items can be, known when it is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Element(Ty),
    Boolean,
    String,
    Number,
    /// The type of a referenced resource, from `resolve()`.
    Resolved,
}

type Parsed = (Node, Vec<ValueType>);

/// Nesting bound: expressions are definitions, not user input, but `compile` is public.
const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    depth: usize,
}

fn union_types(mut a: Vec<ValueType>, b: Vec<ValueType>) -> Vec<ValueType> {
    for t in b {
        if !a.contains(&t) {
            a.push(t);
        }
    }
    a
}

fn map_type_name(ns: Option<&str>, name: &str) -> String {
    match (ns, name) {
        (Some("System"), "String") => "string".into(),
        (Some("System"), "Boolean") => "boolean".into(),
        (Some("System"), "Integer") => "integer".into(),
        (Some("System"), "Decimal") => "decimal".into(),
        (Some("System"), "Date") => "date".into(),
        (Some("System"), "DateTime") => "dateTime".into(),
        (Some("System"), "Time") => "time".into(),
        _ => name.into(),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn peek_keyword(&self, words: &[&'static str]) -> Option<&'static str> {
        match self.peek() {
            Some(Tok::Ident(s, false)) => words.iter().find(|w| **w == s.as_str()).copied(),
            _ => None,
        }
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, tok: Tok) -> Result<(), CompileError> {
        match self.next() {
            Some(t) if t == tok => Ok(()),
            Some(t) => err(format!("expected {tok}, found {t}")),
            None => err(format!("expected {tok} at the end")),
        }
    }

    fn expr(&mut self, focus: &[ValueType]) -> Result<Parsed, CompileError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err("expression nested too deeply");
        }
        let r = self.logic(focus, 0);
        self.depth -= 1;
        r
    }

    /// Levels: 0 `implies`, 1 `or`/`xor`, 2 `and`; below them equality.
    fn logic(&mut self, focus: &[ValueType], level: u8) -> Result<Parsed, CompileError> {
        let words: &[&'static str] = match level {
            0 => &["implies"],
            1 => &["or", "xor"],
            2 => &["and"],
            _ => return self.equality(focus),
        };
        let (mut left, mut types) = self.logic(focus, level + 1)?;
        while let Some(word) = self.peek_keyword(words) {
            self.pos += 1;
            let (right, _) = self.logic(focus, level + 1)?;
            let op = match word {
                "implies" => Logic::Implies,
                "or" => Logic::Or,
                "xor" => Logic::Xor,
                _ => Logic::And,
            };
            left = Node::Logic {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
            types = vec![ValueType::Boolean];
        }
        Ok((left, types))
    }

    fn equality(&mut self, focus: &[ValueType]) -> Result<Parsed, CompileError> {
        let (mut left, mut types) = self.union(focus)?;
        while let Some(negate) = match self.peek() {
            Some(Tok::Eq) => Some(false),
            Some(Tok::Ne) => Some(true),
            _ => None,
        } {
            self.pos += 1;
            let (right, _) = self.union(focus)?;
            left = Node::Equals {
                left: Box::new(left),
                right: Box::new(right),
                negate,
            };
            types = vec![ValueType::Boolean];
        }
        Ok((left, types))
    }

    fn union(&mut self, focus: &[ValueType]) -> Result<Parsed, CompileError> {
        let (first, mut types) = self.type_expr(focus)?;
        let mut branches = vec![first];
        while self.peek() == Some(&Tok::Pipe) {
            self.pos += 1;
            let (b, t) = self.type_expr(focus)?;
            branches.push(b);
            types = union_types(types, t);
        }
        let node = if branches.len() == 1 {
            branches.pop().unwrap_or(Node::Focus)
        } else {
            Node::Union(branches)
        };
        Ok((node, types))
    }

    fn type_expr(&mut self, focus: &[ValueType]) -> Result<Parsed, CompileError> {
        let (mut node, mut types) = self.postfix(focus)?;
        while let Some(word) = self.peek_keyword(&["is", "as"]) {
            self.pos += 1;
            let spec = self.type_spec()?;
            (node, types) = if word == "is" {
                type_test(node, spec)
            } else {
                type_filter(node, &types, spec)?
            };
        }
        Ok((node, types))
    }

    fn type_spec(&mut self) -> Result<TypeSpec, CompileError> {
        let Some(Tok::Ident(first, _)) = self.next() else {
            return err("expected a type name");
        };
        let name = if self.peek() == Some(&Tok::Dot)
            && matches!(first.as_str(), "FHIR" | "System")
            && matches!(self.tokens.get(self.pos + 1), Some(Tok::Ident(..)))
        {
            self.pos += 1;
            let Some(Tok::Ident(second, _)) = self.next() else {
                return err("expected a type name");
            };
            map_type_name(Some(&first), &second)
        } else {
            map_type_name(None, &first)
        };
        Ok(TypeSpec {
            ty: Ty::named(&name),
            name: name.into(),
        })
    }

    fn postfix(&mut self, focus: &[ValueType]) -> Result<Parsed, CompileError> {
        let (mut node, mut types) = self.term(focus)?;
        while self.peek() == Some(&Tok::Dot) {
            self.pos += 1;
            let Some(Tok::Ident(name, _)) = self.next() else {
                return err("expected a name after '.'");
            };
            (node, types) = if self.peek() == Some(&Tok::LParen) {
                self.function(&name, node, types)?
            } else {
                child(node, &types, &name)?
            };
        }
        Ok((node, types))
    }

    fn term(&mut self, focus: &[ValueType]) -> Result<Parsed, CompileError> {
        match self.next() {
            Some(Tok::LParen) => {
                let r = self.expr(focus)?;
                self.expect(Tok::RParen)?;
                Ok(r)
            }
            Some(Tok::Str(s)) => Ok((
                Node::Literal(Literal::String(s.into())),
                vec![ValueType::String],
            )),
            Some(Tok::Num(n)) => Ok((Node::Literal(Literal::Number(n)), vec![ValueType::Number])),
            Some(Tok::This) => Ok((Node::Focus, focus.to_vec())),
            Some(Tok::Ident(name, delimited)) => {
                if !delimited && (name == "true" || name == "false") {
                    return Ok((
                        Node::Literal(Literal::Boolean(name == "true")),
                        vec![ValueType::Boolean],
                    ));
                }
                if self.peek() == Some(&Tok::LParen) {
                    return self.function(&name, Node::Focus, focus.to_vec());
                }
                let has_element = focus.iter().any(|t| match t {
                    ValueType::Element(ty) => MODEL.element(*ty, &name).is_some(),
                    _ => false,
                });
                if has_element {
                    return child(Node::Focus, focus, &name);
                }
                // A leading type name (`Patient.name`, `Resource.meta`) selects the focus when
                // it is of that type.
                let spec = TypeSpec {
                    ty: Ty::named(&name),
                    name: name.as_str().into(),
                };
                let Some(t) = spec.ty else {
                    return err(format!("unknown element or type {name}"));
                };
                let all = focus
                    .iter()
                    .all(|f| matches!(f, ValueType::Element(ty) if ty.is_a(t)));
                if all {
                    Ok((Node::Focus, focus.to_vec()))
                } else {
                    type_filter(Node::Focus, focus, spec)
                }
            }
            Some(t) => err(format!("unexpected {t}")),
            None => err("unexpected end of expression"),
        }
    }

    fn no_args(&mut self, name: &str) -> Result<(), CompileError> {
        if self.next() == Some(Tok::RParen) {
            Ok(())
        } else {
            err(format!("{name}() takes no arguments here"))
        }
    }

    /// A function call; the current token is its `(`.
    fn function(
        &mut self,
        name: &str,
        input: Node,
        types: Vec<ValueType>,
    ) -> Result<Parsed, CompileError> {
        self.pos += 1; // '('
        let input = Box::new(input);
        match name {
            "where" | "exists" => {
                if name == "exists" && self.peek() == Some(&Tok::RParen) {
                    self.pos += 1;
                    return Ok((Node::Exists(input), vec![ValueType::Boolean]));
                }
                let (criteria, _) = self.expr(&types)?;
                self.expect(Tok::RParen)?;
                let filtered = Node::Where {
                    input,
                    criteria: Box::new(criteria),
                };
                if name == "exists" {
                    Ok((Node::Exists(Box::new(filtered)), vec![ValueType::Boolean]))
                } else {
                    Ok((filtered, types))
                }
            }
            "empty" => {
                self.no_args(name)?;
                Ok((Node::Empty(input), vec![ValueType::Boolean]))
            }
            "not" => {
                self.no_args(name)?;
                Ok((Node::Not(input), vec![ValueType::Boolean]))
            }
            "first" => {
                self.no_args(name)?;
                Ok((Node::First(input), types))
            }
            "resolve" => {
                self.no_args(name)?;
                let refs = types.iter().any(|t| match t {
                    ValueType::Element(ty) => {
                        matches!(ty.shape(), Shape::Reference | Shape::Uri | Shape::String)
                    }
                    ValueType::Resolved => true,
                    _ => false,
                });
                if !refs {
                    return err("resolve() on something that is not a reference");
                }
                Ok((Node::Resolve(input), vec![ValueType::Resolved]))
            }
            "as" | "ofType" | "is" => {
                let spec = self.type_spec()?;
                self.expect(Tok::RParen)?;
                if name == "is" {
                    Ok(type_test(*input, spec))
                } else {
                    type_filter(*input, &types, spec)
                }
            }
            "extension" => {
                let Some(Tok::Str(url)) = self.next() else {
                    return err("extension() takes a url string");
                };
                self.expect(Tok::RParen)?;
                let Some(ty) = Ty::named("Extension") else {
                    return err("Extension is not defined");
                };
                Ok((
                    Node::Extension {
                        input,
                        url: url.into(),
                        ty,
                    },
                    vec![ValueType::Element(ty)],
                ))
            }
            other => err(format!("unsupported function {other}()")),
        }
    }
}

fn type_test(input: Node, spec: TypeSpec) -> Parsed {
    (
        Node::Is {
            input: Box::new(input),
            spec,
        },
        vec![ValueType::Boolean],
    )
}

fn type_filter(input: Node, types: &[ValueType], spec: TypeSpec) -> Result<Parsed, CompileError> {
    let kept: Vec<ValueType> = types
        .iter()
        .copied()
        .filter(|t| match t {
            ValueType::Element(ty) => spec.ty.is_some_and(|s| ty.is_a(s)),
            ValueType::Resolved => true,
            ValueType::Boolean => &*spec.name == "boolean",
            ValueType::String => &*spec.name == "string",
            ValueType::Number => matches!(&*spec.name, "decimal" | "integer"),
        })
        .collect();
    if kept.is_empty() {
        return err(format!("no value here can be of type {}", spec.name));
    }
    Ok((
        Node::OfType {
            input: Box::new(input),
            spec,
        },
        kept,
    ))
}

fn child(input: Node, types: &[ValueType], name: &str) -> Result<Parsed, CompileError> {
    let model: &'static Model = &MODEL;
    let mut steps = Vec::new();
    let mut out = Vec::new();
    for t in types {
        let ValueType::Element(ty) = t else {
            continue;
        };
        let Some(el) = model.element(*ty, name) else {
            continue;
        };
        for (_, k) in &el.keys {
            if !out.contains(&ValueType::Element(*k)) {
                out.push(ValueType::Element(*k));
            }
        }
        steps.push(Step {
            from: *ty,
            keys: &el.keys,
        });
    }
    if steps.is_empty() {
        let names: Vec<&str> = types
            .iter()
            .filter_map(|t| match t {
                ValueType::Element(ty) => Some(ty.name()),
                _ => None,
            })
            .collect();
        return err(format!("no element {name} on {}", names.join(", ")));
    }
    Ok((
        Node::Child {
            input: Box::new(input),
            steps,
        },
        out,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn eval(ty: &str, expr: &str, resource: &Value) -> Vec<String> {
        let e = Expr::compile(ty, expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        e.evaluate(resource)
            .iter()
            .map(|i| match i {
                Item::Node { value, ty } => format!("{}:{value}", ty.name()),
                Item::Boolean(b) => b.to_string(),
                Item::String(s) => format!("'{s}'"),
                Item::Number(n) => n.to_string(),
                Item::Resolved(t) => format!("->{t}"),
            })
            .collect()
    }

    fn compile_error(ty: &str, expr: &str) -> String {
        match Expr::compile(ty, expr) {
            Ok(_) => panic!("{expr} should not compile"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn paths_flatten_arrays_and_know_their_types() {
        let p =
            json!({"resourceType": "Patient", "name": [{"given": ["A", "B"]}, {"given": ["C"]}]});
        assert_eq!(
            eval("Patient", "Patient.name.given", &p),
            ["string:\"A\"", "string:\"B\"", "string:\"C\""]
        );
        assert_eq!(eval("Patient", "name.given.first()", &p), ["string:\"A\""]);
        assert_eq!(
            eval("Patient", "Patient.name", &p)[0],
            "HumanName:{\"given\":[\"A\",\"B\"]}"
        );
    }

    #[test]
    fn choice_elements_find_each_typed_key() {
        let o = json!({"resourceType": "Observation", "valueQuantity": {"value": 1}, "effectivePeriod": {"start": "2024"}});
        assert_eq!(
            eval("Observation", "Observation.value", &o),
            ["Quantity:{\"value\":1}"]
        );
        assert_eq!(
            eval("Observation", "Observation.effective", &o),
            ["Period:{\"start\":\"2024\"}"]
        );
        let s = json!({"resourceType": "Observation", "valueString": "x"});
        assert_eq!(
            eval("Observation", "Observation.value", &s),
            ["string:\"x\""]
        );
        assert!(eval("Observation", "(Observation.value as Quantity)", &s).is_empty());
        assert_eq!(
            eval("Observation", "Observation.value.as(string)", &s),
            ["string:\"x\""]
        );
    }

    #[test]
    fn as_and_of_type_accept_specialisations() {
        let c = json!({"resourceType": "Condition", "onsetAge": {"value": 4}});
        assert_eq!(
            eval("Condition", "Condition.onset.as(Age)", &c),
            ["Age:{\"value\":4}"]
        );
        assert_eq!(
            eval("Condition", "Condition.onset.ofType(Quantity)", &c),
            ["Age:{\"value\":4}"]
        );
        assert_eq!(
            eval("Condition", "Condition.onset is Quantity", &c),
            ["true"]
        );
        assert_eq!(
            eval("Condition", "Condition.onset.is(Period)", &c),
            ["false"]
        );
        assert!(eval("Condition", "Condition.onset.as(Range)", &c).is_empty());
        assert_eq!(
            eval("Condition", "(Condition.onset as FHIR.Age).value", &c),
            ["decimal:4"]
        );
    }

    #[test]
    fn where_compares_with_literals() {
        let p = json!({"resourceType": "Patient", "telecom": [
            {"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}, {"value": "x"}
        ]});
        assert_eq!(
            eval("Patient", "Patient.telecom.where(system='email').value", &p),
            ["string:\"a@b\""]
        );
        assert_eq!(
            eval(
                "Patient",
                "Patient.telecom.where(system != 'email').value",
                &p
            ),
            ["string:\"1\""]
        );
        assert_eq!(
            eval(
                "Patient",
                "Patient.telecom.where($this.system = 'phone' or value = 'x').value",
                &p
            ),
            ["string:\"1\"", "string:\"x\""]
        );
        assert_eq!(
            eval("Patient", "Patient.telecom.exists(system = 'phone')", &p),
            ["true"]
        );
    }

    #[test]
    fn resolve_tells_the_type_of_the_referenced_resource() {
        let a = json!({"resourceType": "Appointment", "participant": [
            {"actor": {"reference": "Patient/1"}},
            {"actor": {"reference": "http://x.org/fhir/Patient/2/_history/3"}},
            {"actor": {"reference": "Practitioner/3"}},
            {"actor": {"reference": "#contained"}},
            {"actor": {"identifier": {"value": "4"}}},
        ]});
        assert_eq!(
            eval("Appointment", "Appointment.participant.actor.resolve()", &a),
            ["->Patient", "->Patient", "->Practitioner"]
        );
        let patients = eval(
            "Appointment",
            "Appointment.participant.actor.where(resolve() is Patient)",
            &a,
        );
        assert_eq!(patients.len(), 2);
        assert!(patients[1].contains("/Patient/2/_history/3"));
    }

    #[test]
    fn logic_is_three_valued() {
        let e = "Patient.deceased.exists() and Patient.deceased != false";
        let p = |v: Value| eval("Patient", e, &v);
        assert_eq!(p(json!({"resourceType": "Patient"})), ["false"]);
        assert_eq!(p(json!({"deceasedBoolean": true})), ["true"]);
        assert_eq!(p(json!({"deceasedBoolean": false})), ["false"]);
        assert_eq!(p(json!({"deceasedDateTime": "2020"})), ["true"]);
        let empty = json!({});
        assert_eq!(eval("Patient", "active or true", &empty), ["true"]);
        assert!(eval("Patient", "active or false", &empty).is_empty());
        assert!(eval("Patient", "active and true", &empty).is_empty());
        assert_eq!(eval("Patient", "active and false", &empty), ["false"]);
        assert_eq!(eval("Patient", "false implies active", &empty), ["true"]);
        assert_eq!(eval("Patient", "true xor false", &empty), ["true"]);
        assert_eq!(eval("Patient", "active.empty()", &empty), ["true"]);
        assert_eq!(eval("Patient", "active.exists().not()", &empty), ["true"]);
        assert!(eval("Patient", "active.not()", &empty).is_empty());
    }

    #[test]
    fn extension_selects_by_url() {
        let p = json!({"resourceType": "Patient", "extension": [
            {"url": "http://a", "valueCode": "x"},
            {"url": "http://b", "valueString": "y"},
        ]});
        assert_eq!(
            eval("Patient", "Patient.extension('http://b').value", &p),
            ["string:\"y\""]
        );
        assert_eq!(
            eval(
                "Patient",
                "Patient.extension.where(url = 'http://a').value",
                &p
            ),
            ["code:\"x\""]
        );
    }

    #[test]
    fn union_keeps_each_node_once() {
        let o = json!({"resourceType": "Observation", "code": {"text": "a"}, "component": [{"code": {"text": "b"}}]});
        assert_eq!(
            eval(
                "Observation",
                "Observation.code | Observation.component.code | Observation.code",
                &o
            )
            .len(),
            2
        );
    }

    #[test]
    fn resource_root_applies_to_every_resource_type() {
        let b = json!({"resourceType": "Binary", "meta": {"tag": [{"code": "t"}]}});
        assert_eq!(eval("Binary", "Resource.meta.tag.code", &b), ["code:\"t\""]);
        assert!(type_is_a("Patient", "DomainResource"));
        assert!(type_is_a("Binary", "Resource"));
        assert!(!type_is_a("Binary", "DomainResource"));
    }

    #[test]
    fn constructs_outside_the_subset_do_not_compile() {
        for (expr, why) in [
            ("Patient.name.count() > 1", "count"),
            ("Patient.name[0]", "["),
            ("%resource.name", "%resource"),
            ("Patient.name.given + 'x'", "+"),
            ("Patient.nickname", "nickname"),
            ("Patient.name.where(given = 'a'", "expected ')'"),
            ("Patient.name.where(given = 'a)", "unterminated"),
            ("Patient.link.other.resolve().name", "no element name"),
            ("Patient.gender as Quantity", "type Quantity"),
            ("Patient.active.resolve()", "not a reference"),
            ("Patient.name in Patient.name", "unexpected identifier in"),
            ("", "end of expression"),
        ] {
            let e = compile_error("Patient", expr);
            assert!(e.contains(why), "{expr}: {e}");
        }
        assert!(compile_error("Medicine", "Medicine.code").contains("unknown resource type"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}Patient.name{}", "(".repeat(200), ")".repeat(200));
        assert!(compile_error("Patient", &deep).contains("nested too deeply"));
    }

    #[test]
    fn references_with_type_and_id() {
        for (s, want) in [
            ("Patient/123", Some(("Patient", "123"))),
            ("https://x.org/fhir/Patient/123", Some(("Patient", "123"))),
            ("Patient/123/_history/4", Some(("Patient", "123"))),
            (
                "http://x/Questionnaire/q1|2.0",
                Some(("Questionnaire", "q1")),
            ),
            ("Medication/a.b-c", Some(("Medication", "a.b-c"))),
            ("#p1", None),
            ("Patient?identifier=1", None),
            ("urn:uuid:1234", None),
            ("https://fhir.nhs.uk/Id/nhs-number", None),
            ("Patient/", None),
            ("Patient/a_b", None),
            ("Unknown/1", None),
            ("123", None),
            ("", None),
        ] {
            assert_eq!(parse_reference(s), want, "{s}");
        }
    }

    const WORDS: &[&str] = &[
        "Patient",
        ".",
        "name",
        "given",
        "(",
        ")",
        "where",
        "resolve()",
        "is",
        "as",
        "|",
        "=",
        "!=",
        "'x'",
        "and",
        "or",
        "exists()",
        "`a`",
        "$this",
        "true",
        "1.5",
        "extension('u')",
        "telecom",
        "system",
        "Observation",
        "value",
        "Quantity",
        "ofType",
        "first()",
        "link",
        "other",
        ",",
        "'",
        "\\",
    ];

    proptest! {
        #[test]
        fn compiling_arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = Expr::compile("Patient", &s);
        }

        #[test]
        fn compiling_and_evaluating_token_soup_never_panics(
            words in prop::collection::vec(prop::sample::select(WORDS), 0..16),
        ) {
            let text = words.join(" ");
            if let Ok(e) = Expr::compile("Patient", &text) {
                let p = json!({"resourceType": "Patient", "name": [{"given": ["a"]}],
                    "telecom": [{"system": "phone"}], "link": [{"other": {"reference": "Patient/1"}}]});
                let _ = e.evaluate(&p);
            }
        }
    }
}
