//! A measured run of the generator: `cargo run --release -p seed --example seed -- 10000 /tmp/region [seed]`
//! writes the region as NDJSON and prints what it wrote and how long it took.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let patients: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "seed-out".into()));
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let today = chrono::NaiveDate::from_ymd_opt(2025, 6, 2).unwrap_or_default();
    let opts = seed::Options::new(patients, seed, today);
    match seed::write_ndjson(&opts, &out) {
        Ok(summary) => {
            for (t, n) in &summary.counts {
                println!("{t:>20} {n:>12}");
            }
            println!(
                "{} patients: {} resources, {} bytes in {:.1} s ({:.0} resources/s)",
                patients,
                summary.total,
                summary.bytes,
                summary.elapsed.as_secs_f64(),
                summary.total as f64 / summary.elapsed.as_secs_f64().max(1e-9)
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
