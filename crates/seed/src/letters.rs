//! The text of clinic letters and discharge summaries: short, plausible, and entirely made up.

use chrono::NaiveDate;

/// What a letter says, in sections.
pub(crate) struct Letter {
    pub title: String,
    pub sections: Vec<(String, String)>,
    pub sign_off: String,
}

fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// Who a letter is about, as its heading names them.
pub(crate) struct Patient {
    pub name: String,
    pub birth: NaiveDate,
    pub nhs: String,
    pub address: String,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn clinic_letter(
    trust: &str,
    clinic: &str,
    patient: &Patient,
    gp: &str,
    practice: &str,
    consultant: &str,
    seen: NaiveDate,
    first: bool,
    diagnoses: &[&str],
    medicines: &[&str],
    findings: &str,
    plan: &str,
) -> Letter {
    let visit = if first { "new patient" } else { "follow-up" };
    Letter {
        title: format!("{clinic} clinic letter"),
        sections: vec![
            (
                String::new(),
                format!(
                    "{trust}\n{clinic} Outpatients\n\nTo: {gp}, {practice}\n\nRe: {}, born {}, NHS number {}\n{}",
                    patient.name,
                    long_date(patient.birth),
                    patient.nhs,
                    patient.address
                ),
            ),
            ("Diagnoses".into(), list(diagnoses, "No new diagnosis")),
            ("Current medication".into(), list(medicines, "None")),
            (
                "Clinical summary".into(),
                format!(
                    "Dear {gp},\n\nI saw {} in the {} clinic on {} as a {visit} appointment. {findings}",
                    patient.name,
                    clinic.to_lowercase(),
                    long_date(seen)
                ),
            ),
            ("Plan".into(), plan.to_string()),
        ],
        sign_off: format!("Yours sincerely,\n\n{consultant}\n{clinic}\n\nCopy to: the patient"),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn discharge_summary(
    trust: &str,
    hospital: &str,
    patient: &Patient,
    gp: &str,
    practice: &str,
    physician: &str,
    admitted: NaiveDate,
    discharged: NaiveDate,
    reason: &str,
    medicines: &[&str],
) -> Letter {
    Letter {
        title: "Discharge summary".into(),
        sections: vec![
            (
                String::new(),
                format!(
                    "{trust}\n{hospital}\n\nTo: {gp}, {practice}\n\nRe: {}, born {}, NHS number {}\n{}",
                    patient.name,
                    long_date(patient.birth),
                    patient.nhs,
                    patient.address
                ),
            ),
            (
                "Admission".into(),
                format!(
                    "Admitted as an emergency on {} with {}; discharged home on {}.",
                    long_date(admitted),
                    reason.to_lowercase(),
                    long_date(discharged)
                ),
            ),
            ("Diagnosis".into(), reason.to_string()),
            ("Medication on discharge".into(), list(medicines, "No regular medication")),
            (
                "Actions for the GP".into(),
                "Please review in the practice within two weeks and repeat the blood tests (full blood count, urea and electrolytes)."
                    .into(),
            ),
        ],
        sign_off: format!("{physician}\nAcute Medicine"),
    }
}

fn list(items: &[&str], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items
            .iter()
            .map(|i| format!("- {i}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Letter {
    pub(crate) fn plain(&self) -> String {
        let mut out = String::new();
        for (heading, body) in &self.sections {
            if !heading.is_empty() {
                out.push_str(heading);
                out.push('\n');
            }
            out.push_str(body);
            out.push_str("\n\n");
        }
        out.push_str(&self.sign_off);
        out.push('\n');
        out
    }

    pub(crate) fn html(&self) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n",
            escape(&self.title)
        );
        for (heading, body) in &self.sections {
            if !heading.is_empty() {
                out.push_str(&format!("<h2>{}</h2>\n", escape(heading)));
            }
            for para in body.split("\n\n") {
                out.push_str(&format!("<p>{}</p>\n", escape(para).replace('\n', "<br>")));
            }
        }
        out.push_str(&format!(
            "<p>{}</p>\n</body></html>\n",
            escape(&self.sign_off).replace('\n', "<br>")
        ));
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_letters_escape_names() {
        let p = Patient {
            name: "Siobhan O'Brien <x>".into(),
            birth: NaiveDate::from_ymd_opt(1950, 1, 2).expect("date"),
            nhs: "999 000 0018".into(),
            address: "1 Elm Grove".into(),
        };
        let l = clinic_letter(
            "T",
            "Cardiology",
            &p,
            "Dr A",
            "P",
            "Dr B",
            p.birth,
            true,
            &[],
            &[],
            "Well.",
            "Discharge.",
        );
        assert!(l.html().contains("&lt;x&gt;"));
        assert!(l.plain().contains("born 2 January 1950"));
    }
}
