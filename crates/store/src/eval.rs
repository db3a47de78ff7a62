//! A brute-force, in-memory evaluation of a parsed search condition over one resource's
//! extracted index entries.
//!
//! It states the R4 search rules directly (a date range contains another, a string starts with
//! another, a quantity lies within half a unit of the last given digit), independently of the
//! SQL in [`crate::sql`], so that the contract suite can check every backend's answers against
//! it on random data.

use fhir::datetime::Range;
use fhir::index::{IndexEntry, IndexValue};
use fhir::search_params::ParamType;

use crate::query::{
    Condition, DateValue, Decimal, Prefix, QuantityValue, ReferenceValue, StringMode, Test,
    TokenSystem, TokenValue,
};

/// Finds another resource by type and id: its `last_updated` (epoch milliseconds) and index
/// entries, or None when it does not exist or is deleted.
pub type Resolve<'a> = dyn Fn(&str, &str) -> Option<(i64, Vec<IndexEntry>)> + 'a;

/// Whether the resource `resource_type/id`, last updated at `last_updated_ms` and indexed as
/// `entries`, satisfies `condition`. Chains follow references through `resolve`.
pub fn matches(
    condition: &Condition,
    resource_type: &str,
    id: &str,
    last_updated_ms: i64,
    entries: &[IndexEntry],
    resolve: &Resolve<'_>,
) -> bool {
    let _ = resource_type;
    match condition {
        Condition::Id(ids) => ids.iter().any(|i| i == id),
        Condition::LastUpdated(values) => values
            .iter()
            .any(|v| date_matches(Range::instant(last_updated_ms), v)),
        Condition::Missing {
            code,
            param_type,
            missing,
        } => {
            let present = entries
                .iter()
                .any(|e| e.param == *code && same_table(*param_type, &e.value));
            present != *missing
        }
        Condition::Param { code, test } => {
            let any = entries
                .iter()
                .filter(|e| e.param == *code)
                .any(|e| value_matches(test, &e.value));
            match test {
                Test::Token { negate: true, .. } => !any,
                _ => any,
            }
        }
        Condition::Chain { code, targets } => {
            entries.iter().filter(|e| e.param == *code).any(|e| {
                let IndexValue::Reference {
                    target_type: Some(tt),
                    target_id: Some(tid),
                    ..
                } = &e.value
                else {
                    return false;
                };
                targets.iter().any(|(target, inner)| {
                    *target == tt.as_str()
                        && resolve(target, tid).is_some_and(|(lu, target_entries)| {
                            matches(inner, target, tid, lu, &target_entries, resolve)
                        })
                })
            })
        }
    }
}

/// Whether all of `conditions` hold (a query's parameters are joined by AND).
pub fn matches_all(
    conditions: &[Condition],
    resource_type: &str,
    id: &str,
    last_updated_ms: i64,
    entries: &[IndexEntry],
    resolve: &Resolve<'_>,
) -> bool {
    conditions
        .iter()
        .all(|c| matches(c, resource_type, id, last_updated_ms, entries, resolve))
}

/// Whether an index value lives in the table a parameter of `param_type` is stored in.
fn same_table(param_type: ParamType, value: &IndexValue) -> bool {
    matches!(
        (param_type, value),
        (ParamType::Token, IndexValue::Token { .. })
            | (ParamType::String, IndexValue::String { .. })
            | (ParamType::Date, IndexValue::Date(_))
            | (ParamType::Reference, IndexValue::Reference { .. })
            | (ParamType::Quantity, IndexValue::Quantity { .. })
            | (
                ParamType::Uri | ParamType::Number | ParamType::Composite | ParamType::Special,
                IndexValue::Uri(_)
            )
    )
}

/// Whether one stored value matches one of the test's alternatives (comma-separated: OR).
fn value_matches(test: &Test, value: &IndexValue) -> bool {
    match (test, value) {
        (Test::Token { values, .. }, IndexValue::Token { system, code }) => values
            .iter()
            .any(|v| token_matches(v, system.as_deref(), code)),
        (Test::String { values, mode }, IndexValue::String { normalized, exact }) => {
            values.iter().any(|v| match mode {
                StringMode::Exact => exact == v,
                StringMode::StartsWith => normalized.starts_with(v.as_str()),
                StringMode::Contains => normalized.contains(v.as_str()),
            })
        }
        (Test::Date(values), IndexValue::Date(range)) => {
            values.iter().any(|v| date_matches(*range, v))
        }
        (
            Test::Reference(values),
            IndexValue::Reference {
                target_type,
                target_id,
                url,
            },
        ) => values.iter().any(|v| match v {
            ReferenceValue::Local { resource_type, id } => {
                target_id.as_deref() == Some(id.as_str())
                    && resource_type
                        .as_deref()
                        .is_none_or(|t| target_type.as_deref() == Some(t))
            }
            ReferenceValue::Url(u) => url == u,
        }),
        (
            Test::Quantity(values),
            IndexValue::Quantity {
                value,
                system,
                code,
            },
        ) => values
            .iter()
            .any(|v| quantity_matches(v, *value, system.as_deref(), code.as_deref())),
        (Test::Uri(values), IndexValue::Uri(u)) => values.iter().any(|v| v == u),
        _ => false,
    }
}

/// `code` (any system), `|code` (no system), `system|code`, `system|` (any code of the system).
fn token_matches(v: &TokenValue, system: Option<&str>, code: &str) -> bool {
    let system_ok = match &v.system {
        TokenSystem::Any => true,
        TokenSystem::None => system.is_none(),
        TokenSystem::Is(s) => system == Some(s.as_str()),
    };
    system_ok && v.code.as_deref().is_none_or(|c| c == code)
}

/// The R4 prefixes between a stored range `r` and the search value's range `v`
/// (https://hl7.org/fhir/R4/search.html#prefix).
pub fn date_matches(r: Range, v: &DateValue) -> bool {
    let s = v.range;
    // The search value's range contains the stored one.
    let contained = r.low >= s.low && r.high <= s.high;
    // Part of the stored range lies after / before the search range.
    let reaches_above = r.high > s.high;
    let reaches_below = r.low < s.low;
    match v.prefix {
        Prefix::Eq => contained,
        Prefix::Ne => !contained,
        Prefix::Gt => reaches_above,
        Prefix::Lt => reaches_below,
        Prefix::Ge => reaches_above || contained,
        Prefix::Le => reaches_below || contained,
        // Wholly after / wholly before the search range.
        Prefix::Sa => r.low > s.high,
        Prefix::Eb => r.high < s.low,
    }
}

/// Equality within the implicit precision of the search value (`5.4` is [5.35, 5.45), as
/// decimals, not as the nearest binary fractions); the others compare the stored value with
/// the number as written. A given system or code must equal the stored one.
pub fn quantity_matches(
    v: &QuantityValue,
    value: f64,
    system: Option<&str>,
    code: Option<&str>,
) -> bool {
    let within = || within_precision(v, value);
    let compared = match v.prefix {
        Prefix::Eq => within(),
        Prefix::Ne => !within(),
        Prefix::Gt | Prefix::Sa => value > v.value,
        Prefix::Lt | Prefix::Eb => value < v.value,
        Prefix::Ge => value >= v.value,
        Prefix::Le => value <= v.value,
    };
    compared
        && v.system.as_deref().is_none_or(|s| system == Some(s))
        && v.code.as_deref().is_none_or(|c| code == Some(c))
}

/// Whether `value` lies in [v - tolerance, v + tolerance), computed on the decimals as written
/// (at most [`crate::query::MAX_QUANTITY_DECIMALS`] of them).
fn within_precision(v: &QuantityValue, value: f64) -> bool {
    let written = v.decimals();
    if let (Some(search), Some(stored)) = (Decimal::of(v.value), Decimal::of(value)) {
        // A scale fine enough for both numbers and for the half unit after the last decimal.
        let scale = (written + 1).max(stored.scale).max(search.scale);
        let half_unit = 10i128
            .checked_pow(scale - written - 1)
            .and_then(|p| p.checked_mul(5));
        if let (Some(centre), Some(x), Some(half)) = (search.at(scale), stored.at(scale), half_unit)
        {
            if let (Some(low), Some(high)) = (centre.checked_sub(half), centre.checked_add(half)) {
                return x >= low && x < high;
            }
        }
    }
    value >= v.value - v.tolerance() && value < v.value + v.tolerance()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir::datetime::parse_search_value;

    fn ms(s: &str) -> i64 {
        parse_search_value(s)
            .map(|d| d.range.low)
            .unwrap_or(i64::MIN)
    }

    fn range(s: &str) -> Range {
        parse_search_value(s)
            .map(|d| d.range)
            .unwrap_or(Range { low: 0, high: -1 })
    }

    fn dv(prefix: Prefix, s: &str) -> DateValue {
        DateValue {
            prefix,
            range: range(s),
        }
    }

    fn token(param: &'static str, system: Option<&str>, code: &str) -> IndexEntry {
        IndexEntry {
            param,
            value: IndexValue::Token {
                system: system.map(str::to_string),
                code: code.to_string(),
            },
        }
    }

    fn string(param: &'static str, exact: &str) -> IndexEntry {
        IndexEntry {
            param,
            value: IndexValue::String {
                normalized: fhir::index::normalize_string(exact),
                exact: exact.to_string(),
            },
        }
    }

    fn date(param: &'static str, low: &str, high: &str) -> IndexEntry {
        IndexEntry {
            param,
            value: IndexValue::Date(Range {
                low: range(low).low,
                high: range(high).high,
            }),
        }
    }

    fn reference(param: &'static str, ty: &str, id: &str) -> IndexEntry {
        IndexEntry {
            param,
            value: IndexValue::Reference {
                target_type: Some(ty.to_string()),
                target_id: Some(id.to_string()),
                url: format!("{ty}/{id}"),
            },
        }
    }

    fn quantity(param: &'static str, value: f64, code: Option<&str>) -> IndexEntry {
        IndexEntry {
            param,
            value: IndexValue::Quantity {
                value,
                system: code.map(|_| "http://unitsofmeasure.org".to_string()),
                code: code.map(str::to_string),
            },
        }
    }

    fn nothing(_: &str, _: &str) -> Option<(i64, Vec<IndexEntry>)> {
        None
    }

    fn check(c: &Condition, entries: &[IndexEntry]) -> bool {
        matches(
            c,
            "Observation",
            "o1",
            ms("2024-05-01T12:00:00Z"),
            entries,
            &nothing,
        )
    }

    fn token_test(values: Vec<TokenValue>, negate: bool) -> Condition {
        Condition::Param {
            code: "code",
            test: Test::Token { values, negate },
        }
    }

    fn tv(system: TokenSystem, code: Option<&str>) -> TokenValue {
        TokenValue {
            system,
            code: code.map(str::to_string),
        }
    }

    const LOINC: &str = "http://loinc.org";

    #[test]
    fn date_prefixes_compare_ranges_as_r4_says() {
        // A stored day, 2024-03-10, against search values of several precisions.
        let day = Range {
            low: range("2024-03-10").low,
            high: range("2024-03-10").high,
        };
        let cases = [
            (Prefix::Eq, "2024-03-10", true),
            (Prefix::Eq, "2024-03", true),
            (Prefix::Eq, "2024-03-10T10:00:00Z", false),
            (Prefix::Ne, "2024-03-10", false),
            (Prefix::Ne, "2024-03-11", true),
            (Prefix::Gt, "2024-03-09", true),
            (Prefix::Gt, "2024-03-10", false),
            // Part of the day lies after 10:00.
            (Prefix::Gt, "2024-03-10T10:00:00Z", true),
            (Prefix::Lt, "2024-03-11", true),
            (Prefix::Lt, "2024-03-10", false),
            (Prefix::Lt, "2024-03-10T10:00:00Z", true),
            (Prefix::Ge, "2024-03-10", true),
            (Prefix::Ge, "2024-03-11", false),
            (Prefix::Le, "2024-03-10", true),
            (Prefix::Le, "2024-03-09", false),
            (Prefix::Sa, "2024-03-09", true),
            (Prefix::Sa, "2024-03-10", false),
            // Overlapping is not "starts after".
            (Prefix::Sa, "2024-03-10T10:00:00Z", false),
            (Prefix::Eb, "2024-03-11", true),
            (Prefix::Eb, "2024-03-10", false),
            (Prefix::Eb, "2024-03-10T10:00:00Z", false),
        ];
        for (prefix, value, expected) in cases {
            assert_eq!(
                date_matches(day, &dv(prefix, value)),
                expected,
                "2024-03-10 {prefix:?} {value}"
            );
        }
    }

    #[test]
    fn date_condition_on_a_period_uses_both_ends() {
        let onset = [date("onset-date", "2023-01-10", "2023-02-20")];
        let c = |p, v| Condition::Param {
            code: "onset-date",
            test: Test::Date(vec![dv(p, v)]),
        };
        assert!(check(&c(Prefix::Eq, "2023"), &onset));
        assert!(!check(&c(Prefix::Eq, "2023-01"), &onset));
        assert!(check(&c(Prefix::Gt, "2023-02-01"), &onset));
        assert!(check(&c(Prefix::Lt, "2023-01-11"), &onset));
        assert!(check(&c(Prefix::Sa, "2023-01-09"), &onset));
        assert!(!check(&c(Prefix::Sa, "2023-01-10"), &onset));
        assert!(check(&c(Prefix::Eb, "2023-02-21"), &onset));
        assert!(!check(&c(Prefix::Eb, "2023-02-20"), &onset));
        // Comma-separated values are alternatives.
        let either = Condition::Param {
            code: "onset-date",
            test: Test::Date(vec![dv(Prefix::Eq, "2022"), dv(Prefix::Eq, "2023")]),
        };
        assert!(check(&either, &onset));
        // Another parameter's dates do not count.
        assert!(!check(
            &c(Prefix::Eq, "2023"),
            &[date("recorded-date", "2023-01-10", "2023-01-10")]
        ));
    }

    #[test]
    fn token_system_forms() {
        let entries = [
            token("code", Some(LOINC), "4548-4"),
            token("code", None, "local-1"),
        ];
        assert!(check(
            &token_test(vec![tv(TokenSystem::Any, Some("4548-4"))], false),
            &entries
        ));
        assert!(check(
            &token_test(
                vec![tv(TokenSystem::Is(LOINC.into()), Some("4548-4"))],
                false
            ),
            &entries
        ));
        assert!(!check(
            &token_test(
                vec![tv(
                    TokenSystem::Is("http://snomed.info/sct".into()),
                    Some("4548-4")
                )],
                false
            ),
            &entries
        ));
        assert!(check(
            &token_test(vec![tv(TokenSystem::Is(LOINC.into()), None)], false),
            &entries
        ));
        assert!(!check(
            &token_test(vec![tv(TokenSystem::None, Some("4548-4"))], false),
            &entries
        ));
        assert!(check(
            &token_test(vec![tv(TokenSystem::None, Some("local-1"))], false),
            &entries
        ));
        // Codes are case-sensitive.
        assert!(!check(
            &token_test(vec![tv(TokenSystem::Any, Some("LOCAL-1"))], false),
            &entries
        ));
    }

    #[test]
    fn token_not_means_no_matching_value_at_all() {
        let entries = [
            token("code", Some(LOINC), "4548-4"),
            token("code", Some(LOINC), "2345-7"),
        ];
        // One value differs, but another matches: :not excludes the resource.
        assert!(!check(
            &token_test(vec![tv(TokenSystem::Any, Some("4548-4"))], true),
            &entries
        ));
        assert!(check(
            &token_test(vec![tv(TokenSystem::Any, Some("718-7"))], true),
            &entries
        ));
        // No value at all: :not includes it.
        assert!(check(
            &token_test(vec![tv(TokenSystem::Any, Some("4548-4"))], true),
            &[]
        ));
    }

    #[test]
    fn strings_start_with_ignoring_case_and_accents_unless_exact() {
        let entries = [string("name", "Zoë O'Brien")];
        let c = |mode, v: &str| Condition::Param {
            code: "name",
            test: Test::String {
                values: vec![if mode == StringMode::Exact {
                    v.to_string()
                } else {
                    fhir::index::normalize_string(v)
                }],
                mode,
            },
        };
        assert!(check(&c(StringMode::StartsWith, "zoe"), &entries));
        assert!(check(&c(StringMode::StartsWith, "ZOË O"), &entries));
        assert!(!check(&c(StringMode::StartsWith, "brien"), &entries));
        assert!(check(&c(StringMode::Contains, "BRIEN"), &entries));
        assert!(!check(&c(StringMode::Contains, "briens"), &entries));
        assert!(check(&c(StringMode::Exact, "Zoë O'Brien"), &entries));
        assert!(!check(&c(StringMode::Exact, "Zoe O'Brien"), &entries));
        assert!(!check(&c(StringMode::Exact, "Zoë"), &entries));
    }

    #[test]
    fn quantities_use_the_precision_of_the_search_value() {
        // The tolerance, half a unit of the last decimal, as the number of decimals written.
        let q = |prefix, value: f64, tolerance: f64, code: Option<&str>| {
            let decimals = (0.5 / tolerance).log10().round() as u32;
            QuantityValue::new(
                prefix,
                value,
                decimals,
                code.map(|_| "http://unitsofmeasure.org".to_string()),
                code.map(str::to_string),
            )
        };
        let ucum = Some("http://unitsofmeasure.org");
        assert!(quantity_matches(
            &q(Prefix::Eq, 5.4, 0.05, None),
            5.44,
            ucum,
            Some("mmol/L")
        ));
        assert!(quantity_matches(
            &q(Prefix::Eq, 5.4, 0.05, None),
            5.35,
            ucum,
            Some("mmol/L")
        ));
        assert!(!quantity_matches(
            &q(Prefix::Eq, 5.4, 0.05, None),
            5.45,
            ucum,
            Some("mmol/L")
        ));
        assert!(!quantity_matches(
            &q(Prefix::Eq, 5.40, 0.005, None),
            5.44,
            ucum,
            Some("mmol/L")
        ));
        assert!(quantity_matches(
            &q(Prefix::Ne, 5.40, 0.005, None),
            5.44,
            ucum,
            Some("mmol/L")
        ));
        assert!(quantity_matches(
            &q(Prefix::Gt, 5.4, 0.05, None),
            5.41,
            ucum,
            Some("mmol/L")
        ));
        assert!(!quantity_matches(
            &q(Prefix::Gt, 5.4, 0.05, None),
            5.4,
            ucum,
            Some("mmol/L")
        ));
        assert!(quantity_matches(
            &q(Prefix::Ge, 5.4, 0.05, None),
            5.4,
            ucum,
            Some("mmol/L")
        ));
        assert!(quantity_matches(
            &q(Prefix::Le, 5.4, 0.05, None),
            5.4,
            ucum,
            Some("mmol/L")
        ));
        assert!(!quantity_matches(
            &q(Prefix::Lt, 5.4, 0.05, None),
            5.4,
            ucum,
            Some("mmol/L")
        ));
        assert!(quantity_matches(
            &q(Prefix::Eb, 5.4, 0.05, None),
            5.3,
            ucum,
            Some("mmol/L")
        ));
        assert!(quantity_matches(
            &q(Prefix::Sa, 5.4, 0.05, None),
            5.5,
            ucum,
            Some("mmol/L")
        ));
        // The bounds are the decimals written, not their nearest binary fractions.
        assert!(quantity_matches(
            &q(Prefix::Eq, 5.40, 0.005, None),
            5.395,
            ucum,
            None
        ));
        assert!(!quantity_matches(
            &q(Prefix::Eq, 5.40, 0.005, None),
            5.405,
            ucum,
            None
        ));
        assert!(quantity_matches(
            &q(Prefix::Eq, 5.0, 0.5, None),
            4.5,
            ucum,
            None
        ));
        assert!(!quantity_matches(
            &q(Prefix::Eq, 5.0, 0.5, None),
            5.5,
            ucum,
            None
        ));
        assert!(quantity_matches(
            &q(Prefix::Eq, -0.3, 0.05, None),
            -0.35,
            ucum,
            None
        ));
        assert!(!quantity_matches(
            &q(Prefix::Eq, -0.3, 0.05, None),
            -0.25,
            ucum,
            None
        ));
        assert!(quantity_matches(
            &q(Prefix::Ne, 5.4, 0.05, None),
            5.45,
            ucum,
            None
        ));
        assert!(quantity_matches(
            &q(Prefix::Eq, 120.0, 0.5, None),
            120.25,
            ucum,
            None
        ));
        // A given unit must match; a stored value without one never matches it.
        assert!(quantity_matches(
            &q(Prefix::Eq, 5.4, 0.05, Some("mmol/L")),
            5.4,
            ucum,
            Some("mmol/L")
        ));
        assert!(!quantity_matches(
            &q(Prefix::Eq, 5.4, 0.05, Some("mg/dL")),
            5.4,
            ucum,
            Some("mmol/L")
        ));
        assert!(!quantity_matches(
            &q(Prefix::Eq, 5.4, 0.05, Some("mmol/L")),
            5.4,
            None,
            None
        ));
    }

    #[test]
    fn decimals_are_read_from_the_shortest_text_of_a_double() {
        assert_eq!(
            Decimal::of(5.35),
            Some(Decimal {
                mantissa: 535,
                scale: 2
            })
        );
        assert_eq!(
            Decimal::of(-0.001),
            Some(Decimal {
                mantissa: -1,
                scale: 3
            })
        );
        assert_eq!(
            Decimal::of(100.0),
            Some(Decimal {
                mantissa: 100,
                scale: 0
            })
        );
        assert_eq!(Decimal::of(f64::NAN), None);
        assert_eq!(Decimal::of(1e300), None);
        assert_eq!(Decimal::of(5.35).and_then(|d| d.at(4)), Some(53500));
        assert_eq!(Decimal::of(5.35).and_then(|d| d.at(1)), None);
    }

    #[test]
    fn references_by_type_and_id_id_alone_or_url() {
        let entries = [reference("subject", "Patient", "p1")];
        let c = |v: ReferenceValue| Condition::Param {
            code: "subject",
            test: Test::Reference(vec![v]),
        };
        let local = |t: Option<&str>, id: &str| ReferenceValue::Local {
            resource_type: t.map(str::to_string),
            id: id.to_string(),
        };
        assert!(check(&c(local(Some("Patient"), "p1")), &entries));
        assert!(check(&c(local(None, "p1")), &entries));
        assert!(!check(&c(local(Some("Group"), "p1")), &entries));
        assert!(!check(&c(local(None, "p2")), &entries));
        assert!(check(
            &c(ReferenceValue::Url("Patient/p1".into())),
            &entries
        ));
        assert!(!check(
            &c(ReferenceValue::Url("http://elsewhere/Patient/p1".into())),
            &entries
        ));
    }

    #[test]
    fn missing_looks_for_any_value_of_the_parameter() {
        let entries = [quantity("value-quantity", 5.4, Some("mmol/L"))];
        let missing = |m| Condition::Missing {
            code: "value-quantity",
            param_type: ParamType::Quantity,
            missing: m,
        };
        assert!(check(&missing(false), &entries));
        assert!(!check(&missing(true), &entries));
        assert!(check(&missing(true), &[]));
        assert!(!check(&missing(false), &[token("code", None, "x")]));
    }

    #[test]
    fn id_and_last_updated() {
        assert!(check(&Condition::Id(vec!["o2".into(), "o1".into()]), &[]));
        assert!(!check(&Condition::Id(vec!["o2".into()]), &[]));
        // Last updated 2024-05-01T12:00:00Z.
        assert!(check(
            &Condition::LastUpdated(vec![dv(Prefix::Eq, "2024-05-01")]),
            &[]
        ));
        assert!(check(
            &Condition::LastUpdated(vec![dv(Prefix::Ge, "2024-05-01T12:00:00Z")]),
            &[]
        ));
        assert!(!check(
            &Condition::LastUpdated(vec![dv(Prefix::Gt, "2024-05-01T12:00:00Z")]),
            &[]
        ));
        assert!(check(
            &Condition::LastUpdated(vec![dv(Prefix::Lt, "2024-05-02")]),
            &[]
        ));
    }

    #[test]
    fn chains_follow_references_to_live_targets() {
        let patients = |ty: &str, id: &str| -> Option<(i64, Vec<IndexEntry>)> {
            match (ty, id) {
                ("Patient", "p1") => Some((0, vec![string("name", "Ada Lovelace")])),
                _ => None,
            }
        };
        let chain = |target: &'static str, name: &str| Condition::Chain {
            code: "subject",
            targets: vec![(
                target,
                Box::new(Condition::Param {
                    code: "name",
                    test: Test::String {
                        values: vec![name.to_string()],
                        mode: StringMode::StartsWith,
                    },
                }),
            )],
        };
        let on = |entries: &[IndexEntry], c: &Condition| {
            matches(c, "Observation", "o1", 0, entries, &patients)
        };
        let to_p1 = [reference("subject", "Patient", "p1")];
        assert!(on(&to_p1, &chain("Patient", "ada")));
        assert!(!on(&to_p1, &chain("Patient", "grace")));
        // The target must be of the chained type, and must exist (p2 is deleted or never was).
        assert!(!on(&to_p1, &chain("Group", "ada")));
        assert!(!on(
            &[reference("subject", "Patient", "p2")],
            &chain("Patient", "ada")
        ));
        assert!(!on(
            &[reference("performer", "Patient", "p1")],
            &chain("Patient", "ada")
        ));
    }
}
