#!/usr/bin/env python3
"""Send a prepared "records file" to Kafka with aiokafka, the way a Python
(Solstice-style) producer does: AIOKafkaProducer with its default batching.

The records file is a sequence of frames, each

    u32 big-endian key length (0xFFFFFFFF = no key), key bytes,
    u32 big-endian value length (0xFFFFFFFF = null value), value bytes.

Every frame is sent in file order; per-partition order is kept because
aiokafka sends one batch per partition at a time. Prints `produced N` and
exits 0 once every record is acknowledged; any failure exits 1 with one line
on stderr.

    python3 tests/tools/produce.py --brokers 127.0.0.1:9092 --topic T \
        --records FILE [--content-type application/msgpack|application/json] \
        [--linger-ms N] [--rate N_PER_S] [--partition P] [--acks 0|1|all] \
        [--window N] [--per-source]

With --per-source it sends as Solstice's own producers do: one producer per
`source_id` (the runner, each stage master, each worker has its own
`StateProducer`), each record awaited on its own (`send_and_wait`, as
Solstice's `TansuQueueClient` produces), in file order. The values must be
JSON state messages whose `sequence` counts from 1 per source, as
`StateProducer` numbers them; anything else exits 1.

(aiokafka's enable_idempotence does not work against Tansu 0.6: its
InitProducerId request version lacks the producer id/epoch Tansu expects.)
"""

import argparse
import asyncio
import json
import logging
import struct
import sys
import time

from aiokafka import AIOKafkaProducer

NONE_LEN = 0xFFFFFFFF


def read_records(path):
    """Yield (key, value) from a records file; None for an absent key/value."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    end = len(data)
    records = []
    while pos < end:
        fields = []
        for what in ("key", "value"):
            if pos + 4 > end:
                raise ValueError(f"{path}: truncated {what} length at byte {pos}")
            (n,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if n == NONE_LEN:
                fields.append(None)
                continue
            if pos + n > end:
                raise ValueError(f"{path}: truncated {what} ({n} bytes) at byte {pos}")
            fields.append(data[pos : pos + n])
            pos += n
        records.append((fields[0], fields[1]))
    return records


async def produce(args):
    records = read_records(args.records)
    kwargs = {"bootstrap_servers": args.brokers, "client_id": "sundial-test-produce"}
    if args.linger_ms is not None:
        kwargs["linger_ms"] = args.linger_ms
    if args.acks is not None:
        kwargs["acks"] = "all" if args.acks == "all" else int(args.acks)
    headers = None
    if args.content_type:
        headers = [("content-type", args.content_type.encode())]

    if args.per_source:
        return await produce_per_source(args, records, kwargs, headers)
    producer = AIOKafkaProducer(**kwargs)
    sent = 0
    try:
        await producer.start()
        pending = []
        started = time.monotonic()
        for i, (key, value) in enumerate(records):
            if args.rate:
                due = started + i / args.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            fut = await producer.send(
                args.topic,
                value=value,
                key=key,
                partition=args.partition,
                headers=headers,
            )
            pending.append(fut)
            if len(pending) >= args.window:
                await asyncio.gather(*pending)
                sent += len(pending)
                pending = []
        if pending:
            await asyncio.gather(*pending)
            sent += len(pending)
    finally:
        await producer.stop()
    return sent


async def produce_per_source(args, records, kwargs, headers):
    """One producer per source, one awaited send per record (see module doc)."""
    producers = {}
    counts = {}
    sent = 0
    try:
        for i, (key, value) in enumerate(records):
            msg = json.loads(value)
            source = msg["source_id"]
            n = counts.get(source, 0) + 1
            if msg.get("sequence") != n:
                raise ValueError(
                    f"record {i}: source {source!r} sequence {msg.get('sequence')!r}, "
                    f"its producer would number it {n}"
                )
            counts[source] = n
            producer = producers.get(source)
            if producer is None:
                producer = AIOKafkaProducer(**kwargs)
                producers[source] = producer
                await producer.start()
            await producer.send_and_wait(
                args.topic, value=value, key=key, partition=args.partition, headers=headers
            )
            sent += 1
    finally:
        for producer in producers.values():
            await producer.stop()
    return sent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True, help="HOST:PORT[,HOST:PORT]")
    p.add_argument("--topic", required=True)
    p.add_argument("--records", required=True, help="records file (see module doc)")
    p.add_argument(
        "--content-type",
        choices=["application/msgpack", "application/json"],
        help="add this `content-type` header to every record",
    )
    p.add_argument("--linger-ms", type=int, help="aiokafka linger_ms (default: aiokafka's)")
    p.add_argument("--rate", type=float, help="send at most this many records per second")
    p.add_argument("--partition", type=int, help="send every record to this partition")
    p.add_argument("--acks", choices=["0", "1", "all"], help="default: aiokafka's")
    p.add_argument(
        "--window",
        type=int,
        default=10000,
        help="await acknowledgements every N sends (default 10000)",
    )
    p.add_argument(
        "--per-source",
        action="store_true",
        help="one producer per source_id, send_and_wait per record (see module doc)",
    )
    args = p.parse_args()
    if args.window < 1:
        p.error("--window must be >= 1")
    if args.rate is not None and args.rate <= 0:
        p.error("--rate must be > 0")
    # aiokafka logs every retry (e.g. of an unknown topic's metadata) at
    # ERROR; the final error is reported below in one line.
    logging.basicConfig(level=logging.CRITICAL, format="produce.py: %(name)s: %(message)s")
    try:
        n = asyncio.run(produce(args))
    except Exception as e:  # one line, non-zero exit
        print(f"produce.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"produced {n}")


if __name__ == "__main__":
    main()
