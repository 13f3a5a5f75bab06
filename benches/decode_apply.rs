//! The hot path without storage: decoding state messages (JSON and
//! MessagePack, typed; JSON also by serde_json alone, for comparison) and
//! folding them into every view. Input comes from
//! the same simulator as the tests. Figures are per event, one core.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use sundial::codec;
use sundial::simulate::{self, Scenario, SimConfig};
use sundial_views::projector::Entry;
use sundial_views::Projector;

const EVENTS: usize = 50_000;

/// The same allocator as the `sundial` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn records() -> Vec<Vec<u8>> {
    let cfg = SimConfig::new("bench", Scenario::Realistic, EVENTS);
    simulate::simulate(&cfg).collect()
}

fn bench(c: &mut Criterion) {
    let json = records();
    let msgpack: Vec<Vec<u8>> = json.iter().map(|r| simulate::to_msgpack(r)).collect();
    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(json.len() as u64));
    g.sample_size(10);
    g.bench_function("decode_json", |b| {
        b.iter(|| {
            for r in &json {
                let _ = black_box(codec::decode(r, None, "bench"));
            }
        })
    });
    // The generic serde_json path alone, without `fast_json` in front:
    // what the shaped reader saves.
    let texts: Vec<&str> = json
        .iter()
        .filter_map(|r| std::str::from_utf8(r).ok())
        .collect();
    g.bench_function("decode_json_generic", |b| {
        b.iter(|| {
            for t in &texts {
                let _ = black_box(serde_json::from_str::<sundial_views::Message>(t));
            }
        })
    });
    g.bench_function("decode_msgpack", |b| {
        b.iter(|| {
            for r in &msgpack {
                let _ = black_box(codec::decode(r, None, "bench"));
            }
        })
    });
    for (name, input) in [
        ("decode_apply_json", &json),
        ("decode_apply_msgpack", &msgpack),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || Projector::new(true),
                |mut p| {
                    for (i, r) in input.iter().enumerate() {
                        match codec::decode(r, None, "bench") {
                            Ok(m) => p.apply(i as u64 + 1, Entry::Valid(&m)),
                            Err(reason) => {
                                let d = codec::dead_letter(r, None, "bench", reason, 0, i as i64);
                                p.apply(i as u64 + 1, Entry::Dead(&d))
                            }
                        };
                        if i % 4096 == 4095 {
                            p.drain_dirty(&mut |_, _, b| {
                                black_box(b);
                            })
                            .unwrap();
                        }
                    }
                    p
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
