//! Per-write CPU cost: validation and search-index extraction of typical resources.
//! `cargo bench -p fhir`

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

fn resources() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "Patient",
            json!({"resourceType": "Patient", "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
                   "name": [{"use": "official", "family": "Smith", "given": ["Amelia", "Rose"]}], "gender": "female", "birthDate": "1980-04-02",
                   "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 4AP"}],
                   "telecom": [{"system": "phone", "value": "0113 496 0000", "use": "mobile"}]}),
        ),
        (
            "Observation",
            json!({"resourceType": "Observation", "status": "final",
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                   "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-03-01T10:00:00Z",
                   "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}),
        ),
        (
            "Appointment",
            json!({"resourceType": "Appointment", "status": "booked", "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T09:15:00Z",
                   "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                                   {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"}]}),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    for (name, r) in resources() {
        c.bench_function(&format!("validate {name}"), |b| {
            b.iter(|| fhir::validate::validate(&r))
        });
        c.bench_function(&format!("extract index {name}"), |b| {
            b.iter(|| fhir::index::extract(&r))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
