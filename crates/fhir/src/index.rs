//! Search index values extracted from a resource, one per (parameter, value), as DESIGN.md §4
//! describes. The store writes them in the same transaction as the resource.
//!
//! Extraction follows each search parameter's FHIRPath expression from the R4 definitions
//! (see `search_params` and `fhirpath`).

use crate::datetime::Range;

/// One extracted value of one search parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// token: `system|code` (system absent when the value has none). Codes, Codings,
    /// CodeableConcepts, Identifiers (system|value), ContactPoints (value), booleans ("true").
    Token {
        system: Option<String>,
        code: String,
    },
    /// string: `normalized` is lower-case with accents folded (see [`normalize_string`]);
    /// `exact` is the value as written, for `:exact`.
    String { normalized: String, exact: String },
    /// date: the instants the value covers.
    Date(Range),
    /// reference: a local `Type/id` when the reference has one, and the reference as written.
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: String,
    },
    /// quantity: value with its system and code (UCUM when given) or unit.
    Quantity {
        value: f64,
        system: Option<String>,
        code: Option<String>,
    },
    /// uri: the value as written.
    Uri(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The search parameter's code, e.g. `birthdate`.
    pub param: &'static str,
    pub value: IndexValue,
}

/// Lower-case, accents folded, whitespace collapsed: how `string` parameters compare.
pub fn normalize_string(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(s.len());
    let mut last_space = true;
    for c in s.nfkd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            continue;
        }
        last_space = false;
        out.extend(c.to_lowercase());
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Every index entry of every supported search parameter of the resource's type.
pub fn extract(resource: &serde_json::Value) -> Vec<IndexEntry> {
    crate::search_params::extract_all(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_fold_case_and_accents() {
        assert_eq!(normalize_string("  Zoë  O'Brien "), "zoe o'brien");
        assert_eq!(normalize_string("ÉCOLE"), "ecole");
    }
}
