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
/// Poison records (dead letters) in a stream generated with `anomalies` on.
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
        Scenario::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown scenario {s:?}: expected one of autoscale, exception-storm, lineage, realistic")
        })
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
    /// Approximate number of records to produce (duration and workers scale to reach it).
    pub target_events: usize,
    /// Include poison records and producer anomalies (retries, late delivery,
    /// one lost message, one producer restart).
    pub anomalies: bool,
}

impl SimConfig {
    /// A config with seed 42 and anomalies on.
    pub fn new(job_id: &str, scenario: Scenario, target_events: usize) -> Self {
        SimConfig {
            job_id: job_id.to_owned(),
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

// ---------------------------------------------------------------- PRNG

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64: tiny, fast, and plenty for a simulator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
    fn ppm(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }
}

// ---------------------------------------------------------------- JSON writing

fn w(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(s.as_bytes());
}

fn push_u(b: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    b.extend_from_slice(&tmp[i..]);
}

/// Python `repr(float)`: shortest round-trip digits, exponent below 1e-4 or from 1e16.
fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let s = format!("{x:?}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(('+', e), |d| ('-', d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Writes `v / 10^d` as Python's `repr` of the nearest float. Exact decimal
/// printing equals `repr` here because every value has at most 16 significant
/// digits and float spacing is finer than `10^-d` (checked in the tests).
fn push_fixed(b: &mut Vec<u8>, v: u64, d: u32) {
    let scale = 10u64.pow(d);
    let (int, frac) = (v / scale, v % scale);
    if int == 0 && frac != 0 && frac * 10_000 < scale {
        w(b, &py_float(v as f64 / scale as f64));
        return;
    }
    push_u(b, int);
    b.push(b'.');
    if frac == 0 {
        b.push(b'0');
        return;
    }
    let (mut f, mut digits) = (frac, d as usize);
    while f % 10 == 0 {
        f /= 10;
        digits -= 1;
    }
    let mut tmp = [b'0'; 20];
    for slot in tmp[..digits].iter_mut().rev() {
        *slot = b'0' + (f % 10) as u8;
        f /= 10;
    }
    b.extend_from_slice(&tmp[..digits]);
}

/// Escapes a string body like `json.dumps` with `ensure_ascii=True`.
fn push_esc(b: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    {
        return w(b, s);
    }
    for c in s.chars() {
        match c {
            '"' => w(b, "\\\""),
            '\\' => w(b, "\\\\"),
            '\n' => w(b, "\\n"),
            '\r' => w(b, "\\r"),
            '\t' => w(b, "\\t"),
            '\u{8}' => w(b, "\\b"),
            '\u{c}' => w(b, "\\f"),
            ' '..='~' => b.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    w(b, &format!("\\u{u:04x}"));
                }
            }
        }
    }
}

fn push_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    push_esc(b, s);
    b.push(b'"');
}

/// `[pos, pos + n, ...]`: round-robin partition assignment of the `pos`-th of `n` workers.
fn push_parts(b: &mut Vec<u8>, pos: usize, n: usize, parts: usize) {
    b.push(b'[');
    let mut p = pos;
    while p < parts {
        if p != pos {
            w(b, ", ");
        }
        push_u(b, p as u64);
        p += n.max(1);
    }
    b.push(b']');
}

// ---------------------------------------------------------------- model

/// A split waiting in a stage's input queue.
#[derive(Clone, Copy)]
struct Item {
    root: u64,
    rows: u64,
    bytes: u64,
    enqueued: u64,
    traced: bool,
}

struct Worker {
    id: String,
    seq: u64,
    born: u64,
    input: u64,
    output: u64,
    processed: u64,
    errors: u64,
    busy_us: u64,
    mem: u64,
    /// A `worker_metrics` held back to be delivered after this worker's next message.
    late: Option<Vec<u8>>,
}

struct Stage {
    name: &'static str,
    op: &'static str,
    min: usize,
    max: usize,
    cap: u64,
    ratio: u64,
    up: Option<usize>,
    downs: Vec<usize>,
    prefix: String,
    up_prefix: String,
    lifecycle: bool,
    seq: u64,
    queue: VecDeque<Item>,
    qcap: usize,
    running: Vec<Worker>,
    total_in: u64,
    total_out: u64,
    last_in: u64,
    last_out: u64,
    offsets: Vec<u64>,
    blocked: bool,
    bp_tick: Option<u64>,
    quiet: u32,
    exc_ppm: u64,
    fatal_ppm: u64,
}

/// (name, operator config class, min, max per scale unit, splits per worker per tick, output ‰, upstream)
type Decl = (
    &'static str,
    &'static str,
    usize,
    usize,
    u64,
    u64,
    Option<usize>,
);

fn layout(sc: Scenario, k: usize) -> Vec<Stage> {
    const SRC: &str = "LanceTableSourceConfig";
    const DET: &str = "ObjectDetectionOperatorConfig";
    let decl: &[Decl] = match sc {
        Scenario::Autoscale => &[
            ("source", SRC, 1, 2, 3, 1000, None),
            ("filter", "FilterOperatorConfig", 1, 3, 4, 800, Some(0)),
            ("detect", DET, 1, 6, 1, 150, Some(1)),
            ("sink", "LanceSinkConfig", 1, 2, 6, 1000, Some(2)),
        ],
        Scenario::ExceptionStorm => &[
            ("source", "ParquetSourceConfig", 1, 2, 8, 1000, None),
            ("decode", "DecodeOperatorConfig", 2, 4, 6, 1000, Some(0)),
            ("enrich", "EnrichOperatorConfig", 1, 2, 8, 1000, Some(1)),
        ],
        Scenario::Lineage => &[
            ("source", SRC, 1, 2, 24, 1000, None),
            ("slice", "VideoSliceOperatorConfig", 1, 2, 24, 1000, Some(0)),
            ("detect", DET, 1, 3, 16, 150, Some(1)),
            ("sink", "LanceSinkConfig", 1, 2, 32, 1000, Some(2)),
        ],
        Scenario::Realistic => &[
            ("source", SRC, 1, 2, 3, 1000, None),
            ("filter", "FilterOperatorConfig", 1, 3, 4, 800, Some(0)),
            ("detect", DET, 2, 6, 1, 150, Some(1)),
            ("embed", "EmbeddingOperatorConfig", 1, 4, 2, 1000, Some(1)),
        ],
    };
    let mut stages: Vec<Stage> = Vec::new();
    for (i, &(name, op, min, max, cap, ratio, up)) in decl.iter().enumerate() {
        let max = max * k;
        let up_prefix = up.map_or(String::new(), |u| stages[u].prefix.clone());
        let prefix = if up.is_some() {
            format!("{name}_{up_prefix}")
        } else {
            format!("{name}_split_")
        };
        let (exc_ppm, fatal_ppm) = match (sc, name) {
            (Scenario::ExceptionStorm, "decode") => (450_000, 3_000),
            (Scenario::ExceptionStorm, "enrich") => (15_000, 0),
            (Scenario::Lineage, "detect") => (40, 0),
            (_, "detect") => (250, 400_000),
            (_, "source") => (0, 0),
            _ => (300, 0),
        };
        if let Some(u) = up {
            stages[u].downs.push(i);
        }
        stages.push(Stage {
            name,
            op,
            min,
            max,
            cap,
            ratio,
            up,
            downs: Vec::new(),
            prefix,
            up_prefix,
            lifecycle: sc == Scenario::Realistic && (name == "filter" || name == "detect"),
            seq: 0,
            queue: VecDeque::new(),
            qcap: max * cap as usize * 4,
            running: Vec::new(),
            total_in: 0,
            total_out: 0,
            last_in: 0,
            last_out: 0,
            offsets: vec![0; max],
            blocked: false,
            bp_tick: None,
            quiet: 0,
            exc_ppm,
            fatal_ppm,
        });
    }
    stages
}

/// Everything that writes records: the reused buffer, the current tick's
/// batch (sorted by delivery time before it is released) and the
/// generator-level anomalies.
struct Ctx {
    job_json: String,
    job: String,
    buf: Vec<u8>,
    batch: Vec<(u64, Vec<u8>)>,
    generated: usize,
    target: usize,
    anomalies: bool,
    arng: Rng,
    lost_done: bool,
    restart_done: bool,
    late_forced: bool,
}

impl Ctx {
    fn head(&mut self, kind: &str, src: &str, ts: u64) {
        let b = &mut self.buf;
        b.clear();
        w(b, "{\"message_type\": \"");
        w(b, kind);
        w(b, "\", \"job_id\": ");
        w(b, &self.job_json);
        w(b, ", \"source_id\": ");
        push_str(b, src);
        w(b, ", \"timestamp\": ");
        push_fixed(b, ts, 6);
        w(b, ", \"payload\": {");
    }

    fn finish(&mut self, seq: u64) -> Vec<u8> {
        w(&mut self.buf, "}, \"sequence\": ");
        push_u(&mut self.buf, seq);
        self.buf.push(b'}');
        self.generated += 1;
        self.buf.clone()
    }

    fn emit(&mut self, seq: u64, key: u64) {
        let rec = self.finish(seq);
        self.batch.push((key, rec));
    }

    /// Releases a held-back `worker_metrics` right after the worker's newer message.
    fn flush_late(&mut self, wk: &mut Worker, key: u64) {
        if let Some(rec) = wk.late.take() {
            self.batch.push((key + 1, rec));
        }
    }

    fn worker_stopped(
        &mut self,
        rng: &mut Rng,
        stage: &str,
        wk: &mut Worker,
        reason: &str,
        ts: u64,
    ) {
        self.head("worker_stopped", &wk.id, ts);
        let b = &mut self.buf;
        w(b, "\"stage_id\": ");
        push_str(b, stage);
        w(b, ", \"reason\": \"");
        w(b, reason);
        w(b, "\", \"processed_count\": ");
        push_u(b, wk.processed);
        w(b, ", \"error_count\": ");
        push_u(b, wk.errors);
        if rng.ppm(500_000) {
            w(b, ", \"input_records\": ");
            push_u(b, wk.input);
            w(b, ", \"output_records\": ");
            push_u(b, wk.output);
            w(b, ", \"processing_time\": ");
            push_fixed(b, wk.busy_us, 6);
        }
        wk.seq += 1;
        self.emit(wk.seq, ts);
        self.flush_late(wk, ts);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Done,
}

/// The lazy record stream returned by [`simulate`]; holds one tick of records at a time.
pub struct Simulation {
    scenario: Scenario,
    seed: u64,
    rng: Rng,
    ctx: Ctx,
    stages: Vec<Stage>,
    phase: Phase,
    tick: u64,
    job_seq: u64,
    next_root: u64,
    spawned: u64,
    load: usize,
    trace_pct: u64,
    ckpt_id: u64,
    /// (id, trigger time, tick it resolves, fails)
    ckpt: Option<(u64, u64, u64, bool)>,
    pushes: Vec<(usize, Item)>,
    out: VecDeque<Vec<u8>>,
    retries: Vec<(u32, Vec<u8>)>,
    delivered: usize,
    poison_next: usize,
}

impl Simulation {
    fn new(cfg: &SimConfig) -> Self {
        let sc = cfg.scenario;
        let k = ((cfg.target_events as f64 / 20_000.0).sqrt().round() as usize).clamp(1, 16);
        let mut job_json = Vec::new();
        push_str(&mut job_json, &cfg.job_id);
        Simulation {
            scenario: sc,
            seed: cfg.seed,
            rng: Rng(mix(cfg.seed ^ 0x5EED)),
            ctx: Ctx {
                job_json: String::from_utf8(job_json).unwrap_or_default(),
                job: cfg.job_id.clone(),
                buf: Vec::with_capacity(2048),
                batch: Vec::new(),
                generated: 0,
                target: cfg.target_events,
                anomalies: cfg.anomalies,
                arng: Rng(mix(cfg.seed ^ 0xA40A_11E5)),
                lost_done: false,
                restart_done: false,
                late_forced: false,
            },
            stages: layout(sc, k),
            phase: Phase::Running,
            tick: 0,
            job_seq: 0,
            next_root: 0,
            spawned: 0,
            load: 2,
            trace_pct: match sc {
                Scenario::Autoscale => 10,
                Scenario::ExceptionStorm => 5,
                Scenario::Lineage => 100,
                Scenario::Realistic => 20,
            },
            ckpt_id: 0,
            ckpt: None,
            pushes: Vec::new(),
            out: VecDeque::new(),
            retries: Vec::new(),
            delivered: 0,
            poison_next: 0,
        }
    }

    fn spawn(&mut self, s: usize, ts: u64) {
        self.spawned += 1;
        let hex = (self.spawned.wrapping_mul(0x9E_3779) ^ mix(self.seed)) & 0xFF_FFFF;
        let st = &mut self.stages[s];
        let pos = st.running.len();
        let wk = Worker {
            id: format!("{}_w{pos}_{hex:06x}", st.name),
            seq: 1,
            born: self.tick,
            input: 0,
            output: 0,
            processed: 0,
            errors: 0,
            busy_us: 0,
            mem: 600_000_000 + self.rng.below(400_000_000),
            late: None,
        };
        let c = &mut self.ctx;
        c.head("worker_started", &wk.id, ts);
        w(&mut c.buf, "\"stage_id\": ");
        push_str(&mut c.buf, st.name);
        w(&mut c.buf, ", \"assigned_partitions\": ");
        push_parts(&mut c.buf, pos, pos + 1, st.max);
        c.emit(wk.seq, ts);
        st.running.push(wk);
    }

    fn stop_last(&mut self, s: usize, reason: &str, ts: u64) {
        let st = &mut self.stages[s];
        if let Some(mut wk) = st.running.pop() {
            self.ctx
                .worker_stopped(&mut self.rng, st.name, &mut wk, reason, ts);
        }
    }

    fn job_msg(&mut self, kind: &str, ts: u64) {
        self.job_seq += 1;
        let job = self.ctx.job.clone();
        self.ctx.head(kind, &job, ts);
    }

    fn start(&mut self, t0: u64) {
        self.load = self.stages[0].max.min(2);
        for i in 0..self.load {
            self.spawn(0, t0 + 4_000 * i as u64);
        }
        // job_started comes after the source master already started its workers.
        self.job_msg("job_started", t0 + 20_000);
        let b = &mut self.ctx.buf;
        w(b, "\"dag_edges\": {");
        let mut first = true;
        for st in self.stages.iter().filter(|st| !st.downs.is_empty()) {
            if !first {
                w(b, ", ");
            }
            first = false;
            push_str(b, st.name);
            w(b, ": [");
            for (j, &d) in st.downs.iter().enumerate() {
                w(b, if j == 0 { "\"" } else { ", \"" });
                w(b, self.stages[d].name);
                b.push(b'"');
            }
            b.push(b']');
        }
        w(b, "}, \"stages\": [");
        for (i, st) in self.stages.iter().enumerate() {
            w(
                b,
                if i == 0 {
                    "{\"stage_id\": "
                } else {
                    ", {\"stage_id\": "
                },
            );
            push_str(b, st.name);
            w(b, ", \"operator_type\": ");
            push_str(b, st.op);
            w(b, ", \"min_parallelism\": ");
            push_u(b, st.min as u64);
            w(b, ", \"max_parallelism\": ");
            push_u(b, st.max as u64);
            b.push(b'}');
        }
        w(b, "], \"config\": {}");
        self.ctx.emit(self.job_seq, t0 + 20_000);
        for s in 0..self.stages.len() {
            let st = &mut self.stages[s];
            if st.lifecycle {
                st.seq += 1;
                let ts = t0 + 25_000 + s as u64;
                self.ctx.head("stage_started", st.name, ts);
                let b = &mut self.ctx.buf;
                w(b, "\"operator_type\": ");
                push_str(b, st.op);
                w(b, ", \"min_parallelism\": ");
                push_u(b, st.min as u64);
                w(b, ", \"max_parallelism\": ");
                push_u(b, st.max as u64);
                self.ctx.emit(st.seq, ts);
            }
            if s > 0 {
                for i in 0..self.stages[s].min {
                    self.spawn(s, t0 + 30_000 + 1_000 * (s * 16 + i) as u64);
                }
            }
        }
    }

    fn autoscale(&mut self, t0: u64) {
        if self.tick % 80 == 0 {
            self.load = self
                .rng
                .range(self.stages[0].min as u64, self.stages[0].max as u64)
                as usize;
        }
        for s in 0..self.stages.len() {
            let ts = t0 + 1_000 + 2_000 * s as u64;
            let (n, min, max) = (
                self.stages[s].running.len(),
                self.stages[s].min,
                self.stages[s].max,
            );
            if s == 0 {
                if self.phase == Phase::Draining {
                    while !self.stages[0].running.is_empty() {
                        self.stop_last(0, "completed", ts);
                    }
                } else if n < self.load {
                    self.spawn(0, ts);
                } else if n > self.load && self.tick % 4 == 0 {
                    self.stop_last(0, "completed", ts);
                }
                continue;
            }
            let backlog = self.stages[s].queue.len();
            let per_worker = self.stages[s].cap as usize;
            let decide = self.tick % 4 == 0;
            if n < min || (decide && backlog > n * per_worker * 2 && n < max) {
                self.spawn(s, ts);
            } else if decide && backlog < n && n > min {
                self.stages[s].quiet += 1;
                if self.stages[s].quiet >= 2 {
                    self.stages[s].quiet = 0;
                    self.stop_last(s, "completed", ts);
                }
            }
        }
    }

    /// One tick of work for every running worker, in stage order.
    fn process(&mut self, t0: u64) {
        for s in 0..self.stages.len() {
            let blocked = self.stages[s]
                .downs
                .iter()
                .any(|&d| self.stages[d].queue.len() >= self.stages[d].qcap);
            self.backpressure(s, blocked, t0);
            let st = &mut self.stages[s];
            let (n, source) = (st.running.len(), st.up.is_none());
            let mut dead = Vec::new();
            for pos in 0..n {
                let wk = &mut st.running[pos];
                if wk.born == self.tick || blocked || (source && self.phase != Phase::Running) {
                    continue;
                }
                let k = self.rng.range(1, st.cap);
                let mut cursor = t0 + 1_000 + self.rng.below(20_000);
                let mut busy = false;
                for _ in 0..k {
                    let mut item = if source {
                        self.next_root += 1;
                        let rows = self.rng.range(500, 4_000);
                        Item {
                            root: self.next_root,
                            rows,
                            bytes: 0,
                            enqueued: t0,
                            traced: false,
                        }
                    } else {
                        match st.queue.pop_front() {
                            Some(item) => item,
                            None => break,
                        }
                    };
                    if source {
                        item.traced = mix(item.root ^ self.seed) % 100 < self.trace_pct;
                    }
                    let merge =
                        (!source && st.downs.is_empty() && self.scenario == Scenario::Lineage)
                            .then(|| {
                                if self.rng.ppm(100_000) {
                                    st.queue.pop_front()
                                } else {
                                    None
                                }
                            })
                            .flatten();
                    busy = true;
                    let proc_us = self.rng.range(10_000, 400_000 / k);
                    let (deq, done) = (cursor, cursor + proc_us);
                    cursor = done + 100;
                    let parts = st.max;
                    let cnt = if pos < parts {
                        (parts - pos).div_ceil(n) as u64
                    } else {
                        0
                    };
                    let partition = if cnt > 0 {
                        pos + n * (item.root % cnt) as usize
                    } else {
                        item.root as usize % parts
                    };
                    if self.rng.ppm(st.exc_ppm) {
                        wk.errors += 1;
                        let fatal = self.rng.ppm(st.fatal_ppm);
                        let split = format!("{}{}", st.prefix, item.root);
                        wk.seq += 1;
                        exception(
                            &mut self.ctx,
                            &mut self.rng,
                            (st.name, Some(&*wk.id), &split),
                            self.scenario,
                            wk.seq,
                            done,
                        );
                        if fatal {
                            self.ctx.worker_stopped(
                                &mut self.rng,
                                st.name,
                                wk,
                                "failed",
                                done + 1_000,
                            );
                            dead.push(pos);
                            break;
                        }
                        continue;
                    }
                    let rows_in = if source {
                        0
                    } else {
                        item.rows + merge.map_or(0, |m| m.rows)
                    };
                    let rows_out = if source {
                        item.rows
                    } else {
                        (rows_in * st.ratio / 1000).max(1)
                    };
                    let bytes_in = item.bytes + merge.map_or(0, |m| m.bytes);
                    let bytes_out = rows_out * 2_048 + self.rng.below(2_048);
                    wk.processed += 1;
                    wk.input += rows_in;
                    wk.output += rows_out;
                    wk.busy_us += proc_us;
                    st.total_in += rows_in;
                    st.total_out += rows_out;
                    st.offsets[partition] += 1;
                    for &d in &st.downs {
                        let next = Item {
                            rows: rows_out,
                            bytes: bytes_out,
                            enqueued: done,
                            ..item
                        };
                        self.pushes.push((d, next));
                    }
                    if item.traced {
                        wk.seq += 1;
                        let sp = Split {
                            root: item.root,
                            merge: merge.map(|m| m.root),
                            partition,
                            enq: item.enqueued,
                            deq,
                            done,
                            rows: (rows_in, rows_out),
                            bytes: (bytes_in, bytes_out),
                        };
                        let ids = SplitIds {
                            stage: st.name,
                            prefix: &st.prefix,
                            up_prefix: st.up.map(|_| st.up_prefix.as_str()),
                        };
                        split_processed(&mut self.ctx, &ids, &wk.id, &sp, wk.seq);
                    }
                }
                if busy && !dead.contains(&pos) {
                    let ts = (t0 + 470_000 + (mix(pos as u64) % 29_000)).max(cursor + 1);
                    let gpu = st.name == "detect";
                    worker_metrics(
                        &mut self.ctx,
                        &mut self.rng,
                        (st.name, gpu, pos, n, st.max),
                        wk,
                        ts,
                    );
                }
            }
            for &pos in dead.iter().rev() {
                st.running.remove(pos);
            }
        }
        for (d, item) in self.pushes.drain(..) {
            self.stages[d].queue.push_back(item);
        }
    }

    fn backpressure(&mut self, s: usize, blocked: bool, t0: u64) {
        let lag = self.stages[s]
            .downs
            .iter()
            .map(|&d| self.stages[d].queue.len())
            .max()
            .unwrap_or(0);
        let st = &mut self.stages[s];
        let due = st.bp_tick.is_none_or(|t| self.tick >= t + 4);
        if !(due && (blocked || st.blocked)) {
            return;
        }
        st.blocked = blocked;
        st.bp_tick = Some(self.tick);
        st.seq += 1;
        let ts = t0 + 200_000 + s as u64;
        self.ctx.head("backpressure", st.name, ts);
        let b = &mut self.ctx.buf;
        w(
            b,
            if blocked {
                "\"active\": true"
            } else {
                "\"active\": false"
            },
        );
        w(b, ", \"queue_lag\": ");
        push_u(b, lag as u64);
        w(
            b,
            if blocked {
                ", \"slow_down_factor\": 0.5"
            } else {
                ", \"slow_down_factor\": 1.0"
            },
        );
        self.ctx.emit(st.seq, ts);
    }

    fn stage_metrics(&mut self, t0: u64) {
        for s in 0..self.stages.len() {
            let st = &mut self.stages[s];
            let ts = t0 + 250_000 + s as u64;
            st.seq += 1;
            self.ctx.head("stage_metrics", st.name, ts);
            let b = &mut self.ctx.buf;
            w(b, "\"worker_count\": ");
            push_u(b, st.running.len() as u64);
            if self.rng.ppm(650_000) {
                w(b, ", \"input_records\": ");
                push_u(b, st.total_in);
                w(b, ", \"output_records\": ");
                push_u(b, st.total_out);
            }
            if self.rng.ppm(750_000) {
                w(b, ", \"input_throughput\": ");
                push_fixed(b, st.total_in - st.last_in, 0);
                w(b, ", \"output_throughput\": ");
                push_fixed(b, st.total_out - st.last_out, 0);
                w(b, ", \"queue_lag\": ");
                push_u(b, st.queue.len() as u64);
                w(
                    b,
                    if st.blocked {
                        ", \"backpressure_active\": true"
                    } else {
                        ", \"backpressure_active\": false"
                    },
                );
            }
            (st.last_in, st.last_out) = (st.total_in, st.total_out);
            if self.rng.ppm(500_000) {
                w(b, ", \"partition_metrics\": {");
                let parts = st.offsets.len();
                for (p, off) in st.offsets.iter().enumerate() {
                    w(b, if p == 0 { "\"" } else { ", \"" });
                    push_u(b, p as u64);
                    w(b, "\": {\"offset\": ");
                    push_u(b, *off);
                    w(b, ", \"lag\": ");
                    push_u(b, ((st.queue.len() + parts - 1 - p) / parts) as u64);
                    b.push(b'}');
                }
                b.push(b'}');
            }
            self.ctx.emit(st.seq, ts);
            if self.scenario == Scenario::Realistic && s > 0 && self.rng.ppm(2_500) {
                st.seq += 1;
                let msg = format!(
                    "partition {} revoked while committing offset {}",
                    self.rng.below(st.max as u64),
                    st.offsets[0]
                );
                stage_exception(&mut self.ctx, st.name, &msg, st.seq, ts + 1);
            }
        }
    }

    fn checkpoints(&mut self, t0: u64) {
        if let Some((id, trig, due, fail)) = self.ckpt {
            if self.tick < due {
                return;
            }
            self.ckpt = None;
            let ts = t0 + 200_000 + self.rng.below(50_000);
            self.job_msg("checkpoint", ts);
            let b = &mut self.ctx.buf;
            w(b, "\"checkpoint_id\": ");
            push_u(b, id);
            w(
                b,
                if fail {
                    ", \"status\": \"failed\""
                } else {
                    ", \"status\": \"completed\""
                },
            );
            w(b, ", \"trigger_time\": ");
            push_fixed(b, trig, 6);
            w(b, ", \"duration_ms\": ");
            push_u(b, (ts - trig) / 1_000);
            if fail {
                w(b, ", \"failure_reason\": \"checkpoint barrier timed out after 60000 ms waiting for stage ");
                w(b, self.stages[self.stages.len() - 1].name);
                b.push(b'"');
            } else {
                w(b, ", \"state_size_bytes\": ");
                push_u(b, 1_048_576 + self.next_root * 512 + self.rng.below(65_536));
                w(b, ", \"source_offsets\": {");
                for (p, off) in self.stages[0].offsets.iter().enumerate() {
                    w(b, if p == 0 { "\"" } else { ", \"" });
                    push_u(b, p as u64);
                    w(b, "\": ");
                    push_u(b, *off);
                }
                b.push(b'}');
            }
            self.ctx.emit(self.job_seq, ts);
        } else if self.tick % 10 == 0 {
            self.ckpt_id += 1;
            let ts = t0 + 300_000;
            let fail = self.rng.ppm(125_000);
            self.ckpt = Some((self.ckpt_id, ts, self.tick + self.rng.range(1, 4), fail));
            self.job_msg("checkpoint", ts);
            let b = &mut self.ctx.buf;
            w(b, "\"checkpoint_id\": ");
            push_u(b, self.ckpt_id);
            w(b, ", \"status\": \"triggered\", \"trigger_time\": ");
            push_fixed(b, ts, 6);
            self.ctx.emit(self.job_seq, ts);
        }
    }

    /// Stops every worker, closes lifecycle stages and ends the job.
    fn end_job(&mut self, t: u64) {
        let failed = self.scenario == Scenario::ExceptionStorm;
        let mut ts = t;
        for s in 0..self.stages.len() {
            let st = &mut self.stages[s];
            let storm = failed && s == 1;
            if storm {
                if let Some(wk) = st.running.first_mut() {
                    wk.seq += 1;
                    let msg = format!(
                        "too many failed splits: {} errors exceed max_errors=1000",
                        wk.errors.max(1001)
                    );
                    let ex = ("RuntimeError", msg, "worker.raise_if_over_error_budget()");
                    write_exception(&mut self.ctx, (st.name, Some(&wk.id), ""), ex, wk.seq, ts);
                }
            }
            while let Some(mut wk) = st.running.pop() {
                ts += 1_000;
                self.ctx.worker_stopped(
                    &mut self.rng,
                    st.name,
                    &mut wk,
                    if storm { "failed" } else { "completed" },
                    ts,
                );
            }
            if st.lifecycle && !failed {
                st.seq += 1;
                ts += 1_000;
                self.ctx.head("stage_completed", st.name, ts);
                self.ctx.emit(st.seq, ts);
            }
            ts += 100_000;
        }
        let (kind, status) = if failed {
            ("job_failed", "FAILED")
        } else {
            ("job_completed", "COMPLETED")
        };
        self.job_msg(kind, ts);
        let b = &mut self.ctx.buf;
        w(b, "\"status\": \"");
        w(b, status);
        w(b, "\", \"duration_ms\": ");
        push_u(b, (ts - START_US) / 1_000);
        w(b, ", \"final_metrics\": {}");
        self.ctx.emit(self.job_seq, ts);
        self.phase = Phase::Done;
    }

    fn step(&mut self) {
        let t0 = START_US + self.tick * TICK;
        if self.tick == 0 {
            self.start(t0);
        } else {
            self.autoscale(t0);
            self.process(t0);
            if self.tick % 2 == 0 {
                self.stage_metrics(t0);
            }
            self.checkpoints(t0);
        }
        self.tick += 1;
        let running: usize = self.stages.iter().map(|s| s.running.len()).sum();
        let projected = self.ctx.generated + running + 2 * self.stages.len() + 4;
        let target = self.ctx.target;
        let idle = self.stages.iter().all(|s| s.queue.is_empty());
        match self.phase {
            Phase::Running if projected * 100 >= target * 97 => {
                if self.scenario == Scenario::ExceptionStorm {
                    self.end_job(t0 + TICK);
                } else {
                    self.phase = Phase::Draining;
                }
            }
            Phase::Draining if projected >= target || idle => self.end_job(t0 + TICK),
            _ => {}
        }
        let mut batch = std::mem::take(&mut self.ctx.batch);
        batch.sort_by_key(|r| r.0);
        self.out.extend(batch.drain(..).map(|r| r.1));
        self.ctx.batch = batch;
    }

    /// The `i`-th poison record: each one a different reason for a dead letter.
    fn poison(&self, i: usize) -> Vec<u8> {
        let mut ts = Vec::new();
        push_fixed(&mut ts, START_US + self.tick * TICK + 123_456, 6);
        let ts = String::from_utf8(ts).unwrap_or_default();
        let stage = self.stages[self.stages.len() - 1].name;
        let job = self.ctx.job_json.as_str();
        let other = if self.ctx.job == "other_job" {
            "\"other_job_2\""
        } else {
            "\"other_job\""
        };
        let env = |kind: &str, job: &str, ts: &str, payload: &str, seq: &str| {
            format!("{{\"message_type\": \"{kind}\", \"job_id\": {job}, \"source_id\": \"{stage}_w9_0badf0\", \"timestamp\": {ts}, \"payload\": {{\"stage_id\": \"{stage}\"{payload}}}, \"sequence\": {seq}}}")
        };
        let counts = |input: &str, processed: &str| {
            format!(", \"input_records\": {input}, \"output_records\": 7, \"processing_time\": 0.25, \"processed_count\": {processed}, \"assigned_partitions\": [0], \"is_running\": true")
        };
        let rec = match i {
            0 => {
                let full = env("worker_metrics", job, &ts, &counts("3", "3"), "null");
                let mut cut = full.as_bytes()[..full.len() / 2].to_vec();
                cut.extend_from_slice(b"\xff\xfe");
                return cut;
            }
            1 => env(
                "worker_stopped",
                job,
                &ts,
                ", \"reason\": \"completed\", \"error_count\": 0",
                "null",
            ),
            2 => env("worker_metrics", job, &ts, &counts("-42", "3"), "null"),
            3 => env("worker_heartbeat", job, &ts, ", \"alive\": true", "null"),
            4 => env("worker_metrics", other, &ts, &counts("10", "1"), "1"),
            5 => env("worker_metrics", job, "NaN", &counts("3", "3"), "null"),
            6 => {
                let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
                env(
                    "worker_metrics",
                    job,
                    &ts,
                    &format!("{}, \"tags\": {deep}", counts("3", "3")),
                    "null",
                )
            }
            _ => env("worker_metrics", job, &ts, &counts("3", "\"17\""), "null"),
        };
        rec.into_bytes()
    }
}

impl Iterator for Simulation {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.retries.iter().position(|r| r.0 == 0) {
                self.delivered += 1;
                return Some(self.retries.swap_remove(i).1);
            }
            let ended = self.phase == Phase::Done && self.out.is_empty();
            let due = self.ctx.target * (self.poison_next + 1) / (POISON_RECORDS + 1);
            if self.ctx.anomalies
                && self.poison_next < POISON_RECORDS
                && (self.delivered >= due || ended)
            {
                self.poison_next += 1;
                self.delivered += 1;
                return Some(self.poison(self.poison_next - 1));
            }
            if let Some(rec) = self.out.pop_front() {
                self.retries.iter_mut().for_each(|r| r.0 -= 1);
                if self.ctx.anomalies && self.ctx.arng.ppm(5_000) {
                    let after = self.ctx.arng.range(1, 4) as u32;
                    self.retries.push((after, rec.clone()));
                }
                self.delivered += 1;
                return Some(rec);
            }
            if ended {
                if self.retries.is_empty() {
                    return None;
                }
                self.retries.iter_mut().for_each(|r| r.0 = 0);
                continue;
            }
            self.step();
        }
    }
}

// ---------------------------------------------------------------- record writers

/// One processed split, for `split_processed`.
struct Split {
    root: u64,
    merge: Option<u64>,
    partition: usize,
    enq: u64,
    deq: u64,
    done: u64,
    rows: (u64, u64),
    bytes: (u64, u64),
}

/// How a stage names its splits and their parents.
struct SplitIds<'a> {
    stage: &'a str,
    prefix: &'a str,
    up_prefix: Option<&'a str>,
}

fn split_processed(c: &mut Ctx, st: &SplitIds, worker: &str, sp: &Split, seq: u64) {
    c.head("split_processed", worker, sp.done);
    let b = &mut c.buf;
    w(b, "\"stage_id\": ");
    push_str(b, st.stage);
    w(b, ", \"split_id\": \"");
    w(b, st.prefix);
    push_u(b, sp.root);
    w(b, "\", \"parent_split_ids\": [");
    if let Some(up_prefix) = st.up_prefix {
        for (j, root) in std::iter::once(sp.root).chain(sp.merge).enumerate() {
            w(b, if j == 0 { "\"" } else { ", \"" });
            w(b, up_prefix);
            push_u(b, root);
            b.push(b'"');
        }
    }
    w(b, "], \"partition_id\": ");
    push_u(b, sp.partition as u64);
    for (key, v) in [
        (", \"enqueue_time\": ", sp.enq),
        (", \"dequeue_time\": ", sp.deq),
        (", \"complete_time\": ", sp.done),
    ] {
        w(b, key);
        push_fixed(b, v, 6);
    }
    w(b, ", \"queue_wait_time_ms\": ");
    push_fixed(b, sp.deq - sp.enq, 3);
    w(b, ", \"processing_time_ms\": ");
    push_fixed(b, sp.done - sp.deq, 3);
    for (key, v) in [
        (", \"input_records\": ", sp.rows.0),
        (", \"output_records\": ", sp.rows.1),
        (", \"input_bytes\": ", sp.bytes.0),
        (", \"output_bytes\": ", sp.bytes.1),
    ] {
        w(b, key);
        push_u(b, v);
    }
    w(b, ", \"payload_store_key\": \"ps_");
    let key = mix(sp.root.wrapping_mul(31) ^ st.prefix.len() as u64);
    w(b, &format!("{key:016x}\""));
    if sp.bytes.1 > 4 << 20 {
        w(b, ", \"payload_storage_path\": \"s3://solstice-payloads/");
        let job = c.job.clone();
        push_esc(&mut c.buf, &job);
        let b = &mut c.buf;
        b.push(b'/');
        w(b, st.stage);
        b.push(b'/');
        w(b, st.prefix);
        push_u(b, sp.root);
        w(b, ".arrow\"");
    }
    c.emit(seq, sp.done);
}

/// (stage name, has gpu, position among running workers, running workers, partitions)
type MetricsCtx<'a> = (&'a str, bool, usize, usize, usize);

fn worker_metrics(
    c: &mut Ctx,
    rng: &mut Rng,
    (stage, gpu, pos, n, parts): MetricsCtx,
    wk: &mut Worker,
    ts: u64,
) {
    if c.anomalies && !c.restart_done && c.generated * 10 >= c.target * 6 {
        c.restart_done = true;
        wk.seq = 0;
    }
    wk.seq += 1;
    if c.anomalies && !c.lost_done && c.generated * 10 >= c.target * 3 {
        c.lost_done = true;
        return;
    }
    wk.mem += rng.below(4_000_000);
    c.head("worker_metrics", &wk.id, ts);
    let b = &mut c.buf;
    w(b, "\"stage_id\": ");
    push_str(b, stage);
    for (key, v) in [
        (", \"input_records\": ", wk.input),
        (", \"output_records\": ", wk.output),
    ] {
        w(b, key);
        push_u(b, v);
    }
    w(b, ", \"processing_time\": ");
    push_fixed(b, wk.busy_us, 6);
    w(b, ", \"processed_count\": ");
    push_u(b, wk.processed);
    w(b, ", \"assigned_partitions\": ");
    push_parts(b, pos, n, parts);
    w(b, ", \"is_running\": true");
    if rng.ppm(800_000) {
        w(b, ", \"cpu_percent\": ");
        push_fixed(b, rng.range(150, 990), 1);
        w(b, ", \"memory_bytes\": ");
        push_u(b, wk.mem);
        if gpu {
            w(b, ", \"gpu_percent\": ");
            push_fixed(b, rng.range(300, 1000), 1);
        }
    }
    let late = c.anomalies && wk.late.is_none() && {
        let forced = !c.late_forced && c.generated * 5 >= c.target;
        c.late_forced |= forced;
        forced || c.arng.ppm(1_500)
    };
    let rec = c.finish(wk.seq);
    let held = wk.late.take();
    c.batch.push((ts, rec.clone()));
    if let Some(old) = held {
        c.batch.push((ts + 1, old));
    }
    if late {
        c.batch.pop();
        wk.late = Some(rec);
    }
}

/// Picks an exception typical of the stage; messages differ only in numbers and ids.
fn pick_exception(
    rng: &mut Rng,
    sc: Scenario,
    stage: &str,
) -> (&'static str, String, &'static str) {
    let (a, b) = (rng.below(100_000), rng.below(10_000));
    match (sc, stage, a % 100) {
        (Scenario::ExceptionStorm, "decode", 0..=49) | (_, "filter", _) => (
            "ValueError",
            format!("failed to decode row {a} in file s3://bucket/part-{:05}.parquet", b % 64),
            "table = pq.read_table(path).slice(offset, length)",
        ),
        (Scenario::ExceptionStorm, "decode", 50..=74) => (
            "ArrowInvalid",
            format!("Expected {} columns but got {} in record batch {b}", 12 + a % 3, 9 + a % 3),
            "batch = reader.read_next_batch()",
        ),
        (Scenario::ExceptionStorm, "decode", 75..=89) => (
            "TimeoutError",
            format!("payload store get timed out after 30.0s for key ps_{:08x}", mix(a)),
            "payload = self._payload_store.get(key, timeout=30.0)",
        ),
        (Scenario::ExceptionStorm, "decode", _) => ("KeyError", format!("'frame_{b}'"), "frame = record[column]"),
        (_, "detect", _) => (
            "RuntimeError",
            format!("CUDA out of memory. Tried to allocate {}.00 GiB (GPU {}; 15.78 GiB total capacity)", 1 + b % 4, b % 8),
            "boxes = self._model(frames.to(self._device))",
        ),
        _ => ("ConnectionResetError", "[Errno 104] Connection reset by peer".to_owned(), "self._client.put(key, payload)"),
    }
}

/// (stage, worker, split id or "")
type ExcSource<'a> = (&'a str, Option<&'a str>, &'a str);

fn exception(c: &mut Ctx, rng: &mut Rng, src: ExcSource, sc: Scenario, seq: u64, ts: u64) {
    let ex = pick_exception(rng, sc, src.0);
    write_exception(c, src, ex, seq, ts);
}

fn stage_exception(c: &mut Ctx, stage: &str, msg: &str, seq: u64, ts: u64) {
    let ex = (
        "RebalanceError",
        msg.to_owned(),
        "self._consumer.commit(offsets)",
    );
    write_exception(c, (stage, None, ""), ex, seq, ts);
}

fn write_exception(
    c: &mut Ctx,
    (stage, worker, split): ExcSource,
    (ty, msg, code): (&str, String, &str),
    seq: u64,
    ts: u64,
) {
    c.head("exception", worker.unwrap_or(stage), ts);
    let b = &mut c.buf;
    w(b, "\"stage_id\": ");
    push_str(b, stage);
    w(b, ", \"worker_id\": ");
    match worker {
        Some(id) => push_str(b, id),
        None => w(b, "null"),
    }
    w(b, ", \"exception_type\": ");
    push_str(b, ty);
    w(b, ", \"message\": ");
    push_str(b, &msg);
    let trace = format!(
        "Traceback (most recent call last):\n  File \"/opt/solstice/solstice/runtime/stage_worker.py\", line 412, in _process_message\n    output = await self._run_operator(split, payload)\n  File \"/opt/solstice/solstice/runtime/stage_worker.py\", line 389, in _run_operator\n    return self._operator.process_split(split, payload)\n  File \"/opt/solstice/solstice/operators/{stage}.py\", line 88, in process_split\n    {code}\n{ty}: {msg}\n"
    );
    w(b, ", \"stacktrace\": ");
    push_str(b, &trace);
    w(b, ", \"split_id\": ");
    if split.is_empty() {
        w(b, "null");
    } else {
        push_str(b, split);
    }
    c.emit(seq, ts);
}
