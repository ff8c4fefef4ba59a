//! Counters the DSP thread and the output write and any thread reads.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live figures of a running engine. Each field has one writer; every thread may read.
#[derive(Debug, Default)]
pub struct Counters {
    /// When the counters were made: the epoch of the `*_ns` fields.
    epoch: Epoch,
    /// Generation of the patch the engine swapped in last, and its first frame.
    swapped_generation: AtomicU64,
    swapped_frame: AtomicU64,
    /// Generation whose first frame the output has taken from the ring, and when.
    audible_generation: AtomicU64,
    audible_ns: AtomicU64,
    frames_rendered: AtomicU64,
    frames_played: AtomicU64,
    underruns: AtomicU64,
    blocks: AtomicU64,
    load_sum: AtomicU64,
    load_max: AtomicU64,
    load_last: AtomicU64,
    /// Turns of the DSP thread's loop, rendering or sleeping: it stands still only when
    /// the thread is dead or stuck.
    heartbeat: AtomicU64,
    nonfinite: AtomicU64,
}

/// A fixed moment to measure nanoseconds from.
#[derive(Debug)]
struct Epoch(std::time::Instant);

impl Default for Epoch {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl Counters {
    /// Notes that the patch of `generation` plays from rendered frame `frame` on.
    pub(crate) fn swapped(&self, generation: u64, frame: u64) {
        self.swapped_frame.store(frame, Ordering::Relaxed);
        self.swapped_generation.store(generation, Ordering::Release);
    }

    /// Called by the output with the number of ring frames it has taken in all: notes when
    /// the first frame of the newest swapped patch left the ring.
    pub(crate) fn taken(&self, to: u64) {
        let generation = self.swapped_generation.load(Ordering::Acquire);
        if generation == self.audible_generation.load(Ordering::Relaxed) {
            return;
        }
        let frame = self.swapped_frame.load(Ordering::Relaxed);
        // The frame has left once the output's range reaches past it.
        if to > frame {
            let ns = self.epoch.0.elapsed().as_nanos() as u64;
            self.audible_ns.store(ns, Ordering::Relaxed);
            self.audible_generation.store(generation, Ordering::Release);
        }
    }

    /// The generation whose first frame the output took last, and when (as an `Instant`).
    pub fn audible(&self) -> (u64, std::time::Instant) {
        let generation = self.audible_generation.load(Ordering::Acquire);
        let ns = self.audible_ns.load(Ordering::Relaxed);
        (
            generation,
            self.epoch.0 + std::time::Duration::from_nanos(ns),
        )
    }

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

    /// Counts output samples that were not finite numbers and went out as 0 instead.
    pub(crate) fn add_nonfinite(&self, samples: u64) {
        self.nonfinite.fetch_add(samples, Ordering::Relaxed);
    }

    /// Counts frames handed to the output, and an underrun when some were missing.
    pub(crate) fn add_played(&self, frames: usize, short: bool) {
        self.frames_played
            .fetch_add(frames as u64, Ordering::Relaxed);
        if short {
            self.underruns.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one turn of the DSP thread's loop.
    pub(crate) fn beat(&self) {
        self.heartbeat.fetch_add(1, Ordering::Relaxed);
    }

    /// Turns of the DSP thread's loop so far (0 without a DSP thread).
    pub fn heartbeat(&self) -> u64 {
        self.heartbeat.load(Ordering::Relaxed)
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
            nonfinite_samples: self.nonfinite.load(Ordering::Relaxed),
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
    /// Output samples that were NaN or infinite after the mix and went out as 0.
    pub nonfinite_samples: u64,
}
