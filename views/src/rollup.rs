//! Metric windows rolled up into coarser snapshots (e.g. the seed's 30 s)
//! for charts of long jobs: the 1 s windows are what is stored, durable with
//! the attempt, so a finished job's charts work at any step without a
//! second copy of the metrics. Pure, like the views.

use crate::metrics::{MetricsPoint, WINDOW_S};

/// Longest step accepted, in seconds (one day).
pub const MAX_STEP_S: u32 = 86_400;

/// Rolls consecutive windows (ordered by start) into buckets of `step_s`
/// seconds aligned on multiples of it. Per bucket: records/s is the
/// bucket's records over its length when workers' counts were seen (their
/// deltas land in the window of each report), else the mean of the rates
/// the stage reported itself; queue lag and backpressure are the latest
/// known in the bucket (its state at the end); skew and workers reporting
/// are the bucket's maximum. A `step_s` of one window returns the windows.
pub fn rollup(windows: &[MetricsPoint], step_s: u32) -> Vec<MetricsPoint> {
    let step = f64::from(step_s.max(1));
    if step <= WINDOW_S {
        return windows.to_vec();
    }
    let mut out: Vec<MetricsPoint> = Vec::new();
    let mut bucket: Vec<&MetricsPoint> = Vec::new();
    let start_of = |p: &MetricsPoint| (p.start_time / step).floor() * step;
    for w in windows {
        if bucket.first().is_some_and(|b| start_of(b) != start_of(w)) {
            out.push(fold(&bucket, step, start_of(bucket[0])));
            bucket.clear();
        }
        bucket.push(w);
    }
    if let Some(first) = bucket.first() {
        out.push(fold(&bucket, step, start_of(first)));
    }
    out
}

fn fold(windows: &[&MetricsPoint], step: f64, start: f64) -> MetricsPoint {
    let computed: Vec<&&MetricsPoint> =
        windows.iter().filter(|w| w.workers_reporting > 0).collect();
    let rate = |f: fn(&MetricsPoint) -> f64| {
        if computed.is_empty() {
            windows.iter().map(|w| f(w)).sum::<f64>() / windows.len() as f64
        } else {
            computed.iter().map(|w| f(w) * WINDOW_S).sum::<f64>() / step
        }
    };
    MetricsPoint {
        start_time: start,
        end_time: start + step,
        input_throughput: rate(|w| w.input_throughput),
        output_throughput: rate(|w| w.output_throughput),
        queue_lag: windows.iter().rev().find_map(|w| w.queue_lag),
        backpressure_active: windows.iter().rev().find_map(|w| w.backpressure_active),
        skew_ratio: windows
            .iter()
            .filter_map(|w| w.skew_ratio)
            .max_by(f64::total_cmp),
        workers_reporting: windows
            .iter()
            .map(|w| w.workers_reporting)
            .max()
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::rollup;
    use crate::metrics::MetricsPoint;

    fn w(start: f64, input: f64, workers: u64, lag: Option<u64>) -> MetricsPoint {
        MetricsPoint {
            start_time: start,
            end_time: start + 1.0,
            input_throughput: input,
            output_throughput: input / 2.0,
            queue_lag: lag,
            backpressure_active: lag.map(|l| l > 100),
            skew_ratio: Some(1.0 + input / 1000.0),
            workers_reporting: workers,
        }
    }

    #[test]
    fn one_window_steps_are_the_windows() {
        let ws = vec![w(10.0, 5.0, 1, None), w(11.0, 7.0, 2, Some(3))];
        assert_eq!(rollup(&ws, 1), ws);
    }

    #[test]
    fn worker_counts_become_records_over_the_bucket() {
        // Workers reporting every 5 s: 3 windows of 300, 600, 900 records
        // within [30, 60) and one in [60, 90).
        let ws = vec![
            w(31.0, 300.0, 2, Some(50)),
            w(36.0, 600.0, 3, Some(500)),
            w(41.0, 900.0, 2, None),
            w(61.0, 30.0, 1, Some(7)),
        ];
        let r = rollup(&ws, 30);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].start_time, r[0].end_time), (30.0, 60.0));
        assert_eq!(r[0].input_throughput, 1800.0 / 30.0);
        assert_eq!(r[0].output_throughput, 900.0 / 30.0);
        assert_eq!(r[0].queue_lag, Some(500), "latest known in the bucket");
        assert_eq!(r[0].backpressure_active, Some(true));
        assert_eq!(r[0].skew_ratio, Some(1.9));
        assert_eq!(r[0].workers_reporting, 3);
        assert_eq!((r[1].start_time, r[1].input_throughput), (60.0, 1.0));
        assert_eq!(r[1].queue_lag, Some(7));
    }

    #[test]
    fn reported_rates_are_averaged() {
        let ws = vec![w(0.0, 100.0, 0, None), w(5.0, 300.0, 0, None)];
        let r = rollup(&ws, 30);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].input_throughput, 200.0);
        assert_eq!(r[0].queue_lag, None);
    }
}
