//! The SQL of the access policy's filter: a condition on a row that holds exactly when
//! `Filter::admits` would admit the row's resource, read from the access index entries and
//! per-version facts of [`crate::access`], and the relationships of [`crate::relationships`].

use policy::{Filter, PatientScope, RestrictedRule};

use super::Builder;
use crate::access::{
    self, Access, AUTHOR_PARAM, BINARY_PARAM, LABEL_ORDINARY, LABEL_PARAM, LABEL_RESTRICTED,
    LABEL_SENSITIVE, ODS_SYSTEM, PATIENT_PARAM, REFUSES_PARAM,
};
use crate::relationships::{Relationship, ENTERED_IN_ERROR, RELATIONSHIPS};

/// Where the facts of the row `alias` are read from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Facts<'a> {
    /// `alias` is a row of `resources` (a current version): its access index rows.
    Current(&'a str),
    /// `alias` has the columns of a version (`res_type`, `res_id`, `version_id`, `deleted`), of
    /// `resources` or `resource_history`: the facts of that version — its index rows while it
    /// is current, its `history_access` rows once it is not; a deletion has the facts of the
    /// version it deleted.
    Version(&'a str),
}

impl Facts<'_> {
    fn alias(&self) -> &str {
        match self {
            Facts::Current(a) | Facts::Version(a) => a,
        }
    }
}

/// How a type's rows are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Also in its own compartment, by id.
    Patient,
    /// Through the DocumentReferences naming it.
    Binary,
    Other,
}

fn kind_of(resource_type: &str) -> Kind {
    match resource_type {
        "Patient" => Kind::Patient,
        "Binary" => Kind::Binary,
        _ => Kind::Other,
    }
}

/// Appends ` AND …` restricting the rows `facts` of `resource_type` to those `filter` admits
/// (nothing when it admits every row).
pub(super) fn restrict(b: &mut Builder, facts: Facts<'_>, resource_type: &str, filter: &Filter) {
    if access::is_everything(filter) {
        return;
    }
    b.push(" AND ");
    admitted(
        b,
        facts,
        kind_of(resource_type),
        Some(resource_type),
        filter,
    );
}

/// Appends ` AND …` restricting rows `facts` of any type to those their type's filter in
/// `access` admits (nothing when every filter admits every row).
pub(super) fn restrict_any(b: &mut Builder, facts: Facts<'_>, access: &Access) {
    if access.is_everything() {
        return;
    }
    let alias = facts.alias().to_string();
    // Named types, grouped by how they are judged.
    let mut groups: Vec<(Kind, &Filter, Vec<String>)> = Vec::new();
    let mut named: Vec<String> = Vec::new();
    for (resource_type, filter) in access.named() {
        named.push(resource_type.to_string());
        let kind = kind_of(resource_type);
        match groups
            .iter_mut()
            .find(|(k, f, _)| *k == kind && *f == filter)
        {
            Some((_, _, types)) => types.push(resource_type.to_string()),
            None => groups.push((kind, filter, vec![resource_type.to_string()])),
        }
    }
    // The other types, under `otherwise`: Patient and Binary each on their own.
    let otherwise = access.otherwise();
    for (kind, special) in [(Kind::Patient, "Patient"), (Kind::Binary, "Binary")] {
        if !named.iter().any(|t| t == special) {
            groups.push((kind, otherwise, vec![special.to_string()]));
        }
    }
    b.push(" AND (");
    for (i, (kind, filter, types)) in groups.iter().enumerate() {
        if i > 0 {
            b.push(" OR ");
        }
        b.push("(").push(&alias).push(".res_type IN ").list(types);
        if !access::is_everything(filter) {
            b.push(" AND ");
            admitted(b, facts, *kind, None, filter);
        }
        b.push(")");
    }
    let mut excluded = named;
    excluded.extend(["Patient".to_string(), "Binary".to_string()]);
    b.push(" OR (")
        .push(&alias)
        .push(".res_type NOT IN ")
        .list(&excluded);
    if !access::is_everything(otherwise) {
        b.push(" AND ");
        admitted(b, facts, Kind::Other, None, otherwise);
    }
    b.push("))");
}

/// Whether `filter` admits the row. `drive_type`: the row's type, when the patient condition
/// may be written as `rid IN (…)` so that the database can start from the compartment's index
/// rows (a patient's own records) instead of checking every row of the type.
fn admitted(
    b: &mut Builder,
    facts: Facts<'_>,
    kind: Kind,
    drive_type: Option<&str>,
    filter: &Filter,
) {
    if kind == Kind::Binary {
        binary(b, facts, filter);
        return;
    }
    b.push("(");
    patients(b, facts, kind, drive_type, &filter.patients);
    b.push(" AND ");
    labels(b, facts, filter);
    b.push(")");
}

/// The patient part of the filter.
fn patients(
    b: &mut Builder,
    facts: Facts<'_>,
    kind: Kind,
    drive_type: Option<&str>,
    scope: &PatientScope,
) {
    let alias = facts.alias().to_string();
    match scope {
        PatientScope::Any => {
            b.push("1 = 1");
        }
        PatientScope::None => {
            b.push("1 = 0");
        }
        PatientScope::Only(ids) if ids.is_empty() => {
            b.push("1 = 0");
        }
        PatientScope::Only(ids) => {
            b.push("(");
            if kind == Kind::Patient {
                b.push(&alias).push(".res_id IN ").list(ids).push(" OR ");
            }
            match (facts, drive_type) {
                (Facts::Current(_), Some(resource_type)) => {
                    b.push(&alias).push(".rid IN (");
                    compartment_rids(b, resource_type, ids);
                    b.push(")");
                }
                (Facts::Version(_), Some(resource_type)) => {
                    // Only resources that were ever in the compartment can have a version in
                    // it: a cheap first test before each version's own facts.
                    b.push(&alias)
                        .push(
                            ".res_id IN (SELECT f.res_id FROM history_access f WHERE f.res_type = ",
                        )
                        .text(resource_type)
                        .push(" AND f.param = ")
                        .text(PATIENT_PARAM)
                        .push(" AND f.value IN ")
                        .list(ids)
                        .push(" UNION ALL SELECT fc.res_id FROM resources fc WHERE fc.res_type = ")
                        .text(resource_type)
                        .push(" AND fc.rid IN (");
                    compartment_rids(b, resource_type, ids);
                    b.push(")) AND ");
                    fact_exists(b, facts, FactTable::Patient, PATIENT_PARAM, &|b, col| {
                        b.push(col).push(" IN ").list(ids);
                    });
                }
                _ => fact_exists(b, facts, FactTable::Patient, PATIENT_PARAM, &|b, col| {
                    b.push(col).push(" IN ").list(ids);
                }),
            }
            b.push(")");
        }
        PatientScope::RelatedTo(ods) => {
            let reachable = |b: &mut Builder, col: &str| {
                let (open, close) = b.d.member_of(false);
                b.push(col).push(open);
                related_patients(b, ods);
                b.push(close).push(" AND ").push(col);
                let (open, close) = b.d.member_of(true);
                b.push(open);
                refusing_patients(b, ods);
                b.push(close);
            };
            b.push("(");
            if kind == Kind::Patient {
                b.push("(");
                reachable(b, &format!("{alias}.res_id"));
                b.push(") OR ");
            }
            match (facts, drive_type) {
                // One uncorrelated set of rows, computed once, rather than a lookup per row
                // that a planner without statistics may run the relationship query for.
                (Facts::Current(_), Some(resource_type)) => {
                    b.push(&alias)
                        .push(".rid IN (SELECT f.rid FROM idx_reference f WHERE f.res_type = ")
                        .text(resource_type)
                        .push(" AND f.param = ")
                        .text(PATIENT_PARAM)
                        .push(" AND f.target_type = 'Patient' AND ");
                    reachable(b, "f.target_id");
                    b.push(")");
                }
                _ => fact_exists(b, facts, FactTable::Patient, PATIENT_PARAM, &reachable),
            }
            b.push(")");
        }
    }
}

/// `SELECT rid` of the current resources of `resource_type` in the compartments of `ids`.
fn compartment_rids(b: &mut Builder, resource_type: &str, ids: &[String]) {
    b.push("SELECT f.rid FROM idx_reference f WHERE f.res_type = ")
        .text(resource_type)
        .push(" AND f.param = ")
        .text(PATIENT_PARAM)
        .push(" AND f.target_id IN ")
        .list(ids)
        .push(" AND f.target_type = 'Patient'");
}

/// The label part of the filter. Every indexed resource has one label level; a filter that
/// hides anything admits only the levels it knows are allowed, so a row without one is hidden.
fn labels(b: &mut Builder, facts: Facts<'_>, filter: &Filter) {
    let level_in = |levels: &'static [&'static str]| {
        move |b: &mut Builder, col: &str| {
            b.push(col).push(" IN (");
            for (i, level) in levels.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.text(level);
            }
            b.push(")");
        }
    };
    if filter.hide_sensitive {
        // Restricted items are sensitive too.
        fact_exists(
            b,
            facts,
            FactTable::Label,
            LABEL_PARAM,
            &level_in(&[LABEL_ORDINARY]),
        );
        return;
    }
    match &filter.hide_restricted {
        RestrictedRule::Show => {
            b.push("1 = 1");
        }
        RestrictedRule::Hide => fact_exists(
            b,
            facts,
            FactTable::Label,
            LABEL_PARAM,
            &level_in(&[LABEL_ORDINARY, LABEL_SENSITIVE]),
        ),
        RestrictedRule::HideUnlessAuthor(ods) => {
            b.push("(");
            fact_exists(
                b,
                facts,
                FactTable::Label,
                LABEL_PARAM,
                &level_in(&[LABEL_ORDINARY, LABEL_SENSITIVE]),
            );
            b.push(" OR (");
            fact_exists(
                b,
                facts,
                FactTable::Label,
                LABEL_PARAM,
                &level_in(&[LABEL_RESTRICTED]),
            );
            b.push(" AND ");
            fact_exists(b, facts, FactTable::Label, AUTHOR_PARAM, &|b, col| {
                b.push(col).push(" = ").text(ods);
            });
            b.push("))");
        }
    }
}

/// A Binary: admitted through a current DocumentReference naming it that the filter admits;
/// with none, by its own facts (no patients, its own labels). A version of a Binary is judged
/// by the current Binary.
fn binary(b: &mut Builder, facts: Facts<'_>, filter: &Filter) {
    let alias = match facts {
        Facts::Version(alias) => {
            b.push(
                "EXISTS (SELECT 1 FROM resources bc WHERE bc.res_type = 'Binary' AND bc.res_id = ",
            )
            .push(alias)
            .push(".res_id AND bc.deleted = 0 AND ");
            binary(b, Facts::Current("bc"), filter);
            b.push(")");
            return;
        }
        Facts::Current(alias) => alias,
    };
    let naming = |b: &mut Builder| {
        b.push("FROM idx_reference bl WHERE bl.res_type = 'DocumentReference' AND bl.param = ")
            .text(BINARY_PARAM)
            .push(" AND bl.target_id = ")
            .push(alias)
            .push(".res_id AND bl.target_type = 'Binary'");
    };
    b.push("(EXISTS (SELECT 1 ");
    naming(b);
    b.push(" AND EXISTS (SELECT 1 FROM resources bd WHERE bd.rid = bl.rid AND ");
    admitted(b, Facts::Current("bd"), Kind::Other, None, filter);
    b.push("))");
    // Without documents a Binary is in nobody's compartment: only `Any` can admit it.
    if filter.patients == PatientScope::Any {
        b.push(" OR (NOT EXISTS (SELECT 1 ");
        naming(b);
        b.push(") AND ");
        labels(b, facts, filter);
        b.push(")");
    }
    b.push(")");
}

/// Which access rows a fact is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FactTable {
    /// Label and author tokens (`idx_token.code`).
    Label,
    /// Compartment patients (`idx_reference.target_id`).
    Patient,
}

/// `EXISTS` a fact of the row under `param` whose value passes `test` (given the value's
/// column).
fn fact_exists(
    b: &mut Builder,
    facts: Facts<'_>,
    table: FactTable,
    param: &str,
    test: &dyn Fn(&mut Builder, &str),
) {
    let (index_table, column, kind_test) = match table {
        FactTable::Label => ("idx_token", "f.code", ""),
        FactTable::Patient => (
            "idx_reference",
            "f.target_id",
            " AND f.target_type = 'Patient'",
        ),
    };
    match facts {
        Facts::Current(alias) => {
            b.push("EXISTS (SELECT 1 FROM ")
                .push(index_table)
                .push(" f WHERE f.rid = ")
                .push(alias)
                .push(".rid AND f.param = ")
                .text(param)
                .push(kind_test)
                .push(" AND ");
            test(b, column);
            b.push(")");
        }
        Facts::Version(alias) => {
            let fact_version = format!(
                "CASE WHEN {alias}.deleted = 1 THEN {alias}.version_id - 1 ELSE {alias}.version_id END"
            );
            b.push("(EXISTS (SELECT 1 FROM resources fc JOIN ")
                .push(index_table)
                .push(" f ON f.rid = fc.rid WHERE fc.res_type = ")
                .push(alias)
                .push(".res_type AND fc.res_id = ")
                .push(alias)
                .push(".res_id AND fc.version_id = ")
                .push(&fact_version)
                .push(" AND f.param = ")
                .text(param)
                .push(kind_test)
                .push(" AND ");
            test(b, column);
            b.push(") OR EXISTS (SELECT 1 FROM history_access f WHERE f.res_type = ")
                .push(alias)
                .push(".res_type AND f.res_id = ")
                .push(alias)
                .push(".res_id AND f.version_id = ")
                .push(&fact_version)
                .push(" AND f.param = ")
                .text(param)
                .push(" AND ");
            test(b, "f.value");
            b.push("))");
        }
    }
}

/// `SELECT` of the ids of the Patients [`RELATIONSHIPS`] relate to the organisation with ODS
/// code `ods` (the same rules as [`crate::relationships::related_organisations`]).
fn related_patients(b: &mut Builder, ods: &str) {
    for (i, rel) in RELATIONSHIPS.iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        // `rp`: the Patient itself, or the relationship's index row naming the Patient.
        match rel.patient_param {
            None => {
                b.push("SELECT rp.res_id FROM resources rp WHERE rp.res_type = ")
                    .text(rel.resource_type)
                    .push(" AND rp.deleted = 0 AND rp.rid IN (");
            }
            Some(param) => {
                b.push("SELECT rp.target_id FROM idx_reference rp WHERE rp.res_type = ")
                    .text(rel.resource_type)
                    .push(" AND rp.param = ")
                    .text(param)
                    .push(" AND rp.target_type = 'Patient' AND rp.target_id IS NOT NULL AND rp.rid IN (");
            }
        }
        naming_organisation(b, rel, ods);
        b.push(")");
        if rel.has_status() {
            b.push(" AND NOT EXISTS (SELECT 1 FROM idx_token rs WHERE rs.rid = rp.rid AND rs.param = 'status' AND rs.code = ")
                .text(ENTERED_IN_ERROR)
                .push(")");
        }
    }
}

/// `SELECT rid` of the resources of `rel` that name the organisation, directly or through the
/// hop.
fn naming_organisation(b: &mut Builder, rel: &Relationship, ods: &str) {
    b.push("SELECT ro.rid FROM idx_reference ro WHERE ro.res_type = ")
        .text(rel.resource_type)
        .push(" AND ro.param = ")
        .text(rel.organisation_param)
        .push(" AND ro.target_type = ")
        .text(rel.points_at())
        .push(" AND ro.target_id IN (");
    match rel.hop {
        None => organisations_with_code(b, ods),
        Some(hop) => {
            b.push("SELECT rh.res_id FROM resources rh WHERE rh.res_type = ")
                .text(hop.resource_type)
                .push(" AND rh.rid IN (SELECT rho.rid FROM idx_reference rho WHERE rho.res_type = ")
                .text(hop.resource_type)
                .push(" AND rho.param = ")
                .text(hop.organisation_param)
                .push(" AND rho.target_type = 'Organization' AND rho.target_id IN (");
            organisations_with_code(b, ods);
            b.push("))");
        }
    }
    b.push(")");
}

/// `SELECT` of the ids of the current Organizations whose ODS code is `ods`.
fn organisations_with_code(b: &mut Builder, ods: &str) {
    b.push("SELECT og.res_id FROM resources og WHERE og.res_type = 'Organization' AND og.rid IN (SELECT ot.rid FROM idx_token ot WHERE ot.res_type = 'Organization' AND ot.param = 'identifier' AND ot.code = ")
        .text(ods)
        .push(" AND ot.system = ")
        .text(ODS_SYSTEM)
        .push(")");
}

/// `SELECT` of the ids of the Patients whose active Consents refuse the organisation with ODS
/// code `ods` ([`crate::access::consent_refusals`]).
fn refusing_patients(b: &mut Builder, ods: &str) {
    b.push("SELECT cp.target_id FROM idx_reference cp WHERE cp.res_type = 'Consent' AND cp.param = 'patient' AND cp.target_type = 'Patient' AND cp.target_id IS NOT NULL AND cp.rid IN (SELECT cr.rid FROM idx_reference cr WHERE cr.res_type = 'Consent' AND cr.param = ")
        .text(REFUSES_PARAM)
        .push(" AND cr.target_type = 'Organization' AND cr.target_id IN (");
    organisations_with_code(b, ods);
    b.push("))");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{PostgresDialect, SqliteDialect};

    fn text_of(f: impl Fn(&mut Builder)) -> (String, usize) {
        let mut b = Builder::new(&SqliteDialect);
        f(&mut b);
        let sql = b.finish();
        (sql.text, sql.params.len())
    }

    #[test]
    fn everything_adds_nothing() {
        let (text, n) =
            text_of(|b| restrict(b, Facts::Current("r"), "Observation", &Filter::everything()));
        assert_eq!((text.as_str(), n), ("", 0));
        let (text, _) = text_of(|b| restrict_any(b, Facts::Current("r"), &Access::everything()));
        assert_eq!(text, "");
    }

    #[test]
    fn nothing_admits_no_row() {
        let (text, _) =
            text_of(|b| restrict(b, Facts::Current("r"), "Observation", &Filter::nothing()));
        assert!(text.starts_with(" AND (1 = 0 AND "), "{text}");
    }

    #[test]
    fn one_patients_rows_are_found_from_the_compartment_index() {
        let only = Filter {
            patients: PatientScope::Only(vec!["a".into()]),
            ..Filter::everything()
        };
        let (text, _) = text_of(|b| restrict(b, Facts::Current("r"), "Observation", &only));
        assert!(
            text.contains("r.rid IN (SELECT f.rid FROM idx_reference f"),
            "{text}"
        );
        let (text, _) = text_of(|b| restrict(b, Facts::Current("r"), "Patient", &only));
        assert!(text.contains("r.res_id IN (?"), "{text}");
    }

    #[test]
    fn placeholders_are_numbered_in_order_on_both_dialects() {
        let filter = Filter {
            patients: PatientScope::RelatedTo("A81001".into()),
            hide_restricted: RestrictedRule::HideUnlessAuthor("A81001".into()),
            hide_sensitive: false,
        };
        let access = Access::uniform(filter).with("Practitioner", Filter::everything());
        for facts in [Facts::Current("r"), Facts::Version("h")] {
            let mut b = Builder::new(&PostgresDialect);
            restrict_any(&mut b, facts, &access);
            let sql = b.finish();
            for n in 1..=sql.params.len() {
                assert!(sql.text.contains(&format!("${n}")), "${n} missing");
            }
            assert!(!sql.text.contains(&format!("${}", sql.params.len() + 1)));
            assert_eq!(sql.text.matches('(').count(), sql.text.matches(')').count());
        }
    }
}
