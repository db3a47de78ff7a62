//! The codes that make an item restricted or sensitive: the one table [`crate::labels`] reads.
//!
//! Matching is exact (no SNOMED CT subsumption: the policy has no terminology server). Items
//! coded with a descendant concept are caught only if their writer also labels them in
//! `meta.security` — which is what Portico's own forms do.
//!
//! - **restricted**: hidden from every proxy and from staff outside the authoring organisation:
//!   sexual health and safeguarding.
//! - **sensitive**: additionally hidden from the parents of 11–15-year-olds unless a clinician
//!   allows it: mental health, substance misuse, contraception, pregnancy and its termination.
//!   Every restricted item is sensitive too.

/// HL7 v3 Confidentiality (meta.security).
pub const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// HL7 v3 ActCode, whose `_ActInformationSensitivityPolicy` codes label sensitive items.
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// The pre-R4 URIs of the same two systems, still found in imported data.
pub const CONFIDENTIALITY_LEGACY: &str = "http://hl7.org/fhir/v3/Confidentiality";
pub const ACT_CODE_LEGACY: &str = "http://hl7.org/fhir/v3/ActCode";
/// SNOMED CT.
pub const SNOMED_CT: &str = "http://snomed.info/sct";
/// ODS organisation codes; Portico tags (`meta.tag`) what staff and systems write with this.
pub const ODS_ORGANISATION: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// Confidentiality codes that restrict.
pub const RESTRICTED_CONFIDENTIALITY: &[&str] = &[
    "R", // restricted
    "V", // very restricted
];

/// ActCode sensitivity codes that restrict (sexual health and safeguarding).
pub const RESTRICTED_ACT_CODES: &[&str] = &[
    "HIV", // HIV/AIDS information sensitivity
    "STD", // sexually transmitted disease information sensitivity
    "SDV", // sexual assault, abuse, or domestic violence information sensitivity
    "SEX", // sexuality and reproductive health information sensitivity
];

/// ActCode sensitivity codes that make an item sensitive (not restricted).
pub const SENSITIVE_ACT_CODES: &[&str] = &[
    "PSY",  // psychiatry information sensitivity
    "ETH",  // substance abuse information sensitivity
    "GDIS", // genetic disease information sensitivity
    "TBOO", // taboo
];

// Sexual health.
pub const HIV_INFECTION: &str = "86406008"; // Human immunodeficiency virus infection (disorder)
pub const HIV_POSITIVE: &str = "165816005"; // Human immunodeficiency virus detected (finding)
pub const SEXUALLY_TRANSMITTED_INFECTION: &str = "8098009"; // Sexually transmitted infectious disease (disorder)
pub const SYPHILIS: &str = "76272004"; // Syphilis (disorder)
pub const GONORRHOEA: &str = "15628003"; // Gonorrhea (disorder)
pub const CHLAMYDIA: &str = "105629000"; // Chlamydial infection (disorder)

// Safeguarding (UK codes from the RCGP safeguarding list and the NHS BaRS safeguarding codes).
pub const CHILD_SAFEGUARDING_CONCERN: &str = "836881000000105"; // Child is cause for safeguarding concern (finding)
pub const CHILD_IN_FAMILY_SAFEGUARDING_CONCERN: &str = "1064961000000107"; // Child in family is safeguarding concern (situation)
pub const UNBORN_CHILD_SAFEGUARDING_CONCERN: &str = "878111000000109"; // Unborn child is cause for safeguarding concern (finding)
pub const CHILD_PROTECTION_PLAN: &str = "342191000000101"; // Subject to child protection plan (finding)
pub const SUSPECTED_CHILD_NEGLECT: &str = "702953007"; // Suspected victim of child neglect (situation)
pub const ALLEGED_SEXUAL_ASSAULT: &str = "297591000000108"; // Alleged victim of sexual assault (situation)
pub const SUSPECTED_SEXUAL_ABUSE: &str = "702579009"; // Suspected victim of sexual abuse (situation)
pub const SUSPECTED_DOMESTIC_ABUSE: &str = "697950003"; // Suspected domestic abuse (situation)
pub const AT_RISK_OF_DOMESTIC_VIOLENCE: &str = "707087005"; // At risk of domestic violence (finding)
pub const DOMESTIC_ABUSE_IN_HOUSEHOLD: &str = "881081000000100"; // Domestic abuse victim in household (finding)
pub const AT_RISK_OF_FORCED_MARRIAGE: &str = "1054321000000100"; // At risk of forced marriage (finding)
pub const AT_RISK_OF_HONOUR_BASED_VIOLENCE: &str = "736792008"; // At risk of honor based violence (finding)
pub const VULNERABLE_ADULT: &str = "417430008"; // Vulnerable adult (finding)

/// SNOMED CT concepts that restrict.
pub const RESTRICTED_SNOMED: &[&str] = &[
    HIV_INFECTION,
    HIV_POSITIVE,
    SEXUALLY_TRANSMITTED_INFECTION,
    SYPHILIS,
    GONORRHOEA,
    CHLAMYDIA,
    CHILD_SAFEGUARDING_CONCERN,
    CHILD_IN_FAMILY_SAFEGUARDING_CONCERN,
    UNBORN_CHILD_SAFEGUARDING_CONCERN,
    CHILD_PROTECTION_PLAN,
    SUSPECTED_CHILD_NEGLECT,
    ALLEGED_SEXUAL_ASSAULT,
    SUSPECTED_SEXUAL_ABUSE,
    SUSPECTED_DOMESTIC_ABUSE,
    AT_RISK_OF_DOMESTIC_VIOLENCE,
    DOMESTIC_ABUSE_IN_HOUSEHOLD,
    AT_RISK_OF_FORCED_MARRIAGE,
    AT_RISK_OF_HONOUR_BASED_VIOLENCE,
    VULNERABLE_ADULT,
];

// Mental health.
pub const MENTAL_DISORDER: &str = "74732009"; // Mental disorder (disorder)
pub const DEPRESSIVE_DISORDER: &str = "35489007"; // Depressive disorder (disorder)
pub const PSYCHOTIC_DISORDER: &str = "69322001"; // Psychotic disorder (disorder)
pub const AT_RISK_OF_SELF_HARM: &str = "401206008"; // At risk for deliberate self harm (finding)
                                                    // Contraception, pregnancy and termination.
pub const CONTRACEPTION: &str = "13197004"; // Contraception (finding)
pub const PREGNANCY: &str = "77386006"; // Pregnancy (finding)
pub const TERMINATION_OF_PREGNANCY: &str = "57797005"; // Induced termination of pregnancy (procedure)
                                                       // Substance misuse.
pub const SUBSTANCE_ABUSE: &str = "66214007"; // Substance abuse (disorder)
pub const ALCOHOLISM: &str = "7200002"; // Alcoholism (disorder)

/// SNOMED CT concepts that make an item sensitive (not restricted).
pub const SENSITIVE_SNOMED: &[&str] = &[
    MENTAL_DISORDER,
    DEPRESSIVE_DISORDER,
    PSYCHOTIC_DISORDER,
    AT_RISK_OF_SELF_HARM,
    CONTRACEPTION,
    PREGNANCY,
    TERMINATION_OF_PREGNANCY,
    SUBSTANCE_ABUSE,
    ALCOHOLISM,
];

/// How one coded value labels the item that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sensitivity {
    Ordinary,
    Sensitive,
    Restricted,
}

/// The sensitivity one (system, code) pair confers.
pub fn sensitivity(system: &str, code: &str) -> Sensitivity {
    let (restricted, sensitive): (&[&str], &[&str]) = match system {
        CONFIDENTIALITY | CONFIDENTIALITY_LEGACY => (RESTRICTED_CONFIDENTIALITY, &[]),
        ACT_CODE | ACT_CODE_LEGACY => (RESTRICTED_ACT_CODES, SENSITIVE_ACT_CODES),
        SNOMED_CT => (RESTRICTED_SNOMED, SENSITIVE_SNOMED),
        _ => return Sensitivity::Ordinary,
    };
    if restricted.contains(&code) {
        Sensitivity::Restricted
    } else if sensitive.contains(&code) {
        Sensitivity::Sensitive
    } else {
        Sensitivity::Ordinary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidentiality_r_and_v_restrict_but_n_does_not() {
        assert_eq!(sensitivity(CONFIDENTIALITY, "R"), Sensitivity::Restricted);
        assert_eq!(sensitivity(CONFIDENTIALITY, "V"), Sensitivity::Restricted);
        assert_eq!(sensitivity(CONFIDENTIALITY, "N"), Sensitivity::Ordinary);
        assert_eq!(
            sensitivity(CONFIDENTIALITY_LEGACY, "R"),
            Sensitivity::Restricted
        );
    }

    #[test]
    fn codes_count_only_in_their_own_system() {
        assert_eq!(sensitivity(SNOMED_CT, "R"), Sensitivity::Ordinary);
        assert_eq!(sensitivity(ACT_CODE, HIV_INFECTION), Sensitivity::Ordinary);
        assert_eq!(
            sensitivity("http://loinc.org", HIV_INFECTION),
            Sensitivity::Ordinary
        );
        assert_eq!(
            sensitivity(SNOMED_CT, HIV_INFECTION),
            Sensitivity::Restricted
        );
    }

    #[test]
    fn act_codes_split_into_restricted_and_sensitive() {
        for c in RESTRICTED_ACT_CODES {
            assert_eq!(sensitivity(ACT_CODE, c), Sensitivity::Restricted, "{c}");
        }
        for c in SENSITIVE_ACT_CODES {
            assert_eq!(sensitivity(ACT_CODE, c), Sensitivity::Sensitive, "{c}");
        }
    }

    #[test]
    fn the_tables_do_not_overlap() {
        for c in SENSITIVE_SNOMED {
            assert!(!RESTRICTED_SNOMED.contains(c), "{c}");
            assert!(c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
        for c in RESTRICTED_SNOMED {
            assert!(c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
        for c in SENSITIVE_ACT_CODES {
            assert!(!RESTRICTED_ACT_CODES.contains(c), "{c}");
        }
    }
}
