//! Per-stage metrics over event-time windows of 1 s: records/s in and out,
//! queue lag, backpressure and skew between workers. A window closes once
//! the newest event time seen is 3 s past its end; only closed windows are
//! shown, so a replay always yields the same history. Rates come from each
//! worker's cumulative counts: a report newer than the worker's last one adds
//! its increase to the report's window; an older one changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::counts::Counts;
use crate::event::{Message, Payload};
use crate::projection::{Input, Keys, Projection};

/// Window length in event seconds.
pub const WINDOW_S: f64 = 1.0;
/// How far past its end the newest event time must be for a window to close.
pub const CLOSE_AFTER_S: f64 = 3.0;

/// A window row (`stage`, `start`) or a worker's last counted report (`last`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsRow {
    pub stage_id: String,
    pub start: i64,
    pub input_delta: u64,
    pub output_delta: u64,
    /// Per worker: records in and out within the window.
    pub per_worker: BTreeMap<String, (u64, u64)>,
    /// Latest (by event time) queue lag, backpressure flag and reported throughput.
    pub queue_lag: Option<(f64, u64)>,
    pub backpressure: Option<(f64, bool)>,
    pub reported_throughput: Option<(f64, Option<f64>, Option<f64>)>,
    /// For a worker row: the newest report already counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Counts>,
}

/// One closed window of a stage, as served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsPoint {
    pub start_time: f64,
    pub end_time: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub queue_lag: Option<u64>,
    pub backpressure_active: Option<bool>,
    pub skew_ratio: Option<f64>,
    pub workers_reporting: u64,
}

impl MetricsRow {
    /// The served form of a window row.
    pub fn point(&self) -> MetricsPoint {
        let computed = !self.per_worker.is_empty();
        let (rin, rout) = match self.reported_throughput {
            Some((_, i, o)) => (i, o),
            None => (None, None),
        };
        MetricsPoint {
            start_time: self.start as f64,
            end_time: self.start as f64 + WINDOW_S,
            input_throughput: if computed {
                self.input_delta as f64 / WINDOW_S
            } else {
                rin.unwrap_or(0.0)
            },
            output_throughput: if computed {
                self.output_delta as f64 / WINDOW_S
            } else {
                rout.unwrap_or(0.0)
            },
            queue_lag: self.queue_lag.map(|(_, v)| v),
            backpressure_active: self.backpressure.map(|(_, v)| v),
            skew_ratio: self.skew(),
            workers_reporting: self.per_worker.len() as u64,
        }
    }

    /// Busiest worker over the mean worker, on input (output for sources).
    fn skew(&self) -> Option<f64> {
        let by_input = self.per_worker.values().any(|(i, _)| *i > 0);
        let vals: Vec<u64> = self
            .per_worker
            .values()
            .map(|(i, o)| if by_input { *i } else { *o })
            .collect();
        let sum: u64 = vals.iter().sum();
        if vals.is_empty() || sum == 0 {
            return None;
        }
        let mean = sum as f64 / vals.len() as f64;
        let max = *vals.iter().max()? as f64;
        Some((max / mean * 1000.0).round() / 1000.0)
    }
}

/// The window start (whole event seconds) of a timestamp.
pub fn window_of(ts: f64) -> i64 {
    (ts / WINDOW_S).floor().max(0.0) as i64
}

/// The start of the newest closed window, given the newest event time.
pub fn last_closed_window(newest_event_time: f64) -> i64 {
    ((newest_event_time - CLOSE_AFTER_S - WINDOW_S) / WINDOW_S).floor() as i64
}

/// Key prefix of a stage's window rows (ordered by start).
pub fn window_prefix(stage: &str) -> String {
    format!("s\u{1f}{stage}\u{1f}")
}

/// Key of one window row.
pub fn window_key(stage: &str, start: i64) -> String {
    format!("s\u{1f}{stage}\u{1f}{start:020}")
}

/// The windowed metrics projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct MetricsView;

fn counts_of<'m>(msg: &'m Message) -> Option<(&'m str, Counts)> {
    let ts = Some(msg.timestamp);
    match &msg.payload {
        Payload::WorkerMetrics(p) => Some((
            &p.stage_id,
            Counts {
                ts,
                input_records: p.input_records,
                output_records: p.output_records,
                processed_count: p.processed_count,
                processing_time: p.processing_time.0,
            },
        )),
        Payload::WorkerStopped(p) => match (p.input_records, p.output_records) {
            (Some(i), Some(o)) => Some((
                &p.stage_id,
                Counts {
                    ts,
                    input_records: i,
                    output_records: o,
                    processed_count: p.processed_count,
                    processing_time: p.processing_time.map_or(0.0, |t| t.0),
                },
            )),
            _ => None,
        },
        _ => None,
    }
}

impl Projection for MetricsView {
    const NAME: &'static str = "metrics";
    type Row = MetricsRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let Some(msg) = input.applied() else { return };
        let win = window_of(msg.timestamp);
        match &msg.payload {
            Payload::StageMetrics(_) | Payload::Backpressure(_) => {
                keys.push_fmt(format_args!("s\u{1f}{}\u{1f}{win:020}", msg.source_id));
            }
            _ => {
                if let Some((stage, _)) = counts_of(msg) {
                    keys.push_fmt(format_args!("s\u{1f}{stage}\u{1f}{win:020}"));
                    keys.push_fmt(format_args!("w\u{1f}{}", msg.source_id));
                }
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [MetricsRow]) {
        let Some(msg) = input.applied() else { return };
        let ts = msg.timestamp;
        let win = &mut rows[0];
        if win.stage_id.is_empty() {
            win.stage_id = msg.stage_id().unwrap_or_default().to_owned();
            win.start = window_of(ts);
        }
        let newer = |cur: Option<f64>| cur.is_none_or(|c| ts >= c);
        match &msg.payload {
            Payload::StageMetrics(p) => {
                if newer(win.reported_throughput.map(|r| r.0)) {
                    win.reported_throughput = Some((
                        ts,
                        p.input_throughput.map(|v| v.0),
                        p.output_throughput.map(|v| v.0),
                    ));
                }
                if let Some(lag) = p.queue_lag {
                    if newer(win.queue_lag.map(|q| q.0)) {
                        win.queue_lag = Some((ts, lag));
                    }
                }
                if let Some(active) = p.backpressure_active {
                    if newer(win.backpressure.map(|b| b.0)) {
                        win.backpressure = Some((ts, active));
                    }
                }
            }
            Payload::Backpressure(p) => {
                if newer(win.queue_lag.map(|q| q.0)) {
                    win.queue_lag = Some((ts, p.queue_lag));
                }
                if newer(win.backpressure.map(|b| b.0)) {
                    win.backpressure = Some((ts, p.active));
                }
            }
            _ => {
                let Some((_, report)) = counts_of(msg) else {
                    return;
                };
                let [win, worker] = rows else { return };
                let last = worker.last.unwrap_or_default();
                if last.ts.is_some_and(|t| ts <= t) {
                    return;
                }
                let din = report.input_records.saturating_sub(last.input_records);
                let dout = report.output_records.saturating_sub(last.output_records);
                worker.last = Some(report);
                win.input_delta += din;
                win.output_delta += dout;
                let e = win.per_worker.entry(msg.source_id.to_string()).or_default();
                e.0 += din;
                e.1 += dout;
            }
        }
    }
}
