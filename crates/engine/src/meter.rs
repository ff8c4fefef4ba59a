//! Meters: peak, RMS and clip counts per signal and for the master, measured on the DSP
//! thread and read on the main thread through atomics.
//!
//! Per block the engine measures each signal's samples (after its gain, before the mix)
//! and the master twice: the mix going into the master stage (its clips: samples at or
//! over full scale, which the stage has to bend) and what leaves the stage (its peak and
//! RMS, what plays). A meter is a few atomics that only the DSP thread writes (the window
//! peak is also taken, reset to 0, by the reader): the largest sample since the reader last
//! took it, and running totals of squares, samples and clips. Signals are found by the
//! offset of their state block, stable for an id for the life of the process, in a fixed
//! table of [`METER_SLOTS`] meters; a signal that finds the table full is not metered
//! ([`MeterReader::unmetered`] counts its blocks). Nothing here allocates on the DSP thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Signals metered at most, over the life of an engine.
pub const METER_SLOTS: usize = 512;

/// One meter: written by the DSP thread only (but for `peak`, taken by the reader).
#[derive(Debug, Default)]
struct Cell {
    /// The state block's offset plus one; 0 while the cell is free.
    tag: AtomicU64,
    /// Largest absolute sample since the reader took it (f64 bits; non-negative f64s
    /// order as their bits do, so `fetch_max` works on them).
    peak: AtomicU64,
    /// Running sum of squares (f64 bits), samples and samples at or over full scale.
    squares: AtomicU64,
    samples: AtomicU64,
    clips: AtomicU64,
    /// Running total of the time the signal took to render, in nanoseconds.
    nanos: AtomicU64,
}

impl Cell {
    /// Adds a block of samples. One writer, so a load and a store are enough for the sums.
    fn add(&self, peak: f64, squares: f64, samples: usize, clips: u64, nanos: u64) {
        self.peak.fetch_max(peak.to_bits(), Ordering::Relaxed);
        if nanos > 0 {
            self.nanos.fetch_add(nanos, Ordering::Relaxed);
        }
        let sum = f64::from_bits(self.squares.load(Ordering::Relaxed)) + squares;
        self.squares.store(sum.to_bits(), Ordering::Relaxed);
        if clips > 0 {
            self.clips.fetch_add(clips, Ordering::Relaxed);
        }
        // Last, with release: a reader that sees the samples sees the squares with them.
        self.samples.fetch_add(samples as u64, Ordering::Release);
    }

    fn take(&self) -> Level {
        let samples = self.samples.load(Ordering::Acquire);
        Level {
            peak: f64::from_bits(self.peak.swap(0, Ordering::Relaxed)),
            squares: f64::from_bits(self.squares.load(Ordering::Relaxed)),
            samples,
            clips: self.clips.load(Ordering::Relaxed),
            nanos: self.nanos.load(Ordering::Relaxed),
        }
    }
}

/// What both ends share.
#[derive(Debug)]
struct Shared {
    /// The mix into the master stage: only its clips are used.
    into_master: Cell,
    /// What leaves the master stage.
    master: Cell,
    signals: Box<[Cell]>,
    unmetered: AtomicU64,
}

/// The DSP thread's end: measures blocks.
pub(crate) struct Meters {
    shared: Arc<Shared>,
}

/// A meter's reading: the peak since the last one, and running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Level {
    /// Largest absolute sample since the previous reading (linear, 1.0 is full scale).
    pub peak: f64,
    /// Sum of the squares of every sample so far.
    pub squares: f64,
    /// Samples so far (frames times channels).
    pub samples: u64,
    /// Samples so far at or over full scale (|x| >= 1).
    pub clips: u64,
    /// Time spent rendering so far, in nanoseconds (signals only; wall clock).
    pub nanos: u64,
}

impl Level {
    /// The RMS of the samples between `earlier` and this reading (linear); 0 when none.
    pub fn rms_since(&self, earlier: &Level) -> f64 {
        let n = self.samples.saturating_sub(earlier.samples);
        if n == 0 {
            return 0.0;
        }
        ((self.squares - earlier.squares).max(0.0) / n as f64).sqrt()
    }

    /// The share of the audio's duration spent rendering it between `earlier` and this
    /// reading (0.25: a quarter of each block's time), for `channels` channels at
    /// `sample_rate`; 0 when no audio passed.
    pub fn dsp_share_since(&self, earlier: &Level, channels: usize, sample_rate: u32) -> f64 {
        let samples = self.samples.saturating_sub(earlier.samples);
        if samples == 0 || channels == 0 || sample_rate == 0 {
            return 0.0;
        }
        let seconds = samples as f64 / channels as f64 / f64::from(sample_rate);
        self.nanos.saturating_sub(earlier.nanos) as f64 * 1e-9 / seconds
    }

    /// The RMS of every sample so far (linear).
    pub fn rms(&self) -> f64 {
        self.rms_since(&Level::default())
    }
}

/// A linear amplitude in dBFS (`-inf` for 0).
pub fn dbfs(amplitude: f64) -> f64 {
    20.0 * amplitude.log10()
}

/// Makes the two ends of an engine's meters.
pub(crate) fn meters() -> (Meters, MeterReader) {
    let shared = Arc::new(Shared {
        into_master: Cell::default(),
        master: Cell::default(),
        signals: (0..METER_SLOTS).map(|_| Cell::default()).collect(),
        unmetered: AtomicU64::new(0),
    });
    (
        Meters {
            shared: shared.clone(),
        },
        MeterReader { shared },
    )
}

/// Peak, sum of squares and clips of `buf`; samples that are not finite are skipped.
fn measure(buf: &[f64]) -> (f64, f64, u64) {
    measure_lanes(buf, |x| x)
}

/// Lanes of the running sums: independent, so the loop is vectorized (a single running
/// sum of floats must be added in order, one sample at a time).
const LANES: usize = 4;

/// [`measure`] over samples of any kind read as f64.
fn measure_lanes<T: Copy>(buf: &[T], f64_of: impl Fn(T) -> f64) -> (f64, f64, u64) {
    let mut peak = [0.0f64; LANES];
    let mut squares = [0.0f64; LANES];
    let mut clips = [0u64; LANES];
    let mut add = |lane: usize, x: T| {
        let a = f64_of(x).abs();
        // NaN and infinities are skipped (as 0): neither compares at most f64::MAX.
        let a = if a <= f64::MAX { a } else { 0.0 };
        peak[lane] = if a > peak[lane] { a } else { peak[lane] };
        squares[lane] += a * a;
        clips[lane] += u64::from(a >= 1.0);
    };
    let mut chunks = buf.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in chunk.iter().enumerate() {
            add(lane, x);
        }
    }
    for &x in chunks.remainder() {
        add(0, x);
    }
    let peak = peak.into_iter().fold(0.0, f64::max);
    (peak, squares.iter().sum(), clips.iter().sum())
}

impl Meters {
    /// Measures a block of the signal on the state block at `block`, which took `cost` to
    /// render. Real-time safe.
    pub(crate) fn signal(&self, block: usize, buf: &[f64], cost: std::time::Duration) {
        let tag = block as u64 + 1;
        let cells = &self.shared.signals;
        // Open addressing on the offset; the DSP thread is the only one to claim a cell.
        let start = (tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % METER_SLOTS;
        for i in 0..METER_SLOTS {
            let cell = &cells[(start + i) % METER_SLOTS];
            let t = cell.tag.load(Ordering::Relaxed);
            if t == 0 {
                cell.tag.store(tag, Ordering::Release);
            } else if t != tag {
                continue;
            }
            let (peak, squares, clips) = measure(buf);
            let nanos = u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX);
            cell.add(peak, squares, buf.len(), clips, nanos);
            return;
        }
        self.shared.unmetered.fetch_add(1, Ordering::Relaxed);
    }

    /// Measures the mix going into the master stage (its clips). Real-time safe.
    pub(crate) fn master_input(&self, buf: &[f64]) {
        let (peak, squares, clips) = measure(buf);
        self.shared
            .into_master
            .add(peak, squares, buf.len(), clips, 0);
    }

    /// Measures what leaves the master stage. Real-time safe.
    pub(crate) fn master(&self, out: &[f32]) {
        let (peak, squares, clips) = measure_lanes(out, f64::from);
        self.shared.master.add(peak, squares, out.len(), clips, 0);
    }
}

/// The main thread's end: reads the meters. Cheap to clone; every clone takes from the
/// same meters, so one reader should take the peaks (the others see what is left).
#[derive(Debug, Clone)]
pub struct MeterReader {
    shared: Arc<Shared>,
}

impl MeterReader {
    /// The master's reading: peak and RMS of what leaves the master stage; `clips` counts
    /// the samples at or over full scale going into it (after the master gain, before the
    /// stage bends them). Takes the peak.
    pub fn take_master(&self) -> Level {
        let mut level = self.shared.master.take();
        level.clips = self.shared.into_master.take().clips;
        level
    }

    /// Each metered signal's reading, by the offset of its state block. Takes the peaks.
    pub fn take_signals(&self) -> Vec<(usize, Level)> {
        self.shared
            .signals
            .iter()
            .filter_map(|cell| {
                let tag = cell.tag.load(Ordering::Acquire);
                (tag != 0).then(|| ((tag - 1) as usize, cell.take()))
            })
            .collect()
    }

    /// Blocks of signals left unmetered because every meter was taken.
    pub fn unmetered(&self) -> u64 {
        self.shared.unmetered.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_reads_its_level() {
        let (m, r) = meters();
        let sine: Vec<f64> = (0..48_000)
            .map(|i| 0.5 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48_000.0).sin())
            .collect();
        for block in sine.chunks(128) {
            m.signal(4096, block, std::time::Duration::from_micros(500));
        }
        let levels = r.take_signals();
        assert_eq!(levels.len(), 1);
        let (block, level) = levels[0];
        assert_eq!(block, 4096);
        assert!(
            (dbfs(level.peak) + 6.02).abs() < 0.01,
            "{}",
            dbfs(level.peak)
        );
        assert!(
            (dbfs(level.rms()) + 9.03).abs() < 0.01,
            "{}",
            dbfs(level.rms())
        );
        assert_eq!(level.clips, 0);
        // 375 blocks of 500 µs in a second of audio: 18.75 %.
        let share = level.dsp_share_since(&Level::default(), 1, 48_000);
        assert!((share - 0.1875).abs() < 1e-9, "{share}");
        // The peak was taken; the totals stay.
        let again = r.take_signals()[0].1;
        assert_eq!(again.peak, 0.0);
        assert_eq!(again.samples, 48_000);
    }

    #[test]
    fn a_full_table_counts_what_it_leaves_out() {
        let (m, r) = meters();
        for b in 0..METER_SLOTS + 3 {
            m.signal(b * 64, &[1.5, 0.0], std::time::Duration::ZERO);
        }
        let levels = r.take_signals();
        assert_eq!(levels.len(), METER_SLOTS);
        assert!(levels.iter().all(|(_, l)| l.clips == 1 && l.peak == 1.5));
        assert_eq!(r.unmetered(), 3);
    }
}
