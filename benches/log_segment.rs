//! The event log's own cost per event: encoding a batch's segment
//! (MessagePack, then Zstandard) as the engine does for every batch it commits,
//! and decoding it again as a replay from the log does. Input is one
//! 16 384-record batch (the daemon's default) from the simulator.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use sundial::event_log::{decode_segment, encode_segment_into, LogRecordRef};
use sundial::simulate::{self, Scenario, SimConfig};

const EVENTS: usize = 16_384;

/// The same allocator as the `sundial` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let cfg = SimConfig::new("bench", Scenario::Realistic, EVENTS);
    let values: Vec<Vec<u8>> = simulate::simulate(&cfg).collect();
    let refs: Vec<LogRecordRef> = values
        .iter()
        .enumerate()
        .map(|(i, v)| LogRecordRef {
            seq: i as u64 + 1,
            partition: 0,
            offset: i as i64,
            arrival_ms: 1_795_000_000_000 + i as u64,
            content_type: None,
            value: v,
        })
        .collect();
    let (mut raw, mut out) = (Vec::new(), Vec::new());
    encode_segment_into(&refs, &mut raw, &mut out).unwrap();
    let payload: usize = values.iter().map(Vec::len).sum();
    eprintln!(
        "segment of {EVENTS} records: payload {payload} B, MessagePack {} B, stored {} B",
        raw.len(),
        out.len()
    );
    let stored = out.clone();
    let mut g = c.benchmark_group("log_segment");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);
    g.bench_function("encode", |b| {
        b.iter(|| {
            encode_segment_into(black_box(&refs), &mut raw, &mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| black_box(decode_segment(black_box(&stored)).map(|r| r.len())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
