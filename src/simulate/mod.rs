//! Deterministic simulator of Solstice job state streams for tests, golden
//! fixtures, benches and `sundial demo`: a job runner, stage masters and
//! autoscaled workers emitting JSON byte-for-byte like the Python producer,
//! in event time (never the wall clock), plus optional producer anomalies and
//! poison records. Generation is lazy, one 0.5 s tick at a time.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

/// Event time of the first record, seconds since the epoch.
pub const START_TIME: f64 = 1_767_772_800.0;
/// Poison records (dead letters) in a stream generated with `anomalies` on;
/// one of them is a valid message of another job, the others do not decode.
pub const POISON_RECORDS: usize = 8;

const START_US: u64 = 1_767_772_800_000_000;
const TICK: u64 = 500_000;

/// Which kind of job to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Load swings make stages scale workers up and down; a few exceptions.
    Autoscale,
    /// A decode stage throwing thousands of similar exceptions; the job fails.
    ExceptionStorm,
    /// Every split traced: mostly `split_processed`, with fan-in merges.
    Lineage,
    /// Everything mixed on a fan-out DAG; scales to millions of records.
    Realistic,
}

impl Scenario {
    /// Every scenario, in declaration order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Autoscale,
        Scenario::ExceptionStorm,
        Scenario::Lineage,
        Scenario::Realistic,
    ];

    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Autoscale => "autoscale",
            Scenario::ExceptionStorm => "exception-storm",
            Scenario::Lineage => "lineage",
            Scenario::Realistic => "realistic",
        }
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names = Scenario::ALL.map(Scenario::as_str).join(", ");
        let found = Scenario::ALL.into_iter().find(|k| k.as_str() == s);
        found.ok_or_else(|| format!("unknown scenario {s:?}: expected one of {names}"))
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The job id written in every envelope.
    pub job_id: String,
    /// PRNG seed; the same config always yields the same bytes.
    pub seed: u64,
    /// Which kind of job.
    pub scenario: Scenario,
    /// Approximate number of records (duration and parallelism scale to reach it).
    pub target_events: usize,
    /// Include poison records and producer anomalies (retries, late delivery,
    /// one lost message, one producer restart).
    pub anomalies: bool,
}

impl SimConfig {
    /// A config with seed 42 and anomalies on.
    pub fn new(job_id: &str, scenario: Scenario, target_events: usize) -> Self {
        let job_id = job_id.to_owned();
        SimConfig {
            job_id,
            seed: 42,
            scenario,
            target_events,
            anomalies: true,
        }
    }
}

/// Streams the records of `cfg` in delivery order: each item is one Kafka
/// record value (JSON exactly as the Python producer writes it, or raw poison bytes).
pub fn simulate(cfg: &SimConfig) -> Simulation {
    Simulation::new(cfg)
}

/// Re-encodes one JSON record as MessagePack (an rmp-serde named map of the
/// same JSON value); records that are not valid JSON are returned unchanged.
pub fn to_msgpack(json: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(v) => rmp_serde::to_vec_named(&v).unwrap_or_else(|_| json.to_vec()),
        Err(_) => json.to_vec(),
    }
}

mod json;
mod model;
mod records;
mod rng;
mod run;

use json::*;
use model::*;
use records::*;
use rng::*;
pub use run::Simulation;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use sundial_views::{Message, Payload};

    fn records(sc: Scenario, n: usize) -> Vec<Vec<u8>> {
        simulate(&SimConfig::new("sim_job", sc, n)).collect()
    }

    fn fixed(v: u64, d: u32) -> String {
        let mut b = Vec::new();
        push_fixed(&mut b, v, d);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (START_US, 6, "1767772800.0"),
            (START_US + 500_000, 6, "1767772800.5"),
            (3_250, 3, "3.25"),
            (50, 6, "5e-05"),
            (12, 0, "12.0"),
        ];
        for (v, d, want) in cases {
            assert_eq!(fixed(v, d), want);
        }
        assert_eq!(py_float(1e16), "1e+16");
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let us = START_US + rng.below(1_000_000_000_000);
            assert_eq!(fixed(us, 6), py_float(us as f64 / 1e6));
            let ms = rng.below(100_000_000);
            assert_eq!(fixed(ms, 3), py_float(ms as f64 / 1e3));
        }
    }

    #[test]
    fn scenario_names_round_trip() {
        for sc in Scenario::ALL {
            assert_eq!(sc.to_string().parse::<Scenario>(), Ok(sc));
        }
        let err = "storm".parse::<Scenario>().unwrap_err();
        assert!(
            err.contains("exception-storm") && err.contains("realistic"),
            "{err}"
        );
    }

    #[test]
    fn every_record_decodes_except_the_poison() {
        for sc in Scenario::ALL {
            let (mut bad, mut foreign) = (0, 0);
            for rec in records(sc, 5_000) {
                let mp = to_msgpack(&rec);
                let json = serde_json::from_slice::<Message>(&rec);
                match (json, rmp_serde::from_slice::<Message>(&mp)) {
                    (Ok(m), Ok(p)) if m.job_id == "sim_job" => assert_eq!(m, p),
                    (Ok(m), Ok(p)) => foreign += usize::from(m == p),
                    (Err(_), Err(_)) => bad += 1,
                    (json, _) => panic!("{sc}: {json:?} {}", String::from_utf8_lossy(&rec)),
                }
            }
            assert_eq!((bad, foreign), (POISON_RECORDS - 1, 1), "{sc}");
        }
    }

    #[test]
    fn same_config_same_bytes() {
        let cfg = SimConfig::new("sim_job", Scenario::Realistic, 20_000);
        assert!(simulate(&cfg).eq(simulate(&cfg)));
        let other = SimConfig {
            seed: 7,
            ..cfg.clone()
        };
        assert!(!simulate(&cfg).eq(simulate(&other)));
    }

    #[test]
    fn counters_never_decrease_in_event_order() {
        for sc in Scenario::ALL {
            // worker -> [timestamp, input, output, processed, processing time]
            let mut by_worker: BTreeMap<String, Vec<[f64; 5]>> = BTreeMap::new();
            for rec in records(sc, 20_000) {
                let Ok(m) = serde_json::from_slice::<Message>(&rec) else {
                    continue;
                };
                let (i, o, n, t) = match &m.payload {
                    _ if m.job_id != "sim_job" => continue,
                    Payload::WorkerMetrics(p) => (
                        p.input_records,
                        p.output_records,
                        p.processed_count,
                        p.processing_time,
                    ),
                    Payload::WorkerStopped(p) => match (p.input_records, p.output_records) {
                        (Some(i), Some(o)) => (i, o, p.processed_count, p.processing_time.unwrap()),
                        _ => continue,
                    },
                    _ => continue,
                };
                let row = [m.timestamp, i as f64, o as f64, n as f64, t.0];
                by_worker
                    .entry(m.source_id.into_owned())
                    .or_default()
                    .push(row);
            }
            assert!(by_worker.len() > 5, "{sc}");
            for (worker, mut rows) in by_worker {
                rows.sort_by(|a, b| a[0].total_cmp(&b[0]));
                for p in rows.windows(2) {
                    assert!((1..5).all(|c| p[0][c] <= p[1][c]), "{sc} {worker}");
                }
            }
        }
    }

    #[test]
    fn lineage_is_mostly_splits_with_known_parents() {
        let (mut seen, mut merges) = (std::collections::HashSet::new(), 0);
        for rec in records(Scenario::Lineage, 60_000) {
            let Ok(m) = serde_json::from_slice::<Message>(&rec) else {
                continue;
            };
            if let Payload::SplitProcessed(p) = m.payload {
                assert!(p
                    .parent_split_ids
                    .iter()
                    .all(|id| seen.contains(id.as_ref())));
                merges += usize::from(p.parent_split_ids.len() == 2);
                seen.insert(p.split_id.into_owned());
            }
        }
        assert!(
            seen.len() >= 50_000 && merges > 100,
            "{} splits, {merges} merges",
            seen.len()
        );
    }

    #[test]
    fn record_count_is_near_the_target() {
        for sc in Scenario::ALL {
            for target in [2_000, 10_000] {
                let n = simulate(&SimConfig::new("j", sc, target)).count();
                assert!(
                    n * 10 >= target * 9 && n * 10 <= target * 11,
                    "{sc} {target}: {n}"
                );
            }
        }
    }
}
