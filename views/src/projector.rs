//! The fold of log records into every view: judge each valid message with
//! the sequence tracker (duplicate or fresh), then hand it to each view in
//! registry order. Pure; the engine loads missing rows before `apply` and
//! stores the changed rows after.

use crate::projection::{EncodeError, Input, Interest, Record};
use crate::runtime::{DynView, ViewCache};
use crate::sequences::{Sequences, Verdict};

pub use crate::projection::Entry;

/// What applying one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Dead,
}

/// Batches (and changed rows) at least this big use two threads.
const PARALLEL_MIN: usize = 1024;

/// Views on the second thread before their costs are measured (the first
/// batch), and when changed rows are encoded: together they cost about as
/// much as all the others (`sundial bench` prints each view's cost).
const SECOND_GROUP: &[&str] = &["metrics", "lineage"];

/// Some of the views, borrowed for one thread.
type Group<'v> = Vec<&'v mut Box<dyn DynView>>;

/// Some of the views with their places in the registry, for one thread.
type Indexed<'v> = Vec<(usize, &'v mut Box<dyn DynView>)>;

/// Every view plus the sequence tracker, with their row caches.
pub struct Projector {
    sequences: ViewCache<Sequences>,
    views: Vec<Box<dyn DynView>>,
    /// False when rebuilding only some views: the sequence tracker still
    /// judges duplicates, but its rows are not handed out.
    emit_sequences: bool,
    /// Each view's recent apply cost (ns per record, a moving average over
    /// batches), which splits the views between the two apply threads: the
    /// cost of a view depends on the job's shape, no fixed split fits all.
    apply_cost: Vec<f64>,
    /// The sequence tracker's recent judging cost, same unit.
    judge_cost: f64,
}

impl Projector {
    /// A projector over an empty store (`complete`) or an existing one.
    pub fn new(complete: bool) -> Self {
        Projector {
            sequences: ViewCache::new(Sequences, complete),
            views: crate::registry(complete),
            emit_sequences: true,
            apply_cost: Vec::new(),
            judge_cost: 0.0,
        }
    }

    /// A projector that hands out only the rows of the named views (to
    /// rebuild them in place, leaving the others alone). Every view keeps
    /// the code of [`Projector::new`]; duplicates are still judged by the
    /// sequence tracker, whose rows are handed out only when it is named.
    /// An unknown name is an error listing the valid ones.
    pub fn only(names: &[&str], complete: bool) -> Result<Self, String> {
        let valid = crate::view_names();
        if let Some(bad) = names.iter().find(|n| !valid.contains(n)) {
            return Err(format!(
                "unknown view {bad:?}: use some of {}",
                valid.join(",")
            ));
        }
        let mut p = Projector::new(complete);
        p.views.retain(|v| names.contains(&v.name()));
        p.emit_sequences = names.contains(&p.sequences.name());
        Ok(p)
    }

    fn probe<'m, 'a>(seq: u64, entry: Entry<'m, 'a>) -> Input<'m, 'a> {
        Input {
            seq,
            record: match entry {
                Entry::Valid(msg) => Record::Applied {
                    msg,
                    missing_delta: 0,
                },
                Entry::Dead(d) => Record::Dead {
                    dead: d,
                    missing_delta: 0,
                },
            },
        }
    }

    /// False when no record can need a stored row (fresh caches, nothing
    /// evicted yet): the engine then skips asking record by record.
    pub fn may_miss(&self) -> bool {
        self.sequences.may_miss() || self.views.iter().any(|v| v.may_miss())
    }

    /// Adds to `out` the `(view, key)` rows this record needs loaded.
    pub fn misses(&mut self, seq: u64, entry: Entry, out: &mut Vec<(&'static str, String)>) {
        let input = Self::probe(seq, entry);
        let mut keys = Vec::new();
        self.sequences.misses(&input, &mut keys);
        out.extend(keys.drain(..).map(|k| (self.sequences.name(), k)));
        for v in &mut self.views {
            v.misses(&input, &mut keys);
            let name = v.name();
            out.extend(keys.drain(..).map(|k| (name, k)));
        }
    }

    /// Puts a loaded row into the cache of the named view.
    pub fn load(
        &mut self,
        view: &str,
        key: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(), rmp_serde::decode::Error> {
        if view == self.sequences.name() {
            return self.sequences.load(key, bytes);
        }
        match self.views.iter_mut().find(|v| v.name() == view) {
            Some(v) => v.load(key, bytes),
            None => Ok(()),
        }
    }

    /// Applies one record to every view.
    pub fn apply(&mut self, seq: u64, entry: Entry) -> Outcome {
        let (input, outcome) = judge(&mut self.sequences, seq, entry);
        offer(&mut self.views, &input);
        outcome
    }

    /// Applies records `first, first + 1, …` to every view, exactly as
    /// [`Projector::apply`] one by one would: the sequence tracker judges
    /// them in order, and the views (independent of each other given the
    /// verdicts) run in two groups on two threads when the batch is big
    /// enough to pay for it, split by what each view cost lately: the
    /// second thread takes judged records a chunk at a time while the rest
    /// are still being judged, the first applies its views once all are.
    pub fn apply_batch(&mut self, first: u64, entries: &[Entry]) -> Vec<Outcome> {
        let mut inputs = Vec::with_capacity(entries.len());
        let mut outcomes = Vec::with_capacity(entries.len());
        if entries.len() < PARALLEL_MIN {
            for (i, e) in entries.iter().enumerate() {
                let (input, outcome) = judge(&mut self.sequences, first + i as u64, *e);
                inputs.push(input);
                outcomes.push(outcome);
            }
            for input in &inputs {
                offer(&mut self.views, input);
            }
            return outcomes;
        }
        let (mine, theirs) = balanced(&mut self.views, &mut self.apply_cost, self.judge_cost);
        let sequences = &mut self.sequences;
        let (a, b, judge_ns) = std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel::<Vec<Input>>();
            let b = s.spawn(move || apply_chunks(theirs, rx));
            let t = std::time::Instant::now();
            for (c, chunk) in entries.chunks(JUDGED_CHUNK).enumerate() {
                let at = first + (c * JUDGED_CHUNK) as u64;
                let mut judged = Vec::with_capacity(chunk.len());
                for (i, e) in chunk.iter().enumerate() {
                    crate::prefetch::entries_ahead(chunk, i);
                    let (input, outcome) = judge(sequences, at + i as u64, *e);
                    judged.push(input);
                    outcomes.push(outcome);
                }
                inputs.extend_from_slice(&judged);
                // Closed only if the other thread panicked: joined below.
                let _ = tx.send(judged);
            }
            drop(tx);
            let judge_ns = t.elapsed().as_nanos() as f64;
            let a = apply_chunks(mine, std::iter::once(inputs));
            let b = b.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (a, b, judge_ns)
        });
        let n = entries.len() as f64;
        let average =
            |c: &mut f64, ns: f64| *c = if *c == 0.0 { ns } else { 0.75 * *c + 0.25 * ns };
        for (i, ns) in a.into_iter().chain(b) {
            average(&mut self.apply_cost[i], ns / n);
        }
        average(&mut self.judge_cost, judge_ns / n);
        outcomes
    }

    /// Hands every changed row to `out` as `(view, key, bytes)`: the
    /// sequence tracker's first, then each view's in registry order. A row
    /// that cannot be encoded is an error, and the batch must not be
    /// committed.
    pub fn drain_dirty(
        &mut self,
        out: &mut dyn FnMut(&'static str, &str, Vec<u8>),
    ) -> Result<(), EncodeError> {
        let dirty: usize =
            self.sequences.dirty() + self.views.iter().map(|v| v.dirty()).sum::<usize>();
        let (emit, name) = (self.emit_sequences, self.sequences.name());
        if dirty < PARALLEL_MIN {
            drain_tracker(&mut self.sequences, emit, &mut |k, b| out(name, k, b))?;
            for v in &mut self.views {
                let name = v.name();
                v.drain_dirty(&mut |k, b| out(name, k, b))?;
            }
            return Ok(());
        }
        // Rows encoded on two threads (the tracker's with the first
        // group's: about as much as the second's), handed out in order.
        let order: Vec<&'static str> = self.views.iter().map(|v| v.name()).collect();
        let (mine, theirs): (Group, Group) = self
            .views
            .iter_mut()
            .partition(|v| !SECOND_GROUP.contains(&v.name()));
        let (tracker, a, b) = std::thread::scope(|s| {
            let other = s.spawn(|| encode(theirs));
            let mut rows = Vec::with_capacity(if emit { self.sequences.dirty() } else { 0 });
            let keep = &mut |k: &str, b| rows.push((k.to_owned(), b));
            let tracker = drain_tracker(&mut self.sequences, emit, keep).map(|()| (name, rows));
            (tracker, encode(mine), other.join())
        });
        let (tracker, mut a) = (tracker?, a?);
        // A view never panics; if one did, its rows are lost to this
        // batch's write and the panic is raised again here.
        a.extend(b.unwrap_or_else(|p| std::panic::resume_unwind(p))?);
        a.sort_by_key(|(name, _)| order.iter().position(|n| n == name));
        for (name, rows) in std::iter::once(tracker).chain(a) {
            for (k, b) in rows {
                out(name, &k, b);
            }
        }
        Ok(())
    }

    /// Bounds every cache to about `max_rows` rows.
    pub fn evict(&mut self, max_rows: usize) {
        // Rows not handed out are never stored, so never reloadable: keep them.
        if self.emit_sequences {
            self.sequences.evict(max_rows);
        }
        for v in &mut self.views {
            v.evict(max_rows);
        }
    }

    /// Rows cached across all views.
    pub fn cached(&self) -> usize {
        self.sequences.cached() + self.views.iter().map(|v| v.cached()).sum::<usize>()
    }
}

/// Hands the sequence tracker's changed rows to `out` when its rows are
/// stored (`emit`), else only marks them unchanged.
fn drain_tracker(
    sequences: &mut ViewCache<Sequences>,
    emit: bool,
    out: &mut dyn FnMut(&str, Vec<u8>),
) -> Result<(), EncodeError> {
    if emit {
        sequences.drain_dirty(out)
    } else {
        sequences.forget_dirty();
        Ok(())
    }
}

/// One view's changed rows, encoded, with their keys.
type Encoded = (&'static str, Vec<(String, Vec<u8>)>);

/// Each view's changed rows, encoded, with their keys.
fn encode(group: Group) -> Result<Vec<Encoded>, EncodeError> {
    group
        .into_iter()
        .map(|v| {
            let mut rows = Vec::with_capacity(v.dirty());
            v.drain_dirty(&mut |k, b| rows.push((k.to_owned(), b)))?;
            Ok((v.name(), rows))
        })
        .collect()
}

/// Applies one judged record to each view interested in its kind.
fn offer(views: &mut [Box<dyn DynView>], input: &Input) {
    let bit = Interest::bit(input);
    for v in views {
        if v.interest().wants(bit) {
            v.apply(input);
        }
    }
}

/// The sequence tracker's verdict on one record, as the views' input.
fn judge<'m, 'a>(
    sequences: &mut ViewCache<Sequences>,
    seq: u64,
    entry: Entry<'m, 'a>,
) -> (Input<'m, 'a>, Outcome) {
    match entry {
        Entry::Dead(d) => {
            // A readable envelope's sequence counts as arrived; a retry of
            // the same rejected record changes nothing more.
            let missing_delta = match &d.envelope {
                Some(env) => {
                    let probe = Projector::probe(seq, entry);
                    match sequences
                        .with_rows(&probe, |_, _, rows| Sequences::judge_envelope(env, rows))
                    {
                        Some(Verdict::Fresh { missing_delta }) => missing_delta,
                        _ => 0,
                    }
                }
                None => 0,
            };
            (
                Input {
                    seq,
                    record: Record::Dead {
                        dead: d,
                        missing_delta,
                    },
                },
                Outcome::Dead,
            )
        }
        Entry::Valid(msg) => {
            let probe = Projector::probe(seq, entry);
            let verdict = sequences
                .with_rows(&probe, |_, _, rows| Sequences::judge(msg, rows))
                .unwrap_or(Verdict::Fresh { missing_delta: 0 });
            match verdict {
                Verdict::Duplicate => (
                    Input {
                        seq,
                        record: Record::Duplicate(msg),
                    },
                    Outcome::Duplicate,
                ),
                Verdict::Fresh { missing_delta } => (
                    Input {
                        seq,
                        record: Record::Applied { msg, missing_delta },
                    },
                    Outcome::Applied,
                ),
            }
        }
    }
}

/// Records judged per chunk handed to the second apply thread.
const JUDGED_CHUNK: usize = 2048;

/// Applies each chunk, in order, to each view of `group`, view by
/// view within a chunk (each view's code and rows stay hot in cache);
/// returns each view's index and the nanoseconds it took in all.
fn apply_chunks<'m, 'a: 'm>(
    mut group: Indexed<'_>,
    chunks: impl IntoIterator<Item = Vec<Input<'m, 'a>>>,
) -> Vec<(usize, f64)> {
    let mut costs: Vec<(usize, f64)> = group.iter().map(|(i, _)| (*i, 0.0)).collect();
    let mut bits = Vec::new();
    for chunk in chunks {
        bits.clear();
        for (n, ((_, v), (_, ns))) in group.iter_mut().zip(&mut costs).enumerate() {
            let t = std::time::Instant::now();
            let interest = v.interest();
            for (i, input) in chunk.iter().enumerate() {
                if n == 0 {
                    // The first view reads the chunk first: from another
                    // core. Each record's kind is noted for the others.
                    crate::prefetch::inputs_ahead(&chunk, i);
                    bits.push(Interest::bit(input));
                }
                if interest.wants(bits[i]) {
                    v.apply(input);
                }
            }
            *ns += t.elapsed().as_nanos() as f64;
        }
    }
    costs
}

/// The views split in two groups of about equal recent apply cost
/// (largest first, each to the lighter group), with their indexes; the
/// first group's thread also judges, so it starts with that cost. The
/// fixed split of [`SECOND_GROUP`] until costs are known.
fn balanced<'v>(
    views: &'v mut [Box<dyn DynView>],
    cost: &mut Vec<f64>,
    judge_cost: f64,
) -> (Indexed<'v>, Indexed<'v>) {
    let n = views.len();
    let mut second = vec![false; n];
    if cost.len() != n {
        *cost = vec![0.0; n];
        for (i, v) in views.iter().enumerate() {
            second[i] = SECOND_GROUP.contains(&v.name());
        }
    } else {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| cost[b].total_cmp(&cost[a]));
        let (mut first_load, mut second_load) = (judge_cost, 0.0);
        for i in order {
            if second_load < first_load {
                second[i] = true;
                second_load += cost[i];
            } else {
                first_load += cost[i];
            }
        }
    }
    views.iter_mut().enumerate().partition(|(i, _)| !second[*i])
}

#[cfg(test)]
mod tests {
    use super::{Entry, Outcome, Projector};
    use crate::testkit::*;

    #[test]
    fn outcomes_tell_applied_duplicate_and_dead_apart() {
        let m = worker_started("w1", "s1", 1.0, 1);
        let g = given(&[
            m.clone(),
            m,
            dead("x"),
            worker_started("w1", "s1", 1.0, 0).no_seq(),
        ]);
        assert_eq!(
            g.outcomes(),
            &[
                Outcome::Applied,
                Outcome::Duplicate,
                Outcome::Dead,
                Outcome::Applied
            ]
        );
    }

    #[test]
    fn the_same_log_always_yields_byte_identical_rows() {
        let evs = scenario();
        let a = given(&evs);
        let b = given(&evs);
        assert_eq!(a.bytes(), b.bytes());
        assert_eq!(a.outcomes(), b.outcomes());
        // Every view has rows, so the comparison covers all of them.
        let views: std::collections::BTreeSet<&str> = a.bytes().keys().map(|(v, _)| *v).collect();
        assert_eq!(views.len(), crate::view_names().len(), "{views:?}");
    }

    #[test]
    fn draining_once_or_after_every_record_yields_the_same_rows() {
        let evs = scenario();
        let each = given(&evs);
        let mut p = Projector::new(true);
        for (i, ev) in evs.iter().enumerate() {
            apply(&mut p, i as u64 + 1, ev);
        }
        let mut once = std::collections::BTreeMap::new();
        p.drain_dirty(&mut |v, k, b| {
            once.insert((v, k.to_owned()), b);
        })
        .unwrap();
        assert_eq!(&once, each.bytes());
        // Nothing left to drain.
        let mut more = 0;
        p.drain_dirty(&mut |_, _, _| more += 1).unwrap();
        assert_eq!(more, 0);
    }

    /// Enough records (and changed rows) per batch for the two-thread path.
    fn big_scenario() -> Vec<Ev> {
        let mut evs = scenario();
        let mut seq = std::collections::HashMap::new();
        for t in 0..3000u64 {
            let w = format!("bw{}", t % 300);
            let stage = ["src", "map", "sink"][(t % 3) as usize];
            let s = seq.entry(w.clone()).or_insert(0u64);
            *s += 1;
            let ts = 130.0 + t as f64 * 0.01;
            let m = worker_metrics(&w, stage, ts, *s, t, t / 2);
            evs.push(m.clone());
            if t % 13 == 0 {
                evs.push(m); // retried
            }
            let parent = format!("bs{}", t / 2);
            evs.push(split(
                &w,
                stage,
                &format!("bs{t}"),
                &[&parent],
                ts,
                10_000 + t,
            ));
        }
        evs
    }

    #[test]
    fn applying_in_parallel_batches_equals_applying_one_by_one() {
        let evs = big_scenario();
        let one_by_one = given(&evs);
        let texts: Vec<Option<String>> = evs
            .iter()
            .map(|e| match e {
                Ev::Msg(v) => Some(v.to_string()),
                Ev::Dead(_) => None,
            })
            .collect();
        let msgs: Vec<Option<crate::Message>> = texts
            .iter()
            .map(|t| t.as_ref().map(|t| serde_json::from_str(t).unwrap()))
            .collect();
        let entries: Vec<Entry> = evs
            .iter()
            .zip(&msgs)
            .map(|(e, m)| match (e, m) {
                (_, Some(m)) => Entry::Valid(m),
                (Ev::Dead(d), None) => Entry::Dead(d),
                (Ev::Msg(_), None) => unreachable!(),
            })
            .collect();
        let mut p = Projector::new(true);
        let mut rows = std::collections::BTreeMap::new();
        let mut outcomes = Vec::new();
        let mut first = 1;
        for chunk in entries.chunks(super::PARALLEL_MIN + 500) {
            assert!(chunk.len() >= super::PARALLEL_MIN || first > 1);
            outcomes.extend(p.apply_batch(first, chunk));
            first += chunk.len() as u64;
            let mut dirty = 0;
            p.drain_dirty(&mut |v, k, b| {
                dirty += 1;
                rows.insert((v, k.to_owned()), b);
            })
            .unwrap();
            assert!(first > 2000 || dirty >= super::PARALLEL_MIN, "{dirty}");
        }
        assert_eq!(outcomes, one_by_one.outcomes());
        assert_eq!(&rows, one_by_one.bytes());
    }

    #[test]
    fn a_projector_over_some_views_yields_exactly_their_rows() {
        let evs = scenario();
        let all = given(&evs);
        let mut p = Projector::only(&["stage", "lineage"], true).unwrap();
        for (i, ev) in evs.iter().enumerate() {
            apply(&mut p, i as u64 + 1, ev);
        }
        let mut some = std::collections::BTreeMap::new();
        p.drain_dirty(&mut |v, k, b| {
            some.insert((v, k.to_owned()), b);
        })
        .unwrap();
        let want: std::collections::BTreeMap<_, _> = all
            .bytes()
            .iter()
            .filter(|((v, _), _)| matches!(*v, "stage" | "lineage"))
            .map(|(k, b)| (k.clone(), b.clone()))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(some, want);
        let err = Projector::only(&["stage", "nope"], true).err().unwrap();
        assert!(err.contains("\"nope\"") && err.contains("lineage"), "{err}");
    }

    #[test]
    fn the_scenario_lands_where_the_rules_say() {
        use crate::stage::StageView;
        use crate::worker::WorkerView;
        let g = given(&scenario());
        let job = g.job();
        assert_eq!(job.status, "FAILED");
        assert_eq!(job.dead_letter_count, 1);
        // 40 rounds: retried on t % 7 == 2 (t = 2, 9, 16, 23, 30, 37) for 3
        // workers, except w1's lost rounds (t = 3, 14, 25, 36; none retried).
        assert_eq!(job.duplicate_count, 6 * 3);
        let map = g.row::<StageView>("map");
        assert_eq!(map.effective_status("FAILED"), "FAILED");
        assert_eq!(map.worker_count(), 1);
        assert_eq!(map.workers_ever(), 2);
        let w2 = g.row::<WorkerView>("w2");
        assert_eq!(w2.status, "STOPPED");
        assert_eq!(w2.counts.input_records, 2000);
        let w1 = g.row::<WorkerView>("w1");
        assert_eq!(w1.counts.input_records, 40 * 17);
        assert_eq!(map.input_records, 2000 + 40 * 17);
        assert_eq!(
            g.row::<StageView>("src").effective_status("FAILED"),
            "COMPLETED"
        );
    }
}
