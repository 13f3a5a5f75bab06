//! The in-memory side of a projection while it runs: a bounded cache of its
//! rows, which rows changed since the last commit, and the type erasure that
//! lets the engine drive every view as bytes in, bytes out. Still pure: the
//! engine asks which rows are missing, loads them, then applies.

use std::collections::HashMap;

use crate::projection::{decode_row, encode_row, Input, Keys, Projection};

struct Slot<R> {
    row: R,
    dirty: bool,
    used: u64,
}

/// A projection plus the cache of its rows.
pub struct ViewCache<P: Projection> {
    proj: P,
    index: HashMap<Box<str>, usize>,
    slots: Vec<Slot<P::Row>>,
    keys: Keys,
    taken: Vec<P::Row>,
    positions: Vec<usize>,
    /// True while every stored row is in the cache, so a miss means "new row".
    complete: bool,
    generation: u64,
}

impl<P: Projection> ViewCache<P> {
    /// A cache over an empty store (`complete`) or an existing one.
    pub fn new(proj: P, complete: bool) -> Self {
        ViewCache {
            proj,
            index: HashMap::new(),
            slots: Vec::new(),
            keys: Keys::default(),
            taken: Vec::new(),
            positions: Vec::new(),
            complete,
            generation: 1,
        }
    }

    /// Runs `f` over the rows of the input's keys, marking them changed.
    pub fn with_rows<T>(
        &mut self,
        input: &Input,
        f: impl FnOnce(&P, &Input, &mut [P::Row]) -> T,
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
                    self.index.insert(key.into(), p);
                    self.slots.push(Slot {
                        row: P::Row::default(),
                        dirty: false,
                        used: 0,
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
            slot.dirty = true;
            slot.used = self.generation;
            self.taken.push(std::mem::take(&mut slot.row));
        }
        let out = f(&self.proj, input, &mut self.taken);
        for (row, &pos) in self.taken.drain(..).zip(self.positions.iter()) {
            self.slots[pos].row = row;
        }
        Some(out)
    }

    /// The typed projection.
    pub fn projection(&self) -> &P {
        &self.proj
    }
}

/// A view driven by the engine without knowing its row type.
pub trait DynView: Send {
    /// The projection's stable name.
    fn name(&self) -> &'static str;
    /// Adds to `out` the keys of this input's rows that must be loaded first.
    fn misses(&mut self, input: &Input, out: &mut Vec<String>);
    /// Puts a loaded row (or `None`: not stored) into the cache.
    fn load(&mut self, key: &str, bytes: Option<&[u8]>) -> Result<(), rmp_serde::decode::Error>;
    /// Applies one input.
    fn apply(&mut self, input: &Input);
    /// Hands every row changed since the last call to `out`, encoded.
    fn drain_dirty(&mut self, out: &mut dyn FnMut(&str, Vec<u8>));
    /// Shrinks the cache to about `max_rows` rows (dirty rows are kept).
    fn evict(&mut self, max_rows: usize);
    /// Number of cached rows.
    fn cached(&self) -> usize;
}

impl<P: Projection> DynView for ViewCache<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn misses(&mut self, input: &Input, out: &mut Vec<String>) {
        if self.complete || P::APPEND_ONLY {
            return;
        }
        self.keys.clear();
        self.proj.keys(input, &mut self.keys);
        for key in self.keys.iter() {
            if !self.index.contains_key(key) {
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
            row,
            dirty: false,
            used: self.generation,
        });
        Ok(())
    }

    fn apply(&mut self, input: &Input) {
        self.with_rows(input, |p, i, rows| p.apply(i, rows));
    }

    fn drain_dirty(&mut self, out: &mut dyn FnMut(&str, Vec<u8>)) {
        // Sorted keys keep the write order (and so the batch) deterministic.
        let mut dirty: Vec<(&str, usize)> = self
            .index
            .iter()
            .filter(|(_, &p)| self.slots[p].dirty)
            .map(|(k, &p)| (k.as_ref(), p))
            .collect();
        dirty.sort_unstable();
        for (key, pos) in dirty {
            out(key, encode_row(&self.slots[pos].row));
        }
        for slot in &mut self.slots {
            slot.dirty = false;
        }
        self.generation += 1;
    }

    fn evict(&mut self, max_rows: usize) {
        if self.slots.len() <= max_rows {
            return;
        }
        // Keep the rows used most recently, dropping the rest.
        let keep_from = {
            let mut used: Vec<u64> = self.slots.iter().map(|s| s.used).collect();
            used.sort_unstable();
            used[used.len() - max_rows / 2]
        };
        let old_index = std::mem::take(&mut self.index);
        let old_slots = std::mem::take(&mut self.slots);
        let mut by_pos: Vec<Option<Box<str>>> = vec![None; old_slots.len()];
        for (k, p) in old_index {
            by_pos[p] = Some(k);
        }
        for (slot, key) in old_slots.into_iter().zip(by_pos) {
            if let Some(key) = key {
                if slot.dirty || slot.used >= keep_from {
                    self.index.insert(key, self.slots.len());
                    self.slots.push(slot);
                }
            }
        }
        self.complete = false;
    }

    fn cached(&self) -> usize {
        self.slots.len()
    }
}
