//! Progress of a long replay or rebuild on stderr: on a terminal one line
//! rewritten in place (records, rate, ETA when the total is known), else a
//! plain line every second for logs. The final summary goes to stdout from
//! the command, not from here.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often a progress line is written.
const EVERY: Duration = Duration::from_secs(1);

/// A rate/ETA reporter for one run.
pub struct Progress {
    what: String,
    total: Option<u64>,
    started: Instant,
    last: Instant,
    tty: bool,
    enabled: bool,
    wrote: bool,
}

impl Progress {
    /// Reports on `what`; `total` records when known (for the ETA).
    /// `enabled` false keeps it silent (library callers, benches).
    pub fn new(what: &str, total: Option<u64>, enabled: bool) -> Self {
        let now = Instant::now();
        Progress {
            what: what.to_owned(),
            total,
            started: now,
            last: now,
            tty: std::io::stderr().is_terminal(),
            enabled,
            wrote: false,
        }
    }

    /// Sets the total once it becomes known (a topic's ends arrive with
    /// its first fetches), so later lines carry an ETA.
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// The line for `done` records after `secs` seconds.
    pub fn line(&self, done: u64, secs: f64) -> String {
        let rate = done as f64 / secs.max(1e-9);
        let mut s = format!("{}: {done} records, {rate:.0}/s", self.what);
        if let Some(total) = self.total.filter(|t| *t > 0) {
            let left = total.saturating_sub(done) as f64 / rate.max(1.0);
            // An estimated total may be passed (a broker's end is a hint).
            let pct = (100.0 * done as f64 / total as f64).min(100.0);
            s.push_str(&format!(" ({pct:.1}% of {total}, ETA {left:.0}s)"));
        }
        s
    }

    /// Notes that `done` records are through; writes a line at most once a second.
    pub fn update(&mut self, done: u64) {
        if !self.enabled || self.last.elapsed() < EVERY {
            return;
        }
        self.last = Instant::now();
        let line = self.line(done, self.started.elapsed().as_secs_f64());
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        self.wrote = true;
    }

    /// Ends the in-place line on a terminal.
    pub fn finish(&mut self) {
        if self.enabled && self.tty && self.wrote {
            let _ = writeln!(std::io::stderr());
        }
        self.wrote = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_rate_and_eta() {
        let p = Progress::new("replay", Some(1000), false);
        assert_eq!(
            p.line(250, 2.0),
            "replay: 250 records, 125/s (25.0% of 1000, ETA 6s)"
        );
        let mut q = Progress::new("replay", None, false);
        assert_eq!(q.line(10, 1.0), "replay: 10 records, 10/s");
        q.set_total(40);
        assert_eq!(
            q.line(10, 1.0),
            "replay: 10 records, 10/s (25.0% of 40, ETA 3s)"
        );
        assert_eq!(
            q.line(50, 1.0),
            "replay: 50 records, 50/s (100.0% of 40, ETA 0s)"
        );
    }
}
