//! Validation of incoming resources against the R4 structure definitions.
//!
//! What is checked: the resource type; element names (choice types only with their allowed
//! type suffixes, `_name` siblings of primitives); cardinality and the array/single shape it
//! implies; the JSON type and lexical form of every primitive; data types and BackboneElements
//! recursively, contained resources as resources; codes against required bindings whose
//! ValueSet can be enumerated; and that an extension has a value or nested extensions, not both
//! (ext-1). Other FHIRPath invariants are not evaluated.
//!
//! Every problem is reported, each with the path of the element at fault, e.g.
//! `Appointment.participant[0].status` or `Observation.valueQuantity.value`. The path is kept as a
//! stack of borrowed segments and only formatted when an issue is reported.

use serde_json::{Map, Value};

use crate::datetime::{is_time, parse_date, parse_datetime, parse_instant};
use crate::outcome::{Issue, IssueType};
use crate::schema::{schema, ElementDef, Primitive, Schema, StructureKind, TypeRef};
use crate::types::{is_supported_type, is_valid_id, RESOURCE_TYPES};

/// How many objects deep a resource may nest (serde_json's parser stops at 128 levels anyway).
const MAX_DEPTH: usize = 100;
/// FHIR strings SHALL NOT exceed 1 MB.
const MAX_STRING_BYTES: usize = 1024 * 1024;
/// Allowed codes are listed in the message when there are at most this many.
const MAX_CODES_LISTED: usize = 20;

/// Checks a resource; every problem found is returned with the FHIRPath of the element at fault.
pub fn validate(resource: &serde_json::Value) -> Result<(), Vec<Issue>> {
    let mut validator = Validator {
        schema: schema(),
        path: Vec::with_capacity(16),
        issues: Vec::new(),
        depth: 0,
    };
    validator.top_level(resource);
    if validator.issues.is_empty() {
        Ok(())
    } else {
        Err(validator.issues)
    }
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Name(&'a str),
    Index(usize),
}

struct Validator<'a> {
    schema: &'static Schema,
    path: Vec<Segment<'a>>,
    issues: Vec<Issue>,
    depth: usize,
}

impl<'a> Validator<'a> {
    fn path_string(&self) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Name(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    /// Reports an issue at the current path.
    fn report(&mut self, code: IssueType, message: String) {
        let issue = Issue::error(code, message);
        let path = self.path_string();
        self.issues.push(if path.is_empty() {
            issue
        } else {
            issue.at(path)
        });
    }

    /// Reports an issue at a child of the current path.
    fn report_at(&mut self, segment: Segment<'a>, code: IssueType, message: String) {
        self.path.push(segment);
        self.report(code, message);
        self.path.pop();
    }

    fn top_level(&mut self, value: &'a Value) {
        let Some(object) = value.as_object() else {
            self.issues.push(Issue::error(
                IssueType::Structure,
                format!(
                    "A FHIR resource must be a JSON object with a \"resourceType\", not {}",
                    json_kind(value)
                ),
            ));
            return;
        };
        let resource_type = match object.get("resourceType") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                self.issues.push(
                    Issue::error(
                        IssueType::Structure,
                        format!(
                            "resourceType must be a string naming the resource type (e.g. \"Patient\"), not {}",
                            json_kind(other)
                        ),
                    )
                    .at("resourceType"),
                );
                return;
            }
            None => {
                self.issues.push(
                    Issue::error(
                        IssueType::Required,
                        "The resource has no \"resourceType\": add one naming its type, e.g. \"resourceType\": \"Patient\"",
                    )
                    .at("resourceType"),
                );
                return;
            }
        };
        let structure = self
            .schema
            .resource_structure(resource_type)
            .filter(|_| is_supported_type(resource_type));
        let Some(structure) = structure else {
            let what = if self.schema.is_resource_type(resource_type) {
                format!("Portico does not accept {resource_type} resources")
            } else {
                format!(
                    "\"{}\" is not a FHIR R4 resource type",
                    truncate(resource_type)
                )
            };
            self.issues.push(
                Issue::error(
                    IssueType::NotSupported,
                    format!(
                        "{what}; the supported types are {}",
                        RESOURCE_TYPES.join(", ")
                    ),
                )
                .at("resourceType"),
            );
            return;
        };
        self.path.push(Segment::Name(resource_type));
        self.check_object(object, structure);
        self.path.pop();
    }

    /// A resource inside another (`contained`, `Bundle.entry.resource`).
    fn check_resource(&mut self, object: &'a Map<String, Value>, expected: Option<usize>) {
        let resource_type = match object.get("resourceType") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                let message = format!(
                    "resourceType must be a string naming the resource type, not {}",
                    json_kind(other)
                );
                self.report_at(Segment::Name("resourceType"), IssueType::Structure, message);
                return;
            }
            None => {
                self.report(
                    IssueType::Required,
                    "This resource has no \"resourceType\": add one naming its type, e.g. \"resourceType\": \"Practitioner\"".to_owned(),
                );
                return;
            }
        };
        let Some(structure) = self.schema.resource_structure(resource_type) else {
            let message = format!(
                "Resource type \"{}\" is not supported here: use an R4 resource type such as {}",
                truncate(resource_type),
                RESOURCE_TYPES.join(", ")
            );
            self.report(IssueType::NotSupported, message);
            return;
        };
        if let Some(expected) = expected.filter(|&e| e != structure) {
            let message = format!(
                "This must be a {} resource, not {resource_type}",
                self.schema.structure(expected).name
            );
            self.report(IssueType::Structure, message);
            return;
        }
        self.check_object(object, structure);
    }

    /// The children of a resource, data type or BackboneElement.
    fn check_object(&mut self, object: &'a Map<String, Value>, structure_id: usize) {
        if self.depth >= MAX_DEPTH {
            self.report(
                IssueType::Structure,
                format!("The resource nests more than {MAX_DEPTH} levels deep here"),
            );
            return;
        }
        self.depth += 1;
        let schema = self.schema;
        let structure = schema.structure(structure_id);
        let is_resource = structure.kind == StructureKind::Resource;
        if object.is_empty() {
            self.report(
                IssueType::Structure,
                "An element must not be an empty object {}: give it content or leave it out"
                    .to_owned(),
            );
        }
        // Choice elements seen, to catch two types of the same `value[x]`.
        let mut choices: Vec<(usize, &'a str)> = Vec::new();
        for (key, value) in object {
            if is_resource && key == "resourceType" {
                continue;
            }
            let (is_extension, base) = match key.strip_prefix('_') {
                Some(base) => (true, base),
                None => (false, key.as_str()),
            };
            let Some((index, type_index)) = structure.lookup(base) else {
                self.unknown_element(structure_id, key);
                continue;
            };
            let element = &structure.elements[index];
            if element.choice {
                match choices.iter().find(|(i, _)| *i == index) {
                    Some(&(_, first)) if first != base => {
                        let message = format!(
                            "{}[x] can have only one type, but both {first} and {base} are present: keep one",
                            element.name
                        );
                        self.report_at(Segment::Name(base), IssueType::Structure, message);
                    }
                    Some(_) => {}
                    None => choices.push((index, base)),
                }
            }
            if is_extension {
                self.check_primitive_extension(object, element, type_index, base, value);
            } else {
                self.check_element(object, element, type_index, key, value);
            }
        }
        for &index in &structure.required {
            let element = &structure.elements[index];
            if !element.is_present_in(object) {
                let message = if element.choice {
                    format!(
                        "{}[x] is required (at least {}) but missing: add one of {}",
                        element.name,
                        element.min,
                        element.json_keys().collect::<Vec<_>>().join(", ")
                    )
                } else {
                    format!(
                        "{} is required (at least {}) but missing: add it",
                        element.name, element.min
                    )
                };
                self.report_at(Segment::Name(&element.name), IssueType::Required, message);
            }
        }
        if structure_id == schema.extension_id {
            self.check_extension_content(object, structure_id);
        }
        self.depth -= 1;
    }

    /// ext-1: an extension has a value or nested extensions, not both.
    fn check_extension_content(&mut self, object: &Map<String, Value>, structure_id: usize) {
        let structure = self.schema.structure(structure_id);
        let has_value = structure
            .element_named("value")
            .is_some_and(|e| e.is_present_in(object));
        let has_extensions = object.contains_key("extension");
        if has_value && has_extensions {
            self.report(
                IssueType::Invariant,
                "An extension must have either a value[x] or nested extensions, not both (ext-1): move the value into a nested extension or drop the nested ones".to_owned(),
            );
        } else if !has_value && !has_extensions {
            self.report(
                IssueType::Invariant,
                "An extension must have a value[x] or nested extensions (ext-1): add one"
                    .to_owned(),
            );
        }
    }

    fn unknown_element(&mut self, structure_id: usize, key: &'a str) {
        let structure = self.schema.structure(structure_id);
        let base = key.strip_prefix('_').unwrap_or(key);
        let choice = structure.elements.iter().find(|e| {
            e.choice
                && base
                    .strip_prefix(e.name.as_str())
                    .and_then(|rest| rest.chars().next())
                    .is_some_and(|c| c.is_ascii_uppercase())
        });
        let message = if let Some(choice) = choice {
            format!(
                "{key} is not an allowed type for {}.{}[x]: use one of {}",
                structure.name,
                choice.name,
                choice.json_keys().collect::<Vec<_>>().join(", ")
            )
        } else if let Some(similar) = structure
            .elements
            .iter()
            .flat_map(ElementDef::json_keys)
            .find(|k| k.eq_ignore_ascii_case(base))
        {
            format!(
                "Unknown element \"{}\" in {}: element names are case-sensitive; did you mean \"{similar}\"?",
                truncate(key),
                structure.name
            )
        } else {
            format!(
                "Unknown element \"{}\": FHIR R4 defines no such element in {}; remove it, correct its name, or carry the data in an extension",
                truncate(key),
                structure.name
            )
        };
        self.report_at(Segment::Name(key), IssueType::Structure, message);
    }

    fn check_element(
        &mut self,
        object: &'a Map<String, Value>,
        element: &'static ElementDef,
        type_index: usize,
        key: &'a str,
        value: &'a Value,
    ) {
        self.path.push(Segment::Name(key));
        let type_ref = element.type_refs.get(type_index).copied();
        if element.max == Some(0) {
            self.report(
                IssueType::Structure,
                format!("{key} is not allowed here: remove it"),
            );
        } else if element.is_repeating() {
            match value {
                Value::Array(items) => {
                    self.check_items(object, element, type_index, key, items, type_ref)
                }
                Value::Null => self.report(
                    IssueType::Structure,
                    format!("{key} is null: leave the element out instead"),
                ),
                _ => self.report(
                    IssueType::Structure,
                    format!("{key} can repeat, so its value must be a JSON array, even for a single item: wrap it in [ ]"),
                ),
            }
        } else {
            match value {
                Value::Array(_) => self.report(
                    IssueType::Structure,
                    format!("{key} has at most one value, so it must not be a JSON array: give the single value"),
                ),
                Value::Null => self.report(
                    IssueType::Structure,
                    format!("{key} is null: leave the element out instead"),
                ),
                _ => {
                    if let Some(type_ref) = type_ref {
                        self.check_value(value, element, type_ref);
                    }
                }
            }
        }
        self.path.pop();
    }

    fn check_items(
        &mut self,
        object: &'a Map<String, Value>,
        element: &'static ElementDef,
        type_index: usize,
        key: &'a str,
        items: &'a [Value],
        type_ref: Option<TypeRef>,
    ) {
        if items.is_empty() {
            self.report(
                IssueType::Structure,
                format!("{key} is an empty array: leave the element out instead"),
            );
        }
        if let Some(max) = element.max.filter(|&m| items.len() > m as usize) {
            let message = format!(
                "{key} has {} values but at most {max} are allowed",
                items.len()
            );
            self.report(IssueType::Structure, message);
        }
        // A null in an array of primitives stands for a value that only has extensions.
        let extensions = match type_ref {
            Some(TypeRef::Primitive(_)) => object
                .get(element.extension_key(type_index))
                .and_then(Value::as_array),
            _ => None,
        };
        for (i, item) in items.iter().enumerate() {
            self.path.push(Segment::Index(i));
            if item.is_null() {
                let has_extension = extensions
                    .and_then(|e| e.get(i))
                    .is_some_and(|e| !e.is_null());
                if !has_extension {
                    let message = if extensions.is_some()
                        || matches!(type_ref, Some(TypeRef::Primitive(_)))
                    {
                        format!("{key} contains a null: remove it (null is only allowed where _{key} gives the entry an id or extensions)")
                    } else {
                        format!("{key} contains a null: remove it")
                    };
                    self.report(IssueType::Structure, message);
                }
            } else if let Some(type_ref) = type_ref {
                self.check_value(item, element, type_ref);
            }
            self.path.pop();
        }
    }

    /// `_name`: the id and extensions of a primitive value (or of each value of an array).
    fn check_primitive_extension(
        &mut self,
        object: &'a Map<String, Value>,
        element: &'static ElementDef,
        type_index: usize,
        base: &'a str,
        value: &'a Value,
    ) {
        self.path.push(Segment::Name(base));
        let element_id = self.schema.element_id;
        if !matches!(
            element.type_refs.get(type_index),
            Some(TypeRef::Primitive(_))
        ) {
            self.report(
                IssueType::Structure,
                format!("_{base} is not allowed: only primitive values have a \"_\" sibling; put extensions in {base}.extension"),
            );
        } else if element.is_repeating() {
            match value {
                Value::Array(items) => {
                    if items.is_empty() {
                        self.report(
                            IssueType::Structure,
                            format!("_{base} is an empty array: leave it out instead"),
                        );
                    }
                    let values = object.get(base).and_then(Value::as_array);
                    if let Some(values) = values.filter(|v| v.len() != items.len()) {
                        let message = format!(
                            "_{base} has {} entries but {base} has {}: they must line up, with null for entries without an id or extensions",
                            items.len(),
                            values.len()
                        );
                        self.report(IssueType::Structure, message);
                    }
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(Segment::Index(i));
                        match item {
                            Value::Null => {}
                            Value::Object(o) => self.check_object(o, element_id),
                            other => {
                                let message = format!("_{base} entries must be objects with id and/or extension, or null, not {}", json_kind(other));
                                self.report(IssueType::Structure, message);
                            }
                        }
                        self.path.pop();
                    }
                }
                other => {
                    let message = format!(
                        "_{base} must be an array lined up with {base} (null for entries without extensions), not {}",
                        json_kind(other)
                    );
                    self.report(IssueType::Structure, message);
                }
            }
        } else {
            match value {
                Value::Object(o) => self.check_object(o, element_id),
                other => {
                    let message = format!(
                        "_{base} must be an object with id and/or extension, not {}",
                        json_kind(other)
                    );
                    self.report(IssueType::Structure, message);
                }
            }
        }
        self.path.pop();
    }

    /// One value (not null, not an array) of an element.
    fn check_value(&mut self, value: &'a Value, element: &'static ElementDef, type_ref: TypeRef) {
        match type_ref {
            TypeRef::Primitive(primitive) => {
                if self.check_primitive(value, primitive) && primitive == Primitive::Code {
                    if let (Some(code), Some(vs)) = (value.as_str(), element.valueset) {
                        self.check_code_binding(code, vs);
                    }
                }
            }
            TypeRef::Complex(structure) => match value.as_object() {
                Some(object) => {
                    self.check_object(object, structure);
                    if let Some(vs) = element.valueset {
                        if structure == self.schema.codeable_concept_id {
                            self.check_codeable_concept_binding(object, vs);
                        } else if structure == self.schema.coding_id {
                            self.check_coding_binding(object, vs);
                        }
                    }
                }
                None => {
                    let type_name = &self.schema.structure(structure).name;
                    let message = format!(
                        "This must be a JSON object (FHIR type {type_name}), not {}",
                        json_kind(value)
                    );
                    self.report(IssueType::Structure, message);
                }
            },
            TypeRef::Resource(expected) => match value.as_object() {
                Some(object) => self.check_resource(object, expected),
                None => {
                    let message = format!(
                        "This must be a resource (a JSON object with \"resourceType\"), not {}",
                        json_kind(value)
                    );
                    self.report(IssueType::Structure, message);
                }
            },
        }
    }

    /// The JSON type and lexical form of a primitive; true when valid.
    fn check_primitive(&mut self, value: &Value, primitive: Primitive) -> bool {
        let problem: Option<String> = match primitive {
            Primitive::Boolean => (!value.is_boolean()).then(|| {
                format!(
                    "This must be a JSON boolean, true or false (without quotes), not {}",
                    json_kind(value)
                )
            }),
            Primitive::Integer | Primitive::PositiveInt | Primitive::UnsignedInt => {
                check_integer(value, primitive)
            }
            Primitive::Decimal => (!value.is_number()).then(|| {
                format!(
                    "This must be a JSON number (a decimal, without quotes), not {}",
                    json_kind(value)
                )
            }),
            _ => match value.as_str() {
                Some(s) => check_string(s, primitive),
                None => Some(format!(
                    "This must be a JSON string (FHIR type {}), not {}",
                    primitive.code(),
                    json_kind(value)
                )),
            },
        };
        match problem {
            Some(message) => {
                self.report(IssueType::Value, message);
                false
            }
            None => true,
        }
    }

    fn check_code_binding(&mut self, code: &str, valueset: usize) {
        let vs = self.schema.valueset(valueset);
        if vs.is_complete() && !vs.contains_code(code) {
            let message = format!(
                "\"{}\" is not a valid code here: {}",
                truncate(code),
                allowed_codes(vs)
            );
            self.report(IssueType::Value, message);
        }
    }

    /// A required binding on a CodeableConcept: codings in the ValueSet's systems must have a
    /// member code, and when there are codings, one must be from the ValueSet.
    fn check_codeable_concept_binding(&mut self, object: &'a Map<String, Value>, valueset: usize) {
        let Some(codings) = object.get("coding").and_then(Value::as_array) else {
            return;
        };
        let vs = self.schema.valueset(valueset);
        let mut any_from_valueset = false;
        self.path.push(Segment::Name("coding"));
        for (i, coding) in codings.iter().enumerate() {
            let Some(coding) = coding.as_object() else {
                continue;
            };
            self.path.push(Segment::Index(i));
            any_from_valueset |= self.check_coding_code(coding, valueset);
            self.path.pop();
        }
        self.path.pop();
        if !any_from_valueset && vs.is_complete() && !codings.is_empty() {
            let message = format!(
                "None of the codings is from the required ValueSet: add a coding with {}",
                allowed_codes(vs)
            );
            self.report(IssueType::Value, message);
        }
    }

    fn check_coding_binding(&mut self, coding: &'a Map<String, Value>, valueset: usize) {
        let vs = self.schema.valueset(valueset);
        if !self.check_coding_code(coding, valueset) && vs.is_complete() {
            let message = format!(
                "This coding is not from the required ValueSet: use {}",
                allowed_codes(vs)
            );
            self.report(IssueType::Value, message);
        }
    }

    /// Checks the code of a coding whose system the ValueSet enumerates; true when the coding
    /// is in one of those systems.
    fn check_coding_code(&mut self, coding: &'a Map<String, Value>, valueset: usize) -> bool {
        let vs = self.schema.valueset(valueset);
        let Some(system) = coding.get("system").and_then(Value::as_str) else {
            return false;
        };
        if !vs.has_system(system) {
            return false;
        }
        match coding.get("code").and_then(Value::as_str) {
            Some(code) if vs.contains(system, code) => {}
            Some(code) => {
                let message = format!(
                    "\"{}\" is not a code of {system} in the required ValueSet: {}",
                    truncate(code),
                    allowed_codes(vs)
                );
                self.report_at(Segment::Name("code"), IssueType::Value, message);
            }
            None => {
                let message = format!("This coding of {system} has no code: {}", allowed_codes(vs));
                self.report(IssueType::Value, message);
            }
        }
        true
    }
}

fn check_integer(value: &Value, primitive: Primitive) -> Option<String> {
    let (low, what) = match primitive {
        Primitive::PositiveInt => (1, "a positive whole number, 1 or more"),
        Primitive::UnsignedInt => (0, "a whole number, 0 or more"),
        _ => (i64::from(i32::MIN), "a whole number"),
    };
    let code = primitive.code();
    let high = i32::MAX;
    let problem = match value.as_i64() {
        Some(n) if n >= low && n <= i64::from(high) => return None,
        Some(n) if n < low => "",
        _ if value.is_f64() => ", without a decimal point or exponent",
        _ if value.is_number() => ", no larger than 2147483647",
        _ => ", as a JSON number without quotes",
    };
    Some(format!("This must be {what}{problem} (FHIR type {code})"))
}

fn check_string(s: &str, primitive: Primitive) -> Option<String> {
    if s.is_empty() {
        return Some(
            "This is an empty string: FHIR values must not be empty; leave the element out instead"
                .to_owned(),
        );
    }
    let valid = match primitive {
        Primitive::String | Primitive::Markdown => {
            if s.len() > MAX_STRING_BYTES {
                return Some("This string is longer than FHIR's limit of 1 MB".to_owned());
            }
            if s.trim().is_empty() {
                return Some(
                    "This string has only whitespace: give it content or leave the element out"
                        .to_owned(),
                );
            }
            true
        }
        Primitive::Code => is_code(s),
        Primitive::Id => is_valid_id(s),
        Primitive::Uri | Primitive::Url | Primitive::Canonical => {
            !s.chars().any(char::is_whitespace)
        }
        Primitive::Oid => is_oid(s),
        Primitive::Uuid => is_uuid(s),
        Primitive::Base64Binary => is_base64(s),
        Primitive::Date => parse_date(s).is_some(),
        Primitive::DateTime => parse_datetime(s).is_some(),
        Primitive::Instant => parse_instant(s).is_some(),
        Primitive::Time => is_time(s),
        Primitive::Xhtml => s.trim_start().starts_with("<div"),
        Primitive::Boolean
        | Primitive::Integer
        | Primitive::PositiveInt
        | Primitive::UnsignedInt
        | Primitive::Decimal => true,
    };
    (!valid).then(|| {
        format!(
            "This is not a valid {}: {}",
            primitive.code(),
            expected_form(primitive)
        )
    })
}

fn expected_form(primitive: Primitive) -> &'static str {
    match primitive {
        Primitive::Code => "codes have no leading or trailing whitespace and at most single spaces inside",
        Primitive::Id => "ids are 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'",
        Primitive::Uri | Primitive::Url | Primitive::Canonical => "it must not contain whitespace",
        Primitive::Oid => "use urn:oid: followed by dotted numbers, e.g. urn:oid:1.2.3.4",
        Primitive::Uuid => "use urn:uuid: followed by a lower-case UUID, e.g. urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
        Primitive::Base64Binary => "use standard base64 (A-Z, a-z, 0-9, '+', '/', with '=' padding to a multiple of 4 characters)",
        Primitive::Date => "use YYYY, YYYY-MM or YYYY-MM-DD with a real calendar date",
        Primitive::DateTime => "use YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with a time zone (Z or +hh:mm)",
        Primitive::Instant => "use YYYY-MM-DDThh:mm:ss(.sss) with a time zone (Z or +hh:mm)",
        Primitive::Time => "use hh:mm:ss (24-hour), optionally with fractions of a second",
        Primitive::Xhtml => "narrative must be an XHTML <div> element, e.g. <div xmlns=\"http://www.w3.org/1999/xhtml\">…</div>",
        _ => "check the value",
    }
}

/// `[^\s]+(\s[^\s]+)*`
fn is_code(s: &str) -> bool {
    let mut previous_space = true;
    for c in s.chars() {
        let space = c.is_whitespace();
        if space && previous_space {
            return false;
        }
        previous_space = space;
    }
    !previous_space
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`
fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut arcs = rest.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let mut count = 0;
    let rest_ok = arcs.all(|arc| {
        count += 1;
        !arc.is_empty()
            && arc.bytes().all(|b| b.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'))
    });
    first_ok && rest_ok && count > 0
}

/// `urn:uuid:` and a lower-case 8-4-4-4-12 hex UUID.
fn is_uuid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: [usize; 5] = [8, 4, 4, 4, 12];
    let mut parts = rest.split('-');
    let shape_ok = groups.iter().all(|&len| {
        parts.next().is_some_and(|p| {
            p.len() == len
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    });
    shape_ok && parts.next().is_none()
}

/// Standard base64, whitespace ignored, padded to a multiple of four.
fn is_base64(s: &str) -> bool {
    let mut count = 0usize;
    let mut padding = 0usize;
    for b in s.bytes() {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => padding += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if padding == 0 => {}
            _ => return false,
        }
        count += 1;
    }
    count > 0 && count & 3 == 0 && padding <= 2
}

/// "use one of a, b, c (required ValueSet url)", or only the URL when there are many codes.
fn allowed_codes(vs: &crate::schema::ValueSetCodes) -> String {
    if vs.len() <= MAX_CODES_LISTED {
        let codes: Vec<&str> = vs.codes().map(|(_, code)| code).collect();
        format!(
            "use one of {} (required ValueSet {})",
            codes.join(", "),
            vs.url()
        )
    } else {
        format!("use a code from the required ValueSet {}", vs.url())
    }
}

/// What kind of JSON value `value` is, as a message says it ("an array", "a string").
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Input echoed in a message is cut short, on a character boundary.
fn truncate(s: &str) -> &str {
    const LIMIT: usize = 64;
    if s.len() <= LIMIT {
        return s;
    }
    let mut end = LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn issues(resource: Value) -> Vec<Issue> {
        validate(&resource).expect_err("the resource should be rejected")
    }

    /// The one issue reported, which must be at `path` and of type `code`.
    fn single_issue(resource: Value, code: IssueType, path: &str) -> Issue {
        let found = issues(resource);
        assert_eq!(found.len(), 1, "expected one issue, got {found:#?}");
        let issue = found.into_iter().next().unwrap();
        assert_eq!(issue.code, code, "{issue:#?}");
        assert_eq!(issue.expression.as_deref(), Some(path), "{issue:#?}");
        issue
    }

    fn assert_valid(resource: Value) {
        if let Err(found) = validate(&resource) {
            panic!("expected valid, got {found:#?}");
        }
    }

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "id": "pat-1",
            "meta": {"versionId": "1", "lastUpdated": "2024-03-01T10:00:00.000Z",
                     "profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
            "text": {"status": "generated",
                     "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jane Doe</div>"},
            "extension": [{
                "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
                "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory", "code": "A"}]}
            }],
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
            "active": true,
            "name": [{"use": "official", "family": "Doe", "given": ["Jane", "Anne"],
                      "_given": [null, {"extension": [{"url": "http://example.org/x", "valueBoolean": true}]}]}],
            "telecom": [{"system": "phone", "value": "01632 960000", "use": "home", "rank": 1}],
            "gender": "female",
            "birthDate": "1980-02-29",
            "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                                          "valueDateTime": "1980-02-29T08:30:00+00:00"}]},
            "deceasedBoolean": false,
            "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 1AA",
                         "period": {"start": "2020-01"}}],
            "maritalStatus": {"text": "Married"},
            "contact": [{"relationship": [{"text": "Sister"}], "name": {"text": "Ann Doe"}}],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]},
                               "preferred": true}],
            "generalPractitioner": [{"reference": "Organization/gp-1", "display": "The Surgery"}],
            "link": [{"other": {"reference": "Patient/pat-2"}, "type": "seealso"}]
        })
    }

    fn appointment() -> Value {
        json!({
            "resourceType": "Appointment",
            "status": "booked",
            "start": "2024-03-31T00:30:00Z",
            "end": "2024-03-31T01:30:00+01:00",
            "minutesDuration": 60,
            "priority": 0,
            "participant": [
                {"actor": {"reference": "Patient/pat-1"}, "status": "accepted", "required": "required"},
                {"actor": {"reference": "Practitioner/pr-1"}, "status": "tentative"}
            ]
        })
    }

    fn observation() -> Value {
        json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
            "subject": {"reference": "Patient/pat-1"},
            "effectiveDateTime": "2024-03-01T09:00:00Z",
            "issued": "2024-03-01T09:05:00.123+00:00",
            "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
            "referenceRange": [{"low": {"value": 50, "unit": "kg"}, "high": {"value": 90, "unit": "kg"}}],
            "component": [{"code": {"text": "note"}, "valueString": "after breakfast",
                           "referenceRange": [{"text": "n/a"}]}]
        })
    }

    fn questionnaire() -> Value {
        json!({
            "resourceType": "Questionnaire",
            "url": "https://portico.example/Questionnaire/phq",
            "status": "active",
            "description": "Pre-appointment **questions**",
            "item": [{
                "linkId": "1", "text": "About you", "type": "group",
                "item": [
                    {"linkId": "1.1", "text": "Do you smoke?", "type": "boolean", "required": true},
                    {"linkId": "1.2", "text": "How many a day?", "type": "integer",
                     "enableWhen": [{"question": "1.1", "operator": "=", "answerBoolean": true}],
                     "item": [{"linkId": "1.2.1", "type": "choice",
                               "answerOption": [{"valueCoding": {"system": "http://example.org/cs", "code": "few"}},
                                                {"valueString": "many", "initialSelected": true}]}]}
                ]
            }]
        })
    }

    #[test]
    fn valid_patient_passes() {
        assert_valid(patient());
    }

    #[test]
    fn valid_appointment_passes() {
        assert_valid(appointment());
    }

    #[test]
    fn valid_observation_with_value_quantity_passes() {
        assert_valid(observation());
    }

    #[test]
    fn questionnaire_with_nested_items_passes_through_the_content_reference() {
        assert_valid(questionnaire());
    }

    #[test]
    fn errors_deep_in_nested_questionnaire_items_are_found() {
        let mut q = questionnaire();
        q["item"][0]["item"][1]["item"][0]["type"] = json!("dropdown");
        q["item"][0]["item"][1]["item"][0]["answerOption"][1]["valueFoo"] = json!(1);
        let found = issues(q);
        let paths: Vec<_> = found
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            paths,
            [
                "Questionnaire.item[0].item[1].item[0].type",
                "Questionnaire.item[0].item[1].item[0].answerOption[1].valueFoo",
            ],
            "{found:#?}"
        );
        assert_eq!(found[0].code, IssueType::Value);
        assert_eq!(found[1].code, IssueType::Structure);
    }

    #[test]
    fn valid_binary_and_contained_resources_pass() {
        assert_valid(
            json!({"resourceType": "Binary", "contentType": "application/pdf",
                            "data": "JVBERi0xLjQK"}),
        );
        let mut p = patient();
        p["contained"] =
            json!([{"resourceType": "Practitioner", "id": "p1", "name": [{"family": "Who"}]}]);
        assert_valid(p);
    }

    #[test]
    fn a_non_object_is_rejected() {
        let found = issues(json!(["Patient"]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, IssueType::Structure);
        assert_eq!(found[0].expression, None);
    }

    #[test]
    fn missing_resource_type_is_rejected() {
        single_issue(json!({"id": "x"}), IssueType::Required, "resourceType");
        single_issue(
            json!({"resourceType": 7}),
            IssueType::Structure,
            "resourceType",
        );
    }

    #[test]
    fn resource_types_outside_scope_are_not_supported() {
        let unknown = single_issue(
            json!({"resourceType": "Pateint"}),
            IssueType::NotSupported,
            "resourceType",
        );
        assert!(
            unknown.diagnostics.contains("not a FHIR R4 resource type"),
            "{unknown:?}"
        );
        let known = single_issue(
            json!({"resourceType": "Bundle", "type": "collection"}),
            IssueType::NotSupported,
            "resourceType",
        );
        assert!(
            known.diagnostics.contains("does not accept Bundle"),
            "{known:?}"
        );
        single_issue(
            json!({"resourceType": "DomainResource"}),
            IssueType::NotSupported,
            "resourceType",
        );
    }

    #[test]
    fn invalid_id_is_rejected() {
        let mut p = patient();
        p["id"] = json!("pat_1!");
        single_issue(p, IssueType::Value, "Patient.id");
    }

    #[test]
    fn unknown_element_is_rejected() {
        let mut p = patient();
        p["favouriteColour"] = json!("blue");
        let issue = single_issue(p, IssueType::Structure, "Patient.favouriteColour");
        assert!(issue.diagnostics.contains("extension"), "{issue:?}");
    }

    #[test]
    fn misspelt_element_suggests_the_right_case() {
        let mut p = patient();
        p["birthdate"] = json!("1980-01-01");
        let issue = single_issue(p, IssueType::Structure, "Patient.birthdate");
        assert!(issue.diagnostics.contains("\"birthDate\""), "{issue:?}");
    }

    #[test]
    fn choice_element_with_a_type_not_allowed_is_rejected() {
        let mut o = observation();
        o["valueHumanName"] = json!({"family": "x"});
        o.as_object_mut().unwrap().remove("valueQuantity");
        let issue = single_issue(o, IssueType::Structure, "Observation.valueHumanName");
        assert!(issue.diagnostics.contains("valueQuantity"), "{issue:?}");
    }

    #[test]
    fn two_types_of_one_choice_element_are_rejected() {
        let mut o = observation();
        o["valueString"] = json!("72.5 kg");
        single_issue(o, IssueType::Structure, "Observation.valueString");
    }

    #[test]
    fn single_valued_element_given_as_array_is_rejected() {
        let mut p = patient();
        p["birthDate"] = json!(["1980-01-01"]);
        single_issue(p, IssueType::Structure, "Patient.birthDate");
    }

    #[test]
    fn repeating_element_given_as_single_value_is_rejected() {
        let mut p = patient();
        p["name"] = json!({"family": "Doe"});
        single_issue(p, IssueType::Structure, "Patient.name");
        let mut p = patient();
        p["name"][0]["given"] = json!("Jane");
        p["name"][0].as_object_mut().unwrap().remove("_given");
        single_issue(p, IssueType::Structure, "Patient.name[0].given");
    }

    #[test]
    fn empty_arrays_are_rejected() {
        let mut p = patient();
        p["telecom"] = json!([]);
        single_issue(p, IssueType::Structure, "Patient.telecom");
    }

    #[test]
    fn null_in_an_array_is_rejected() {
        let mut p = patient();
        p["name"][0]["given"] = json!(["Jane", null]);
        p["name"][0].as_object_mut().unwrap().remove("_given");
        single_issue(p, IssueType::Structure, "Patient.name[0].given[1]");
    }

    #[test]
    fn null_in_a_primitive_array_is_allowed_where_the_extension_array_has_content() {
        let mut p = patient();
        p["name"][0]["given"] = json!(["Jane", null]);
        p["name"][0]["_given"] =
            json!([null, {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}]);
        assert_valid(p);
    }

    #[test]
    fn null_for_a_single_element_is_rejected() {
        let mut p = patient();
        p["gender"] = Value::Null;
        single_issue(p, IssueType::Structure, "Patient.gender");
    }

    #[test]
    fn missing_required_element_is_reported_at_its_path() {
        let mut a = appointment();
        a["participant"][0]
            .as_object_mut()
            .unwrap()
            .remove("status");
        single_issue(a, IssueType::Required, "Appointment.participant[0].status");
        let mut a = appointment();
        a.as_object_mut().unwrap().remove("status");
        single_issue(a, IssueType::Required, "Appointment.status");
    }

    #[test]
    fn required_choice_element_is_satisfied_by_any_type() {
        let mut q = questionnaire();
        q["item"][0]["item"][1]["enableWhen"][0]
            .as_object_mut()
            .unwrap()
            .remove("answerBoolean");
        let issue = single_issue(
            q,
            IssueType::Required,
            "Questionnaire.item[0].item[1].enableWhen[0].answer",
        );
        assert!(issue.diagnostics.contains("answerCoding"), "{issue:?}");
    }

    #[test]
    fn a_primitive_with_only_an_extension_counts_as_present() {
        let mut a = appointment();
        a.as_object_mut().unwrap().remove("status");
        a["_status"] = json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                                              "valueCode": "unknown"}]});
        assert_valid(a);
    }

    #[test]
    fn boolean_given_as_string_is_rejected() {
        let mut p = patient();
        p["active"] = json!("true");
        single_issue(p, IssueType::Value, "Patient.active");
    }

    #[test]
    fn integers_must_be_whole_numbers_in_range() {
        for (field, bad) in [
            ("minutesDuration", json!(0)),
            ("minutesDuration", json!(1.5)),
            ("minutesDuration", json!("60")),
            ("priority", json!(-1)),
            ("priority", json!(2_147_483_648_i64)),
        ] {
            let mut a = appointment();
            a[field] = bad.clone();
            let issue = single_issue(a, IssueType::Value, &format!("Appointment.{field}"));
            assert!(!issue.diagnostics.is_empty(), "{field} {bad}");
        }
        let mut a = appointment();
        a["priority"] = json!(2_147_483_647);
        assert_valid(a);
    }

    #[test]
    fn decimal_given_as_string_is_rejected() {
        let mut o = observation();
        o["valueQuantity"]["value"] = json!("72.5");
        single_issue(o, IssueType::Value, "Observation.valueQuantity.value");
    }

    #[test]
    fn malformed_dates_and_times_are_rejected() {
        let mut p = patient();
        p["birthDate"] = json!("1981-02-29");
        single_issue(p, IssueType::Value, "Patient.birthDate");
        let mut o = observation();
        o["effectiveDateTime"] = json!("2024-03-01T09:00:00");
        single_issue(o, IssueType::Value, "Observation.effectiveDateTime");
        let mut o = observation();
        o["issued"] = json!("2024-03-01");
        single_issue(o, IssueType::Value, "Observation.issued");
        let service = json!({"resourceType": "HealthcareService",
                             "availableTime": [{"availableStartTime": "9:00"}]});
        single_issue(
            service,
            IssueType::Value,
            "HealthcareService.availableTime[0].availableStartTime",
        );
    }

    #[test]
    fn codes_with_surrounding_whitespace_are_rejected() {
        let mut a = appointment();
        a["status"] = json!("booked ");
        single_issue(a, IssueType::Value, "Appointment.status");
    }

    #[test]
    fn uris_with_whitespace_are_rejected() {
        let mut p = patient();
        p["identifier"][0]["system"] = json!("https://fhir.nhs.uk/Id/nhs number");
        single_issue(p, IssueType::Value, "Patient.identifier[0].system");
    }

    #[test]
    fn oids_and_uuids_must_have_their_urn_form() {
        let mut p = patient();
        p["extension"] = json!([
            {"url": "http://example.org/a", "valueOid": "1.2.3"},
            {"url": "http://example.org/b", "valueUuid": "urn:uuid:C757873D-EC9A-4326-A141-556F43239520"},
            {"url": "http://example.org/c", "valueOid": "urn:oid:2.16.840.1.113883"},
            {"url": "http://example.org/d", "valueUuid": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"}
        ]);
        let found = issues(p);
        let paths: Vec<_> = found
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            paths,
            [
                "Patient.extension[0].valueOid",
                "Patient.extension[1].valueUuid"
            ]
        );
    }

    #[test]
    fn base64_must_be_well_formed() {
        for bad in ["abc", "ab$d", "a===", "ab=c"] {
            let binary =
                json!({"resourceType": "Binary", "contentType": "text/plain", "data": bad});
            single_issue(binary, IssueType::Value, "Binary.data");
        }
        assert_valid(
            json!({"resourceType": "Binary", "contentType": "text/plain",
                            "data": "aGVs\nbG8=", "securityContext": {"reference": "Patient/1"}}),
        );
    }

    #[test]
    fn empty_and_whitespace_only_strings_are_rejected() {
        let mut p = patient();
        p["name"][0]["family"] = json!("   ");
        single_issue(p, IssueType::Value, "Patient.name[0].family");
        let mut q = questionnaire();
        q["description"] = json!("");
        single_issue(q, IssueType::Value, "Questionnaire.description");
    }

    #[test]
    fn narrative_must_be_a_div() {
        let mut p = patient();
        p["text"]["div"] = json!("Jane Doe");
        single_issue(p, IssueType::Value, "Patient.text.div");
    }

    #[test]
    fn complex_element_given_as_string_is_rejected() {
        let mut p = patient();
        p["maritalStatus"] = json!("M");
        single_issue(p, IssueType::Structure, "Patient.maritalStatus");
    }

    #[test]
    fn empty_objects_are_rejected() {
        let mut p = patient();
        p["maritalStatus"] = json!({});
        single_issue(p, IssueType::Structure, "Patient.maritalStatus");
    }

    #[test]
    fn contained_resources_are_validated_as_resources() {
        let mut p = patient();
        p["contained"] = json!([
            {"resourceType": "Practitioner", "gender": "M"},
            {"resourceType": "Widget"},
            {"id": "no-type"}
        ]);
        let found = issues(p);
        let got: Vec<_> = found
            .iter()
            .map(|i| (i.code, i.expression.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (IssueType::Value, "Patient.contained[0].gender"),
                (IssueType::NotSupported, "Patient.contained[1]"),
                (IssueType::Required, "Patient.contained[2]"),
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn appointment_status_outside_required_valueset_is_rejected() {
        let mut a = appointment();
        a["status"] = json!("done");
        let issue = single_issue(a, IssueType::Value, "Appointment.status");
        assert!(
            issue.diagnostics.contains("booked"),
            "lists the allowed codes: {issue:?}"
        );
        assert!(issue.diagnostics.contains("\"done\""), "{issue:?}");
    }

    #[test]
    fn participant_status_outside_required_valueset_is_rejected() {
        let mut a = appointment();
        a["participant"][1]["status"] = json!("maybe");
        single_issue(a, IssueType::Value, "Appointment.participant[1].status");
    }

    #[test]
    fn patient_gender_outside_required_valueset_is_rejected() {
        let mut p = patient();
        p["gender"] = json!("F");
        single_issue(p, IssueType::Value, "Patient.gender");
    }

    #[test]
    fn codes_of_large_valuesets_are_checked_without_listing_them() {
        let mut q = questionnaire();
        q["subjectType"] = json!(["Patient", "Patiant"]);
        let issue = single_issue(q, IssueType::Value, "Questionnaire.subjectType[1]");
        assert!(
            issue
                .diagnostics
                .contains("http://hl7.org/fhir/ValueSet/resource-types")
                && !issue.diagnostics.contains("Practitioner"),
            "{issue:?}"
        );
    }

    #[test]
    fn codes_from_unenumerable_systems_are_not_checked() {
        assert_valid(json!({"resourceType": "Binary", "contentType": "application/x-anything"}));
    }

    fn condition(clinical_status: Value) -> Value {
        json!({
            "resourceType": "Condition",
            "clinicalStatus": clinical_status,
            "code": {"text": "Asthma"},
            "subject": {"reference": "Patient/pat-1"}
        })
    }

    const CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";

    #[test]
    fn codeable_concept_with_required_binding_accepts_a_member_coding() {
        assert_valid(condition(json!({"coding": [
            {"system": "http://snomed.info/sct", "code": "55561003"},
            {"system": CLINICAL, "code": "active"}
        ]})));
        assert_valid(condition(json!({"text": "active"})));
    }

    #[test]
    fn codeable_concept_coding_outside_required_valueset_is_rejected() {
        let issue = single_issue(
            condition(json!({"coding": [{"system": CLINICAL, "code": "cured"}]})),
            IssueType::Value,
            "Condition.clinicalStatus.coding[0].code",
        );
        assert!(issue.diagnostics.contains("resolved"), "{issue:?}");
    }

    #[test]
    fn codeable_concept_with_no_coding_from_required_valueset_is_rejected() {
        single_issue(
            condition(
                json!({"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]}),
            ),
            IssueType::Value,
            "Condition.clinicalStatus",
        );
    }

    #[test]
    fn extension_without_url_is_rejected() {
        let mut p = patient();
        p["extension"] = json!([{"valueString": "x"}]);
        single_issue(p, IssueType::Required, "Patient.extension[0].url");
    }

    #[test]
    fn extension_with_both_value_and_extensions_is_rejected() {
        let mut p = patient();
        p["extension"] = json!([{"url": "http://example.org/a", "valueString": "x",
                                 "extension": [{"url": "b", "valueInteger": 1}]}]);
        single_issue(p, IssueType::Invariant, "Patient.extension[0]");
        let mut p = patient();
        p["extension"] = json!([{"url": "http://example.org/a"}]);
        single_issue(p, IssueType::Invariant, "Patient.extension[0]");
    }

    #[test]
    fn extension_value_of_an_unknown_type_is_rejected() {
        let mut p = patient();
        p["modifierExtension"] = json!([{"url": "http://example.org/a", "valueBanana": "x"}]);
        let found = issues(p);
        let paths: Vec<_> = found
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        // The unknown key, and ext-1 because no valid value remains.
        assert_eq!(
            paths,
            [
                "Patient.modifierExtension[0].valueBanana",
                "Patient.modifierExtension[0]"
            ]
        );
    }

    #[test]
    fn primitive_extension_must_be_an_object() {
        let mut p = patient();
        p["_birthDate"] = json!("1980");
        single_issue(p, IssueType::Structure, "Patient.birthDate");
    }

    #[test]
    fn primitive_extension_content_is_validated() {
        let mut p = patient();
        p["_birthDate"] = json!({"extension": [{"valueString": "x"}]});
        single_issue(p, IssueType::Required, "Patient.birthDate.extension[0].url");
        let mut p = patient();
        p["_birthDate"] = json!({"colour": "red"});
        single_issue(p, IssueType::Structure, "Patient.birthDate.colour");
    }

    #[test]
    fn underscore_sibling_of_a_complex_element_is_rejected() {
        let mut p = patient();
        p["_maritalStatus"] = json!({"id": "x"});
        single_issue(p, IssueType::Structure, "Patient.maritalStatus");
    }

    #[test]
    fn primitive_extension_arrays_must_line_up() {
        let mut p = patient();
        p["name"][0]["_given"] = json!([null]);
        single_issue(p, IssueType::Structure, "Patient.name[0].given");
        let mut p = patient();
        p["name"][0]["_given"] = json!({"id": "x"});
        single_issue(p, IssueType::Structure, "Patient.name[0].given");
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let mut p = patient();
        p["gender"] = json!("F");
        p["birthDate"] = json!("yesterday");
        p["active"] = json!(1);
        p["colour"] = json!("red");
        p["link"][0].as_object_mut().unwrap().remove("other");
        let found = issues(p);
        let mut paths: Vec<_> = found.iter().filter_map(|i| i.expression.clone()).collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "Patient.active",
                "Patient.birthDate",
                "Patient.colour",
                "Patient.gender",
                "Patient.link[0].other"
            ]
        );
    }

    #[test]
    fn absurdly_deep_nesting_is_reported_not_overflowed() {
        let mut item = json!({"linkId": "x", "type": "group"});
        for _ in 0..300 {
            item = json!({"linkId": "x", "type": "group", "item": [item]});
        }
        let q = json!({"resourceType": "Questionnaire", "status": "draft", "item": [item]});
        let found = issues(q);
        assert!(
            found.iter().any(|i| i.diagnostics.contains("levels deep")),
            "{found:?}"
        );
    }

    #[test]
    fn code_and_other_lexical_forms() {
        assert!(is_code("a b"));
        assert!(!is_code("a  b"));
        assert!(!is_code(" a"));
        assert!(!is_code(""));
        assert!(is_oid("urn:oid:1.2.840.10008"));
        assert!(!is_oid("urn:oid:1"));
        assert!(!is_oid("urn:oid:1.02"));
        assert!(!is_oid("urn:oid:3.1"));
        assert!(is_base64("TWFu"));
        assert!(is_base64("TWE="));
        assert!(is_base64("TQ=="));
        assert!(!is_base64("TQ="));
        assert!(!is_base64("===="));
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9 _:./<-]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("2024-01-01"),
                Just("booked"),
                Just("Patient"),
                Just("<div>x</div>"),
                Just("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"),
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((field_name(), inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    /// Element names that occur in the definitions, so that generated values go deep.
    fn field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "resourceType",
                "id",
                "extension",
                "url",
                "valueString",
                "valueQuantity",
                "value",
                "name",
                "given",
                "_given",
                "family",
                "status",
                "participant",
                "actor",
                "item",
                "linkId",
                "type",
                "coding",
                "system",
                "code",
                "contained",
                "text",
                "div",
                "birthDate",
                "_birthDate",
                "gender",
                "clinicalStatus",
                "meta",
                "answerOption",
                "valueCoding",
                "enableWhen",
                "answerBoolean",
                "reference",
            ])
            .prop_map(str::to_owned),
            "_?[a-zA-Z]{1,8}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_json_never_panics(value in arbitrary_json()) {
            let _ = validate(&value);
        }

        #[test]
        fn arbitrary_content_of_every_served_type_never_panics(
            resource_type in prop::sample::select(RESOURCE_TYPES.to_vec()),
            body in prop::collection::vec((field_name(), arbitrary_json()), 0..8),
        ) {
            let mut object: Map<String, Value> = body.into_iter().collect();
            object.insert("resourceType".to_owned(), json!(resource_type));
            let _ = validate(&Value::Object(object));
        }
    }
}
