//! Progress while an import runs, on stderr: a bar with the count, the rate and the time left on
//! a terminal; a plain line every few seconds otherwise (a log file, CI). Rejected lines are
//! printed through here too, so that they do not tear the bar.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// What the import has done so far; the pipeline counts, the reporter reads.
#[derive(Debug, Default)]
pub struct Counters {
    /// Resources (and deletions) finished: written, unchanged or rejected.
    pub resources: AtomicU64,
    pub rejected: AtomicU64,
    /// Lines waiting for a conditional reference.
    pub deferred: AtomicU64,
    /// Bytes of input (on disk) done, and in all.
    pub bytes_done: AtomicU64,
    pub bytes_total: AtomicU64,
}

impl Counters {
    fn fraction(&self) -> f64 {
        let total = self.bytes_total.load(Ordering::Relaxed);
        if total == 0 {
            return 1.0;
        }
        (self.bytes_done.load(Ordering::Relaxed) as f64 / total as f64).min(1.0)
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A progress bar (stderr is a terminal).
    Bar,
    /// A plain line at this interval.
    Lines(Duration),
    /// Nothing but rejected lines.
    Quiet,
}

impl Style {
    /// A bar on a terminal, else a line every `every`.
    pub fn for_stderr(every: Duration) -> Style {
        if std::io::stderr().is_terminal() {
            Style::Bar
        } else {
            Style::Lines(every)
        }
    }
}

/// Shows progress on stderr until [`Reporter::finish`].
pub struct Reporter {
    counters: Arc<Counters>,
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    pub fn start(style: Style, counters: Arc<Counters>) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let bar = (style == Style::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
            let template = "{spinner} {msg} [{bar:30}] {percent:>3}% ETA {eta}";
            if let Ok(s) = ProgressStyle::with_template(template) {
                bar.set_style(s.progress_chars("=> "));
            }
            bar
        });
        let thread = match style {
            Style::Quiet => None,
            Style::Bar | Style::Lines(_) => {
                let (counters, stop, bar) = (counters.clone(), stop.clone(), bar.clone());
                std::thread::Builder::new()
                    .name("import-progress".into())
                    .spawn(move || {
                        let mut last_line = Instant::now();
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(TICK);
                            let text = status(&counters, started.elapsed());
                            match (&bar, style) {
                                (Some(bar), _) => {
                                    bar.set_position((counters.fraction() * 1000.0) as u64);
                                    bar.set_message(text);
                                }
                                (None, Style::Lines(every)) if last_line.elapsed() >= every => {
                                    last_line = Instant::now();
                                    let pct = counters.fraction() * 100.0;
                                    let _ = writeln!(
                                        std::io::stderr(),
                                        "import: {text}, {pct:.0}% of input"
                                    );
                                }
                                _ => {}
                            }
                        }
                    })
                    .ok()
            }
        };
        Reporter {
            counters,
            bar,
            stop,
            thread,
        }
    }

    /// Prints one line (a rejection) above the bar, or on its own.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| {
                let _ = writeln!(std::io::stderr(), "{text}");
            }),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Stops and clears the bar.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// `12,345 resources (8,210/s), 3 rejected, 40 waiting`.
fn status(c: &Counters, elapsed: Duration) -> String {
    let n = c.resources.load(Ordering::Relaxed);
    let rate = n as f64 / elapsed.as_secs_f64().max(0.001);
    let mut text = format!("{} resources ({}/s)", grouped(n), grouped(rate as u64));
    let rejected = c.rejected.load(Ordering::Relaxed);
    if rejected > 0 {
        text.push_str(&format!(", {} rejected", grouped(rejected)));
    }
    let deferred = c.deferred.load(Ordering::Relaxed);
    if deferred > 0 {
        text.push_str(&format!(
            ", {} waiting for conditional references",
            grouped(deferred)
        ));
    }
    text
}

/// 1234567 as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    // Digits before the first comma: 1 to 3.
    let mut until_comma = (digits.len() + 2) % 3 + 1;
    for ch in digits.chars() {
        if until_comma == 0 {
            out.push(',');
            until_comma = 3;
        }
        out.push(ch);
        until_comma -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }

    #[test]
    fn the_status_line_names_count_rate_and_what_is_waiting() {
        let c = Counters::default();
        c.resources.store(20_000, Ordering::Relaxed);
        c.rejected.store(2, Ordering::Relaxed);
        assert_eq!(
            status(&c, Duration::from_secs(2)),
            "20,000 resources (10,000/s), 2 rejected"
        );
        c.bytes_total.store(200, Ordering::Relaxed);
        c.bytes_done.store(50, Ordering::Relaxed);
        assert_eq!(c.fraction(), 0.25);
    }
}
