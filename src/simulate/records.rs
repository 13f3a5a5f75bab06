//! Writers of the individual record kinds (worker metrics, exceptions).

use super::*;

// ---------------------------------------------------------------- record writers

/// (stage, has a GPU, position among the running workers, running workers, partitions)
pub(super) type MetricsAt<'a> = (&'a str, bool, usize, usize, usize);

/// Writes one cumulative `worker_metrics`, applying the producer anomalies:
/// the lost message, the producer restart and late delivery.
pub(super) fn worker_metrics(c: &mut Ctx, rng: &mut Rng, at: MetricsAt, wk: &mut Worker, ts: u64) {
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
pub(super) type Exc = (&'static str, String, &'static str);

/// Picks an exception typical of the stage; messages differ only in numbers and ids.
pub(super) fn pick_exception(rng: &mut Rng, sc: Scenario, stage: &str) -> Exc {
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
pub(super) type ExcSource<'a> = (&'a str, Option<&'a str>, &'a str);

pub(super) fn write_exception(
    c: &mut Ctx,
    src: ExcSource,
    (ty, msg, code): Exc,
    seq: u64,
    ts: u64,
) {
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
