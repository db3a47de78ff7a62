//! The access labels of a resource, computed in one place from its JSON. The store writes them
//! into the search index so that a search filters on them in SQL; [`crate::decide`] reads them
//! for single resources. Both must come from [`labels`], or a read and a search could disagree.

use serde_json::Value;

use crate::codes::{self, Sensitivity};

/// What the policy needs to know about a resource's content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels {
    /// Sexual health, safeguarding, or confidentiality R/V: hidden from proxies and from staff
    /// outside the authoring organisation.
    pub restricted: bool,
    /// Restricted, or mental health, substance misuse, contraception, pregnancy…: what the
    /// parents of 11–15-year-olds do not see unless a clinician allows it.
    pub sensitive: bool,
    /// The ODS code of the organisation whose staff or system wrote it.
    pub author_organisation: Option<String>,
}

/// The elements whose codes can make an item restricted or sensitive.
const CODED_ELEMENTS: &[&str] = &["category", "type", "code", "reasonCode"];

/// Computes the labels of `resource` (any FHIR resource as JSON; anything else has no labels).
/// Reads `meta.security`, `meta.tag` and the codings of `category`, `type`, `code` and
/// `reasonCode`; allocates only the author's ODS code.
pub fn labels(resource: &Value) -> Labels {
    let meta = resource.get("meta");
    let mut worst = meta
        .and_then(|m| m.get("security"))
        .map_or(Sensitivity::Ordinary, worst_of);
    for element in CODED_ELEMENTS {
        if worst == Sensitivity::Restricted {
            break;
        }
        if let Some(value) = resource.get(element) {
            worst = worst.max(worst_of(value));
        }
    }
    Labels {
        restricted: worst == Sensitivity::Restricted,
        sensitive: worst >= Sensitivity::Sensitive,
        author_organisation: meta
            .and_then(|m| m.get("tag"))
            .and_then(author_organisation),
    }
}

/// The highest sensitivity among the codings in `value`: a Coding, a CodeableConcept, or an
/// array of either.
fn worst_of(value: &Value) -> Sensitivity {
    match value {
        Value::Array(items) => items
            .iter()
            .map(worst_of_one)
            .max()
            .unwrap_or(Sensitivity::Ordinary),
        one => worst_of_one(one),
    }
}

fn worst_of_one(value: &Value) -> Sensitivity {
    match value.get("coding") {
        Some(Value::Array(codings)) => codings
            .iter()
            .map(coding_sensitivity)
            .max()
            .unwrap_or(Sensitivity::Ordinary),
        Some(_) => Sensitivity::Ordinary,
        None => coding_sensitivity(value),
    }
}

fn coding_sensitivity(coding: &Value) -> Sensitivity {
    match (
        coding.get("system").and_then(Value::as_str),
        coding.get("code").and_then(Value::as_str),
    ) {
        (Some(system), Some(code)) => codes::sensitivity(system, code),
        _ => Sensitivity::Ordinary,
    }
}

fn author_organisation(tags: &Value) -> Option<String> {
    tags.as_array()?
        .iter()
        .filter(|t| t.get("system").and_then(Value::as_str) == Some(codes::ODS_ORGANISATION))
        .find_map(|t| t.get("code").and_then(Value::as_str))
        .filter(|code| !code.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::*;
    use serde_json::json;

    #[test]
    fn plain_resource_has_no_labels() {
        let r = json!({"resourceType": "Observation", "code": {"coding": [{"system": SNOMED_CT, "code": "27113001"}]}});
        assert_eq!(labels(&r), Labels::default());
    }

    #[test]
    fn confidentiality_r_in_meta_security_restricts() {
        let r = json!({"resourceType": "Condition", "meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}});
        let l = labels(&r);
        assert!(l.restricted);
        assert!(l.sensitive, "restricted implies sensitive");
    }

    #[test]
    fn confidentiality_normal_does_not_restrict() {
        let r = json!({"meta": {"security": [{"system": CONFIDENTIALITY, "code": "N"}]}});
        assert_eq!(labels(&r), Labels::default());
    }

    #[test]
    fn act_code_sensitivity_in_meta_security() {
        let hiv = json!({"meta": {"security": [{"system": ACT_CODE, "code": "HIV"}]}});
        assert!(labels(&hiv).restricted);
        let psy = json!({"meta": {"security": [{"system": ACT_CODE, "code": "PSY"}]}});
        let l = labels(&psy);
        assert!(!l.restricted);
        assert!(l.sensitive);
    }

    #[test]
    fn snomed_code_restricts() {
        let r = json!({"resourceType": "Condition", "code": {"coding": [{"system": SNOMED_CT, "code": CHILD_PROTECTION_PLAN}]}});
        assert!(labels(&r).restricted);
    }

    #[test]
    fn snomed_category_array_is_read() {
        let r = json!({"category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]},
            {"coding": [{"system": SNOMED_CT, "code": CONTRACEPTION}]}
        ]});
        let l = labels(&r);
        assert!(l.sensitive);
        assert!(!l.restricted);
    }

    #[test]
    fn type_and_reason_code_are_read() {
        let t = json!({"type": {"coding": [{"system": SNOMED_CT, "code": MENTAL_DISORDER}]}});
        assert!(labels(&t).sensitive);
        let r = json!({"reasonCode": [{"coding": [{"system": SNOMED_CT, "code": SYPHILIS}]}]});
        assert!(labels(&r).restricted);
    }

    #[test]
    fn code_in_the_wrong_system_does_not_count() {
        let r =
            json!({"code": {"coding": [{"system": "http://loinc.org", "code": HIV_INFECTION}]}});
        assert_eq!(labels(&r), Labels::default());
    }

    #[test]
    fn author_organisation_comes_from_the_ods_tag() {
        let r = json!({"meta": {"tag": [
            {"system": "http://example.org/other", "code": "X"},
            {"system": ODS_ORGANISATION, "code": "A81001"}
        ]}});
        assert_eq!(labels(&r).author_organisation.as_deref(), Some("A81001"));
    }

    #[test]
    fn ods_code_in_security_is_not_an_author() {
        let r = json!({"meta": {"security": [{"system": ODS_ORGANISATION, "code": "A81001"}]}});
        assert_eq!(labels(&r).author_organisation, None);
    }

    #[test]
    fn malformed_json_has_no_labels_and_does_not_panic() {
        for v in [
            json!(null),
            json!(42),
            json!("Condition"),
            json!([1, 2]),
            json!({"meta": "x", "code": 5, "category": [null, 3, {"coding": "x"}], "type": {"coding": [7]}}),
            json!({"meta": {"security": {"system": 1}, "tag": {"code": "x"}}}),
            json!({"meta": {"tag": [{"system": ODS_ORGANISATION, "code": ""}]}}),
        ] {
            assert_eq!(labels(&v), Labels::default(), "{v}");
        }
    }

    #[test]
    fn a_bare_coding_in_security_counts() {
        let r = json!({"meta": {"security": {"system": CONFIDENTIALITY, "code": "V"}}});
        assert!(labels(&r).restricted);
    }
}
