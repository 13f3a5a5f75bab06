//! The wall clock, in one place: arrival stamps, lease heartbeats, attempt
//! ids. A leaf: it uses nothing of the crate, and every layer may use it.

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new attempt id from the wall clock, `YYYYmmdd_HHMMSS_mmm` (UTC), unique
/// among `existing`.
pub fn new_attempt_id(existing: &[String]) -> String {
    let ms = now_ms();
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let base = format!(
        "{y:04}{m:02}{d:02}_{:02}{:02}{:02}_{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    );
    let mut id = base.clone();
    let mut n = 1;
    while existing.contains(&id) {
        n += 1;
        id = format!("{base}_{n}");
    }
    id
}
