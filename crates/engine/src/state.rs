//! The persistent state memory and the allocation of its blocks to signal ids.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default number of f64 slots in the state memory: 32 Mi slots, 256 MiB of address space.
///
/// The memory is allocated zeroed, so the operating system commits its pages only when they
/// are first written: a patch that uses a few thousand slots costs a few pages of RAM.
pub const DEFAULT_SLOTS: usize = 1 << 25;
/// Default number of slots before and after each signal's block that must stay zero (see
/// [`StateAllocator::with_guard`](crate::StateAllocator::with_guard)).
pub const DEFAULT_GUARD_SLOTS: usize = 128;
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
    ///
    /// The slots come from a zeroed allocation, which the operating system backs with memory
    /// only as pages are first written: a large memory costs address space, not RAM.
    pub fn new(len: usize) -> Self {
        let slots = if len == 0 {
            Box::default()
        } else {
            let layout = std::alloc::Layout::array::<AtomicU64>(len).expect("state memory size");
            // SAFETY: the layout has a non-zero size. A zeroed `AtomicU64` is a valid 0; the
            // pointer comes from the global allocator with this exact layout, so `Box` may
            // own and free it.
            unsafe {
                let ptr = std::alloc::alloc_zeroed(layout).cast::<AtomicU64>();
                if ptr.is_null() {
                    std::alloc::handle_alloc_error(layout);
                }
                Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len))
            }
        };
        Self { slots }
    }

    /// Writes a zero into every page of `block`, so that the pages are backed by memory
    /// before the DSP thread touches them (a first write would otherwise fault a page in on
    /// the DSP thread). Slots are zero already when `touch` is called on fresh blocks.
    pub fn touch(&self, block: StateBlock) {
        const PAGE_SLOTS: usize = 4096 / std::mem::size_of::<u64>();
        let range = block.range();
        let end = range.end.min(self.slots.len());
        for i in (range.start..end).step_by(PAGE_SLOTS) {
            self.slots[i].store(0, Ordering::Relaxed);
        }
        if end > range.start {
            self.slots[end - 1].store(0, Ordering::Relaxed);
        }
    }

    /// Index of the first slot of `block` that is not zero.
    pub fn first_nonzero(&self, block: StateBlock) -> Option<usize> {
        let end = block.range().end.min(self.slots.len());
        (block.offset.min(end)..end).find(|&i| self.slots[i].load(Ordering::Relaxed) != 0)
    }

    /// Sets every slot of `block` to `0.0`.
    pub fn zero(&self, block: StateBlock) {
        let end = block.range().end.min(self.slots.len());
        for s in &self.slots[block.offset.min(end)..end] {
            s.store(0, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_memory_costs_no_ram_until_written() {
        let m = StateMemory::new(DEFAULT_SLOTS);
        let block = StateBlock {
            offset: 1 << 24,
            len: 100_000,
        };
        m.touch(block);
        assert_eq!(m.first_nonzero(block), None);
        m.set((1 << 24) + 99_999, 2.0);
        assert_eq!(m.first_nonzero(block), Some((1 << 24) + 99_999));
        m.zero(block);
        assert_eq!(m.get((1 << 24) + 99_999), Some(0.0));
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
