//! The persistent state memory and the allocation of its blocks to signal ids.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default number of f64 slots in the state memory.
pub const DEFAULT_SLOTS: usize = 65_536;
/// Default number of slots in each signal's block.
pub const DEFAULT_BLOCK_SLOTS: usize = 64;

/// A fixed array of f64 slots that outlives every reload.
///
/// Both threads share it: the main thread while a load runs factories, the DSP thread while
/// signals render. Rust code reads and writes it through relaxed atomics, so Rust-side access
/// is free of data races. Signal code (QuickJS typed arrays, native kernels) reaches the same
/// memory through [`StateMemory::as_ptr`] with plain aligned 8-byte loads and stores, which are
/// single, untearable instructions on every 64-bit target Flux supports; a value is never seen
/// half-written. Ordering between threads is not promised: a factory that writes a slot while
/// the old code of the same signal is playing races with it, as it did in Flux on Bun.
pub struct StateMemory {
    slots: Box<[AtomicU64]>,
}

impl StateMemory {
    /// Makes a memory of `len` slots, all `0.0`.
    pub fn new(len: usize) -> Self {
        Self {
            slots: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when the memory has no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Reads slot `i`, or `None` when `i` is out of range.
    pub fn get(&self, i: usize) -> Option<f64> {
        self.slots
            .get(i)
            .map(|s| f64::from_bits(s.load(Ordering::Relaxed)))
    }

    /// Writes slot `i`; an out-of-range write does nothing (Float64Array semantics).
    pub fn set(&self, i: usize, value: f64) {
        if let Some(s) = self.slots.get(i) {
            s.store(value.to_bits(), Ordering::Relaxed);
        }
    }

    /// Copies the slots of `block` into `out` (which must be `block.len` long).
    pub fn save(&self, block: StateBlock, out: &mut [f64]) {
        for (o, s) in out.iter_mut().zip(&self.slots[block.range()]) {
            *o = f64::from_bits(s.load(Ordering::Relaxed));
        }
    }

    /// Writes `values` back into the slots of `block`.
    pub fn restore(&self, block: StateBlock, values: &[f64]) {
        for (v, s) in values.iter().zip(&self.slots[block.range()]) {
            s.store(v.to_bits(), Ordering::Relaxed);
        }
    }

    /// Base pointer of the slots, for signal code that addresses the memory directly.
    ///
    /// The pointer is valid for [`len`](Self::len) `f64`s for as long as this memory lives.
    /// Writers through it must use aligned 8-byte stores (see the type's docs).
    pub fn as_ptr(&self) -> *mut f64 {
        // `AtomicU64` has the size and alignment of `u64` and so of `f64`.
        self.slots.as_ptr() as *mut f64
    }
}

impl fmt::Debug for StateMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMemory")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A signal's block of slots: `offset` is the `idx` its factory receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateBlock {
    /// First slot of the block.
    pub offset: usize,
    /// Number of slots in the block.
    pub len: usize,
}

impl StateBlock {
    /// The slots of the block as a range.
    pub fn range(self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// Hands out blocks of the state memory to signal ids.
///
/// Blocks are given in order of first request, never collide and are never taken back: an id
/// keeps its block for the life of the allocator, so a signal that is removed and added again
/// resumes its state. Lives on the main thread.
#[derive(Debug)]
pub struct StateAllocator {
    total: usize,
    block_len: usize,
    blocks: HashMap<String, StateBlock>,
    next: usize,
}

impl StateAllocator {
    /// An allocator for a memory of `total` slots in blocks of `block_len` slots.
    pub fn new(total: usize, block_len: usize) -> Self {
        assert!(block_len > 0, "state blocks need at least one slot");
        Self {
            total,
            block_len,
            blocks: HashMap::new(),
            next: 0,
        }
    }

    /// Slots per block.
    pub fn block_len(&self) -> usize {
        self.block_len
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
        if self.next + self.block_len > self.total {
            return Err(StateFull {
                total: self.total,
                block_len: self.block_len,
            });
        }
        let block = StateBlock {
            offset: self.next,
            len: self.block_len,
        };
        self.next += self.block_len;
        self.blocks.insert(id.to_owned(), block);
        Ok(block)
    }

    /// The block of `id` if it has one.
    pub fn get(&self, id: &str) -> Option<StateBlock> {
        self.blocks.get(id).copied()
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
            "state memory is full: {} slots hold {} signal blocks of {} slots",
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
            "state memory is full: 128 slots hold 2 signal blocks of 64 slots"
        );
        assert!(a.block_of("a").is_ok());
    }

    #[test]
    fn memory_reads_and_writes_with_typed_array_semantics() {
        let m = StateMemory::new(4);
        m.set(2, 0.25);
        assert_eq!(m.get(2), Some(0.25));
        m.set(9, 1.0);
        assert_eq!(m.get(9), None);
        // SAFETY: the pointer is valid for 4 slots and nothing else touches `m` here.
        let through_ptr = unsafe { *m.as_ptr().add(2) };
        assert_eq!(through_ptr, 0.25);
    }
}
