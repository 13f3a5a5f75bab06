//! The lineage routes' answers, read from the lineage index and the log it
//! points at (`sundial_views::lineage`): the index rows tell which ranges
//! of the log hold the `split_processed` records naming a split; those
//! records are read from the log, decoded as the projector decoded them,
//! and folded by `Lineage`. Rows of attempts written before the index (one
//! `SplitRow` per split) are read too, listed before the indexed splits.

use std::collections::{BTreeMap, HashSet};

use sundial_views::lineage::{
    fingerprint, range_of_key, Lineage, LineageRow, LineageView, SplitRow, INDEX_PREFIX,
};
use sundial_views::{Message, Projection};

use crate::error::Result;
use crate::query::params::{ApiError, ApiResult, Page, Params};
use crate::store::view_store::ViewStore;

const VIEW: &str = LineageView::NAME;

/// Just past every index key (`INDEX_PREFIX` is NUL, `i`).
const INDEX_END: &str = "\0j";

/// The index rows of an attempt, by range, ascending.
async fn index(store: &ViewStore) -> Result<Vec<(u64, LineageRow)>> {
    let mut rows = Vec::new();
    store
        .visit_between::<LineageRow>(VIEW, INDEX_PREFIX, Some(INDEX_END), |key, row| {
            if let Some(range) = range_of_key(key) {
                rows.push((range, row));
            }
            true
        })
        .await?;
    Ok(rows)
}

/// Visits the per-split rows of an older attempt in key (split id) order
/// until `visit` returns false.
async fn visit_legacy(store: &ViewStore, mut visit: impl FnMut(SplitRow) -> bool) -> Result<()> {
    if store
        .visit_between::<SplitRow>(VIEW, "", Some(INDEX_PREFIX), |_, r| visit(r))
        .await?
    {
        store
            .visit_between::<SplitRow>(VIEW, INDEX_END, None, |_, r| visit(r))
            .await?;
    }
    Ok(())
}

/// Calls `f` with every record the given index rows point at, decoded, in
/// log order (a record that no longer decodes is skipped: it was applied,
/// so it never happens).
async fn each_record(
    store: &ViewStore,
    rows: &[&(u64, LineageRow)],
    mut f: impl FnMut(u64, &Message),
) -> Result<()> {
    let seqs: Vec<u64> = rows.iter().flat_map(|(r, row)| row.seqs(*r)).collect();
    let job = &store.meta.job_id;
    for r in store.records_at(&seqs).await? {
        if let Ok(m) = crate::ingest::codec::decode(&r.value, r.content_type.as_deref(), job) {
            f(r.seq, &m);
        }
    }
    Ok(())
}

/// Processed splits in log order (an older attempt's first, by id),
/// filtered by stage, paged: one item per processing.
pub async fn lineage(store: &ViewStore, p: &Params) -> ApiResult {
    let page = Page::from_params(p)?;
    let stage = p
        .get("stage_id")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let (skip, size) = (page.skip(), page.page_size);
    let mut items: Vec<SplitRow> = Vec::new();
    let mut total = 0u64;
    visit_legacy(store, |s| {
        if s.processed && stage.is_none_or(|st| st == s.stage_id) {
            if total >= skip && (items.len() as u64) < size {
                items.push(s);
            }
            total += 1;
        }
        true
    })
    .await?;
    let legacy = items.len();
    let rows = index(store).await?;
    // Only the rows holding this page's records are read from the log.
    let mut wanted = Vec::new();
    for row in &rows {
        let n = row.1.count(stage);
        let (from, to) = (total, total + n);
        total = to;
        if n > 0 && to > skip && from < skip + size {
            wanted.push((from, row));
        }
    }
    for (from, row) in wanted {
        let mut at = from;
        each_record(store, &[row], |seq, m| {
            let Some(s) = SplitRow::of(m, seq) else {
                return;
            };
            if stage.is_some_and(|st| st != s.stage_id) {
                return;
            }
            if at >= skip && (items.len() as u64) < size {
                items.push(s);
            }
            at += 1;
        })
        .await?;
    }
    children(store, &rows, &mut items[legacy..]).await?;
    let items = items
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .collect();
    Ok(page.wrap(items, total))
}

/// Adds to each split its children from the index (an older attempt's
/// rows already hold theirs).
async fn children(
    store: &ViewStore,
    rows: &[(u64, LineageRow)],
    splits: &mut [SplitRow],
) -> Result<()> {
    if splits.is_empty() {
        return Ok(());
    }
    let fps: HashSet<u32> = splits.iter().map(|s| fingerprint(&s.split_id)).collect();
    let candidates: Vec<&(u64, LineageRow)> = rows
        .iter()
        .filter(|(_, row)| {
            row.fingerprints
                .chunks_exact(4)
                .any(|c| fps.contains(&u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        })
        .collect();
    let mut found: BTreeMap<String, Lineage> = splits
        .iter()
        .map(|s| (s.split_id.clone(), Lineage::of(&s.split_id)))
        .collect();
    each_record(store, &candidates, |seq, m| {
        for l in found.values_mut() {
            l.add(m, seq);
        }
    })
    .await?;
    for s in splits {
        if let Some(l) = found.get(&s.split_id) {
            s.children.extend(l.children().iter().cloned());
        }
    }
    Ok(())
}

/// One split: its latest processing with its parents and children.
pub async fn split(store: &ViewStore, id: &str) -> ApiResult {
    let rows = index(store).await?;
    let fp = fingerprint(id);
    let candidates: Vec<&(u64, LineageRow)> =
        rows.iter().filter(|(_, row)| row.may_name(fp)).collect();
    let mut lineage = Lineage::of(id);
    each_record(store, &candidates, |seq, m| lineage.add(m, seq)).await?;
    // An older attempt's row of it (an id that looks like an index key has none).
    let legacy = if id.starts_with(INDEX_PREFIX) {
        None
    } else {
        store.row_as::<SplitRow>(VIEW, id).await?
    };
    let found = match (lineage.split(), legacy) {
        (Some(mut s), Some(old)) => {
            if !s.processed {
                let children = std::mem::take(&mut s.children);
                s = old;
                s.children.extend(children);
            } else {
                s.children.extend(old.children);
            }
            Some(s)
        }
        (s, old) => s.or(old),
    };
    found
        .map(|s| serde_json::to_value(&s).unwrap_or_default())
        .ok_or_else(|| ApiError::not_found(format!("split {id:?} not found")))
}
