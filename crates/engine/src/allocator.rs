//! The allocation of the state memory's blocks to signal ids and to the units signals make.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::state::{StateBlock, StateMemory};

/// Hands out blocks of the state memory to signal ids and to the units signals make.
///
/// An id keeps its block while it plays and for a while after, so a signal that is
/// removed and added again resumes its state; an id gone for good can be
/// [`release`](Self::release)d, and so is a unit's range when the unit changes size. Units
/// (oscillators, filters, delay lines of the library) get ranges of the size they ask for,
/// by a key that names where they stand in the code; the same key and size give the same
/// range again. Ranges given back wait, *cooling*, until no patch that may still play them
/// is alive (an epoch: the controller's patch generation), then are zeroed and handed out
/// again, first fit. Lives on the main thread.
#[derive(Debug, Clone)]
pub struct StateAllocator {
    total: usize,
    block_len: usize,
    guard: usize,
    blocks: HashMap<String, StateBlock>,
    units: HashMap<String, StateBlock>,
    /// The id each unit belongs to, by the unit's key.
    owners: HashMap<String, String>,
    next: usize,
    /// Free ranges, by offset (neighbours merged).
    free: BTreeMap<usize, usize>,
    /// Ranges given back, and the epoch they were given back in: free once every patch of
    /// that epoch or before has ended.
    cooling: Vec<(StateBlock, u64)>,
    /// The epoch of ranges given back now.
    epoch: u64,
    /// What was handed out since the last [`checkpoint`](Self::checkpoint): (a unit's key?,
    /// the key, the range it had before).
    journal: Vec<(bool, String, Option<StateBlock>)>,
    /// Ranges taken from `free` since the last checkpoint.
    reused: Vec<StateBlock>,
}

/// Where the allocator stood before a load: [`StateAllocator::rollback`] returns there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    next: usize,
}

impl StateAllocator {
    /// An allocator for a memory of `total` slots in blocks of `block_len` slots.
    pub fn new(total: usize, block_len: usize) -> Self {
        assert!(block_len > 0, "state blocks need at least one slot");
        Self {
            total,
            block_len,
            guard: 0,
            blocks: HashMap::new(),
            units: HashMap::new(),
            owners: HashMap::new(),
            next: 0,
            free: BTreeMap::new(),
            cooling: Vec::new(),
            epoch: 0,
            journal: Vec::new(),
            reused: Vec::new(),
        }
    }

    /// Leaves `guard` slots before and after each signal's block that nothing is given: a
    /// signal that writes past either end of its block lands there, where the engine sees it
    /// (see [`Self::guards_of`]).
    pub fn with_guard(mut self, guard: usize) -> Self {
        self.guard = guard;
        self
    }

    /// Slots per block.
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// The guard slots before and after `block` (none without a guard).
    pub fn guards_of(&self, block: StateBlock) -> Vec<StateBlock> {
        if self.guard == 0 {
            return Vec::new();
        }
        vec![
            StateBlock {
                offset: block.offset - self.guard,
                len: self.guard,
            },
            StateBlock {
                offset: block.offset + block.len,
                len: self.guard,
            },
        ]
    }

    fn take(&mut self, len: usize) -> Result<StateBlock, StateFull> {
        // First fit among the ranges given back.
        let fit = self
            .free
            .iter()
            .find(|&(_, &free)| free >= len)
            .map(|(&offset, &free)| (offset, free));
        if let Some((offset, free)) = fit {
            self.free.remove(&offset);
            if free > len {
                self.free.insert(offset + len, free - len);
            }
            let block = StateBlock { offset, len };
            self.reused.push(block);
            return Ok(block);
        }
        if len > self.total || self.next > self.total - len {
            return Err(StateFull {
                total: self.total,
                block_len: self.block_len,
            });
        }
        let block = StateBlock {
            offset: self.next,
            len,
        };
        self.next += len;
        Ok(block)
    }

    /// Adds `block` to the free ranges, merged with its neighbours.
    fn give(&mut self, block: StateBlock) {
        if block.len == 0 {
            return;
        }
        let (mut offset, mut len) = (block.offset, block.len);
        if let Some((&before, &before_len)) = self.free.range(..offset).next_back() {
            if before + before_len == offset {
                self.free.remove(&before);
                offset = before;
                len += before_len;
            }
        }
        if let Some(after_len) = self.free.remove(&(offset + len)) {
            len += after_len;
        }
        self.free.insert(offset, len);
    }

    /// The block of `id`, allocating one on its first request.
    ///
    /// # Errors
    ///
    /// [`StateFull`] when a new id finds no free block; ids that already have one still work.
    pub fn block_of(&mut self, id: &str) -> Result<StateBlock, StateFull> {
        if let Some(&block) = self.blocks.get(id) {
            return Ok(block);
        }
        let with_guards = self.take(self.guard + self.block_len + self.guard)?;
        let block = StateBlock {
            offset: with_guards.offset + self.guard,
            len: self.block_len,
        };
        self.blocks.insert(id.to_owned(), block);
        self.journal.push((false, id.to_owned(), None));
        Ok(block)
    }

    /// The block of `id` if it has one.
    pub fn get(&self, id: &str) -> Option<StateBlock> {
        self.blocks.get(id).copied()
    }

    /// The ids that have a block.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.blocks.keys().map(String::as_str)
    }

    /// The range of `len` slots of the unit named `key`, and whether it is new. The unit
    /// belongs to the id its key starts with (up to the first `\u{1}`); see
    /// [`unit_of`](Self::unit_of).
    ///
    /// # Errors
    ///
    /// [`StateFull`] when the memory has no room left.
    pub fn unit(&mut self, key: &str, len: usize) -> Result<(StateBlock, bool), StateFull> {
        let owner = key.split('\u{1}').next().unwrap_or(key).to_owned();
        self.unit_of(&owner, key, len)
    }

    /// The range of `len` slots of the unit named `key`, made by the signal `owner`, and
    /// whether it is new.
    ///
    /// The same key and length give the same range, with the state it holds. A key asked for
    /// with another length gets a new range (zero): the unit changed shape, and its old range
    /// is given back.
    ///
    /// # Errors
    ///
    /// [`StateFull`] when the memory has no room left.
    pub fn unit_of(
        &mut self,
        owner: &str,
        key: &str,
        len: usize,
    ) -> Result<(StateBlock, bool), StateFull> {
        if let Some(&block) = self.units.get(key) {
            if block.len == len {
                return Ok((block, false));
            }
        }
        let block = self.take(len)?;
        let before = self.units.insert(key.to_owned(), block);
        if let Some(old) = before {
            self.cooling.push((old, self.epoch));
        }
        self.owners.insert(key.to_owned(), owner.to_owned());
        self.journal.push((true, key.to_owned(), before));
        Ok((block, true))
    }

    /// The keys of the units `owner` made.
    pub fn unit_keys_of(&self, owner: &str) -> Vec<String> {
        self.owners
            .iter()
            .filter(|(_, o)| o.as_str() == owner)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Gives back the range of the unit `key` (it cools like a released id's, see
    /// [`release`](Self::release)); a unit asked for again later starts from zero.
    pub fn release_unit(&mut self, key: &str) {
        self.owners.remove(key);
        if let Some(range) = self.units.remove(key) {
            self.cooling.push((range, self.epoch));
        }
    }

    /// Slots up to the highest ever handed out (what a copy of the state must cover).
    pub fn used(&self) -> usize {
        self.next
    }

    /// Slots handed out and not given back.
    pub fn in_use(&self) -> usize {
        let cooling: usize = self.cooling.iter().map(|(b, _)| b.len).sum();
        self.next - self.free.values().sum::<usize>() - cooling
    }

    /// Sets the epoch of the ranges given back from now on: the controller's latest patch
    /// generation (every patch up to it may still play them).
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Gives back the block of `id` (with its guards) and the ranges of its units: a signal
    /// gone for good. Its state is lost; if it comes back, it starts from zero. They cool
    /// until [`recycle`](Self::recycle) finds no patch of this epoch alive.
    pub fn release(&mut self, id: &str) {
        if let Some(block) = self.blocks.remove(id) {
            let with_guards = StateBlock {
                offset: block.offset - self.guard,
                len: block.len + 2 * self.guard,
            };
            self.cooling.push((with_guards, self.epoch));
        }
        let keys: Vec<String> = self
            .owners
            .iter()
            .filter(|(_, owner)| owner.as_str() == id)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            self.owners.remove(&key);
            if let Some(range) = self.units.remove(&key) {
                self.cooling.push((range, self.epoch));
            }
        }
    }

    /// Frees the ranges given back in epochs before `alive` (the oldest patch generation
    /// that may still play), zeroing them in `state` first, so they can be handed out again.
    pub fn recycle(&mut self, alive: u64, state: &StateMemory) {
        let (done, cooling): (Vec<_>, Vec<_>) = self
            .cooling
            .drain(..)
            .partition(|&(_, epoch)| epoch < alive);
        self.cooling = cooling;
        for (block, _) in done {
            state.zero(block);
            self.give(block);
        }
    }

    /// Marks the start of a load: what is handed out from here on can be taken back.
    pub fn checkpoint(&mut self) -> Checkpoint {
        self.journal.clear();
        self.reused.clear();
        Checkpoint { next: self.next }
    }

    /// Takes back everything handed out since `checkpoint` (a load that failed) and zeroes
    /// those slots in `state`, so a failed load leaves the memory as it found it for new
    /// ids and units. Ids and units known before keep their ranges.
    pub fn rollback(&mut self, checkpoint: Checkpoint, state: &StateMemory) {
        while let Some((unit, key, before)) = self.journal.pop() {
            if unit {
                match before {
                    Some(range) => {
                        self.units.insert(key, range);
                        // The old range is in use again.
                        self.cooling.retain(|&(b, _)| b != range);
                    }
                    None => {
                        self.units.remove(&key);
                        self.owners.remove(&key);
                    }
                }
            } else {
                match before {
                    Some(range) => self.blocks.insert(key, range),
                    None => self.blocks.remove(&key),
                };
            }
        }
        for block in std::mem::take(&mut self.reused) {
            state.zero(block);
            self.give(block);
        }
        if self.next > checkpoint.next {
            state.zero(StateBlock {
                offset: checkpoint.next,
                len: self.next - checkpoint.next,
            });
            self.next = checkpoint.next;
        }
    }
}

/// No free block is left in the state memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFull {
    /// Slots in the memory.
    pub total: usize,
    /// Slots per block.
    pub block_len: usize,
}

impl fmt::Display for StateFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "state memory is full: all {} slots are taken ({} signal blocks of {} slots would fill it)",
            self.total,
            self.total / self.block_len,
            self.block_len
        )
    }
}

impl std::error::Error for StateFull {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_equal_character_sums_get_separate_blocks() {
        let mut a = StateAllocator::new(1024, 64);
        let ab = a.block_of("ab").unwrap();
        let ba = a.block_of("ba").unwrap();
        assert_ne!(ab.offset, ba.offset);
        assert!(ab.range().end <= ba.offset || ba.range().end <= ab.offset);
    }

    #[test]
    fn an_id_keeps_its_block() {
        let mut a = StateAllocator::new(1024, 64);
        let first = a.block_of("x").unwrap();
        a.block_of("y").unwrap();
        assert_eq!(a.block_of("x").unwrap(), first);
    }

    #[test]
    fn a_full_memory_refuses_new_ids_only() {
        let mut a = StateAllocator::new(128, 64);
        a.block_of("a").unwrap();
        a.block_of("b").unwrap();
        let err = a.block_of("c").unwrap_err();
        assert_eq!(
            err.to_string(),
            "state memory is full: all 128 slots are taken (2 signal blocks of 64 slots would fill it)"
        );
        assert!(a.block_of("a").is_ok());
    }

    #[test]
    fn units_keep_their_range_by_key_and_size() {
        let mut a = StateAllocator::new(1 << 20, 64).with_guard(16);
        let x = a.block_of("x").unwrap();
        let (saw, new) = a.unit("x|bass|saw", 2).unwrap();
        assert!(new);
        assert!(
            saw.offset >= x.offset + 64 + 16,
            "units never sit in a guard"
        );
        let (lfo, _) = a.unit("x|lfo|sine", 1).unwrap();
        assert_eq!(a.unit("x|bass|saw", 2).unwrap(), (saw, false));
        assert_eq!(a.unit("x|lfo|sine", 1).unwrap(), (lfo, false));
        let (bigger, new) = a.unit("x|bass|saw", 4).unwrap();
        assert!(new && bigger.offset != saw.offset);
        let big = a.unit("x|echo|delay", 192_000).unwrap().0;
        assert_eq!(big.len, 192_000);
        assert_eq!(
            a.guards_of(x),
            [
                StateBlock { offset: 0, len: 16 },
                StateBlock {
                    offset: 80,
                    len: 16
                }
            ]
        );
        assert_eq!(x.offset, 16, "a guard before the block");
    }

    #[test]
    fn a_rollback_takes_back_what_a_failed_load_was_given() {
        let m = StateMemory::new(4096);
        let mut a = StateAllocator::new(4096, 64).with_guard(16);
        let x = a.block_of("x").unwrap();
        let (u, _) = a.unit("x|u", 8).unwrap();
        let used = a.used();
        let cp = a.checkpoint();
        let y = a.block_of("y").unwrap();
        m.set(y.offset, 3.0);
        a.unit("x|u", 16).unwrap();
        a.unit("y|v", 4).unwrap();
        a.rollback(cp, &m);
        assert_eq!(a.used(), used);
        assert_eq!(m.get(y.offset), Some(0.0));
        assert_eq!(a.get("y"), None);
        assert_eq!(a.block_of("x").unwrap(), x);
        assert_eq!(
            a.unit("x|u", 8).unwrap(),
            (u, false),
            "the unit keeps its old range"
        );
        assert_eq!(a.block_of("y").unwrap(), y, "the same room is given again");
    }

    #[test]
    fn released_state_cools_until_its_patches_end_then_is_zeroed_and_reused() {
        let state = StateMemory::new(4096);
        let mut a = StateAllocator::new(4096, 64).with_guard(8);
        let x = a.block_of("x").unwrap();
        let (delay, _) = a.unit_of("x", "x\u{1}delay", 500).unwrap();
        let y = a.block_of("y").unwrap();
        state.set(x.offset, 1.0);
        state.set(delay.offset + 499, 2.0);
        let high = a.used();
        assert_eq!(a.in_use(), high);

        // Released in epoch 3: patches up to 3 may still play it.
        a.set_epoch(3);
        a.release("x");
        assert_eq!(a.get("x"), None);
        assert_eq!(a.in_use(), high - (64 + 16) - 500);
        a.recycle(3, &state);
        let z = a.block_of("z").unwrap();
        assert!(
            z.offset >= high,
            "reused while a patch of epoch 3 may play it: {z:?}"
        );
        assert_eq!(state.get(x.offset), Some(1.0), "untouched while cooling");

        // Once every patch up to epoch 3 has ended: zeroed, and handed out first fit.
        a.recycle(4, &state);
        assert_eq!(state.get(x.offset), Some(0.0));
        assert_eq!(state.get(delay.offset + 499), Some(0.0));
        let w = a.block_of("w").unwrap();
        assert_eq!(w.offset, x.offset, "the first free range");
        let (big, _) = a.unit_of("w", "w\u{1}delay", 400).unwrap();
        assert!(
            big.offset < y.offset,
            "{big:?} fits in the freed room before y"
        );
    }

    #[test]
    fn a_unit_that_changes_size_gives_its_old_range_back() {
        let state = StateMemory::new(4096);
        let mut a = StateAllocator::new(4096, 64);
        a.set_epoch(1);
        let (old, _) = a.unit_of("s", "s\u{1}delay", 1000).unwrap();
        let (new, fresh) = a.unit_of("s", "s\u{1}delay", 1200).unwrap();
        assert!(fresh && new.offset >= old.offset + 1000);
        a.recycle(2, &state);
        // The old 1000 slots are free again: a smaller unit fits there.
        let (other, _) = a.unit_of("t", "t\u{1}osc", 10).unwrap();
        assert_eq!(other.offset, old.offset);
        assert_eq!(a.in_use(), 1200 + 10);
    }

    #[test]
    fn a_rollback_gives_reused_ranges_back_and_keeps_a_resized_unit() {
        let state = StateMemory::new(4096);
        let mut a = StateAllocator::new(4096, 64);
        let _x = a.block_of("x").unwrap();
        let (keep, _) = a.unit_of("k", "k\u{1}osc", 100).unwrap();
        a.release("x");
        a.recycle(1, &state);
        let free_before = a.in_use();
        let mark = a.checkpoint();
        let y = a.block_of("y").unwrap();
        assert_eq!(y.offset, 0, "reuses x's block");
        state.set(y.offset, 5.0);
        let (_bigger, _) = a.unit_of("k", "k\u{1}osc", 200).unwrap();
        a.rollback(mark, &state);
        assert_eq!(a.get("y"), None);
        assert_eq!(state.get(y.offset), Some(0.0));
        assert_eq!(a.in_use(), free_before);
        // The unit keeps its old range, not cooling: a recycle does not free it.
        a.recycle(u64::MAX, &state);
        assert_eq!(a.unit_of("k", "k\u{1}osc", 100).unwrap(), (keep, false));
        let again = a.block_of("y").unwrap();
        assert_eq!(again.offset, 0);
    }
}
