//! `sundial replay`: picks the source (file, topic, an attempt's log) or
//! the in-place rebuild of some views, runs it with progress on stderr and
//! prints one summary line on stdout.

use crate::cli::args::ReplayArgs;
use crate::error::{Error, Result};
use crate::ingest::source::file::FileSource;
use crate::replay::log::SeqRange;
use crate::replay::offsets::Offsets;
use crate::replay::target::{ReplayOptions, Summary, Target};
use crate::replay::topic::TopicRange;
use crate::store::storage::Storage;

/// The latest attempt of `job` by recorded creation time (then by name).
pub async fn latest_attempt(storage: &Storage, job: &str) -> Result<String> {
    let mut best: Option<(u64, String)> = None;
    for a in storage.list_attempts(job).await? {
        let created = storage.attempt_created_ms(job, &a).await?.unwrap_or(0);
        if best.as_ref().is_none_or(|b| (created, &a) >= (b.0, &b.1)) {
            best = Some((created, a));
        }
    }
    best.map(|b| b.1)
        .ok_or_else(|| Error::NotFound(format!("job={job} has no attempt")))
}

/// `--from-offset` and `--to-offset`, parsed.
fn offsets(a: &ReplayArgs) -> Result<(Option<Offsets>, Option<Offsets>)> {
    let from = a
        .from_offset
        .as_deref()
        .map(|t| Offsets::parse("from offset", t))
        .transpose()?;
    let to = a
        .to_offset
        .as_deref()
        .map(|t| Offsets::parse("to offset", t))
        .transpose()?;
    Ok((from, to))
}

/// The one-number form of both, for sources without partitions.
fn single(from: &Option<Offsets>, to: &Option<Offsets>) -> Result<(Option<u64>, Option<u64>)> {
    Ok((
        from.as_ref().map(|o| o.single("from offset")).transpose()?,
        to.as_ref().map(|o| o.single("to offset")).transpose()?,
    ))
}

/// Runs `sundial replay`.
pub async fn exec(a: ReplayArgs) -> Result<()> {
    // Replays of stored attempts read a storage that must exist.
    let storage = if a.from_log.is_some() || a.views.is_some() {
        Storage::open_existing(&a.storage)?
    } else {
        Storage::from_url(&a.storage)?
    };
    crate::store::storage::validate_id("job id", &a.job)?;
    let progress = !a.quiet;
    if let Some(list) = &a.views {
        let views = crate::replay::rebuild::parse_views(list)?;
        let attempt = match &a.attempt {
            Some(at) => at.clone(),
            None => latest_attempt(&storage, &a.job).await?,
        };
        let result =
            crate::replay::rebuild::rebuild_views(&storage, &a.job, &attempt, &views, progress)
                .await;
        // Time-travel stores cached in this process show the old views.
        crate::time_travel::as_of::clear_cache();
        let summary = result?;
        println!(
            "job={} attempt={attempt} rebuilt={} {summary}",
            a.job,
            views.join(",")
        );
        warn_about_dead_letters(&summary);
        return Ok(());
    }
    let (from_offset, to_offset) = offsets(&a)?;
    let opts = ReplayOptions {
        attempt: a.attempt.as_deref(),
        resume: a.resume,
        max_record_bytes: a.max_record_bytes.max(1),
        progress,
    };
    let (attempt, summary) = if let Some(from) = &a.from_log {
        let (lo, hi) = single(&from_offset, &to_offset)?;
        let range = SeqRange::new(lo, hi)?;
        crate::replay::log::replay_from_log(&storage, &a.job, from, range, opts).await?
    } else if let Some(brokers) = &a.brokers {
        let topic = a
            .topic
            .clone()
            .unwrap_or_else(|| format!("{}_state", a.job));
        let from_time_ms = match a.from_time {
            Some(t) if t.is_finite() && t >= 0.0 => Some((t * 1000.0) as i64),
            Some(t) => {
                return Err(Error::invalid(
                    "from time",
                    format!("{t}: use seconds since the epoch"),
                ))
            }
            None => None,
        };
        let range = TopicRange {
            from_offset,
            from_time_ms,
            to_offset,
        };
        crate::replay::topic::replay_topic(&storage, &a.job, brokers, &topic, range, opts).await?
    } else if let Some(input) = &a.input {
        let (lo, hi) = single(&from_offset, &to_offset)?;
        replay_file_range(&storage, &a, input, (lo, hi), opts).await?
    } else {
        return Err(Error::invalid(
            "source",
            "give --input, --brokers, --from-log or --views",
        ));
    };
    println!("job={} attempt={attempt} {summary}", a.job);
    warn_about_dead_letters(&summary);
    Ok(())
}

/// Says on stderr when records became dead letters (see [`Summary::warning`]).
pub fn warn_about_dead_letters(summary: &Summary) {
    if let Some(w) = summary.warning() {
        eprintln!("{w}");
    }
}

/// A file replay, keeping only record indexes in `--from-offset..=--to-offset`.
async fn replay_file_range(
    storage: &Storage,
    a: &ReplayArgs,
    input: &str,
    (from, to): (Option<u64>, Option<u64>),
    opts: ReplayOptions<'_>,
) -> Result<(String, Summary)> {
    // `Offsets::parse` keeps every number within i64.
    let from = from.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let to = to.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
    if to < from {
        return Err(Error::invalid(
            "offsets",
            format!("--to-offset {to} is below --from-offset {from}"),
        ));
    }
    let mut source = FileSource::open(input)?.max_record_bytes(opts.max_record_bytes);
    let mut target = Target::open_with(
        storage,
        &a.job,
        opts.attempt,
        &format!("file:{input}"),
        opts.resume,
    )
    .await?;
    if opts.progress {
        target.show_progress(None);
    }
    let batch = a.batch.max(1);
    // The ETA of a whole file comes from the share of its bytes read.
    let whole = from == 0 && to == i64::MAX;
    loop {
        let mut buf = Vec::new();
        let more = source.next_batch(batch, &mut buf)?;
        buf.retain(|r| r.offset >= from && r.offset <= to);
        if whole {
            if let Some(total) = source.estimated_records() {
                target.set_total(total);
            }
        }
        let past_end = buf.last().is_some_and(|r| r.offset >= to);
        target.ingest(buf).await?;
        if !more || past_end {
            break;
        }
    }
    target.finish().await
}
