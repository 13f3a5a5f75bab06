//! The simulation proper: one 0.5 s event-time tick at a time, the job's
//! phases, autoscaling, checkpoints, anomalies.

use super::*;

/// The lazy record stream returned by [`simulate`]; holds about one tick of records.
pub struct Simulation {
    pub(super) scenario: Scenario,
    pub(super) seed: u64,
    pub(super) rng: Rng,
    pub(super) ctx: Ctx,
    pub(super) stages: Vec<Stage>,
    pub(super) phase: Phase,
    pub(super) tick: u64,
    pub(super) job_seq: u64,
    pub(super) next_root: u64,
    pub(super) spawned: u64,
    pub(super) load: usize,
    pub(super) trace_pct: u64,
    pub(super) ckpt_id: u64,
    /// The checkpoint in flight: (id, trigger time, tick it resolves, fails).
    pub(super) ckpt: Option<(u64, u64, u64, bool)>,
    pub(super) pushes: Vec<(usize, Item)>,
    pub(super) out: VecDeque<Vec<u8>>,
    pub(super) retries: Vec<(u32, Vec<u8>)>,
    pub(super) delivered: usize,
    pub(super) poison_next: usize,
}

impl Simulation {
    pub(super) fn new(cfg: &SimConfig) -> Self {
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

    pub(super) fn spawn(&mut self, s: usize, ts: u64) {
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

    pub(super) fn stop_last(&mut self, s: usize, reason: &str, ts: u64) {
        let st = &mut self.stages[s];
        if let Some(mut wk) = st.running.pop() {
            let rng = &mut self.rng;
            self.ctx.worker_stopped(rng, st.name, &mut wk, reason, ts);
        }
    }

    pub(super) fn start(&mut self, t0: u64) {
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
    pub(super) fn autoscale(&mut self, t0: u64) {
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
    pub(super) fn process(&mut self, t0: u64) {
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
    pub(super) fn work(&mut self, s: usize, pos: usize, t0: u64) -> bool {
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
    pub(super) fn backpressure(&mut self, s: usize, blocked: bool, t0: u64) {
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

    pub(super) fn stage_metrics(&mut self, t0: u64) {
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
    pub(super) fn checkpoints(&mut self, t0: u64) {
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
    pub(super) fn end_job(&mut self, mut ts: u64) {
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
    pub(super) fn step(&mut self) {
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
    pub(super) fn poison(&self, i: usize) -> Vec<u8> {
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
