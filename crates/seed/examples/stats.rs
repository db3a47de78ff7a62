//! Per-patient record sizes of a region, without writing it:
//! `cargo run --release -p seed --example stats -- 10000`.

use std::collections::BTreeMap;

fn main() {
    let patients: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let today = chrono::NaiveDate::from_ymd_opt(2025, 6, 2).unwrap_or_default();
    let generator = match seed::Generator::new(&seed::Options::new(patients, 1, today)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let mut sizes = Vec::new();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..patients {
        let record = generator.patient(i);
        let in_compartment = record
            .iter()
            .filter(|r| !matches!(r["resourceType"].as_str(), Some("Slot" | "Binary")))
            .count();
        for r in &record {
            *by_type
                .entry(r["resourceType"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        sizes.push((in_compartment, i));
    }
    sizes.sort_unstable();
    let n = sizes.len().max(1);
    let mean = sizes.iter().map(|s| s.0).sum::<usize>() as f64 / n as f64;
    let pct = |p: f64| sizes[((n as f64 - 1.0) * p) as usize].0;
    println!(
        "compartment size: mean {mean:.1}, p50 {}, p90 {}, p99 {}, p99.9 {}, max {} (patient {})",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        sizes[n - 1].1
    );
    println!("over 800: {}", sizes.iter().filter(|s| s.0 >= 800).count());
    for (t, c) in by_type {
        println!("{t:>20} {:8.2} per patient", c as f64 / n as f64);
    }
}
