//! The allocation of the state memory's blocks to signal ids and to the units signals make.

use std::collections::HashMap;
use std::fmt;

use crate::state::{StateBlock, StateMemory};

/// Hands out blocks of the state memory to signal ids and to the units signals make.
///
/// Blocks are given in order of first request, never collide and are never taken back: an id
/// keeps its block for the life of the allocator, so a signal that is removed and added again
/// resumes its state. Units (oscillators, filters, delay lines of the library) get ranges of
/// the size they ask for, by a key that names where they stand in the code; the same key and
/// size give the same range again. Lives on the main thread.
#[derive(Debug, Clone)]
pub struct StateAllocator {
    total: usize,
    block_len: usize,
    guard: usize,
    blocks: HashMap<String, StateBlock>,
    units: HashMap<String, StateBlock>,
    next: usize,
    /// What was handed out since the last [`checkpoint`](Self::checkpoint): (a unit's key?,
    /// the key, the range it had before).
    journal: Vec<(bool, String, Option<StateBlock>)>,
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
            next: 0,
            journal: Vec::new(),
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

    /// The range of `len` slots of the unit named `key`, and whether it is new.
    ///
    /// The same key and length give the same range, with the state it holds. A key asked for
    /// with another length gets a new range (zero): the unit changed shape.
    ///
    /// # Errors
    ///
    /// [`StateFull`] when the memory has no room left.
    pub fn unit(&mut self, key: &str, len: usize) -> Result<(StateBlock, bool), StateFull> {
        if let Some(&block) = self.units.get(key) {
            if block.len == len {
                return Ok((block, false));
            }
        }
        let block = self.take(len)?;
        let before = self.units.insert(key.to_owned(), block);
        self.journal.push((true, key.to_owned(), before));
        Ok((block, true))
    }

    /// Slots handed out so far.
    pub fn used(&self) -> usize {
        self.next
    }

    /// Marks the start of a load: what is handed out from here on can be taken back.
    pub fn checkpoint(&mut self) -> Checkpoint {
        self.journal.clear();
        Checkpoint { next: self.next }
    }

    /// Takes back everything handed out since `checkpoint` (a load that failed) and zeroes
    /// those slots in `state`, so a failed load leaves the memory as it found it for new
    /// ids and units. Ids and units known before keep their ranges.
    pub fn rollback(&mut self, checkpoint: Checkpoint, state: &StateMemory) {
        while let Some((unit, key, before)) = self.journal.pop() {
            let map = if unit {
                &mut self.units
            } else {
                &mut self.blocks
            };
            match before {
                Some(range) => map.insert(key, range),
                None => map.remove(&key),
            };
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
}
