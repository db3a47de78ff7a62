//! The clinical vocabulary of the region: long-term conditions and what follows from them,
//! medicines (dm+d), laboratory tests (LOINC), vaccines, allergies, acute problems and hospital
//! specialties (SNOMED CT).
//!
//! Codes are the ones these concepts carry in their terminologies as far as we know them; the
//! dm+d codes are virtual medicinal products chosen to look right, not checked against a dm+d
//! release, so nothing clinical should rely on them.

/// Age bands the prevalence tables are given for: 0–17, 18–39, 40–59, 60–74, 75+.
pub(crate) fn age_band(age: i64) -> usize {
    match age {
        i64::MIN..=17 => 0,
        18..=39 => 1,
        40..=59 => 2,
        60..=74 => 3,
        _ => 4,
    }
}

/// A medicine as a GP prescribes it.
pub(crate) struct Medicine {
    pub dmd: &'static str,
    pub name: &'static str,
    pub dosage: &'static str,
    pub quantity: u32,
    pub unit: &'static str,
    /// Days one issue lasts.
    pub days: u32,
}

const fn med(
    dmd: &'static str,
    name: &'static str,
    dosage: &'static str,
    quantity: u32,
    unit: &'static str,
    days: u32,
) -> Medicine {
    Medicine {
        dmd,
        name,
        dosage,
        quantity,
        unit,
        days,
    }
}

pub(crate) static METFORMIN: Medicine = med(
    "325278007",
    "Metformin 500mg tablets",
    "Take one tablet twice a day with meals",
    112,
    "tablet",
    56,
);
pub(crate) static GLICLAZIDE: Medicine = med(
    "325238006",
    "Gliclazide 80mg tablets",
    "Take one tablet twice a day with breakfast and evening meal",
    112,
    "tablet",
    56,
);
pub(crate) static SITAGLIPTIN: Medicine = med(
    "413567003",
    "Sitagliptin 100mg tablets",
    "Take one tablet once a day",
    28,
    "tablet",
    28,
);
pub(crate) static AMLODIPINE: Medicine = med(
    "319283006",
    "Amlodipine 5mg tablets",
    "Take one tablet once a day",
    56,
    "tablet",
    56,
);
pub(crate) static RAMIPRIL: Medicine = med(
    "318904006",
    "Ramipril 5mg capsules",
    "Take one capsule once a day",
    56,
    "capsule",
    56,
);
pub(crate) static INDAPAMIDE: Medicine = med(
    "317925005",
    "Indapamide 2.5mg tablets",
    "Take one tablet each morning",
    56,
    "tablet",
    56,
);
pub(crate) static ATORVASTATIN: Medicine = med(
    "320029008",
    "Atorvastatin 20mg tablets",
    "Take one tablet at night",
    56,
    "tablet",
    56,
);
pub(crate) static SALBUTAMOL: Medicine = med(
    "320175008",
    "Salbutamol 100micrograms/dose inhaler CFC free",
    "Inhale one or two puffs when required for breathlessness, up to four times a day",
    1,
    "inhaler",
    30,
);
pub(crate) static BECLOMETASONE: Medicine = med(
    "320113001",
    "Beclometasone 100micrograms/dose inhaler CFC free",
    "Inhale two puffs twice a day",
    1,
    "inhaler",
    30,
);
pub(crate) static TIOTROPIUM: Medicine = med(
    "407888005",
    "Tiotropium 18microgram inhalation powder capsules",
    "Inhale the contents of one capsule once a day",
    30,
    "capsule",
    30,
);
pub(crate) static LEVOTHYROXINE: Medicine = med(
    "376877004",
    "Levothyroxine sodium 50microgram tablets",
    "Take one tablet each morning",
    56,
    "tablet",
    56,
);
pub(crate) static SERTRALINE: Medicine = med(
    "321949006",
    "Sertraline 50mg tablets",
    "Take one tablet once a day",
    28,
    "tablet",
    28,
);
pub(crate) static PARACETAMOL: Medicine = med(
    "322236009",
    "Paracetamol 500mg tablets",
    "Take two tablets up to four times a day when required for pain",
    100,
    "tablet",
    28,
);
pub(crate) static NAPROXEN: Medicine = med(
    "329683002",
    "Naproxen 250mg tablets",
    "Take one tablet twice a day with food",
    56,
    "tablet",
    28,
);
pub(crate) static APIXABAN: Medicine = med(
    "703907001",
    "Apixaban 5mg tablets",
    "Take one tablet twice a day",
    56,
    "tablet",
    28,
);
pub(crate) static WARFARIN: Medicine = med(
    "319733000",
    "Warfarin 1mg tablets",
    "Take as directed by the anticoagulation clinic",
    56,
    "tablet",
    28,
);
pub(crate) static BISOPROLOL: Medicine = med(
    "318590006",
    "Bisoprolol 2.5mg tablets",
    "Take one tablet once a day",
    28,
    "tablet",
    28,
);
pub(crate) static FUROSEMIDE: Medicine = med(
    "317972000",
    "Furosemide 40mg tablets",
    "Take one tablet each morning",
    28,
    "tablet",
    28,
);
pub(crate) static ASPIRIN: Medicine = med(
    "319770005",
    "Aspirin 75mg dispersible tablets",
    "Take one tablet once a day",
    56,
    "tablet",
    56,
);
pub(crate) static DONEPEZIL: Medicine = med(
    "407742007",
    "Donepezil 5mg tablets",
    "Take one tablet at night",
    28,
    "tablet",
    28,
);
pub(crate) static LAMOTRIGINE: Medicine = med(
    "322850003",
    "Lamotrigine 100mg tablets",
    "Take one tablet twice a day",
    56,
    "tablet",
    28,
);
pub(crate) static CLOPIDOGREL: Medicine = med(
    "408026007",
    "Clopidogrel 75mg tablets",
    "Take one tablet once a day",
    28,
    "tablet",
    28,
);
pub(crate) static OMEPRAZOLE: Medicine = med(
    "317335000",
    "Omeprazole 20mg gastro-resistant capsules",
    "Take one capsule once a day before breakfast",
    56,
    "capsule",
    56,
);
pub(crate) static AMOXICILLIN: Medicine = med(
    "323509004",
    "Amoxicillin 500mg capsules",
    "Take one capsule three times a day for 5 days",
    15,
    "capsule",
    5,
);
pub(crate) static NITROFURANTOIN: Medicine = med(
    "324357003",
    "Nitrofurantoin 100mg modified-release capsules",
    "Take one capsule twice a day for 3 days",
    6,
    "capsule",
    3,
);
pub(crate) static DOXYCYCLINE: Medicine = med(
    "324094006",
    "Doxycycline 100mg capsules",
    "Take two capsules on the first day, then one capsule once a day for 4 days",
    6,
    "capsule",
    5,
);
pub(crate) static FLUCLOXACILLIN: Medicine = med(
    "323794009",
    "Flucloxacillin 500mg capsules",
    "Take one capsule four times a day for 7 days",
    28,
    "capsule",
    7,
);
pub(crate) static AMOXICILLIN_SUSPENSION: Medicine = med(
    "323527006",
    "Amoxicillin 250mg/5ml oral suspension",
    "Give 5ml three times a day for 5 days",
    100,
    "ml",
    5,
);
pub(crate) static IBUPROFEN: Medicine = med(
    "329652003",
    "Ibuprofen 400mg tablets",
    "Take one tablet three times a day with food when required",
    24,
    "tablet",
    8,
);

/// Laboratory and clinical measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Analyte {
    Haemoglobin,
    WhiteCells,
    Platelets,
    Mcv,
    Sodium,
    Potassium,
    Urea,
    Creatinine,
    Egfr,
    Cholesterol,
    Hdl,
    Ldl,
    Triglycerides,
    Hba1c,
    Tsh,
    Inr,
    Acr,
}

pub(crate) struct AnalyteInfo {
    pub loinc: &'static str,
    pub display: &'static str,
    pub unit: &'static str,
    pub ucum: &'static str,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub places: i32,
}

impl Analyte {
    pub(crate) fn info(self) -> AnalyteInfo {
        let i = |loinc, display, unit, ucum, low, high, places| AnalyteInfo {
            loinc,
            display,
            unit,
            ucum,
            low,
            high,
            places,
        };
        match self {
            Analyte::Haemoglobin => i("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", "g/L", Some(115.0), Some(165.0), 0),
            Analyte::WhiteCells => i("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*9/L", "10*9/L", Some(4.0), Some(11.0), 1),
            Analyte::Platelets => i("777-3", "Platelets [#/volume] in Blood by Automated count", "10*9/L", "10*9/L", Some(150.0), Some(400.0), 0),
            Analyte::Mcv => i("787-2", "MCV [Entitic volume] by Automated count", "fL", "fL", Some(80.0), Some(100.0), 0),
            Analyte::Sodium => i("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", Some(133.0), Some(146.0), 0),
            Analyte::Potassium => i("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", Some(3.5), Some(5.3), 1),
            Analyte::Urea => i("22664-7", "Urea [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", Some(2.5), Some(7.8), 1),
            Analyte::Creatinine => i("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", "umol/L", Some(45.0), Some(110.0), 0),
            Analyte::Egfr => i("62238-1", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)", "mL/min/1.73m2", "mL/min/{1.73_m2}", Some(60.0), None, 0),
            Analyte::Cholesterol => i("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", None, Some(5.0), 1),
            Analyte::Hdl => i("14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", Some(1.0), None, 1),
            Analyte::Ldl => i("22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", None, Some(3.0), 1),
            Analyte::Triglycerides => i("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", None, Some(1.7), 1),
            Analyte::Hba1c => i("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol", "mmol/mol", "mmol/mol", None, Some(48.0), 0),
            Analyte::Tsh => i("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "mU/L", "m[IU]/L", Some(0.3), Some(4.2), 2),
            Analyte::Inr => i("6301-6", "INR in Platelet poor plasma by Coagulation assay", "INR", "{INR}", Some(2.0), Some(3.0), 1),
            Analyte::Acr => i("32294-1", "Albumin/Creatinine [Ratio] in Urine", "mg/mmol", "mg/mmol", None, Some(3.0), 1),
        }
    }
}

/// A laboratory panel: one DiagnosticReport with an Observation per analyte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Panel {
    FullBloodCount,
    UreaAndElectrolytes,
    Lipids,
    Hba1c,
    Thyroid,
    Inr,
    UrineAcr,
}

impl Panel {
    /// LOINC code and display of the report, and its analytes.
    pub(crate) fn definition(self) -> (&'static str, &'static str, &'static [Analyte]) {
        use Analyte::*;
        match self {
            Panel::FullBloodCount => (
                "58410-2",
                "CBC panel - Blood by Automated count",
                &[Haemoglobin, WhiteCells, Platelets, Mcv],
            ),
            Panel::UreaAndElectrolytes => (
                "24362-6",
                "Renal function 2000 panel - Serum or Plasma",
                &[Sodium, Potassium, Urea, Creatinine, Egfr],
            ),
            Panel::Lipids => (
                "57698-3",
                "Lipid panel with direct LDL - Serum or Plasma",
                &[Cholesterol, Hdl, Ldl, Triglycerides],
            ),
            Panel::Hba1c => (
                "59261-8",
                "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
                &[Hba1c],
            ),
            Panel::Thyroid => (
                "3016-3",
                "Thyrotropin [Units/volume] in Serum or Plasma",
                &[Tsh],
            ),
            Panel::Inr => (
                "6301-6",
                "INR in Platelet poor plasma by Coagulation assay",
                &[Inr],
            ),
            Panel::UrineAcr => ("32294-1", "Albumin/Creatinine [Ratio] in Urine", &[Acr]),
        }
    }
}

/// Hospital specialties, in the order a trust offers them as the region grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Specialty {
    Diabetes,
    Cardiology,
    Respiratory,
    Orthopaedics,
    Ophthalmology,
    Renal,
    Dermatology,
    Ent,
    GeneralSurgery,
    Gastroenterology,
    Gynaecology,
    Urology,
    Neurology,
    Paediatrics,
    ElderlyCare,
}

pub(crate) struct SpecialtyInfo {
    pub snomed: &'static str,
    pub display: &'static str,
    pub clinic: &'static str,
    /// The reason a GP refers when no long-term condition is the reason.
    pub elective_reason: &'static str,
}

impl Specialty {
    pub(crate) const ALL: [Specialty; 15] = [
        Specialty::Diabetes,
        Specialty::Cardiology,
        Specialty::Respiratory,
        Specialty::Orthopaedics,
        Specialty::Ophthalmology,
        Specialty::Renal,
        Specialty::Dermatology,
        Specialty::Ent,
        Specialty::GeneralSurgery,
        Specialty::Gastroenterology,
        Specialty::Gynaecology,
        Specialty::Urology,
        Specialty::Neurology,
        Specialty::Paediatrics,
        Specialty::ElderlyCare,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn info(self) -> SpecialtyInfo {
        let i = |snomed, display, clinic, elective_reason| SpecialtyInfo {
            snomed,
            display,
            clinic,
            elective_reason,
        };
        match self {
            Specialty::Diabetes => i(
                "394583002",
                "Endocrinology",
                "Diabetes and Endocrinology",
                "Thyroid nodule",
            ),
            Specialty::Cardiology => i("394579002", "Cardiology", "Cardiology", "Palpitations"),
            Specialty::Respiratory => i(
                "418112009",
                "Pulmonary medicine",
                "Respiratory Medicine",
                "Chronic cough",
            ),
            Specialty::Orthopaedics => i(
                "394801008",
                "Trauma and orthopedics",
                "Trauma and Orthopaedics",
                "Knee pain",
            ),
            Specialty::Ophthalmology => {
                i("394594003", "Ophthalmology", "Ophthalmology", "Cataract")
            }
            Specialty::Renal => i(
                "394589003",
                "Nephrology",
                "Renal Medicine",
                "Raised creatinine",
            ),
            Specialty::Dermatology => i(
                "394582007",
                "Dermatology",
                "Dermatology",
                "Changing pigmented skin lesion",
            ),
            Specialty::Ent => i(
                "418960008",
                "Otolaryngology",
                "Ear, Nose and Throat",
                "Hearing loss",
            ),
            Specialty::GeneralSurgery => i(
                "394609007",
                "General surgery",
                "General Surgery",
                "Inguinal hernia",
            ),
            Specialty::Gastroenterology => i(
                "394584008",
                "Gastroenterology",
                "Gastroenterology",
                "Change in bowel habit",
            ),
            Specialty::Gynaecology => i(
                "394586005",
                "Gynecology",
                "Gynaecology",
                "Heavy menstrual bleeding",
            ),
            Specialty::Urology => i(
                "394612005",
                "Urology",
                "Urology",
                "Lower urinary tract symptoms",
            ),
            Specialty::Neurology => i("394591006", "Neurology", "Neurology", "Headache"),
            Specialty::Paediatrics => i(
                "394537008",
                "Pediatric specialty",
                "Paediatrics",
                "Recurrent abdominal pain",
            ),
            Specialty::ElderlyCare => i(
                "394811001",
                "Geriatric medicine",
                "Care of the Elderly",
                "Falls",
            ),
        }
    }

    /// Whether a patient of this age and sex can be referred to the specialty.
    pub(crate) fn accepts(self, age: i64, female: bool) -> bool {
        match self {
            Specialty::Paediatrics => age < 16,
            Specialty::Gynaecology => female && age >= 16,
            Specialty::Urology => !female && age >= 40,
            Specialty::ElderlyCare => age >= 70,
            Specialty::Ophthalmology | Specialty::Dermatology | Specialty::Ent => true,
            _ => age >= 16,
        }
    }

    /// Relative frequency of elective referrals (England's RTT waiting list by treatment
    /// function, roughly).
    pub(crate) fn elective_weight(self) -> f64 {
        match self {
            Specialty::Orthopaedics => 12.0,
            Specialty::Ophthalmology => 9.0,
            Specialty::Ent => 7.0,
            Specialty::GeneralSurgery => 7.0,
            Specialty::Gynaecology => 8.0,
            Specialty::Dermatology => 6.0,
            Specialty::Gastroenterology => 5.0,
            Specialty::Urology => 5.0,
            Specialty::Cardiology => 5.0,
            Specialty::Neurology => 3.0,
            Specialty::Respiratory => 3.0,
            Specialty::Paediatrics => 6.0,
            Specialty::Diabetes => 1.0,
            Specialty::Renal => 1.0,
            Specialty::ElderlyCare => 2.0,
        }
    }
}

/// Long-term conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Chronic {
    Hypertension,
    Diabetes,
    Asthma,
    Copd,
    Ckd,
    AtrialFibrillation,
    HeartFailure,
    CoronaryHeartDisease,
    Hypothyroidism,
    Depression,
    Osteoarthritis,
    Dementia,
    Epilepsy,
    Stroke,
    Reflux,
}

/// A medicine a condition brings, some years after onset, with some probability.
pub(crate) struct Treatment {
    pub medicine: &'static Medicine,
    pub after_years: f64,
    pub probability: f64,
}

const fn t(medicine: &'static Medicine, after_years: f64, probability: f64) -> Treatment {
    Treatment {
        medicine,
        after_years,
        probability,
    }
}

static HYPERTENSION_TREATMENTS: [Treatment; 3] = [
    t(&AMLODIPINE, 0.1, 0.9),
    t(&RAMIPRIL, 2.0, 0.45),
    t(&INDAPAMIDE, 5.0, 0.25),
];
static DIABETES_TREATMENTS: [Treatment; 4] = [
    t(&METFORMIN, 0.15, 0.95),
    t(&ATORVASTATIN, 0.3, 0.75),
    t(&GLICLAZIDE, 3.0, 0.4),
    t(&SITAGLIPTIN, 5.0, 0.25),
];
static ASTHMA_TREATMENTS: [Treatment; 2] = [t(&SALBUTAMOL, 0.0, 1.0), t(&BECLOMETASONE, 0.5, 0.6)];
static COPD_TREATMENTS: [Treatment; 2] = [t(&SALBUTAMOL, 0.0, 1.0), t(&TIOTROPIUM, 0.5, 0.7)];
static CKD_TREATMENTS: [Treatment; 2] = [t(&RAMIPRIL, 0.3, 0.5), t(&ATORVASTATIN, 0.5, 0.5)];
static ATRIAL_FIBRILLATION_TREATMENTS: [Treatment; 1] = [t(&BISOPROLOL, 0.0, 0.85)];
static HEART_FAILURE_TREATMENTS: [Treatment; 3] = [
    t(&FUROSEMIDE, 0.0, 0.9),
    t(&RAMIPRIL, 0.1, 0.8),
    t(&BISOPROLOL, 0.2, 0.8),
];
static CORONARY_HEART_DISEASE_TREATMENTS: [Treatment; 3] = [
    t(&ASPIRIN, 0.0, 0.8),
    t(&ATORVASTATIN, 0.0, 0.9),
    t(&BISOPROLOL, 0.1, 0.5),
];
static HYPOTHYROIDISM_TREATMENTS: [Treatment; 1] = [t(&LEVOTHYROXINE, 0.0, 1.0)];
static DEPRESSION_TREATMENTS: [Treatment; 1] = [t(&SERTRALINE, 0.0, 0.7)];
static OSTEOARTHRITIS_TREATMENTS: [Treatment; 3] = [
    t(&PARACETAMOL, 0.0, 0.8),
    t(&NAPROXEN, 1.0, 0.3),
    t(&OMEPRAZOLE, 1.0, 0.3),
];
static DEMENTIA_TREATMENTS: [Treatment; 1] = [t(&DONEPEZIL, 0.2, 0.6)];
static EPILEPSY_TREATMENTS: [Treatment; 1] = [t(&LAMOTRIGINE, 0.0, 0.95)];
static STROKE_TREATMENTS: [Treatment; 2] =
    [t(&CLOPIDOGREL, 0.0, 0.85), t(&ATORVASTATIN, 0.0, 0.85)];
static REFLUX_TREATMENTS: [Treatment; 1] = [t(&OMEPRAZOLE, 0.0, 0.8)];

pub(crate) struct ChronicInfo {
    pub snomed: &'static str,
    pub display: &'static str,
    /// Probability of having the condition by each age band (see [`age_band`]).
    pub prevalence: [f64; 5],
    pub female_factor: f64,
    /// Youngest age at onset.
    pub onset_from_age: i64,
    pub treatments: &'static [Treatment],
    /// Reviews by the practice nurse per year.
    pub reviews_per_year: f64,
    /// Blood tests before each review.
    pub panels: &'static [Panel],
    /// Referral to a specialty, with probability.
    pub specialty: Option<(Specialty, f64)>,
    /// Whether it puts the patient in a group offered the flu vaccine.
    pub flu_risk: bool,
}

impl Chronic {
    pub(crate) const ALL: [Chronic; 15] = [
        Chronic::Hypertension,
        Chronic::Diabetes,
        Chronic::Asthma,
        Chronic::Copd,
        Chronic::Ckd,
        Chronic::AtrialFibrillation,
        Chronic::HeartFailure,
        Chronic::CoronaryHeartDisease,
        Chronic::Hypothyroidism,
        Chronic::Depression,
        Chronic::Osteoarthritis,
        Chronic::Dementia,
        Chronic::Epilepsy,
        Chronic::Stroke,
        Chronic::Reflux,
    ];

    pub(crate) fn info(self) -> ChronicInfo {
        use Panel::*;
        match self {
            Chronic::Hypertension => ChronicInfo {
                snomed: "59621000",
                display: "Essential hypertension",
                prevalence: [0.0, 0.04, 0.17, 0.38, 0.55],
                female_factor: 0.9,
                onset_from_age: 25,
                treatments: &HYPERTENSION_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[UreaAndElectrolytes],
                specialty: Some((Specialty::Cardiology, 0.03)),
                flu_risk: false,
            },
            Chronic::Diabetes => ChronicInfo {
                snomed: "44054006",
                display: "Type 2 diabetes mellitus",
                prevalence: [0.0, 0.01, 0.07, 0.15, 0.18],
                female_factor: 0.8,
                onset_from_age: 25,
                treatments: &DIABETES_TREATMENTS,
                reviews_per_year: 2.0,
                panels: &[Hba1c, UreaAndElectrolytes, UrineAcr],
                specialty: Some((Specialty::Diabetes, 0.3)),
                flu_risk: true,
            },
            Chronic::Asthma => ChronicInfo {
                snomed: "195967001",
                display: "Asthma",
                prevalence: [0.09, 0.09, 0.07, 0.07, 0.07],
                female_factor: 1.1,
                onset_from_age: 3,
                treatments: &ASTHMA_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[],
                specialty: Some((Specialty::Respiratory, 0.04)),
                flu_risk: true,
            },
            Chronic::Copd => ChronicInfo {
                snomed: "13645005",
                display: "Chronic obstructive lung disease",
                prevalence: [0.0, 0.002, 0.02, 0.06, 0.09],
                female_factor: 0.85,
                onset_from_age: 40,
                treatments: &COPD_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[FullBloodCount],
                specialty: Some((Specialty::Respiratory, 0.25)),
                flu_risk: true,
            },
            Chronic::Ckd => ChronicInfo {
                snomed: "433144002",
                display: "Chronic kidney disease stage 3",
                prevalence: [0.0, 0.003, 0.02, 0.08, 0.24],
                female_factor: 1.1,
                onset_from_age: 30,
                treatments: &CKD_TREATMENTS,
                reviews_per_year: 2.0,
                panels: &[UreaAndElectrolytes, UrineAcr, FullBloodCount],
                specialty: Some((Specialty::Renal, 0.15)),
                flu_risk: true,
            },
            Chronic::AtrialFibrillation => ChronicInfo {
                snomed: "49436004",
                display: "Atrial fibrillation",
                prevalence: [0.0, 0.001, 0.01, 0.05, 0.12],
                female_factor: 0.8,
                onset_from_age: 45,
                treatments: &ATRIAL_FIBRILLATION_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[UreaAndElectrolytes, FullBloodCount],
                specialty: Some((Specialty::Cardiology, 0.4)),
                flu_risk: false,
            },
            Chronic::HeartFailure => ChronicInfo {
                snomed: "84114007",
                display: "Heart failure",
                prevalence: [0.0, 0.0, 0.005, 0.02, 0.07],
                female_factor: 0.8,
                onset_from_age: 50,
                treatments: &HEART_FAILURE_TREATMENTS,
                reviews_per_year: 2.0,
                panels: &[UreaAndElectrolytes],
                specialty: Some((Specialty::Cardiology, 0.8)),
                flu_risk: true,
            },
            Chronic::CoronaryHeartDisease => ChronicInfo {
                snomed: "53741008",
                display: "Coronary arteriosclerosis",
                prevalence: [0.0, 0.002, 0.02, 0.08, 0.15],
                female_factor: 0.6,
                onset_from_age: 40,
                treatments: &CORONARY_HEART_DISEASE_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[Lipids],
                specialty: Some((Specialty::Cardiology, 0.3)),
                flu_risk: true,
            },
            Chronic::Hypothyroidism => ChronicInfo {
                snomed: "40930008",
                display: "Hypothyroidism",
                prevalence: [0.001, 0.01, 0.03, 0.05, 0.07],
                female_factor: 2.0,
                onset_from_age: 18,
                treatments: &HYPOTHYROIDISM_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[Thyroid],
                specialty: Some((Specialty::Diabetes, 0.05)),
                flu_risk: false,
            },
            Chronic::Depression => ChronicInfo {
                snomed: "35489007",
                display: "Depressive disorder",
                prevalence: [0.01, 0.10, 0.12, 0.10, 0.09],
                female_factor: 1.5,
                onset_from_age: 14,
                treatments: &DEPRESSION_TREATMENTS,
                reviews_per_year: 0.5,
                panels: &[],
                specialty: None,
                flu_risk: false,
            },
            Chronic::Osteoarthritis => ChronicInfo {
                snomed: "396275006",
                display: "Osteoarthritis",
                prevalence: [0.0, 0.01, 0.08, 0.18, 0.30],
                female_factor: 1.3,
                onset_from_age: 35,
                treatments: &OSTEOARTHRITIS_TREATMENTS,
                reviews_per_year: 0.3,
                panels: &[],
                specialty: Some((Specialty::Orthopaedics, 0.25)),
                flu_risk: false,
            },
            Chronic::Dementia => ChronicInfo {
                snomed: "52448006",
                display: "Dementia",
                prevalence: [0.0, 0.0, 0.002, 0.01, 0.07],
                female_factor: 1.3,
                onset_from_age: 60,
                treatments: &DEMENTIA_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[FullBloodCount, Thyroid],
                specialty: Some((Specialty::ElderlyCare, 0.4)),
                flu_risk: true,
            },
            Chronic::Epilepsy => ChronicInfo {
                snomed: "84757009",
                display: "Epilepsy",
                prevalence: [0.005, 0.008, 0.008, 0.008, 0.008],
                female_factor: 1.0,
                onset_from_age: 2,
                treatments: &EPILEPSY_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[],
                specialty: Some((Specialty::Neurology, 0.3)),
                flu_risk: true,
            },
            Chronic::Stroke => ChronicInfo {
                snomed: "230690007",
                display: "Cerebrovascular accident",
                prevalence: [0.0, 0.001, 0.005, 0.03, 0.07],
                female_factor: 0.9,
                onset_from_age: 45,
                treatments: &STROKE_TREATMENTS,
                reviews_per_year: 1.0,
                panels: &[Lipids],
                specialty: Some((Specialty::Neurology, 0.1)),
                flu_risk: true,
            },
            Chronic::Reflux => ChronicInfo {
                snomed: "235595009",
                display: "Gastroesophageal reflux disease",
                prevalence: [0.002, 0.03, 0.06, 0.08, 0.08],
                female_factor: 1.0,
                onset_from_age: 18,
                treatments: &REFLUX_TREATMENTS,
                reviews_per_year: 0.2,
                panels: &[],
                specialty: Some((Specialty::Gastroenterology, 0.1)),
                flu_risk: false,
            },
        }
    }
}

/// (SNOMED code, display, category, criticality, reaction code, reaction display, children)
pub(crate) const ALLERGIES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "91936005",
        "Allergy to penicillin",
        "medication",
        "high",
        "271807003",
        "Eruption of skin",
    ),
    (
        "91935009",
        "Allergy to peanuts",
        "food",
        "high",
        "39579001",
        "Anaphylaxis",
    ),
    (
        "300916003",
        "Latex allergy",
        "environment",
        "low",
        "126485001",
        "Urticaria",
    ),
    (
        "91930004",
        "Allergy to eggs",
        "food",
        "low",
        "271807003",
        "Eruption of skin",
    ),
    (
        "300913006",
        "Shellfish allergy",
        "food",
        "high",
        "39579001",
        "Anaphylaxis",
    ),
    (
        "232350006",
        "House dust mite allergy",
        "environment",
        "low",
        "49727002",
        "Cough",
    ),
    (
        "418689008",
        "Allergy to grass pollen",
        "environment",
        "low",
        "76067001",
        "Sneezing",
    ),
];

/// An acute problem seen in general practice.
pub(crate) struct Acute {
    pub snomed: &'static str,
    pub display: &'static str,
    /// Ages it is seen at.
    pub ages: (i64, i64),
    pub weight: f64,
    pub medicine: Option<&'static Medicine>,
    /// Days until resolved.
    pub days: i64,
}

pub(crate) const ACUTE: &[Acute] = &[
    Acute {
        snomed: "195662009",
        display: "Acute viral pharyngitis",
        ages: (2, 100),
        weight: 5.0,
        medicine: None,
        days: 7,
    },
    Acute {
        snomed: "65363002",
        display: "Otitis media",
        ages: (0, 12),
        weight: 6.0,
        medicine: Some(&AMOXICILLIN_SUSPENSION),
        days: 7,
    },
    Acute {
        snomed: "68566005",
        display: "Urinary tract infectious disease",
        ages: (16, 100),
        weight: 4.0,
        medicine: Some(&NITROFURANTOIN),
        days: 5,
    },
    Acute {
        snomed: "10509002",
        display: "Acute bronchitis",
        ages: (16, 100),
        weight: 4.0,
        medicine: Some(&DOXYCYCLINE),
        days: 14,
    },
    Acute {
        snomed: "36971009",
        display: "Sinusitis",
        ages: (12, 100),
        weight: 3.0,
        medicine: None,
        days: 10,
    },
    Acute {
        snomed: "128045006",
        display: "Cellulitis",
        ages: (16, 100),
        weight: 2.0,
        medicine: Some(&FLUCLOXACILLIN),
        days: 10,
    },
    Acute {
        snomed: "161891005",
        display: "Backache",
        ages: (18, 100),
        weight: 4.0,
        medicine: Some(&IBUPROFEN),
        days: 21,
    },
    Acute {
        snomed: "25064002",
        display: "Headache",
        ages: (8, 100),
        weight: 2.0,
        medicine: None,
        days: 3,
    },
    Acute {
        snomed: "82272006",
        display: "Common cold",
        ages: (0, 100),
        weight: 3.0,
        medicine: None,
        days: 7,
    },
    Acute {
        snomed: "43878008",
        display: "Streptococcal sore throat",
        ages: (3, 40),
        weight: 1.5,
        medicine: Some(&AMOXICILLIN),
        days: 7,
    },
    Acute {
        snomed: "24079001",
        display: "Atopic dermatitis",
        ages: (0, 30),
        weight: 1.5,
        medicine: None,
        days: 30,
    },
];

/// Reasons for emergency admission: (SNOMED code, display, minimum age).
pub(crate) const ADMISSION_REASONS: &[(&str, &str, i64)] = &[
    ("233604007", "Pneumonia", 0),
    ("68566005", "Urinary tract infectious disease", 16),
    ("217082002", "Accidental fall", 60),
    ("29857009", "Chest pain", 30),
    (
        "195951007",
        "Acute exacerbation of chronic obstructive airways disease",
        40,
    ),
    ("128045006", "Cellulitis", 16),
    ("45007003", "Low blood pressure", 60),
    ("267036007", "Dyspnea", 16),
];

/// A vaccine (CVX, the code the FHIR Immunization examples use) and what it protects against.
pub(crate) struct Vaccine {
    pub cvx: &'static str,
    pub display: &'static str,
    pub route: (&'static str, &'static str),
}

const IM: (&str, &str) = ("IM", "Injection, intramuscular");
const ORAL: (&str, &str) = ("PO", "Swallow, oral");
const NASAL: (&str, &str) = ("NASINHLC", "Inhalation, nasal");
const SUBCUT: (&str, &str) = ("SQ", "Injection, subcutaneous");

pub(crate) static SIX_IN_ONE: Vaccine = Vaccine {
    cvx: "146",
    display: "DTaP,IPV,Hib,HepB",
    route: IM,
};
pub(crate) static MEN_B: Vaccine = Vaccine {
    cvx: "163",
    display: "meningococcal B, OMV",
    route: IM,
};
pub(crate) static ROTAVIRUS: Vaccine = Vaccine {
    cvx: "119",
    display: "rotavirus, monovalent",
    route: ORAL,
};
pub(crate) static PCV: Vaccine = Vaccine {
    cvx: "133",
    display: "Pneumococcal conjugate PCV 13",
    route: IM,
};
pub(crate) static HIB_MEN_C: Vaccine = Vaccine {
    cvx: "148",
    display: "Meningococcal C/Y-HIB PRP",
    route: IM,
};
pub(crate) static MMR: Vaccine = Vaccine {
    cvx: "03",
    display: "MMR",
    route: SUBCUT,
};
pub(crate) static FOUR_IN_ONE: Vaccine = Vaccine {
    cvx: "130",
    display: "DTaP-IPV",
    route: IM,
};
pub(crate) static HPV: Vaccine = Vaccine {
    cvx: "165",
    display: "HPV9",
    route: IM,
};
pub(crate) static TD_IPV: Vaccine = Vaccine {
    cvx: "138",
    display: "Td (adult), not adsorbed",
    route: IM,
};
pub(crate) static MEN_ACWY: Vaccine = Vaccine {
    cvx: "114",
    display: "meningococcal MCV4P",
    route: IM,
};
pub(crate) static FLU: Vaccine = Vaccine {
    cvx: "141",
    display: "Influenza, seasonal, injectable",
    route: IM,
};
pub(crate) static FLU_NASAL: Vaccine = Vaccine {
    cvx: "149",
    display: "influenza, live, intranasal, quadrivalent",
    route: NASAL,
};
pub(crate) static PPV: Vaccine = Vaccine {
    cvx: "33",
    display: "pneumococcal polysaccharide PPV23",
    route: IM,
};
pub(crate) static SHINGLES: Vaccine = Vaccine {
    cvx: "187",
    display: "zoster recombinant",
    route: IM,
};
pub(crate) static COVID: Vaccine = Vaccine { cvx: "208", display: "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose", route: IM };

/// The routine childhood schedule (UK): vaccine, age in days, dose number.
pub(crate) const CHILDHOOD: &[(&Vaccine, i64, u32)] = &[
    (&SIX_IN_ONE, 56, 1),
    (&MEN_B, 56, 1),
    (&ROTAVIRUS, 56, 1),
    (&SIX_IN_ONE, 84, 2),
    (&PCV, 84, 1),
    (&ROTAVIRUS, 84, 2),
    (&SIX_IN_ONE, 112, 3),
    (&MEN_B, 112, 2),
    (&HIB_MEN_C, 365, 1),
    (&MMR, 365, 1),
    (&PCV, 365, 2),
    (&MEN_B, 365, 3),
    (&MMR, 1220, 2),
    (&FOUR_IN_ONE, 1220, 1),
    (&HPV, 4500, 1),
    (&TD_IPV, 5110, 1),
    (&MEN_ACWY, 5110, 1),
];
