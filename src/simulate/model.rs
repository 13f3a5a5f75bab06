//! The simulated job's model: stages, workers, in-flight items, and the
//! context the record writers share.

use super::*;

// ---------------------------------------------------------------- model

/// A split waiting in a stage's input queue.
#[derive(Clone, Copy)]
pub(super) struct Item {
    pub(super) root: u64,
    pub(super) rows: u64,
    pub(super) bytes: u64,
    pub(super) enqueued: u64,
    pub(super) traced: bool,
}

#[derive(Default)]
pub(super) struct Worker {
    pub(super) id: String,
    pub(super) seq: u64,
    pub(super) born: u64,
    pub(super) jitter: u64,
    pub(super) input: u64,
    pub(super) output: u64,
    pub(super) processed: u64,
    pub(super) errors: u64,
    pub(super) busy_us: u64,
    pub(super) mem: u64,
    /// A `worker_metrics` held back to be delivered after this worker's next message.
    pub(super) late: Option<Vec<u8>>,
}

#[derive(Default)]
pub(super) struct Stage {
    pub(super) name: &'static str,
    pub(super) op: &'static str,
    pub(super) min: usize,
    pub(super) max: usize,
    /// Most splits one worker handles per tick.
    pub(super) cap: u64,
    /// Output rows per 1000 input rows.
    pub(super) ratio: u64,
    pub(super) up: Option<usize>,
    pub(super) downs: Vec<usize>,
    /// Split ids are `prefix` + root split number; parents use `up_prefix`.
    pub(super) prefix: String,
    pub(super) up_prefix: String,
    pub(super) lifecycle: bool,
    /// The stage master's producer sequence.
    pub(super) seq: u64,
    pub(super) queue: VecDeque<Item>,
    pub(super) qcap: usize,
    pub(super) running: Vec<Worker>,
    pub(super) totals: (u64, u64),
    pub(super) last_totals: (u64, u64),
    pub(super) offsets: Vec<u64>,
    pub(super) blocked: bool,
    pub(super) bp_tick: Option<u64>,
    pub(super) quiet: u32,
    /// Exceptions per million splits, and per million of those, fatal ones.
    pub(super) exc_ppm: (u64, u64),
}

/// (name, operator config, min, max per scale unit, splits per worker per tick, output ‰)
pub(super) type Decl = (&'static str, &'static str, usize, usize, u64, u64);

/// The stages of a scenario; each is fed by the one before it, except that
/// in Realistic both `detect` and `embed` read `filter`.
pub(super) fn layout(sc: Scenario, k: usize) -> Vec<Stage> {
    const SRC: &str = "LanceTableSourceConfig";
    const DET: &str = "ObjectDetectionOperatorConfig";
    let decl: &[Decl] = match sc {
        Scenario::Autoscale => &[
            ("source", SRC, 1, 2, 3, 1000),
            ("filter", "FilterOperatorConfig", 1, 3, 4, 800),
            ("detect", DET, 1, 6, 1, 150),
            ("sink", "LanceSinkConfig", 1, 2, 6, 1000),
        ],
        Scenario::ExceptionStorm => &[
            ("source", "ParquetSourceConfig", 1, 2, 8, 1000),
            ("decode", "DecodeOperatorConfig", 2, 4, 6, 1000),
            ("enrich", "EnrichOperatorConfig", 1, 2, 8, 1000),
        ],
        Scenario::Lineage => &[
            ("source", SRC, 1, 2, 24, 1000),
            ("slice", "VideoSliceOperatorConfig", 1, 2, 24, 1000),
            ("detect", DET, 1, 3, 16, 150),
            ("sink", "LanceSinkConfig", 1, 2, 32, 1000),
        ],
        Scenario::Realistic => &[
            ("source", SRC, 1, 2, 3, 1000),
            ("filter", "FilterOperatorConfig", 1, 3, 4, 800),
            ("detect", DET, 2, 6, 1, 150),
            ("embed", "EmbeddingOperatorConfig", 1, 4, 2, 1000),
        ],
    };
    let mut stages: Vec<Stage> = Vec::new();
    for (i, &(name, op, min, max, cap, ratio)) in decl.iter().enumerate() {
        let max = max * k;
        let up = (i > 0).then(|| if name == "embed" { 1 } else { i - 1 });
        let up_prefix = up.map_or(String::new(), |u| stages[u].prefix.clone());
        let prefix = match up {
            Some(_) => format!("{name}_{up_prefix}"),
            None => format!("{name}_split_"),
        };
        let exc_ppm = match (sc, name) {
            (Scenario::ExceptionStorm, "decode") => (450_000, 3_000),
            (Scenario::ExceptionStorm, "enrich") => (15_000, 0),
            (Scenario::Lineage, "detect") => (40, 0),
            (_, "detect") => (1_500, 400_000),
            (_, "source") => (0, 0),
            _ => (300, 0),
        };
        if let Some(u) = up {
            stages[u].downs.push(i);
        }
        let lifecycle = sc == Scenario::Realistic && matches!(name, "filter" | "detect");
        let (qcap, offsets) = (max * cap as usize * 4, vec![0; max]);
        let st = Stage {
            name,
            op,
            min,
            max,
            cap,
            ratio,
            up,
            prefix,
            up_prefix,
            lifecycle,
            qcap,
            offsets,
            exc_ppm,
            ..Stage::default()
        };
        stages.push(st);
    }
    stages
}

/// Everything that writes records: the reused buffer, the current tick's
/// batch (sorted by delivery time when the tick ends) and the anomalies
/// decided while writing (lost message, producer restart, late delivery).
#[derive(Default)]
pub(super) struct Ctx {
    pub(super) job: String,
    pub(super) job_json: String,
    pub(super) buf: Buf,
    pub(super) batch: Vec<(u64, Vec<u8>)>,
    pub(super) generated: usize,
    pub(super) target: usize,
    pub(super) anomalies: bool,
    pub(super) arng: Rng,
    pub(super) lost_done: bool,
    pub(super) restart_done: bool,
    pub(super) late_forced: bool,
}

impl Ctx {
    /// Starts a record; an empty `src` means the job runner (`source_id` = job id).
    pub(super) fn head(&mut self, kind: &str, src: &str, ts: u64) -> &mut Buf {
        let b = &mut self.buf;
        b.0.clear();
        b.open("", b'{').s("message_type", kind);
        b.raw("job_id", &self.job_json);
        match src {
            "" => b.raw("source_id", &self.job_json),
            _ => b.s("source_id", src),
        };
        b.fx("timestamp", ts, 6).open("payload", b'{')
    }

    pub(super) fn finish(&mut self, seq: u64) -> Vec<u8> {
        let b = &mut self.buf;
        b.close(b'}').u("sequence", seq).close(b'}');
        b.0.truncate(b.0.len() - 2);
        self.generated += 1;
        b.0.clone()
    }

    pub(super) fn emit(&mut self, seq: u64, key: u64) {
        let rec = self.finish(seq);
        self.batch.push((key, rec));
    }

    pub(super) fn worker_stopped(
        &mut self,
        rng: &mut Rng,
        st: &str,
        wk: &mut Worker,
        why: &str,
        ts: u64,
    ) {
        let b = self.head("worker_stopped", &wk.id, ts);
        b.s("stage_id", st).s("reason", why);
        b.u("processed_count", wk.processed);
        b.u("error_count", wk.errors);
        if rng.ppm(500_000) {
            b.u("input_records", wk.input);
            b.u("output_records", wk.output);
            b.fx("processing_time", wk.busy_us, 6);
        }
        wk.seq += 1;
        self.emit(wk.seq, ts);
        // A held-back `worker_metrics` is delivered after the worker's newer message.
        if let Some(rec) = wk.late.take() {
            self.batch.push((ts + 1, rec));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Running,
    Draining,
    Done,
}
