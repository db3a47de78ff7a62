//! Element tables from the R4 StructureDefinition snapshots, and the codes of the ValueSets that
//! required bindings point at.
//!
//! Everything is built once, on first use, from the definitions embedded in
//! [`crate::definitions`]; afterwards lookups are hash-map reads with no allocation.
//!
//! A *structure* is anything that has child elements: a resource type (`Patient`), a data type
//! (`HumanName`, and the primitives, whose children are `id`, `extension` and `value`), or a
//! BackboneElement path (`Appointment.participant`). Profiles in the definitions
//! (`SimpleQuantity`, `MoneyQuantity`) are structures under their own names.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde_json::Value;

use crate::definitions::{STRUCTURE_RESOURCES, STRUCTURE_TYPES, VALUESETS_REQUIRED};

/// The tables, built on first use.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(Schema::build)
}

/// The R4 primitive data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    Base64Binary,
    Boolean,
    Canonical,
    Code,
    Date,
    DateTime,
    Decimal,
    Id,
    Instant,
    Integer,
    Markdown,
    Oid,
    PositiveInt,
    String,
    Time,
    UnsignedInt,
    Uri,
    Url,
    Uuid,
    Xhtml,
}

impl Primitive {
    const ALL: [Primitive; 20] = [
        Primitive::Base64Binary,
        Primitive::Boolean,
        Primitive::Canonical,
        Primitive::Code,
        Primitive::Date,
        Primitive::DateTime,
        Primitive::Decimal,
        Primitive::Id,
        Primitive::Instant,
        Primitive::Integer,
        Primitive::Markdown,
        Primitive::Oid,
        Primitive::PositiveInt,
        Primitive::String,
        Primitive::Time,
        Primitive::UnsignedInt,
        Primitive::Uri,
        Primitive::Url,
        Primitive::Uuid,
        Primitive::Xhtml,
    ];

    /// The type code as the definitions spell it (`dateTime`, `base64Binary`).
    pub fn code(self) -> &'static str {
        match self {
            Primitive::Base64Binary => "base64Binary",
            Primitive::Boolean => "boolean",
            Primitive::Canonical => "canonical",
            Primitive::Code => "code",
            Primitive::Date => "date",
            Primitive::DateTime => "dateTime",
            Primitive::Decimal => "decimal",
            Primitive::Id => "id",
            Primitive::Instant => "instant",
            Primitive::Integer => "integer",
            Primitive::Markdown => "markdown",
            Primitive::Oid => "oid",
            Primitive::PositiveInt => "positiveInt",
            Primitive::String => "string",
            Primitive::Time => "time",
            Primitive::UnsignedInt => "unsignedInt",
            Primitive::Uri => "uri",
            Primitive::Url => "url",
            Primitive::Uuid => "uuid",
            Primitive::Xhtml => "xhtml",
        }
    }

    pub fn from_code(code: &str) -> Option<Primitive> {
        Primitive::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// One child element of a structure.
#[derive(Debug, Clone)]
pub struct ElementDef {
    /// The element name without `[x]` (`value` for `Observation.value[x]`).
    pub name: String,
    pub min: u32,
    /// `None` is `*`.
    pub max: Option<u32>,
    /// The allowed type codes (`Quantity`, `string`, `BackboneElement`, `Resource`, …).
    pub types: Vec<String>,
    /// A choice element (`value[x]`): its JSON keys are the name followed by a type
    /// (`valueQuantity`, `valueString`), one per entry of `types`.
    pub choice: bool,
    /// Where this element's children are: the type name for data types, the element's own
    /// path for BackboneElements, the target of a `contentReference` (`Questionnaire.item` for
    /// `Questionnaire.item.item`). Empty for choice elements, whose children depend on the
    /// type chosen.
    pub child_path: String,
    /// The ValueSet URL (without `|version`) when the binding strength is `required`.
    pub required_valueset: Option<String>,
    pub(crate) type_refs: Vec<TypeRef>,
    json_keys: Vec<String>,
    extension_keys: Vec<String>,
    pub(crate) valueset: Option<usize>,
}

impl ElementDef {
    /// More than one value is allowed, so the JSON value is an array.
    pub fn is_repeating(&self) -> bool {
        self.max.is_none_or(|m| m > 1)
    }

    /// The JSON property names this element may appear under (one per type for choices).
    pub fn json_keys(&self) -> impl Iterator<Item = &str> {
        self.json_keys.iter().map(String::as_str)
    }

    /// The JSON key of the type at `type_index` in `types` (`valueQuantity`); the name for
    /// elements that are not choices.
    pub fn json_key(&self, type_index: usize) -> &str {
        self.json_keys.get(type_index).map_or("", String::as_str)
    }

    /// The `_`-prefixed sibling key holding the id and extensions of a primitive value.
    pub(crate) fn extension_key(&self, type_index: usize) -> &str {
        self.extension_keys
            .get(type_index)
            .map_or("", String::as_str)
    }

    /// The element (or, for a choice, one of its typed keys), or its `_` sibling, is present.
    pub(crate) fn is_present_in(&self, object: &serde_json::Map<String, Value>) -> bool {
        self.json_keys
            .iter()
            .chain(&self.extension_keys)
            .any(|k| object.contains_key(k))
    }
}

/// What a type code resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeRef {
    Primitive(Primitive),
    /// A data type or BackboneElement: the index of its structure.
    Complex(usize),
    /// A resource: a specific type, or any concrete resource (`Resource`).
    Resource(Option<usize>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StructureKind {
    Resource,
    ComplexType,
    PrimitiveType,
    Backbone,
}

#[derive(Debug)]
pub(crate) struct Structure {
    /// The type name or BackboneElement path.
    pub(crate) name: String,
    pub(crate) kind: StructureKind,
    pub(crate) is_abstract: bool,
    pub(crate) elements: Vec<ElementDef>,
    /// Elements with `min >= 1`.
    pub(crate) required: Vec<usize>,
    by_name: HashMap<String, usize>,
    /// JSON key → (element, type index).
    by_key: HashMap<String, (usize, usize)>,
}

impl Structure {
    /// The element and type index a JSON key (without a leading `_`) stands for.
    pub(crate) fn lookup(&self, key: &str) -> Option<(usize, usize)> {
        self.by_key.get(key).copied()
    }

    pub(crate) fn element_named(&self, name: &str) -> Option<&ElementDef> {
        self.by_name.get(name).map(|&i| &self.elements[i])
    }
}

/// The codes of one ValueSet, by code system.
#[derive(Debug, Clone, Default)]
pub struct ValueSetCodes {
    url: String,
    systems: Vec<SystemCodes>,
    complete: bool,
}

#[derive(Debug, Clone)]
struct SystemCodes {
    system: String,
    codes: Vec<String>,
    lookup: HashSet<String>,
}

impl ValueSetCodes {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every code of the ValueSet is enumerated here. When false, part of it draws on a code
    /// system that cannot be enumerated (MIME types, currencies, …): codes without a system,
    /// and codes of those systems, cannot be checked.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// `system` is one of the enumerated code systems of this ValueSet.
    pub fn has_system(&self, system: &str) -> bool {
        self.systems.iter().any(|s| s.system == system)
    }

    /// `(system, code)` is a member.
    pub fn contains(&self, system: &str, code: &str) -> bool {
        self.systems
            .iter()
            .any(|s| s.system == system && s.lookup.contains(code))
    }

    /// `code` is a member in some system: the check for `code`-typed elements, which carry
    /// no system.
    pub fn contains_code(&self, code: &str) -> bool {
        self.systems.iter().any(|s| s.lookup.contains(code))
    }

    /// The enumerated `(system, code)` pairs, in definition order.
    pub fn codes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.systems
            .iter()
            .flat_map(|s| s.codes.iter().map(move |c| (s.system.as_str(), c.as_str())))
    }

    /// The enumerated code systems.
    pub fn systems(&self) -> impl Iterator<Item = &str> {
        self.systems.iter().map(|s| s.system.as_str())
    }

    /// The number of enumerated codes.
    pub fn len(&self) -> usize {
        self.systems.iter().map(|s| s.codes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn add(&mut self, system: &str, codes: impl IntoIterator<Item = String>) {
        let index = match self.systems.iter().position(|s| s.system == system) {
            Some(i) => i,
            None => {
                self.systems.push(SystemCodes {
                    system: system.to_owned(),
                    codes: Vec::new(),
                    lookup: HashSet::new(),
                });
                self.systems.len() - 1
            }
        };
        let target = &mut self.systems[index];
        for code in codes {
            if target.lookup.insert(code.clone()) {
                target.codes.push(code);
            }
        }
    }

    fn remove(&mut self, system: &str, codes: Option<&HashSet<String>>) {
        match codes {
            None => self.systems.retain(|s| s.system != system),
            Some(codes) => {
                for s in self.systems.iter_mut().filter(|s| s.system == system) {
                    s.codes.retain(|c| !codes.contains(c));
                    s.lookup.retain(|c| !codes.contains(c));
                }
            }
        }
    }
}

/// The element tables and required ValueSets of FHIR R4.
#[derive(Debug)]
pub struct Schema {
    structures: Vec<Structure>,
    by_name: HashMap<String, usize>,
    valuesets: Vec<ValueSetCodes>,
    valueset_by_url: HashMap<String, usize>,
    pub(crate) element_id: usize,
    pub(crate) extension_id: usize,
    pub(crate) coding_id: usize,
    pub(crate) codeable_concept_id: usize,
}

impl Schema {
    /// The child `name` of a type or BackboneElement path (`Patient`, `Appointment.participant`).
    /// `name` is the element name without `[x]` (`value`), or one of its JSON keys
    /// (`valueQuantity`).
    pub fn element(&self, parent_path_or_type: &str, name: &str) -> Option<&ElementDef> {
        let s = self.structure_named(parent_path_or_type)?;
        s.element_named(name)
            .or_else(|| s.lookup(name).map(|(i, _)| &s.elements[i]))
    }

    /// The child elements of a type or BackboneElement path, in definition order; none when the
    /// parent is unknown.
    pub fn children(&self, parent: &str) -> impl Iterator<Item = &ElementDef> {
        self.structure_named(parent)
            .into_iter()
            .flat_map(|s| s.elements.iter())
    }

    /// The definitions hold this type or BackboneElement path.
    pub fn has_structure(&self, parent: &str) -> bool {
        self.by_name.contains_key(parent)
    }

    /// `name` is a concrete (non-abstract) resource type in the definitions.
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.resource_structure(name).is_some()
    }

    /// The codes of a required ValueSet (the URL may carry `|version`). `None` when the
    /// definitions do not hold it.
    pub fn valueset_codes(&self, url: &str) -> Option<&ValueSetCodes> {
        let url = url.split('|').next().unwrap_or(url);
        self.valueset_by_url.get(url).map(|&i| &self.valuesets[i])
    }

    pub(crate) fn structure(&self, id: usize) -> &Structure {
        &self.structures[id]
    }

    pub(crate) fn valueset(&self, id: usize) -> &ValueSetCodes {
        &self.valuesets[id]
    }

    pub(crate) fn structure_id(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The structure of a concrete resource type.
    pub(crate) fn resource_structure(&self, name: &str) -> Option<usize> {
        self.structure_id(name).filter(|&i| {
            let s = &self.structures[i];
            s.kind == StructureKind::Resource && !s.is_abstract
        })
    }

    fn structure_named(&self, name: &str) -> Option<&Structure> {
        self.structure_id(name).map(|i| &self.structures[i])
    }

    fn build() -> Schema {
        let (valuesets, valueset_by_url) = build_valuesets();
        let mut builder = Builder::default();
        for (text, file) in [
            (STRUCTURE_TYPES, "structure-types.json"),
            (STRUCTURE_RESOURCES, "structure-resources.json"),
        ] {
            for sd in bundle_resources(text, file) {
                builder.add_structure_definition(&sd);
            }
        }
        let mut structures = builder.resolve(&valueset_by_url);
        for s in &mut structures {
            s.required = (0..s.elements.len())
                .filter(|&i| s.elements[i].min > 0)
                .collect();
        }
        let by_name = builder.by_name;
        let id_of = |name: &str| {
            *by_name
                .get(name)
                .unwrap_or_else(|| panic!("the embedded R4 definitions lack {name}"))
        };
        Schema {
            element_id: id_of("Element"),
            extension_id: id_of("Extension"),
            coding_id: id_of("Coding"),
            codeable_concept_id: id_of("CodeableConcept"),
            structures,
            by_name,
            valuesets,
            valueset_by_url,
        }
    }
}

/// The `entry[].resource` objects of an embedded Bundle.
fn bundle_resources(text: &str, file: &str) -> Vec<Value> {
    let mut bundle: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("embedded definitions {file} are not valid JSON: {e}"));
    let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else {
        panic!("embedded definitions {file} are not a Bundle with entries");
    };
    entries
        .iter_mut()
        .filter_map(|e| e.get_mut("resource").map(Value::take))
        .collect()
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// An element before its types are resolved against the other structures.
struct PendingElement {
    def: ElementDef,
    /// `Some(path)` for BackboneElements and content references: the structure of the
    /// children.
    children_at: Option<String>,
}

#[derive(Default)]
struct Builder {
    structures: Vec<(String, StructureKind, bool, Vec<PendingElement>)>,
    by_name: HashMap<String, usize>,
}

impl Builder {
    fn structure(&mut self, name: &str, kind: StructureKind, is_abstract: bool) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.structures
            .push((name.to_owned(), kind, is_abstract, Vec::new()));
        self.by_name
            .insert(name.to_owned(), self.structures.len() - 1);
        self.structures.len() - 1
    }

    fn add_structure_definition(&mut self, sd: &Value) {
        let id = str_of(sd, "id").expect("every embedded StructureDefinition has an id");
        let base_type = str_of(sd, "type").unwrap_or(id);
        let kind = match str_of(sd, "kind") {
            Some("resource") => StructureKind::Resource,
            Some("primitive-type") => StructureKind::PrimitiveType,
            _ => StructureKind::ComplexType,
        };
        let is_abstract = sd.get("abstract").and_then(Value::as_bool) == Some(true);
        let elements: &[Value] = sd
            .pointer("/snapshot/element")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        // Profiles keep the base type's paths (`Quantity.value` in SimpleQuantity): file their
        // elements under the profile's own name.
        let rename = |path: &str| -> String {
            match path.strip_prefix(base_type) {
                Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("{id}{rest}"),
                _ => path.to_owned(),
            }
        };
        let paths: Vec<String> = elements
            .iter()
            .map(|e| rename(str_of(e, "path").unwrap_or("")))
            .collect();
        let parents: HashSet<&str> = paths
            .iter()
            .filter_map(|p| p.rsplit_once('.').map(|(parent, _)| parent))
            .collect();
        self.structure(id, kind, is_abstract);

        for (element, path) in elements.iter().zip(&paths) {
            let Some((parent, raw_name)) = path.rsplit_once('.') else {
                continue;
            };
            let parent_id = self.structure(parent, StructureKind::Backbone, false);
            let (name, choice) = match raw_name.strip_suffix("[x]") {
                Some(n) => (n, true),
                None => (raw_name, false),
            };
            let min = element
                .get("min")
                .and_then(Value::as_u64)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0);
            let max = match str_of(element, "max") {
                Some("*") | None => None,
                Some(m) => Some(m.parse::<u32>().unwrap_or_else(|_| {
                    panic!("embedded definition {path} has a malformed max {m:?}")
                })),
            };
            let base_path = element
                .pointer("/base/path")
                .and_then(Value::as_str)
                .unwrap_or("");
            let types: Vec<String> = element
                .get("type")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(|t| str_of(t, "code"))
                .map(|code| fhir_type_code(code, base_path, kind, base_type, raw_name).to_owned())
                .collect();
            let content_reference = str_of(element, "contentReference").map(|r| {
                rename(
                    r.trim_start_matches('#')
                        .split('#')
                        .next_back()
                        .unwrap_or(r),
                )
            });
            let children_at = if content_reference.is_some() {
                content_reference
            } else if parents.contains(path.as_str()) {
                Some(path.clone())
            } else {
                None
            };
            let child_path = match (&children_at, choice) {
                (Some(p), _) => p.clone(),
                (None, true) => String::new(),
                (None, false) => types.first().cloned().unwrap_or_default(),
            };
            let required_valueset = element
                .get("binding")
                .filter(|b| str_of(b, "strength") == Some("required"))
                .and_then(|b| str_of(b, "valueSet"))
                .map(|url| url.split('|').next().unwrap_or(url).to_owned());
            let json_keys: Vec<String> = if choice {
                types
                    .iter()
                    .map(|t| format!("{name}{}", capitalise(t)))
                    .collect()
            } else {
                vec![name.to_owned()]
            };
            let extension_keys = json_keys.iter().map(|k| format!("_{k}")).collect();
            let def = ElementDef {
                name: name.to_owned(),
                min,
                max,
                types,
                choice,
                child_path,
                required_valueset,
                type_refs: Vec::new(),
                json_keys,
                extension_keys,
                valueset: None,
            };
            self.structures[parent_id]
                .3
                .push(PendingElement { def, children_at });
        }
    }

    /// Resolves every type code to a primitive, a structure or a resource.
    fn resolve(&self, valueset_by_url: &HashMap<String, usize>) -> Vec<Structure> {
        let resolve_code = |code: &str, owner: &str| -> TypeRef {
            if let Some(p) = Primitive::from_code(code) {
                return TypeRef::Primitive(p);
            }
            let Some(&id) = self.by_name.get(code) else {
                panic!("embedded definition {owner} uses type {code}, which is not defined");
            };
            let (_, kind, is_abstract, _) = &self.structures[id];
            match kind {
                StructureKind::Resource if *is_abstract => TypeRef::Resource(None),
                StructureKind::Resource => TypeRef::Resource(Some(id)),
                _ => TypeRef::Complex(id),
            }
        };
        self.structures
            .iter()
            .map(|(name, kind, is_abstract, pending)| {
                let elements: Vec<ElementDef> = pending
                    .iter()
                    .map(|p| {
                        let mut def = p.def.clone();
                        let owner = format!("{name}.{}", def.name);
                        match &p.children_at {
                            Some(target) => {
                                let Some(&id) = self.by_name.get(target) else {
                                    panic!("embedded definition {owner} refers to {target}, which is not defined");
                                };
                                if def.types.is_empty() {
                                    def.types.push("BackboneElement".to_owned());
                                }
                                def.type_refs = vec![TypeRef::Complex(id)];
                            }
                            None => {
                                def.type_refs =
                                    def.types.iter().map(|t| resolve_code(t, &owner)).collect();
                            }
                        }
                        def.valueset = def
                            .required_valueset
                            .as_deref()
                            .and_then(|url| valueset_by_url.get(url).copied());
                        def
                    })
                    .collect();
                let mut by_name = HashMap::new();
                let mut by_key = HashMap::new();
                for (i, e) in elements.iter().enumerate() {
                    by_name.insert(e.name.clone(), i);
                    for (t, key) in e.json_keys.iter().enumerate() {
                        by_key.insert(key.clone(), (i, t));
                    }
                }
                Structure {
                    name: name.clone(),
                    kind: *kind,
                    is_abstract: *is_abstract,
                    elements,
                    required: Vec::new(),
                    by_name,
                    by_key,
                }
            })
            .collect()
    }
}

/// The FHIR type of an element whose definition gives a FHIRPath system type (the trimmed
/// definitions drop the `structuredefinition-fhir-type` extension that says which).
fn fhir_type_code<'a>(
    code: &'a str,
    base_path: &str,
    kind: StructureKind,
    base_type: &'a str,
    raw_name: &str,
) -> &'a str {
    let Some(system) = code.strip_prefix("http://hl7.org/fhirpath/System.") else {
        return code;
    };
    if kind == StructureKind::PrimitiveType && raw_name == "value" {
        return base_type;
    }
    match (base_path, system) {
        ("Resource.id", _) => "id",
        ("Extension.url", _) => "uri",
        (_, "Boolean") => "boolean",
        (_, "Integer") => "integer",
        (_, "Decimal") => "decimal",
        (_, "Date") => "date",
        (_, "DateTime") => "dateTime",
        (_, "Time") => "time",
        _ => "string",
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn build_valuesets() -> (Vec<ValueSetCodes>, HashMap<String, usize>) {
    let mut code_systems: HashMap<String, Vec<String>> = HashMap::new();
    let mut composes: HashMap<String, Value> = HashMap::new();
    for resource in bundle_resources(VALUESETS_REQUIRED, "valuesets-required.json") {
        let Some(url) = str_of(&resource, "url").map(str::to_owned) else {
            continue;
        };
        match str_of(&resource, "resourceType") {
            Some("CodeSystem") => {
                let mut codes = Vec::new();
                collect_concepts(resource.get("concept"), &mut codes);
                code_systems.insert(url, codes);
            }
            Some("ValueSet") => {
                composes.insert(url, resource.get("compose").cloned().unwrap_or(Value::Null));
            }
            _ => {}
        }
    }
    let mut urls: Vec<&String> = composes.keys().collect();
    urls.sort();
    let mut valuesets = Vec::with_capacity(urls.len());
    let mut by_url = HashMap::with_capacity(urls.len());
    for url in urls {
        let mut visiting = Vec::new();
        let codes = expand(url, &composes, &code_systems, &mut visiting);
        by_url.insert(url.clone(), valuesets.len());
        valuesets.push(codes);
    }
    (valuesets, by_url)
}

/// The codes of a CodeSystem's concepts, nested ones included.
fn collect_concepts(concepts: Option<&Value>, into: &mut Vec<String>) {
    for concept in concepts.and_then(Value::as_array).into_iter().flatten() {
        if let Some(code) = str_of(concept, "code") {
            into.push(code.to_owned());
        }
        collect_concepts(concept.get("concept"), into);
    }
}

fn expand(
    url: &str,
    composes: &HashMap<String, Value>,
    code_systems: &HashMap<String, Vec<String>>,
    visiting: &mut Vec<String>,
) -> ValueSetCodes {
    let mut result = ValueSetCodes {
        url: url.to_owned(),
        systems: Vec::new(),
        complete: true,
    };
    let Some(compose) = composes.get(url) else {
        result.complete = false;
        return result;
    };
    if visiting.iter().any(|v| v == url) {
        return result;
    }
    visiting.push(url.to_owned());
    let includes = compose.get("include").and_then(Value::as_array);
    for include in includes.into_iter().flatten() {
        let system = str_of(include, "system");
        let concepts = include.get("concept").and_then(Value::as_array);
        let valuesets = include.get("valueSet").and_then(Value::as_array);
        match (system, concepts, valuesets) {
            _ if include.get("filter").is_some() => result.complete = false,
            (Some(system), Some(concepts), None) => result.add(
                system,
                concepts
                    .iter()
                    .filter_map(|c| str_of(c, "code"))
                    .map(str::to_owned),
            ),
            (Some(system), None, None) => match code_systems.get(system) {
                Some(codes) => result.add(system, codes.iter().cloned()),
                None => result.complete = false,
            },
            (None, None, Some(valuesets)) => {
                for vs in valuesets.iter().filter_map(Value::as_str) {
                    let vs = vs.split('|').next().unwrap_or(vs);
                    let included = expand(vs, composes, code_systems, visiting);
                    result.complete &= included.complete;
                    for s in included.systems {
                        result.add(&s.system, s.codes);
                    }
                }
            }
            _ => result.complete = false,
        }
    }
    let excludes = compose.get("exclude").and_then(Value::as_array);
    for exclude in excludes.into_iter().flatten() {
        let Some(system) = str_of(exclude, "system") else {
            continue;
        };
        let codes: Option<HashSet<String>> =
            exclude.get("concept").and_then(Value::as_array).map(|cs| {
                cs.iter()
                    .filter_map(|c| str_of(c, "code"))
                    .map(str::to_owned)
                    .collect()
            });
        result.remove(system, codes.as_ref());
    }
    visiting.pop();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RESOURCE_TYPES;

    #[test]
    fn every_served_resource_type_has_a_schema_entry() {
        let s = schema();
        for t in RESOURCE_TYPES {
            assert!(s.is_resource_type(t), "{t} has no structure");
            assert!(s.element(t, "id").is_some(), "{t} lacks id");
        }
    }

    #[test]
    fn backbone_elements_have_their_own_path() {
        let participant = schema().element("Appointment", "participant").unwrap();
        assert_eq!(participant.child_path, "Appointment.participant");
        assert_eq!(participant.min, 1);
        assert_eq!(participant.max, None);
        let status = schema()
            .element("Appointment.participant", "status")
            .unwrap();
        assert_eq!(status.min, 1);
        assert_eq!(status.max, Some(1));
        assert_eq!(status.types, ["code"]);
        assert_eq!(
            status.required_valueset.as_deref(),
            Some("http://hl7.org/fhir/ValueSet/participationstatus")
        );
    }

    #[test]
    fn content_references_point_at_their_target() {
        let item = schema().element("Questionnaire.item", "item").unwrap();
        assert_eq!(item.child_path, "Questionnaire.item");
        assert!(schema().element("Questionnaire.item", "linkId").is_some());
        let answer_item = schema()
            .element("QuestionnaireResponse.item.answer", "item")
            .unwrap();
        assert_eq!(answer_item.child_path, "QuestionnaireResponse.item");
    }

    #[test]
    fn choice_elements_list_one_json_key_per_type() {
        let value = schema().element("Observation", "value").unwrap();
        assert!(value.choice);
        assert!(value.types.iter().any(|t| t == "Quantity"));
        assert!(value.json_keys().any(|k| k == "valueQuantity"));
        assert!(value.json_keys().any(|k| k == "valueDateTime"));
        assert!(value.child_path.is_empty());
        let same = schema().element("Observation", "valueQuantity").unwrap();
        assert_eq!(same.name, "value");
    }

    #[test]
    fn fhirpath_system_types_map_to_fhir_primitives() {
        assert_eq!(schema().element("Patient", "id").unwrap().types, ["id"]);
        assert_eq!(
            schema().element("Patient.contact", "id").unwrap().types,
            ["string"]
        );
        assert_eq!(schema().element("Extension", "url").unwrap().types, ["uri"]);
        assert_eq!(
            schema().element("dateTime", "value").unwrap().types,
            ["dateTime"]
        );
    }

    #[test]
    fn data_types_and_profiles_have_children() {
        let names: Vec<&str> = schema()
            .children("HumanName")
            .map(|e| e.name.as_str())
            .collect();
        assert!(names.contains(&"given"));
        assert_eq!(
            schema().element("Patient", "name").unwrap().child_path,
            "HumanName"
        );
        assert!(schema().element("SimpleQuantity", "value").is_some());
        assert_eq!(schema().children("NoSuchType").count(), 0);
    }

    #[test]
    fn required_valuesets_expand_codes_from_code_systems() {
        let gender = schema()
            .valueset_codes("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1")
            .unwrap();
        assert!(gender.is_complete());
        assert!(gender.contains("http://hl7.org/fhir/administrative-gender", "female"));
        assert!(gender.contains_code("unknown"));
        assert!(!gender.contains_code("F"));
        assert_eq!(gender.len(), 4);
    }

    #[test]
    fn nested_concepts_are_members() {
        let status = schema()
            .valueset_codes("http://hl7.org/fhir/ValueSet/observation-status")
            .unwrap();
        // `corrected` is nested under `amended` in the code system.
        assert!(status.contains_code("corrected"));
        assert!(status.contains_code("amended"));
    }

    #[test]
    fn valuesets_of_several_code_systems_hold_them_all() {
        let all = schema()
            .valueset_codes("http://hl7.org/fhir/ValueSet/all-types")
            .unwrap();
        assert!(all.contains_code("Patient"));
        assert!(all.contains_code("dateTime"));
        assert!(all.contains_code("DomainResource"));
        assert_eq!(all.systems().count(), 3);
    }

    #[test]
    fn unenumerable_code_systems_are_not_complete() {
        let mime = schema()
            .valueset_codes("http://hl7.org/fhir/ValueSet/mimetypes")
            .unwrap();
        assert!(!mime.is_complete());
        assert!(mime.is_empty());
    }

    #[test]
    fn every_required_binding_resolves_to_a_valueset() {
        let s = schema();
        for st in &s.structures {
            for e in &st.elements {
                if let Some(url) = &e.required_valueset {
                    assert!(e.valueset.is_some(), "{}.{} → {url}", st.name, e.name);
                }
            }
        }
    }
}
