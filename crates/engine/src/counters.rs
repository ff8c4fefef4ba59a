//! Counters the DSP thread and the output write and any thread reads.

use std::sync::atomic::{fence, AtomicU64, Ordering};

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
    /// The latest underruns, with where they fell.
    underrun_log: UnderrunLog,
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
        self.underrun_log
            .note(self.frames_played.load(Ordering::Relaxed), to);
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

    /// The engine frame the output is playing now: frames it took from the ring (what it
    /// played, less the silence of underruns). MIDI in stamps events from it.
    pub fn output_frame(&self) -> u64 {
        let played = self.frames_played.load(Ordering::Relaxed);
        played.saturating_sub(self.underrun_frames())
    }

    /// Frames the output played as silence because the ring was short, over all underruns.
    pub fn underrun_frames(&self) -> u64 {
        self.underrun_log.missing.load(Ordering::Relaxed)
    }

    /// The underruns noted after the first `*seen` ones, oldest first, and how many of
    /// those were no longer kept (more than [`UNDERRUN_LOG`] came since the last call);
    /// moves `*seen` past them.
    ///
    /// Call it from one thread at a time (the play loop), regularly. Allocates the list:
    /// not for the DSP thread or the output's.
    pub fn underruns_since(&self, seen: &mut u64) -> (Vec<Underrun>, u64) {
        let log = &self.underrun_log;
        let end = log.written.load(Ordering::Acquire);
        let start = (*seen).max(end.saturating_sub(UNDERRUN_LOG as u64));
        let mut list: Vec<(u64, Underrun)> = (start..end)
            .map(|n| {
                let slot = (n % SLOTS as u64) as usize;
                let underrun = Underrun {
                    frame: log.frame[slot].load(Ordering::Relaxed),
                    missing: log.frames[slot].load(Ordering::Relaxed),
                };
                (n, underrun)
            })
            .collect();
        // An entry the output wrote over while it was read may be torn: drop it.
        fence(Ordering::Acquire);
        let now = log.written.load(Ordering::Relaxed);
        list.retain(|(n, _)| n + SLOTS as u64 > now);
        let lost = (end - *seen) - list.len() as u64;
        *seen = end;
        (list.into_iter().map(|(_, u)| u).collect(), lost)
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

/// How many of the latest underruns [`Counters`] keeps for
/// [`underruns_since`](Counters::underruns_since).
pub const UNDERRUN_LOG: usize = 256;

/// Slots of the log: one more than it keeps, for the one being written.
const SLOTS: usize = UNDERRUN_LOG + 1;

/// One underrun as the output met it: the ring was short, the output played silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Underrun {
    /// The output frame (counted from the output's start) where the silence began.
    pub frame: u64,
    /// Frames of silence the output played there.
    pub missing: u64,
}

/// A ring of the latest underruns, written by the output's thread alone, without a lock or
/// an allocation, and read by any one thread.
#[derive(Debug)]
struct UnderrunLog {
    /// Underruns noted so far; underrun `n` is in slot `n % SLOTS`.
    written: AtomicU64,
    frame: [AtomicU64; SLOTS],
    frames: [AtomicU64; SLOTS],
    /// Frames missing in all so far.
    missing: AtomicU64,
}

impl Default for UnderrunLog {
    fn default() -> Self {
        Self {
            written: AtomicU64::new(0),
            frame: std::array::from_fn(|_| AtomicU64::new(0)),
            frames: std::array::from_fn(|_| AtomicU64::new(0)),
            missing: AtomicU64::new(0),
        }
    }
}

impl UnderrunLog {
    /// Notes an underrun when the output has played more frames (`played`, silence
    /// included) than it took from the ring (`taken`) beyond those already noted. The
    /// silence is at the end of the output's buffer, so it ends at `played`.
    ///
    /// Called by the output's thread only, after it counted its frames played.
    fn note(&self, played: u64, taken: u64) {
        let missing = played.saturating_sub(taken);
        let before = self.missing.load(Ordering::Relaxed);
        if missing <= before {
            return;
        }
        self.missing.store(missing, Ordering::Relaxed);
        let n = self.written.load(Ordering::Relaxed);
        let slot = (n % SLOTS as u64) as usize;
        let frames = missing - before;
        // A reader that sees one of these stores also sees `written` at `n` at least, and
        // so knows the entry of the slot's last round as overwritten.
        fence(Ordering::Release);
        self.frame[slot].store(played - frames, Ordering::Relaxed);
        self.frames[slot].store(frames, Ordering::Relaxed);
        self.written.store(n + 1, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_underrun_is_noted_where_the_silence_began_with_its_length() {
        let c = Counters::default();
        let mut seen = 0;
        // 256 played, 256 taken: no underrun.
        c.add_played(256, false);
        c.taken(256);
        // The next 256 were 144 from the ring and 112 of silence.
        c.add_played(256, true);
        c.taken(400);
        c.add_played(256, false);
        c.taken(656);
        c.add_played(256, true);
        c.taken(800);
        let (list, lost) = c.underruns_since(&mut seen);
        assert_eq!(lost, 0);
        assert_eq!(
            list,
            [
                Underrun {
                    frame: 400,
                    missing: 112
                },
                Underrun {
                    frame: 912,
                    missing: 112
                }
            ]
        );
        assert_eq!(c.underrun_frames(), 224);
        assert_eq!(c.underruns_since(&mut seen), (Vec::new(), 0));
        // 1024 frames played, 224 of them silence: the output is at engine frame 800.
        assert_eq!(c.output_frame(), 800);
    }

    #[test]
    fn underruns_beyond_the_log_are_counted_as_lost() {
        let c = Counters::default();
        let mut seen = 0;
        for n in 1..=300u64 {
            c.add_played(10, true);
            c.taken(n * 9);
        }
        let (list, lost) = c.underruns_since(&mut seen);
        assert_eq!(list.len(), UNDERRUN_LOG);
        assert_eq!(lost, 300 - UNDERRUN_LOG as u64);
        // The oldest kept is underrun 45 (counting from 1): frames 449 to 450.
        assert_eq!(
            list[0],
            Underrun {
                frame: 449,
                missing: 1
            }
        );
        assert_eq!(seen, 300);
    }
}
