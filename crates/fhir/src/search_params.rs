//! The R4 search parameters of the resource types in scope, derived from
//! `definitions/search-parameters.json`, and extraction of their index values.
//!
//! (Filled in by the search-parameter work: see the crate README.)

use crate::index::IndexEntry;

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
    pub description: &'static str,
}

/// The definition of `code` on `resource_type`, if Portico supports searching by it.
pub fn lookup(resource_type: &str, code: &str) -> Option<&'static SearchParamDef> {
    let _ = (resource_type, code);
    None
}

/// Every supported search parameter of a type (for the CapabilityStatement).
pub fn for_type(resource_type: &str) -> Vec<&'static SearchParamDef> {
    let _ = resource_type;
    Vec::new()
}

pub(crate) fn extract_all(resource: &serde_json::Value) -> Vec<IndexEntry> {
    let _ = resource;
    Vec::new()
}
