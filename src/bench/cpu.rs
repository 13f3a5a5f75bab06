//! The process's CPU time, so the bench commands can print CPU per event
//! beside each wall-clock rate: on a small machine a rate is bound by CPU,
//! and the pair says how much of the machine it took (cores busy) and what
//! a faster rate would have to save (µs per event).

use std::time::Instant;

/// User plus system CPU seconds this process has used so far (all threads).
pub fn process_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given, which is plain
    // integers and so valid zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The process's peak resident memory since the last call (or its
/// start), as `"peak RSS N MB"`, and the peak reset to what is resident
/// now, so the next figure covers only the phase after this one (Linux:
/// `VmHWM` of `/proc/self/status`, reset through `/proc/self/clear_refs`).
pub fn peak_rss() -> String {
    let kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    match kb {
        Some(kb) => format!("peak RSS {} MB", kb / 1024),
        None => "peak RSS unknown".to_owned(),
    }
}

/// CPU and wall time from a start, for one measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    cpu: f64,
    wall: Instant,
}

impl Meter {
    /// Starts measuring now.
    pub fn start() -> Meter {
        Meter {
            cpu: process_seconds(),
            wall: Instant::now(),
        }
    }

    /// `"CPU X µs/event, Y cores"` for `events` handled since the start.
    pub fn per_event(&self, events: u64) -> String {
        let cpu = process_seconds() - self.cpu;
        let wall = self.wall.elapsed().as_secs_f64().max(1e-9);
        format!(
            "CPU {:.1} µs/event, {:.2} cores",
            cpu * 1e6 / events.max(1) as f64,
            cpu / wall
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_up_as_cpu_time() {
        let before = process_seconds();
        let mut x = 0u64;
        let t = Instant::now();
        // Spin until the counter moves (a loaded machine may take longer).
        while process_seconds() - before < 0.02 && t.elapsed().as_secs() < 30 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        assert!(process_seconds() - before >= 0.02, "CPU time never moved");
        let line = Meter::start().per_event(10);
        assert!(
            line.starts_with("CPU ") && line.contains("µs/event"),
            "{line}"
        );
    }
}
