#!/usr/bin/env python3
"""Writes the two Solstice wire fixtures: the state messages Solstice's own
producer code sends, as the wire-format table of `docs/wire-format.md`
describes them, for a small three-stage job (source -> map -> sink).

- `solstice-defaults/events.ndjson`: every message factory called with its
  required arguments only (its optional ones left at their defaults), the way
  the runtime calls them (`job_started` without `config`, `split_processed`
  with ids, counts and `processing_time` in seconds only).
- `solstice-full/events.ndjson`: every optional argument set (the richer
  `split_processed`, `worker_stopped` with final counts, `stage_metrics` with
  throughput and partition metrics, an `exception` naming its worker and
  split, a job that ends FAILED).

Each record is what `StateMessage.to_bytes()` writes: `json.dumps` of the
envelope in its key order (message_type, job_id, source_id, timestamp,
payload, sequence), with the sequence a per-producer counter from 1 as
`StateProducer` numbers it; every source (the runner, each stage master,
each worker) has a producer of its own. Fixed timestamps: same bytes every
run. No poison, no duplicates, no gaps: every record must be applied.

    python3 replay-fixtures/solstice.py   # rewrites both files
"""

import json
import os

STAGES = ["source", "map", "sink"]
OPERATORS = {"source": "ParquetSource", "map": "MapOperator", "sink": "ParquetSink"}
PARALLELISM = {"source": (1, 1), "map": (1, 4), "sink": (1, 2)}
# Stage -> its downstream stages: the direction Solstice sends.
DAG = {"source": ["map"], "map": ["sink"], "sink": []}


class Job:
    """One job's stream: a clock and a sequence counter per source."""

    def __init__(self, job_id, start):
        self.job_id = job_id
        self.now = start
        self.seq = {}
        self.lines = []

    def send(self, message_type, source_id, payload, dt=0.125):
        self.now = round(self.now + dt, 6)
        n = self.seq.get(source_id, 0) + 1
        self.seq[source_id] = n
        record = {
            "message_type": message_type,
            "job_id": self.job_id,
            "source_id": source_id,
            "timestamp": self.now,
            "payload": payload,
            "sequence": n,
        }
        self.lines.append(json.dumps(record))

    # One method per message factory: the payload keys in the factory's
    # order, an optional argument's default where the caller gives none.

    def job_started(self, config=None):
        stages = [
            {
                "stage_id": s,
                "operator_type": OPERATORS[s],
                "min_parallelism": PARALLELISM[s][0],
                "max_parallelism": PARALLELISM[s][1],
            }
            for s in STAGES
        ]
        payload = {"dag_edges": DAG, "stages": stages, "config": config or {}}
        self.send("job_started", self.job_id, payload)

    def job_completed(self, status="COMPLETED", duration_ms=None, final_metrics=None):
        kind = "job_completed" if status == "COMPLETED" else "job_failed"
        payload = {
            "status": status,
            "duration_ms": duration_ms,
            "final_metrics": final_metrics or {},
        }
        self.send(kind, self.job_id, payload)

    def stage_started(self, stage):
        lo, hi = PARALLELISM[stage]
        payload = {"operator_type": OPERATORS[stage], "min_parallelism": lo, "max_parallelism": hi}
        self.send("stage_started", stage, payload)

    def stage_completed(self, stage):
        self.send("stage_completed", stage, {})

    def stage_metrics(self, stage, worker_count):
        """The factory that sends `worker_count` only."""
        self.send("stage_metrics", stage, {"worker_count": worker_count})

    def stage_metrics_full(
        self,
        stage,
        worker_count,
        input_records,
        output_records,
        input_throughput=0.0,
        output_throughput=0.0,
        queue_lag=0,
        backpressure_active=False,
        partition_metrics=None,
    ):
        """The factory that also sends counts, rates, lag and partitions."""
        payload = {
            "worker_count": worker_count,
            "input_records": input_records,
            "output_records": output_records,
            "input_throughput": input_throughput,
            "output_throughput": output_throughput,
            "queue_lag": queue_lag,
            "backpressure_active": backpressure_active,
            # json.dumps turns the int partition keys into strings.
            "partition_metrics": {str(k): v for k, v in (partition_metrics or {}).items()},
        }
        self.send("stage_metrics", stage, payload)

    def worker_started(self, stage, worker, assigned_partitions=None):
        payload = {"stage_id": stage, "assigned_partitions": assigned_partitions or []}
        self.send("worker_started", worker, payload)

    def worker_stopped(self, stage, worker, reason="completed", processed_count=0, error_count=0):
        """The factory without final counts."""
        payload = {
            "stage_id": stage,
            "reason": reason,
            "processed_count": processed_count,
            "error_count": error_count,
        }
        self.send("worker_stopped", worker, payload)

    def worker_stopped_counts(
        self,
        stage,
        worker,
        reason="completed",
        processed_count=0,
        error_count=0,
        input_records=0,
        output_records=0,
        processing_time=0.0,
    ):
        """The factory with final counts (zero by default)."""
        payload = {
            "stage_id": stage,
            "reason": reason,
            "processed_count": processed_count,
            "error_count": error_count,
            "input_records": input_records,
            "output_records": output_records,
            "processing_time": processing_time,
        }
        self.send("worker_stopped", worker, payload)

    def worker_metrics(
        self,
        stage,
        worker,
        input_records,
        output_records,
        processing_time,
        processed_count=0,
        assigned_partitions=None,
        is_running=True,
    ):
        payload = {
            "stage_id": stage,
            "input_records": input_records,
            "output_records": output_records,
            "processing_time": processing_time,
            "processed_count": processed_count,
            "assigned_partitions": assigned_partitions or [],
            "is_running": is_running,
        }
        self.send("worker_metrics", worker, payload)

    def exception(self, stage, worker, exception_type, message, stacktrace, split_id=None):
        payload = {
            "stage_id": stage,
            "worker_id": worker,
            "exception_type": exception_type,
            "message": message,
            "stacktrace": stacktrace,
            "split_id": split_id,
        }
        self.send("exception", worker or stage, payload)

    def backpressure(self, stage, active, queue_lag=0, slow_down_factor=1.0):
        payload = {"active": active, "queue_lag": queue_lag, "slow_down_factor": slow_down_factor}
        self.send("backpressure", stage, payload)

    def split_processed(
        self, stage, worker, split_id, parent_split_ids, input_records, output_records, processing_time
    ):
        """The factory Solstice's runtime calls: ids, counts, seconds."""
        payload = {
            "stage_id": stage,
            "split_id": split_id,
            "parent_split_ids": parent_split_ids,
            "input_records": input_records,
            "output_records": output_records,
            "processing_time": processing_time,
        }
        self.send("split_processed", worker, payload)

    def split_processed_rich(
        self,
        stage,
        worker,
        split_id,
        parent_split_ids,
        partition_id,
        enqueue_time,
        dequeue_time,
        complete_time,
        input_records,
        output_records,
        input_bytes,
        output_bytes,
        payload_store_key,
        payload_storage_path=None,
    ):
        """The richer factory: partition, timings, sizes, payload keys."""
        payload = {
            "stage_id": stage,
            "split_id": split_id,
            "parent_split_ids": parent_split_ids,
            "partition_id": partition_id,
            "enqueue_time": enqueue_time,
            "dequeue_time": dequeue_time,
            "complete_time": complete_time,
            "queue_wait_time_ms": (dequeue_time - enqueue_time) * 1000,
            "processing_time_ms": (complete_time - dequeue_time) * 1000,
            "input_records": input_records,
            "output_records": output_records,
            "input_bytes": input_bytes,
            "output_bytes": output_bytes,
            "payload_store_key": payload_store_key,
            "payload_storage_path": payload_storage_path,
        }
        self.send("split_processed", worker, payload)


TRACE = 'Traceback (most recent call last):\n  File "op.py", line 42, in process\nValueError: bad row 17'


def defaults():
    """Every factory with its required arguments only."""
    j = Job("fx_sol_defaults", 1765000000.0)
    j.job_started()
    for s in STAGES:
        j.stage_started(s)
    j.worker_started("source", "source_w0")
    j.worker_started("map", "map_w0")
    j.worker_started("map", "map_w1")
    j.worker_started("sink", "sink_w0")
    j.split_processed("source", "source_w0", "source_s0", [], 0, 100, 0.25)
    j.split_processed("source", "source_w0", "source_s1", [], 0, 80, 0.5)
    j.worker_metrics("source", "source_w0", 0, 180, 0.75)
    j.stage_metrics("source", 1)
    j.split_processed("map", "map_w0", "map_s0", ["source_s0"], 100, 90, 1.5)
    j.backpressure("map", True)
    j.split_processed("map", "map_w0", "map_s1", ["source_s1"], 80, 70, 1.25)
    j.exception("map", None, "ValueError", "bad row 17", TRACE)
    j.worker_metrics("map", "map_w0", 180, 160, 2.75)
    j.worker_metrics("map", "map_w1", 0, 0, 0.0)
    j.stage_metrics("map", 2)
    j.backpressure("map", False)
    # A merge: one sink split from both map splits.
    j.split_processed("sink", "sink_w0", "sink_s0", ["map_s0", "map_s1"], 160, 160, 0.5)
    j.worker_metrics("sink", "sink_w0", 160, 160, 0.5)
    j.stage_metrics("sink", 1)
    j.worker_stopped("source", "source_w0")
    # The factory with final counts, defaults: an idle worker's zeros.
    j.worker_stopped_counts("map", "map_w1")
    j.worker_stopped("map", "map_w0")
    j.worker_stopped("sink", "sink_w0")
    for s in STAGES:
        j.stage_completed(s)
    j.job_completed()
    return j


def full():
    """Every factory with every optional argument set."""
    j = Job("fx_sol_full", 1765003600.0)
    j.job_started(config={"queue_type": "tansu", "checkpoint_interval_s": 30})
    for s in STAGES:
        j.stage_started(s)
    j.worker_started("source", "source_w0", [0, 1])
    j.worker_started("map", "map_w0", [0])
    j.worker_started("map", "map_w1", [1])
    j.worker_started("sink", "sink_w0", [0])
    t = j.now - 2.0  # the split was done before its message is sent
    j.split_processed_rich(
        "source", "source_w0", "source_s0", [], 0, t, t + 0.5, t + 0.75, 0, 100, 0, 4096,
        "job/source_s0", "s3://bucket/splits/source_s0.parquet",
    )
    j.split_processed_rich(
        "source", "source_w0", "source_s1", [], 1, t + 0.25, t + 0.5, t + 1.0, 0, 80, 0, 3072,
        "job/source_s1", "s3://bucket/splits/source_s1.parquet",
    )
    j.worker_metrics("source", "source_w0", 0, 180, 0.75, 2, [0, 1], True)
    j.stage_metrics_full(
        "source", 1, 0, 180, 0.0, 240.0, 0, False, {0: {"offset": 100, "lag": 0}, 1: {"offset": 80, "lag": 0}}
    )
    t = j.now - 2.0  # the split was done before its message is sent
    j.split_processed_rich(
        "map", "map_w0", "map_s0", ["source_s0"], 0, t, t + 0.125, t + 1.5, 100, 90, 4096, 3600,
        "job/map_s0", "s3://bucket/splits/map_s0.parquet",
    )
    j.backpressure("map", True, 250, 0.5)
    j.split_processed_rich(
        "map", "map_w1", "map_s1", ["source_s1"], 1, t + 0.25, t + 0.5, t + 1.75, 80, 70, 3072, 2800,
        "job/map_s1", "s3://bucket/splits/map_s1.parquet",
    )
    j.exception("map", "map_w1", "ValueError", "bad row 17", TRACE, "map_s1")
    j.worker_metrics("map", "map_w0", 100, 90, 1.375, 1, [0], True)
    j.worker_metrics("map", "map_w1", 80, 70, 1.25, 1, [1], False)
    j.stage_metrics_full(
        "map", 2, 180, 160, 120.0, 106.5, 250, True, {0: {"offset": 90, "lag": 10}, 1: {"offset": 70, "lag": 10}}
    )
    j.backpressure("map", False, 0, 1.0)
    t = j.now - 2.0  # the split was done before its message is sent
    j.split_processed_rich(
        "sink", "sink_w0", "sink_s0", ["map_s0", "map_s1"], 0, t, t + 0.25, t + 0.75, 160, 160, 6400, 6400,
        "job/sink_s0", "s3://bucket/splits/sink_s0.parquet",
    )
    j.worker_metrics("sink", "sink_w0", 160, 160, 0.5, 1, [0], False)
    j.stage_metrics_full("sink", 1, 160, 160, 320.0, 320.0, 0, False, {0: {"offset": 160, "lag": 0}})
    j.worker_stopped_counts("source", "source_w0", "completed", 2, 0, 0, 180, 0.75)
    j.worker_stopped_counts("map", "map_w1", "failed", 1, 1, 80, 70, 1.25)
    j.worker_stopped_counts("map", "map_w0", "scaled_down", 1, 0, 100, 90, 1.375)
    j.worker_stopped_counts("sink", "sink_w0", "completed", 1, 0, 160, 160, 0.5)
    for s in STAGES:
        j.stage_completed(s)
    j.job_completed("FAILED", 9500, {"total_input_records": 340, "total_output_records": 410})
    return j


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for folder, job in (("solstice-defaults", defaults()), ("solstice-full", full())):
        os.makedirs(os.path.join(here, folder), exist_ok=True)
        with open(os.path.join(here, folder, "events.ndjson"), "w") as f:
            f.write("\n".join(job.lines) + "\n")


if __name__ == "__main__":
    main()
