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

// ---------------------------------------------------------------- PRNG

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64: tiny, fast, and plenty for a simulator.
#[derive(Default)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        ((u128::from(mix(self.0)) * u128::from(n)) >> 64) as u64
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

#[inline]
fn w(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(s.as_bytes());
}

/// "00" to "99", for writing integers two digits at a time.
const PAIRS: [u8; 200] = {
    let (mut t, mut i) = ([0u8; 200], 0);
    while i < 100 {
        (t[2 * i], t[2 * i + 1]) = (b'0' + (i / 10) as u8, b'0' + (i % 10) as u8);
        i += 1;
    }
    t
};

fn push_u(b: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
    }
    if v >= 10 {
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&PAIRS[v as usize * 2..v as usize * 2 + 2]);
    } else {
        i -= 1;
        tmp[i] = b'0' + v as u8;
    }
    b.extend_from_slice(&tmp[i..]);
}

/// Python `repr(float)`: shortest round-trip digits, exponent below 1e-4 or from 1e16.
fn py_float(x: f64) -> String {
    if !x.is_finite() {
        let name = if x.is_nan() { "NaN" } else { "Infinity" };
        return if x < 0.0 {
            format!("-{name}")
        } else {
            name.to_owned()
        };
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
/// printing equals `repr` here: values have at most 16 significant digits and
/// float spacing is finer than `10^-d` (checked against `py_float` in the tests).
fn push_fixed(b: &mut Vec<u8>, v: u64, d: u32) {
    let scale = 10u64.pow(d);
    let (int, frac) = (v / scale, v % scale);
    if int == 0 && frac != 0 && frac * 10_000 < scale {
        return w(b, &py_float(v as f64 / scale as f64));
    }
    push_u(b, int);
    b.push(b'.');
    let (mut f, mut digits) = (frac, (d as usize).max(1));
    while f % 10 == 0 && digits > 1 {
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

/// Writes a JSON string like `json.dumps` with `ensure_ascii=True`.
fn push_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    if s.bytes()
        .all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    {
        w(b, s);
    } else {
        for c in s.chars() {
            match c {
                '"' => w(b, "\\\""),
                '\\' => w(b, "\\\\"),
                '\n' => w(b, "\\n"),
                '\r' => w(b, "\\r"),
                '\t' => w(b, "\\t"),
                ' '..='~' => b.push(c as u8),
                _ => {
                    for u in c.encode_utf16(&mut [0u16; 2]) {
                        w(b, &format!("\\u{u:04x}"));
                    }
                }
            }
        }
    }
    b.push(b'"');
}

fn tf(v: bool) -> &'static str {
    if v {
        "true"
    } else {
        "false"
    }
}

/// A record being written in `json.dumps` layout: every field method appends
/// `"key": value, ` (an empty key writes a list item) and `close` drops the
/// trailing separator before closing a map or list.
#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !k.is_empty() {
            self.0.push(b'"');
            w(&mut self.0, k);
            w(&mut self.0, "\": ");
        }
        &mut self.0
    }
    fn sep(&mut self) -> &mut Self {
        w(&mut self.0, ", ");
        self
    }
    fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        w(self.key(k), v);
        self.sep()
    }
    fn u(&mut self, k: &str, v: u64) -> &mut Self {
        push_u(self.key(k), v);
        self.sep()
    }
    /// A float given as `v / 10^d`.
    fn fx(&mut self, k: &str, v: u64, d: u32) -> &mut Self {
        push_fixed(self.key(k), v, d);
        self.sep()
    }
    fn s(&mut self, k: &str, v: &str) -> &mut Self {
        push_str(self.key(k), v);
        self.sep()
    }
    /// A split id: `prefix` followed by the root split number.
    fn id(&mut self, k: &str, prefix: &str, n: u64) -> &mut Self {
        let b = self.key(k);
        b.push(b'"');
        w(b, prefix);
        push_u(b, n);
        b.push(b'"');
        self.sep()
    }
    fn open(&mut self, k: &str, c: u8) -> &mut Self {
        self.key(k).push(c);
        self
    }
    fn close(&mut self, c: u8) -> &mut Self {
        if self.0.ends_with(b", ") {
            self.0.truncate(self.0.len() - 2);
        }
        self.0.push(c);
        self.sep()
    }
    /// A map keyed by partition number, one entry per value.
    fn by_partition(&mut self, k: &str, vals: &[u64], f: impl Fn(&mut Self, usize, u64)) {
        self.open(k, b'{');
        for (p, &v) in vals.iter().enumerate() {
            self.0.push(b'"');
            push_u(&mut self.0, p as u64);
            w(&mut self.0, "\": ");
            f(self, p, v);
        }
        self.close(b'}');
    }
    /// `[pos, pos + n, ...]`: round-robin assignment of the `pos`-th of `n` workers.
    fn parts(&mut self, pos: usize, n: usize, total: usize) -> &mut Self {
        self.open("assigned_partitions", b'[');
        for p in (pos..total).step_by(n.max(1)) {
            self.u("", p as u64);
        }
        self.close(b']')
    }
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

#[derive(Default)]
struct Worker {
    id: String,
    seq: u64,
    born: u64,
    jitter: u64,
    input: u64,
    output: u64,
    processed: u64,
    errors: u64,
    busy_us: u64,
    mem: u64,
    /// A `worker_metrics` held back to be delivered after this worker's next message.
    late: Option<Vec<u8>>,
}

#[derive(Default)]
struct Stage {
    name: &'static str,
    op: &'static str,
    min: usize,
    max: usize,
    /// Most splits one worker handles per tick.
    cap: u64,
    /// Output rows per 1000 input rows.
    ratio: u64,
    up: Option<usize>,
    downs: Vec<usize>,
    /// Split ids are `prefix` + root split number; parents use `up_prefix`.
    prefix: String,
    up_prefix: String,
    lifecycle: bool,
    /// The stage master's producer sequence.
    seq: u64,
    queue: VecDeque<Item>,
    qcap: usize,
    running: Vec<Worker>,
    totals: (u64, u64),
    last_totals: (u64, u64),
    offsets: Vec<u64>,
    blocked: bool,
    bp_tick: Option<u64>,
    quiet: u32,
    /// Exceptions per million splits, and per million of those, fatal ones.
    exc_ppm: (u64, u64),
}

/// (name, operator config, min, max per scale unit, splits per worker per tick, output ‰)
type Decl = (&'static str, &'static str, usize, usize, u64, u64);

/// The stages of a scenario; each is fed by the one before it, except that
/// in Realistic both `detect` and `embed` read `filter`.
fn layout(sc: Scenario, k: usize) -> Vec<Stage> {
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
struct Ctx {
    job: String,
    job_json: String,
    buf: Buf,
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
    /// Starts a record; an empty `src` means the job runner (`source_id` = job id).
    fn head(&mut self, kind: &str, src: &str, ts: u64) -> &mut Buf {
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

    fn finish(&mut self, seq: u64) -> Vec<u8> {
        let b = &mut self.buf;
        b.close(b'}').u("sequence", seq).close(b'}');
        b.0.truncate(b.0.len() - 2);
        self.generated += 1;
        b.0.clone()
    }

    fn emit(&mut self, seq: u64, key: u64) {
        let rec = self.finish(seq);
        self.batch.push((key, rec));
    }

    fn worker_stopped(&mut self, rng: &mut Rng, st: &str, wk: &mut Worker, why: &str, ts: u64) {
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
enum Phase {
    Running,
    Draining,
    Done,
}

/// The lazy record stream returned by [`simulate`]; holds about one tick of records.
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
    /// The checkpoint in flight: (id, trigger time, tick it resolves, fails).
    ckpt: Option<(u64, u64, u64, bool)>,
    pushes: Vec<(usize, Item)>,
    out: VecDeque<Vec<u8>>,
    retries: Vec<(u32, Vec<u8>)>,
    delivered: usize,
    poison_next: usize,
}

impl Simulation {
    fn new(cfg: &SimConfig) -> Self {
        let (sc, seed, target) = (cfg.scenario, cfg.seed, cfg.target_events);
        let k = ((target as f64 / 20_000.0).sqrt().round() as usize).clamp(1, 16);
        let mut job_json = Vec::new();
        push_str(&mut job_json, &cfg.job_id);
        let ctx = Ctx {
            job: cfg.job_id.clone(),
            job_json: String::from_utf8(job_json).unwrap_or_default(),
            target,
            anomalies: cfg.anomalies,
            arng: Rng(mix(seed ^ 0xA40A_11E5)),
            ..Ctx::default()
        };
        let trace_pct = match sc {
            Scenario::Autoscale => 10,
            Scenario::ExceptionStorm => 5,
            Scenario::Lineage => 100,
            Scenario::Realistic => 20,
        };
        let (rng, stages) = (Rng(mix(seed ^ 0x5EED)), layout(sc, k));
        Simulation {
            scenario: sc,
            seed,
            rng,
            ctx,
            stages,
            trace_pct,
            phase: Phase::Running,
            tick: 0,
            job_seq: 0,
            next_root: 0,
            spawned: 0,
            load: 0,
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
        // Multiplying by an odd constant is a bijection mod 2^24: ids never collide.
        let hex = (self.spawned.wrapping_mul(0x9E_3779) ^ mix(self.seed)) & 0xFF_FFFF;
        let st = &mut self.stages[s];
        let pos = st.running.len();
        let wk = Worker {
            id: format!("{}_w{pos}_{hex:06x}", st.name),
            seq: 1,
            born: self.tick,
            jitter: self.rng.below(29_000),
            mem: 600_000_000 + self.rng.below(400_000_000),
            ..Worker::default()
        };
        let b = self.ctx.head("worker_started", &wk.id, ts);
        b.s("stage_id", st.name).parts(pos, pos + 1, st.max);
        self.ctx.emit(wk.seq, ts);
        st.running.push(wk);
    }

    fn stop_last(&mut self, s: usize, reason: &str, ts: u64) {
        let st = &mut self.stages[s];
        if let Some(mut wk) = st.running.pop() {
            let rng = &mut self.rng;
            self.ctx.worker_stopped(rng, st.name, &mut wk, reason, ts);
        }
    }

    fn start(&mut self, t0: u64) {
        self.load = self.stages[0].max.min(2);
        for i in 0..self.load {
            self.spawn(0, t0 + 4_000 * i as u64);
        }
        // The runner sends job_started after the source master started its workers.
        self.job_seq += 1;
        let b = self.ctx.head("job_started", "", t0 + 20_000);
        b.open("dag_edges", b'{');
        for st in self.stages.iter().filter(|st| !st.downs.is_empty()) {
            b.open(st.name, b'[');
            for &d in &st.downs {
                b.s("", self.stages[d].name);
            }
            b.close(b']');
        }
        b.close(b'}').open("stages", b'[');
        for st in &self.stages {
            b.open("", b'{').s("stage_id", st.name);
            b.s("operator_type", st.op);
            b.u("min_parallelism", st.min as u64);
            b.u("max_parallelism", st.max as u64).close(b'}');
        }
        b.close(b']').raw("config", "{}");
        self.ctx.emit(self.job_seq, t0 + 20_000);
        for s in 0..self.stages.len() {
            let st = &mut self.stages[s];
            if st.lifecycle {
                st.seq += 1;
                let ts = t0 + 25_000 + s as u64;
                let b = self.ctx.head("stage_started", st.name, ts);
                b.s("operator_type", st.op);
                b.u("min_parallelism", st.min as u64);
                b.u("max_parallelism", st.max as u64);
                self.ctx.emit(st.seq, ts);
            }
            for i in 0..if s > 0 { st.min } else { 0 } {
                self.spawn(s, t0 + 30_000 + 1_000 * (s * 16 + i) as u64);
            }
        }
    }

    /// Source parallelism follows a load profile; other stages follow their backlog.
    fn autoscale(&mut self, t0: u64) {
        let (lo, hi) = (self.stages[0].min as u64, self.stages[0].max as u64);
        if self.tick.is_multiple_of(80) {
            self.load = self.rng.range(lo, hi) as usize;
        }
        let decide = self.tick.is_multiple_of(4);
        let load = if self.phase == Phase::Running {
            self.load
        } else {
            0
        };
        for s in 0..self.stages.len() {
            let ts = t0 + 1_000 + 2_000 * s as u64;
            let st = &mut self.stages[s];
            let (n, backlog) = (st.running.len(), st.queue.len());
            let grow = decide && backlog > n * st.cap as usize * 2 && n < st.max;
            if s == 0 && n < load {
                self.spawn(0, ts);
            } else if s == 0 && n > load && (decide || load == 0) {
                (load..n).for_each(|_| self.stop_last(0, "completed", ts));
            } else if s > 0 && (n < st.min || grow) {
                self.spawn(s, ts);
            } else if s > 0 && decide && backlog < n && n > st.min {
                st.quiet += 1;
                if st.quiet >= 2 {
                    st.quiet = 0;
                    self.stop_last(s, "completed", ts);
                }
            }
        }
    }

    /// One tick of work for every running worker, in stage order. Outputs
    /// reach downstream queues only at the end of the tick.
    fn process(&mut self, t0: u64) {
        for s in 0..self.stages.len() {
            let st = &self.stages[s];
            let full = |d: &usize| self.stages[*d].queue.len() >= self.stages[*d].qcap;
            let blocked = st.downs.iter().any(full);
            let paused = blocked || (st.up.is_none() && self.phase != Phase::Running);
            self.backpressure(s, blocked, t0);
            let mut pos = 0;
            while pos < self.stages[s].running.len() {
                let fresh = self.stages[s].running[pos].born == self.tick;
                if paused || fresh || self.work(s, pos, t0) {
                    pos += 1;
                }
            }
        }
        for (d, item) in self.pushes.drain(..) {
            self.stages[d].queue.push_back(item);
        }
    }

    /// One worker's tick: up to `cap` splits, then its cumulative metrics.
    /// Returns false when a fatal exception killed (and removed) the worker.
    fn work(&mut self, s: usize, pos: usize, t0: u64) -> bool {
        let st = &mut self.stages[s];
        let (n, source) = (st.running.len(), st.up.is_none());
        let merges = self.scenario == Scenario::Lineage && !source && st.downs.is_empty();
        let wk = &mut st.running[pos];
        let k = self.rng.range(1, st.cap);
        let (mut cursor, mut busy) = (t0 + 1_000 + self.rng.below(20_000), false);
        for _ in 0..k {
            let item = if source {
                self.next_root += 1;
                let (root, rows) = (self.next_root, self.rng.range(500, 4_000));
                let traced = mix(root ^ self.seed) % 100 < self.trace_pct;
                Item {
                    root,
                    rows,
                    bytes: 0,
                    enqueued: t0,
                    traced,
                }
            } else if let Some(item) = st.queue.pop_front() {
                item
            } else {
                break;
            };
            let merge = match merges && self.rng.ppm(100_000) {
                true => st.queue.pop_front(),
                false => None,
            };
            busy = true;
            let proc_us = self.rng.range(10_000, 400_000 / k);
            let (deq, done) = (cursor, cursor + proc_us);
            cursor = done + 100;
            if self.rng.ppm(st.exc_ppm.0) {
                (wk.errors, wk.seq) = (wk.errors + 1, wk.seq + 1);
                let ex = pick_exception(&mut self.rng, self.scenario, st.name);
                let split = format!("{}{}", st.prefix, item.root);
                let src = (st.name, Some(wk.id.as_str()), split.as_str());
                write_exception(&mut self.ctx, src, ex, wk.seq, done);
                if self.rng.ppm(st.exc_ppm.1) {
                    let ts = done + 1_000;
                    self.ctx
                        .worker_stopped(&mut self.rng, st.name, wk, "failed", ts);
                    st.running.remove(pos);
                    return false;
                }
                continue;
            }
            let (m_rows, m_bytes) = merge.map_or((0, 0), |m| (m.rows, m.bytes));
            let rows_in = if source { 0 } else { item.rows + m_rows };
            let rows_out = match source {
                true => item.rows,
                false => (rows_in * st.ratio / 1000).max(1),
            };
            let bytes_out = rows_out * 2_048 + self.rng.below(2_048);
            let bytes_in = item.bytes + m_bytes;
            (wk.processed, wk.busy_us) = (wk.processed + 1, wk.busy_us + proc_us);
            (wk.input, wk.output) = (wk.input + rows_in, wk.output + rows_out);
            st.totals = (st.totals.0 + rows_in, st.totals.1 + rows_out);
            // A partition among the worker's round-robin assignment.
            let owned = st.max.saturating_sub(pos).div_ceil(n) as u64;
            let partition = match owned {
                0 => item.root as usize % st.max,
                _ => pos + n * (item.root % owned) as usize,
            };
            st.offsets[partition] += 1;
            let (rows, bytes, enqueued) = (rows_out, bytes_out, done);
            let next = Item {
                rows,
                bytes,
                enqueued,
                ..item
            };
            self.pushes.extend(st.downs.iter().map(|&d| (d, next)));
            if !item.traced {
                continue;
            }
            wk.seq += 1;
            let b = self.ctx.head("split_processed", &wk.id, done);
            b.s("stage_id", st.name)
                .id("split_id", &st.prefix, item.root);
            b.open("parent_split_ids", b'[');
            for root in std::iter::once(item.root).chain(merge.map(|m| m.root)) {
                if st.up.is_some() {
                    b.id("", &st.up_prefix, root);
                }
            }
            b.close(b']').u("partition_id", partition as u64);
            b.fx("enqueue_time", item.enqueued, 6);
            b.fx("dequeue_time", deq, 6).fx("complete_time", done, 6);
            b.fx("queue_wait_time_ms", deq - item.enqueued, 3);
            b.fx("processing_time_ms", proc_us, 3);
            b.u("input_records", rows_in).u("output_records", rows_out);
            b.u("input_bytes", bytes_in).u("output_bytes", bytes_out);
            let key = mix(item.root.wrapping_mul(31) ^ st.prefix.len() as u64);
            b.raw("payload_store_key", &format!("\"ps_{key:016x}\""));
            if bytes_out > 4 << 20 {
                let (job, stage, prefix) = (&self.ctx.job, st.name, &st.prefix);
                let path = format!("s3://payloads/{job}/{stage}/{prefix}{}.arrow", item.root);
                self.ctx.buf.s("payload_storage_path", &path);
            }
            self.ctx.emit(wk.seq, done);
        }
        if busy {
            let ts = (t0 + 470_000 + wk.jitter).max(cursor + 1);
            let at = (st.name, st.name == "detect", pos, n, st.max);
            worker_metrics(&mut self.ctx, &mut self.rng, at, wk, ts);
        }
        true
    }

    /// Reported by the stage whose output is blocked; rate-limited to one per 2 s.
    fn backpressure(&mut self, s: usize, blocked: bool, t0: u64) {
        let downs = self.stages[s].downs.iter();
        let lag = downs.map(|&d| self.stages[d].queue.len()).max();
        let st = &mut self.stages[s];
        let changed = std::mem::replace(&mut st.blocked, blocked) != blocked;
        if !(blocked || changed) || st.bp_tick.is_some_and(|t| self.tick < t + 4) {
            return;
        }
        (st.bp_tick, st.seq) = (Some(self.tick), st.seq + 1);
        let ts = t0 + 200_000 + s as u64;
        let b = self.ctx.head("backpressure", st.name, ts);
        b.raw("active", tf(blocked));
        b.u("queue_lag", lag.unwrap_or(0) as u64);
        b.raw("slow_down_factor", if blocked { "0.5" } else { "1.0" });
        self.ctx.emit(st.seq, ts);
    }

    fn stage_metrics(&mut self, t0: u64) {
        for s in 0..self.stages.len() {
            let st = &mut self.stages[s];
            let ts = t0 + 250_000 + s as u64;
            st.seq += 1;
            let b = self.ctx.head("stage_metrics", st.name, ts);
            b.u("worker_count", st.running.len() as u64);
            // Some reports carry no counts: they must never zero the stage totals.
            if self.rng.ppm(650_000) {
                b.u("input_records", st.totals.0);
                b.u("output_records", st.totals.1);
            }
            if self.rng.ppm(750_000) {
                b.fx("input_throughput", st.totals.0 - st.last_totals.0, 0);
                b.fx("output_throughput", st.totals.1 - st.last_totals.1, 0);
                b.u("queue_lag", st.queue.len() as u64);
                b.raw("backpressure_active", tf(st.blocked));
            }
            st.last_totals = st.totals;
            if self.rng.ppm(500_000) {
                let (queued, n) = (st.queue.len(), st.offsets.len());
                b.by_partition("partition_metrics", &st.offsets, |b, p, off| {
                    let lag = (queued + n - 1 - p) / n;
                    b.open("", b'{').u("offset", off);
                    b.u("lag", lag as u64).close(b'}');
                });
            }
            self.ctx.emit(st.seq, ts);
            if self.scenario == Scenario::Realistic && s > 0 && self.rng.ppm(2_500) {
                st.seq += 1;
                let (p, off) = (self.rng.below(st.max as u64), st.offsets[0]);
                let msg = format!("partition {p} revoked while committing offset {off}");
                let ex = ("RebalanceError", msg, "self._consumer.commit(offsets)");
                write_exception(&mut self.ctx, (st.name, None, ""), ex, st.seq, ts + 1);
            }
        }
    }

    /// One checkpoint every 5 s: triggered, then completed or failed 0.5–2 s later.
    fn checkpoints(&mut self, t0: u64) {
        let (id, trig, fail) = match self.ckpt {
            Some((id, trig, due, fail)) if self.tick >= due => (id, trig, fail),
            None if self.tick.is_multiple_of(10) => {
                self.ckpt_id += 1;
                let (id, ts, fail) = (self.ckpt_id, t0 + 300_000, self.rng.ppm(125_000));
                self.ckpt = Some((id, ts, self.tick + self.rng.range(1, 4), fail));
                self.job_seq += 1;
                let b = self.ctx.head("checkpoint", "", ts).u("checkpoint_id", id);
                b.s("status", "triggered").fx("trigger_time", ts, 6);
                return self.ctx.emit(self.job_seq, ts);
            }
            _ => return,
        };
        self.ckpt = None;
        let ts = t0 + 200_000 + self.rng.below(50_000);
        let size = 1_048_576 + self.next_root * 512 + self.rng.below(65_536);
        let last = self.stages[self.stages.len() - 1].name;
        self.job_seq += 1;
        let b = self.ctx.head("checkpoint", "", ts).u("checkpoint_id", id);
        b.s("status", if fail { "failed" } else { "completed" });
        b.fx("trigger_time", trig, 6);
        b.u("duration_ms", (ts - trig) / 1_000);
        if fail {
            let why = format!("barrier timed out after 60000 ms waiting for stage {last}");
            b.s("failure_reason", &why);
        } else {
            b.u("state_size_bytes", size);
            b.by_partition("source_offsets", &self.stages[0].offsets, |b, _, off| {
                b.u("", off);
            });
        }
        self.ctx.emit(self.job_seq, ts);
    }

    /// Stops every worker, closes lifecycle stages and ends the job.
    fn end_job(&mut self, mut ts: u64) {
        let failed = self.scenario == Scenario::ExceptionStorm;
        for s in 0..self.stages.len() {
            let st = &mut self.stages[s];
            let culprit = failed && s == 1;
            if let Some(wk) = st.running.first_mut().filter(|_| culprit) {
                wk.seq += 1;
                let errors = wk.errors.max(1001);
                let msg = format!("too many failed splits: {errors} errors exceed max_errors=1000");
                let ex = ("RuntimeError", msg, "self._check_error_budget()");
                let src = (st.name, Some(wk.id.as_str()), "");
                write_exception(&mut self.ctx, src, ex, wk.seq, ts);
            }
            let reason = if culprit { "failed" } else { "completed" };
            while let Some(mut wk) = st.running.pop() {
                ts += 1_000;
                let rng = &mut self.rng;
                self.ctx.worker_stopped(rng, st.name, &mut wk, reason, ts);
            }
            if st.lifecycle && !failed {
                (st.seq, ts) = (st.seq + 1, ts + 1_000);
                self.ctx.head("stage_completed", st.name, ts);
                self.ctx.emit(st.seq, ts);
            }
            ts += 100_000;
        }
        let kind = if failed {
            "job_failed"
        } else {
            "job_completed"
        };
        self.job_seq += 1;
        let b = self.ctx.head(kind, "", ts);
        b.s("status", if failed { "FAILED" } else { "COMPLETED" });
        b.u("duration_ms", (ts - START_US) / 1_000);
        b.raw("final_metrics", "{}");
        self.ctx.emit(self.job_seq, ts);
        self.phase = Phase::Done;
    }

    /// Generates one tick into `out`, in delivery order.
    fn step(&mut self) {
        let t0 = START_US + self.tick * TICK;
        if self.tick == 0 {
            self.start(t0);
        } else {
            self.autoscale(t0);
            self.process(t0);
            if self.tick.is_multiple_of(2) {
                self.stage_metrics(t0);
            }
            self.checkpoints(t0);
        }
        self.tick += 1;
        // Records expected once the next tick (about as big as this one) and the shutdown are out.
        let running: usize = self.stages.iter().map(|s| s.running.len()).sum();
        let (c, target) = (&self.ctx, self.ctx.target);
        let projected = c.generated + c.batch.len() + running + 2 * self.stages.len() + 4;
        let idle = self.stages.iter().all(|s| s.queue.is_empty());
        let storm = self.scenario == Scenario::ExceptionStorm;
        match self.phase {
            Phase::Running if projected * 100 >= target * 97 && storm => self.end_job(t0 + TICK),
            Phase::Running if projected * 100 >= target * 97 => self.phase = Phase::Draining,
            Phase::Draining if projected >= target || idle => self.end_job(t0 + TICK),
            _ => {}
        }
        self.ctx.batch.sort_by_key(|r| r.0);
        self.out.extend(self.ctx.batch.drain(..).map(|r| r.1));
    }

    /// The `i`-th poison record, each a different reason for a dead letter.
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
        let env = |kind: &str, job: &str, ts: &str, payload: &str| {
            let seq = if job == other { "1" } else { "null" };
            format!("{{\"message_type\": \"{kind}\", \"job_id\": {job}, \"source_id\": \"{stage}_w9_0badf0\", \"timestamp\": {ts}, \"payload\": {{{payload}}}, \"sequence\": {seq}}}")
        };
        let counts = |input: &str, processed: &str| {
            format!("\"stage_id\": \"{stage}\", \"input_records\": {input}, \"output_records\": 7, \"processing_time\": 0.25, \"processed_count\": {processed}, \"assigned_partitions\": [0], \"is_running\": true")
        };
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let rec = match i {
            0 => {
                let full = env("worker_metrics", job, &ts, &counts("3", "3"));
                let mut cut = full.as_bytes()[..full.len() / 2].to_vec();
                cut.extend_from_slice(b"\xff\xfe");
                return cut;
            }
            1 => {
                let p = format!(
                    "\"stage_id\": \"{stage}\", \"reason\": \"completed\", \"error_count\": 0"
                );
                env("worker_stopped", job, &ts, &p)
            }
            2 => env("worker_metrics", job, &ts, &counts("-42", "3")),
            3 => env("worker_heartbeat", job, &ts, &counts("3", "3")),
            4 => env("worker_metrics", other, &ts, &counts("10", "1")),
            5 => env("worker_metrics", job, "NaN", &counts("3", "3")),
            6 => {
                let p = format!(
                    "\"dag_edges\": {{}}, \"stages\": [], \"config\": {{\"tags\": {deep}}}"
                );
                env("job_started", job, &ts, &p)
            }
            _ => env("worker_metrics", job, &ts, &counts("3", "\"17\"")),
        };
        rec.into_bytes()
    }
}

impl Iterator for Simulation {
    type Item = Vec<u8>;

    /// Delivery layer: producer retries (identical bytes a few records later)
    /// and poison records at fixed fractions of the target are mixed in here.
    fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.retries.iter().position(|r| r.0 == 0) {
                self.delivered += 1;
                return Some(self.retries.swap_remove(i).1);
            }
            let ended = self.phase == Phase::Done && self.out.is_empty();
            let due = self.ctx.target * (self.poison_next + 1) / (POISON_RECORDS + 1);
            let poison_left = self.ctx.anomalies && self.poison_next < POISON_RECORDS;
            if poison_left && (self.delivered >= due || ended) {
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
            if ended && self.retries.is_empty() {
                return None;
            } else if ended {
                self.retries.iter_mut().for_each(|r| r.0 = 0);
            } else {
                self.step();
            }
        }
    }
}

// ---------------------------------------------------------------- record writers

/// (stage, has a GPU, position among the running workers, running workers, partitions)
type MetricsAt<'a> = (&'a str, bool, usize, usize, usize);

/// Writes one cumulative `worker_metrics`, applying the producer anomalies:
/// the lost message, the producer restart and late delivery.
fn worker_metrics(c: &mut Ctx, rng: &mut Rng, at: MetricsAt, wk: &mut Worker, ts: u64) {
    let (stage, gpu, pos, n, total) = at;
    if c.anomalies && !c.restart_done && c.generated * 10 >= c.target * 6 {
        (c.restart_done, wk.seq) = (true, 0);
    }
    wk.seq += 1;
    if c.anomalies && !c.lost_done && c.generated * 10 >= c.target * 3 {
        c.lost_done = true;
        return;
    }
    wk.mem += rng.below(4_000_000);
    let b = c.head("worker_metrics", &wk.id, ts).s("stage_id", stage);
    b.u("input_records", wk.input)
        .u("output_records", wk.output);
    b.fx("processing_time", wk.busy_us, 6);
    b.u("processed_count", wk.processed).parts(pos, n, total);
    b.raw("is_running", "true");
    if rng.ppm(800_000) {
        b.fx("cpu_percent", rng.range(150, 990), 1);
        b.u("memory_bytes", wk.mem);
        if gpu {
            b.fx("gpu_percent", rng.range(300, 1000), 1);
        }
    }
    let late = c.anomalies && wk.late.is_none() && {
        let forced = !c.late_forced && c.generated * 5 >= c.target;
        c.late_forced |= forced;
        forced || c.arng.ppm(1_500)
    };
    let rec = c.finish(wk.seq);
    if late {
        wk.late = Some(rec);
        return;
    }
    c.batch.push((ts, rec));
    if let Some(old) = wk.late.take() {
        c.batch.push((ts + 1, old));
    }
}

/// (exception type, message, the source line shown in the traceback)
type Exc = (&'static str, String, &'static str);

/// Picks an exception typical of the stage; messages differ only in numbers and ids.
fn pick_exception(rng: &mut Rng, sc: Scenario, stage: &str) -> Exc {
    let (a, b) = (rng.below(100_000), rng.below(10_000));
    let storm = sc == Scenario::ExceptionStorm && stage == "decode";
    let (ty, code, msg) = match (storm, stage, a % 100) {
        (true, _, 0..=49) | (false, "filter", _) => (
            "ValueError",
            "table = pq.read_table(path).slice(offset, length)",
            format!(
                "failed to decode row {a} in file s3://bucket/part-{:05}.parquet",
                b % 64
            ),
        ),
        (true, _, 50..=74) => (
            "ArrowInvalid",
            "batch = reader.read_next_batch()",
            format!(
                "Expected {} columns but got {} in batch {b}",
                12 + a % 3,
                9 + a % 3
            ),
        ),
        (true, _, 75..=89) => (
            "TimeoutError",
            "payload = self._payload_store.get(key, timeout=30.0)",
            format!(
                "payload store get timed out after 30.0s for key ps_{:08x}",
                a * 7919
            ),
        ),
        (true, _, _) => ("KeyError", "frame = record[column]", format!("'frame_{b}'")),
        (false, "detect", _) => (
            "RuntimeError",
            "boxes = self._model(frames.to(self._device))",
            format!(
                "CUDA out of memory. Tried to allocate {}.00 GiB (GPU {})",
                1 + b % 4,
                b % 8
            ),
        ),
        _ => (
            "ConnectionResetError",
            "self._client.put(key, payload)",
            "[Errno 104] Connection reset by peer".to_owned(),
        ),
    };
    (ty, msg, code)
}

/// (stage, worker, split id or "")
type ExcSource<'a> = (&'a str, Option<&'a str>, &'a str);

fn write_exception(c: &mut Ctx, src: ExcSource, (ty, msg, code): Exc, seq: u64, ts: u64) {
    let (stage, worker, split) = src;
    let trace = format!(
        "Traceback (most recent call last):\n  File \"/opt/solstice/solstice/runtime/stage_worker.py\", line 412, in _process_message\n    output = await self._run_operator(split, payload)\n  File \"/opt/solstice/solstice/runtime/stage_worker.py\", line 389, in _run_operator\n    return self._operator.process_split(split, payload)\n  File \"/opt/solstice/solstice/operators/{stage}.py\", line 88, in process_split\n    {code}\n{ty}: {msg}\n"
    );
    let b = c.head("exception", worker.unwrap_or(stage), ts);
    b.s("stage_id", stage);
    match worker {
        Some(id) => b.s("worker_id", id),
        None => b.raw("worker_id", "null"),
    };
    b.s("exception_type", ty).s("message", &msg);
    b.s("stacktrace", &trace);
    match split {
        "" => b.raw("split_id", "null"),
        id => b.s("split_id", id),
    };
    c.emit(seq, ts);
}

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
