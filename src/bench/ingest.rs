//! `sundial bench`: the figures in the README, measured end to end on this
//! machine. Simulates a realistic stream in memory, then times decode alone,
//! decode + apply on one core, a raw SlateDB write of the same bytes (the
//! floor under us), and a full durable replay into a local directory.

use std::sync::Arc;
use std::time::Instant;

use slatedb::WriteBatch;
use sundial_views::projector::Entry;
use sundial_views::Projector;

use super::rate;
use sundial::codec;
use sundial::decode::Decoded;
use sundial::event_log::{encode_segment, segment_key, LogRecordRef};
use sundial::simulate::{self, Scenario, SimConfig};
use sundial::Result;
use sundial::SourceRecord;
use sundial::Storage;
use sundial::DEFAULT_BATCH;

/// Prints each view's share of apply (sequence tracker included in each),
/// the figures the parallel apply's split is balanced on.
fn per_view(decoded: &[Decoded]) {
    let mut line = String::from("apply per view (ns/event):");
    for name in sundial_views::view_names() {
        let Ok(mut p) = Projector::only(&[name], true) else {
            continue;
        };
        let secs = apply_one_by_one(&mut p, decoded);
        let ns = secs * 1e9 / decoded.len().max(1) as f64;
        line.push_str(&format!(" {name} {ns:.0}"));
    }
    println!("{line}");
}

/// Seconds to apply `decoded` record by record, draining the changed rows
/// every `DEFAULT_BATCH` records as the engine would.
fn apply_one_by_one(p: &mut Projector, decoded: &[Decoded]) -> f64 {
    let t = Instant::now();
    for (i, d) in decoded.iter().enumerate() {
        p.apply(i as u64 + 1, sundial::decode::entry(d));
        if i % DEFAULT_BATCH == DEFAULT_BATCH - 1 {
            p.drain_dirty(&mut |_, _, b| {
                std::hint::black_box(b);
            })
            .expect("rows encode");
        }
    }
    t.elapsed().as_secs_f64()
}

/// Runs every measurement over `events` simulated records under `dir`.
pub async fn run(events: usize, dir: &str) -> Result<()> {
    let t = Instant::now();
    let records: Vec<Vec<u8>> =
        simulate::simulate(&SimConfig::new("bench", Scenario::Realistic, events)).collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    println!(
        "simulate:            {} ({} MB of JSON)",
        rate(records.len(), t.elapsed().as_secs_f64()),
        bytes / 1_000_000
    );

    let t = Instant::now();
    let mut ok = 0usize;
    for r in &records {
        ok += usize::from(codec::decode(r, None, "bench").is_ok());
    }
    println!(
        "decode json:         {}",
        rate(records.len(), t.elapsed().as_secs_f64())
    );
    std::hint::black_box(ok);
    let sources: Vec<SourceRecord> = records
        .iter()
        .map(|v| SourceRecord {
            value: v.clone().into(),
            ..SourceRecord::default()
        })
        .collect();
    let t = Instant::now();
    let n: usize = sources
        .chunks(DEFAULT_BATCH)
        .map(|c| sundial::decode::decode_batch(c, "bench", true).len())
        .sum();
    println!(
        "decode json 2 cores: {}",
        rate(n, t.elapsed().as_secs_f64())
    );
    drop(sources);

    let decoded: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            codec::decode(r, None, "bench")
                .map_err(|reason| codec::dead_letter(r, None, "bench", reason, 0, i as i64))
        })
        .collect();
    let mut p = Projector::new(true);
    let secs = apply_one_by_one(&mut p, &decoded);
    println!("apply only 1 core:   {}", rate(records.len(), secs));
    drop(p);
    per_view(&decoded);
    let t = Instant::now();
    let mut p = Projector::new(true);
    for (c, chunk) in decoded.chunks(DEFAULT_BATCH).enumerate() {
        let entries: Vec<Entry> = chunk.iter().map(sundial::decode::entry).collect();
        p.apply_batch((c * DEFAULT_BATCH) as u64 + 1, &entries);
        p.drain_dirty(&mut |_, _, b| {
            std::hint::black_box(b);
        })
        .expect("rows encode");
    }
    println!(
        "apply 2 cores:       {}",
        rate(decoded.len(), t.elapsed().as_secs_f64())
    );
    drop(p);
    drop(decoded);

    let t = Instant::now();
    let mut p = Projector::new(true);
    for (i, r) in records.iter().enumerate() {
        let seq = i as u64 + 1;
        match codec::decode(r, None, "bench") {
            Ok(m) => p.apply(seq, Entry::Valid(&m)),
            Err(reason) => p.apply(
                seq,
                Entry::Dead(&codec::dead_letter(r, None, "bench", reason, 0, i as i64)),
            ),
        };
        if i % DEFAULT_BATCH == DEFAULT_BATCH - 1 {
            p.drain_dirty(&mut |_, _, b| {
                std::hint::black_box(b);
            })
            .expect("rows encode");
        }
    }
    println!(
        "decode+apply 1 core: {}",
        rate(records.len(), t.elapsed().as_secs_f64())
    );
    drop(p);

    let _ = std::fs::remove_dir_all(dir);
    let storage = Storage::from_url(dir)?;
    let db = storage.open_writer("raw", "a").await?;
    let t = Instant::now();
    for (c, chunk) in records.chunks(DEFAULT_BATCH).enumerate() {
        let refs: Vec<LogRecordRef> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| LogRecordRef {
                seq: (c * DEFAULT_BATCH + i) as u64 + 1,
                partition: 0,
                offset: i as i64,
                arrival_ms: 0,
                content_type: None,
                value: v,
            })
            .collect();
        let mut wb = WriteBatch::new();
        wb.put(
            segment_key((c * DEFAULT_BATCH + chunk.len()) as u64),
            encode_segment(&refs).map_err(|e| sundial::Error::Encode(e.to_string()))?,
        );
        db.write(wb).await?;
    }
    db.flush().await?;
    println!(
        "slatedb log only:    {} (segments, durable)",
        rate(records.len(), t.elapsed().as_secs_f64())
    );
    db.close().await?;

    let shared = Arc::new(records);
    let mut next = 0usize;
    let cpu = crate::bench::cpu::Meter::start();
    let (attempt, summary) = sundial::replay_batches(&storage, "bench", None, "bench", |buf| {
        let end = (next + DEFAULT_BATCH).min(shared.len());
        for (i, v) in shared[next..end].iter().enumerate() {
            buf.push(SourceRecord {
                partition: 0,
                offset: (next + i) as i64,
                arrival_ms: 0,
                content_type: None,
                value: v.clone().into(),
            });
        }
        next = end;
        Ok(next < shared.len())
    })
    .await?;
    println!(
        "replay end to end:   {} (attempt {attempt}, durable on {dir}); {}",
        rate(summary.totals.records as usize, summary.seconds),
        cpu.per_event(summary.totals.records)
    );
    Ok(())
}
