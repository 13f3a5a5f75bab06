//! The in-memory side of a projection while it runs: a bounded cache of its
//! rows, which rows changed since the last commit, and the type erasure that
//! lets the engine drive every view as bytes in, bytes out. Still pure: the
//! engine asks which rows are missing, loads them, then applies.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// FxHash (rustc's hasher): row keys are ours, not attacker-chosen, and
/// SipHash showed up in profiles of the apply loop.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds `FxHasher`s.
pub type BuildFx = std::hash::BuildHasherDefault<FxHasher>;

/// A stable 64-bit hash of a row key (collisions only cost a needless load).
fn key_hash(key: &str) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

use crate::projection::{decode_row, EncodeError, Input, Interest, Keys, Projection};

struct Slot<R> {
    key: Box<str>,
    row: R,
    dirty: bool,
    used: u64,
    /// Listed by `Keys::push_fresh`: no later record lists it again, so it
    /// leaves the cache once stored.
    fresh: bool,
}

/// A projection plus the cache of its rows.
pub struct ViewCache<P: Projection> {
    proj: P,
    index: HashMap<Box<str>, usize, BuildFx>,
    slots: Vec<Slot<P::Row>>,
    keys: Keys,
    taken: Vec<P::Row>,
    positions: Vec<usize>,
    /// Positions of the rows changed since the last drain.
    dirty: Vec<usize>,
    /// True when the store held no row of this view when the cache started,
    /// so a key never evicted is a new row, never one to load.
    complete: bool,
    /// Hashes of keys evicted from a complete cache: only these may need loading.
    evicted: HashSet<u64, BuildFx>,
    generation: u64,
    /// Fresh rows in the cache (see `Slot::fresh`).
    fresh_cached: usize,
}

impl<P: Projection> ViewCache<P> {
    /// A cache over an empty store (`complete`) or an existing one.
    pub fn new(proj: P, complete: bool) -> Self {
        ViewCache {
            proj,
            index: HashMap::default(),
            slots: Vec::new(),
            keys: Keys::default(),
            taken: Vec::new(),
            positions: Vec::new(),
            dirty: Vec::new(),
            complete,
            evicted: HashSet::default(),
            generation: 1,
            fresh_cached: 0,
        }
    }

    /// Runs `f` over the rows of the input's keys, marking them changed.
    pub fn with_rows<T>(
        &mut self,
        input: &Input,
        f: impl FnOnce(&P, &Input, &mut [&mut P::Row]) -> T,
    ) -> Option<T> {
        self.keys.clear();
        self.proj.keys(input, &mut self.keys);
        if self.keys.is_empty() {
            return None;
        }
        self.positions.clear();
        self.taken.clear();
        for i in 0..self.keys.len() {
            let key = self.keys.get(i);
            let pos = match self.index.get(key) {
                Some(&p) => p,
                None => {
                    // Not loaded: either new (complete cache or append-only
                    // view) or the engine skipped loading; both start empty.
                    let p = self.slots.len();
                    let fresh = self.keys.is_fresh(i);
                    self.fresh_cached += usize::from(fresh);
                    self.index.insert(key.into(), p);
                    self.slots.push(Slot {
                        key: key.into(),
                        row: P::Row::default(),
                        dirty: false,
                        used: 0,
                        fresh,
                    });
                    p
                }
            };
            if self.positions.contains(&pos) {
                // A projection listed a key twice: a bug there, never a panic here.
                continue;
            }
            self.positions.push(pos);
            let slot = &mut self.slots[pos];
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(pos);
            }
            slot.used = self.generation;
        }
        // Each listed row is borrowed where it lies (rows are hundreds of
        // bytes: moving them out and back cost ~2 % of a rebuild).
        let slots = &mut self.slots;
        match self.positions[..] {
            [pos] => {
                let rows = &mut [&mut slots[pos].row];
                return Some(f(&self.proj, input, rows));
            }
            [a, b] => {
                if let Ok([a, b]) = slots.get_disjoint_mut([a, b]) {
                    return Some(f(&self.proj, input, &mut [&mut a.row, &mut b.row]));
                }
            }
            _ => {}
        }
        // More rows (a job's declared stages): moved out and back.
        for &pos in &self.positions {
            self.taken.push(std::mem::take(&mut self.slots[pos].row));
        }
        let mut rows: Vec<&mut P::Row> = self.taken.iter_mut().collect();
        let out = f(&self.proj, input, &mut rows);
        for (row, &pos) in self.taken.drain(..).zip(self.positions.iter()) {
            self.slots[pos].row = row;
        }
        Some(out)
    }

    /// Marks every row unchanged without encoding it (rows nobody stores).
    pub fn forget_dirty(&mut self) {
        for &pos in &self.dirty {
            self.slots[pos].dirty = false;
        }
        self.dirty.clear();
        self.generation += 1;
    }

    /// The typed projection.
    pub fn projection(&self) -> &P {
        &self.proj
    }
}

/// A view driven by the engine without knowing its row type.
pub trait DynView: Send + Sync {
    /// The projection's stable name.
    fn name(&self) -> &'static str;
    /// False when no input can miss a row (every key not cached is new):
    /// then asking `misses` record by record can be skipped.
    fn may_miss(&self) -> bool;
    /// Adds to `out` the keys of this input's rows that must be loaded first.
    fn misses(&mut self, input: &Input, out: &mut Vec<String>);
    /// Puts a loaded row (or `None`: not stored) into the cache.
    fn load(&mut self, key: &str, bytes: Option<&[u8]>) -> Result<(), rmp_serde::decode::Error>;
    /// Which records the view may list rows for (see `Projection::INTEREST`).
    fn interest(&self) -> Interest;
    /// Applies one input.
    fn apply(&mut self, input: &Input);
    /// Hands every row changed since the last call to `out`, encoded; stops
    /// at a row that cannot be encoded.
    fn drain_dirty(&mut self, out: &mut dyn FnMut(&str, Vec<u8>)) -> Result<(), EncodeError>;
    /// Shrinks the cache to about `max_rows` rows (dirty rows are kept).
    fn evict(&mut self, max_rows: usize);
    /// Number of cached rows.
    fn cached(&self) -> usize;
    /// Number of rows changed since the last drain.
    fn dirty(&self) -> usize;
}

impl<P: Projection> DynView for ViewCache<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn may_miss(&self) -> bool {
        !(P::APPEND_ONLY || (self.complete && self.evicted.is_empty()))
    }

    fn misses(&mut self, input: &Input, out: &mut Vec<String>) {
        if !self.may_miss() {
            return;
        }
        self.keys.clear();
        self.proj.keys(input, &mut self.keys);
        for (i, key) in self.keys.iter().enumerate() {
            if !self.keys.is_fresh(i)
                && !self.index.contains_key(key)
                && (!self.complete || self.evicted.contains(&key_hash(key)))
            {
                out.push(key.to_owned());
            }
        }
    }

    fn load(&mut self, key: &str, bytes: Option<&[u8]>) -> Result<(), rmp_serde::decode::Error> {
        if self.index.contains_key(key) {
            return Ok(());
        }
        let row = match bytes {
            Some(b) => decode_row(b)?,
            None => P::Row::default(),
        };
        self.index.insert(key.into(), self.slots.len());
        self.slots.push(Slot {
            key: key.into(),
            row,
            dirty: false,
            used: self.generation,
            fresh: false,
        });
        Ok(())
    }

    fn interest(&self) -> Interest {
        P::INTEREST
    }

    fn apply(&mut self, input: &Input) {
        self.with_rows(input, |p, i, rows| p.apply(i, rows));
    }

    fn drain_dirty(&mut self, out: &mut dyn FnMut(&str, Vec<u8>)) -> Result<(), EncodeError> {
        // Sorted keys keep the write order (and so the batch) deterministic.
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable_by(|a, b| self.slots[*a].key.cmp(&self.slots[*b].key));
        for &pos in &dirty {
            let slot = &mut self.slots[pos];
            slot.dirty = false;
            let bytes = P::encode(&slot.row).map_err(|source| EncodeError {
                view: P::NAME,
                key: slot.key.to_string(),
                source,
            })?;
            out(&slot.key, bytes);
        }
        dirty.clear();
        self.dirty = dirty;
        self.generation += 1;
        Ok(())
    }

    fn evict(&mut self, max_rows: usize) {
        let over = self.slots.len() > max_rows;
        if !over && self.fresh_cached == 0 {
            return;
        }
        // Keep the rows used most recently, dropping the rest; fresh rows
        // once stored go whatever room is left.
        let keep_from = match max_rows / 2 {
            _ if !over => 0,
            // Room for none: keep only the rows not yet drained.
            0 => u64::MAX,
            keep => {
                let mut used: Vec<u64> = self.slots.iter().map(|s| s.used).collect();
                let at = used.len() - keep;
                *used.select_nth_unstable(at).1
            }
        };
        // Where each kept row moves to (`usize::MAX`: dropped). The index
        // keeps its keys and table: only positions change and dropped keys
        // go, instead of a new index of cloned keys (twice the time).
        let (mut next, mut kept_fresh) = (0, 0);
        let moved: Vec<usize> = self
            .slots
            .iter()
            .map(|s| {
                if s.dirty || (!s.fresh && s.used >= keep_from) {
                    kept_fresh += usize::from(s.fresh);
                    next += 1;
                    next - 1
                } else {
                    usize::MAX
                }
            })
            .collect();
        let (complete, evicted, slots) = (self.complete, &mut self.evicted, &self.slots);
        self.index.retain(|key, pos| match moved[*pos] {
            usize::MAX => {
                // A fresh row is never asked for again: nothing to load later.
                if complete && !slots[*pos].fresh {
                    evicted.insert(key_hash(key));
                }
                false
            }
            to => {
                *pos = to;
                true
            }
        });
        let mut at = 0;
        self.slots.retain(|_| {
            at += 1;
            moved[at - 1] != usize::MAX
        });
        for pos in &mut self.dirty {
            *pos = moved[*pos];
        }
        self.fresh_cached = kept_fresh;
    }

    fn cached(&self) -> usize {
        self.slots.len()
    }

    fn dirty(&self) -> usize {
        self.dirty.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::projector::{Entry, Projector};
    use crate::testkit::*;
    use crate::Message;

    type Store = BTreeMap<(&'static str, String), Vec<u8>>;

    /// Drives a projector the way the engine does over an existing store:
    /// ask for the missing rows (unless it says none can be), load them,
    /// apply, store the changed rows, and keep the cache tiny so rows are
    /// evicted and reloaded all the time.
    fn run_with_store(evs: &[Ev], max_rows: usize) -> Store {
        run_from(Projector::new(false), evs, max_rows)
    }

    fn run_from(mut p: Projector, evs: &[Ev], max_rows: usize) -> Store {
        let mut store = Store::new();
        let mut missing = Vec::new();
        for (i, ev) in evs.iter().enumerate() {
            let seq = i as u64 + 1;
            let text;
            let msg: Message;
            let entry = match ev {
                Ev::Msg(v) => {
                    text = v.to_string();
                    msg = serde_json::from_str(&text).unwrap();
                    Entry::Valid(&msg)
                }
                Ev::Dead(d) => Entry::Dead(d),
            };
            missing.clear();
            if p.may_miss() {
                p.misses(seq, entry, &mut missing);
            }
            for (view, key) in &missing {
                let bytes = store.get(&(*view, key.clone()));
                p.load(view, key, bytes.map(Vec::as_slice)).unwrap();
            }
            p.apply(seq, entry);
            p.drain_dirty(&mut |v, k, b| {
                store.insert((v, k.to_owned()), b);
            })
            .unwrap();
            p.evict(max_rows);
            // About `max_rows` per view (rows of one record share an age).
            assert!(
                p.cached() <= 12usize.saturating_mul(max_rows.saturating_add(4)),
                "cache bounded"
            );
        }
        store
    }

    #[test]
    fn evicting_and_reloading_rows_yields_the_same_views_as_a_complete_cache() {
        let evs = scenario();
        let complete = given(&evs);
        for max_rows in [0, 1, 2, 5, 50] {
            let store = run_with_store(&evs, max_rows);
            assert_eq!(&store, complete.bytes(), "max_rows {max_rows}");
        }
    }

    #[test]
    fn fresh_rows_leave_the_cache_once_stored_and_never_need_loading() {
        let evs: Vec<Ev> = (0..500u64)
            .map(|i| exception("w1", "s1", i as f64, i + 1, "E", "boom"))
            .collect();
        let mut p = Projector::new(true);
        let store = run_from(Projector::new(true), &evs, 100_000);
        assert_eq!(&store, given(&evs).bytes());
        for (i, ev) in evs.iter().enumerate() {
            apply(&mut p, i as u64 + 1, ev);
        }
        p.drain_dirty(&mut |_, _, _| {}).unwrap();
        let before = p.cached();
        p.evict(100_000);
        // The 500 history entries went; the worker's and the rest stayed,
        // and nothing was marked as needing a load.
        assert_eq!(before - p.cached(), 500);
        assert!(!p.may_miss());
    }

    #[test]
    fn a_fresh_projector_asks_for_rows_only_once_it_evicted_some() {
        let evs = scenario();
        let mut p = Projector::new(true);
        assert!(!p.may_miss(), "a fresh cache has nothing to load");
        assert!(Projector::new(false).may_miss(), "an existing store may");
        // Evicting rows of a fresh cache makes them loadable again, and the
        // views still come out as if nothing had been evicted.
        for max_rows in [0, 1, 2, 5] {
            assert_eq!(
                &run_from(Projector::new(true), &evs, max_rows),
                given(&evs).bytes(),
                "max_rows {max_rows}"
            );
        }
        apply(&mut p, 1, &worker_started("w1", "s1", 1.0, 1));
        p.drain_dirty(&mut |_, _, _| {}).unwrap();
        p.evict(0);
        assert!(p.may_miss(), "an evicted row must be asked for");
    }

    #[test]
    fn a_projector_over_an_empty_incomplete_store_matches_a_complete_one() {
        let evs = scenario();
        let store = run_with_store(&evs, usize::MAX);
        assert_eq!(&store, given(&evs).bytes());
    }

    #[test]
    fn loading_a_row_already_cached_keeps_the_cached_one() {
        let mut p = Projector::new(true);
        apply(&mut p, 1, &worker_started("w1", "s1", 1.0, 1));
        p.load("worker", "w1", None).unwrap();
        p.load("no_such_view", "x", Some(b"garbage")).unwrap();
        assert!(p.load("stage", "s9", Some(b"\xc1")).is_err());
        let mut rows = Store::new();
        p.drain_dirty(&mut |v, k, b| {
            rows.insert((v, k.to_owned()), b);
        })
        .unwrap();
        let w: crate::worker::WorkerRow =
            crate::decode_row(&rows[&("worker", "w1".to_owned())]).unwrap();
        assert_eq!(w.worker_id, "w1");
    }
}
