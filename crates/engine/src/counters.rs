//! Counters the DSP thread and the output write and any thread reads.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live figures of a running engine. Each field has one writer; every thread may read.
#[derive(Debug, Default)]
pub struct Counters {
    frames_rendered: AtomicU64,
    frames_played: AtomicU64,
    underruns: AtomicU64,
    blocks: AtomicU64,
    load_sum: AtomicU64,
    load_max: AtomicU64,
    load_last: AtomicU64,
}

impl Counters {
    /// Counts a rendered block and its DSP load (render time / block duration).
    ///
    /// Called by the engine only (one writer), so plain load-then-store is enough.
    pub(crate) fn add_block(&self, frames: usize, load: f64) {
        self.frames_rendered
            .fetch_add(frames as u64, Ordering::Relaxed);
        self.blocks.fetch_add(1, Ordering::Relaxed);
        let sum = f64::from_bits(self.load_sum.load(Ordering::Relaxed)) + load;
        self.load_sum.store(sum.to_bits(), Ordering::Relaxed);
        if load > f64::from_bits(self.load_max.load(Ordering::Relaxed)) {
            self.load_max.store(load.to_bits(), Ordering::Relaxed);
        }
        self.load_last.store(load.to_bits(), Ordering::Relaxed);
    }

    /// Counts frames handed to the output, and an underrun when some were missing.
    pub(crate) fn add_played(&self, frames: usize, short: bool) {
        self.frames_played
            .fetch_add(frames as u64, Ordering::Relaxed);
        if short {
            self.underruns.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A consistent-enough copy of every figure.
    pub fn snapshot(&self) -> Stats {
        let blocks = self.blocks.load(Ordering::Relaxed);
        let sum = f64::from_bits(self.load_sum.load(Ordering::Relaxed));
        Stats {
            frames_rendered: self.frames_rendered.load(Ordering::Relaxed),
            frames_played: self.frames_played.load(Ordering::Relaxed),
            underruns: self.underruns.load(Ordering::Relaxed),
            blocks,
            dsp_load_max: f64::from_bits(self.load_max.load(Ordering::Relaxed)),
            dsp_load_mean: if blocks == 0 {
                0.0
            } else {
                sum / blocks as f64
            },
            dsp_load_last: f64::from_bits(self.load_last.load(Ordering::Relaxed)),
        }
    }
}

/// A copy of the [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Frames the engine rendered.
    pub frames_rendered: u64,
    /// Frames the output took from the ring.
    pub frames_played: u64,
    /// Times the output found the ring short of frames.
    pub underruns: u64,
    /// Blocks rendered.
    pub blocks: u64,
    /// Largest DSP load of one block (render time / block duration; 1.0 is the limit).
    pub dsp_load_max: f64,
    /// Mean DSP load over all blocks.
    pub dsp_load_mean: f64,
    /// DSP load of the latest block.
    pub dsp_load_last: f64,
}
