//! The transport: tempo, meter, and the clock every signal reads, frame by frame.
//!
//! The DSP thread owns the [`Transport`] and advances it one frame at a time. Before each
//! block it writes the block's [`Clock`]: per-frame `t`, `beat`, `bar` and `bpm`, which
//! every signal of the block reads alike. The main thread sees the latest values through a
//! [`ClockReader`].

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

use crate::controller::Controller;
use crate::engine::{Command, MAX_BLOCK};
use crate::midi::MidiValues;
use crate::signal::Patch;

/// The slowest tempo, in beats per minute.
pub const MIN_BPM: f64 = 20.0;
/// The fastest tempo, in beats per minute.
pub const MAX_BPM: f64 = 999.0;
/// The tempo the transport starts at.
pub const DEFAULT_BPM: f64 = 120.0;
/// The most beats a bar may have.
pub const MAX_METER: f64 = 64.0;

/// The clock of one block: for each frame, the transport's values at its start.
///
/// Laid out for the native tier as numbers only: eight arrays of [`MAX_BLOCK`] numbers, one
/// after the other ([`Clock::FIELDS`] gives their order): the transport's four, then MIDI
/// in's four; then MIDI in's rarely changing values ([`MidiValues`]: CC and voices).
#[repr(C)]
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    /// Seconds since the transport started (it stands still while the transport is stopped).
    pub t: [f64; MAX_BLOCK],
    /// Beats since the transport started, fractional.
    pub beat: [f64; MAX_BLOCK],
    /// Bars since the transport started, fractional.
    pub bar: [f64; MAX_BLOCK],
    /// The tempo, in beats per minute.
    pub bpm: [f64; MAX_BLOCK],
    /// MIDI in: the note playing (the last key held), 0 before any.
    pub note: [f64; MAX_BLOCK],
    /// MIDI in: 1 while a key is held, else 0.
    pub gate: [f64; MAX_BLOCK],
    /// MIDI in: the velocity of the note playing, 0 to 1.
    pub velocity: [f64; MAX_BLOCK],
    /// MIDI in: the pitch bend, -1 to 1 (0 in the middle).
    pub bend: [f64; MAX_BLOCK],
    /// MIDI in: controllers and voices, as at the block's start plus the block's changes.
    pub midi: MidiValues,
}

impl Clock {
    /// The fields, in the order they are laid out.
    pub const FIELDS: [&'static str; 8] = [
        "t", "beat", "bar", "bpm", "note", "gate", "velocity", "bend",
    ];
    /// The fields of MIDI in (`midi.note`...), a part of [`Clock::FIELDS`].
    pub const MIDI_FIELDS: [&'static str; 4] = ["note", "gate", "velocity", "bend"];
    /// Where [`Clock::midi`] starts, in numbers from the first.
    pub const MIDI_AT: usize = Self::FIELDS.len() * MAX_BLOCK;
    /// The clock's size in numbers.
    pub const LEN: usize = std::mem::size_of::<Self>() / 8;

    /// A clock standing at zero, at the default tempo.
    pub const fn still() -> Self {
        Self {
            t: [0.0; MAX_BLOCK],
            beat: [0.0; MAX_BLOCK],
            bar: [0.0; MAX_BLOCK],
            bpm: [DEFAULT_BPM; MAX_BLOCK],
            note: [0.0; MAX_BLOCK],
            gate: [0.0; MAX_BLOCK],
            velocity: [0.0; MAX_BLOCK],
            bend: [0.0; MAX_BLOCK],
            midi: MidiValues::still(),
        }
    }

    /// A pointer to the first number, for the native tier: field `k` of frame `f` is at
    /// element `k * MAX_BLOCK + f`, [`Clock::midi`] at [`Clock::MIDI_AT`].
    pub fn as_ptr(&self) -> *const f64 {
        (self as *const Self).cast()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::still()
    }
}

/// The clock of blocks rendered outside an engine (tests, probes): standing at zero.
pub static STILL: Clock = Clock::still();

/// When a swap may happen.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Quantize {
    /// At the next block (the default).
    #[default]
    None,
    /// At the next bar line.
    Bar,
    /// At the next multiple of this many beats.
    Beats(f64),
}

impl Quantize {
    /// Reads `none`, `beat`, `bar` or a number of beats (`2`, `0.5`).
    ///
    /// # Errors
    ///
    /// A message naming the bad value.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Self::None),
            "beat" => Ok(Self::Beats(1.0)),
            "bar" => Ok(Self::Bar),
            _ => match text.parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 && n <= 1e6 => Ok(Self::Beats(n)),
                _ => Err(format!(
                    "quantize must be none, beat, bar or a number of beats above 0, not '{text}'"
                )),
            },
        }
    }
}

/// The tempo, meter and position, advanced frame by frame on the DSP thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transport {
    sample_rate: f64,
    running: bool,
    /// Frames the transport has run.
    frames: u64,
    bpm: f64,
    /// Beat and frame count where the tempo last settled: while it holds still the beat is
    /// computed from them, so it lands on whole beats to the frame.
    anchor_beat: f64,
    anchor_frames: u64,
    beat: f64,
    /// A glide: bpm added per frame, and frames left.
    step: f64,
    left: u64,
    target: f64,
    meter: f64,
    /// Beat and bar where the meter last changed.
    meter_beat: f64,
    meter_bar: f64,
}

impl Transport {
    pub(crate) fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate: f64::from(sample_rate),
            running: true,
            frames: 0,
            bpm: DEFAULT_BPM,
            anchor_beat: 0.0,
            anchor_frames: 0,
            beat: 0.0,
            step: 0.0,
            left: 0,
            target: DEFAULT_BPM,
            meter: 4.0,
            meter_beat: 0.0,
            meter_bar: 0.0,
        }
    }

    /// The tempo now, in beats per minute.
    pub(crate) fn bpm(&self) -> f64 {
        self.bpm
    }

    /// Whether the transport runs (MIDI clock out reads it).
    pub(crate) fn running(&self) -> bool {
        self.running
    }

    pub(crate) fn bar(&self) -> f64 {
        self.meter_bar + (self.beat - self.meter_beat) / self.meter
    }

    fn settle(&mut self) {
        self.anchor_beat = self.beat;
        self.anchor_frames = self.frames;
    }

    /// Ramps the tempo to `bpm` (clamped to [`MIN_BPM`]..=[`MAX_BPM`]) over `glide` frames.
    pub(crate) fn set_tempo(&mut self, bpm: f64, glide: u64) {
        if !bpm.is_finite() {
            return;
        }
        let bpm = bpm.clamp(MIN_BPM, MAX_BPM);
        self.settle();
        self.target = bpm;
        if glide == 0 {
            self.bpm = bpm;
            self.left = 0;
        } else {
            self.step = (bpm - self.bpm) / glide as f64;
            self.left = glide;
        }
    }

    /// Sets the beats per bar (clamped to 1..=[`MAX_METER`]); bars counted so far stay.
    pub(crate) fn set_meter(&mut self, beats: f64) {
        if !beats.is_finite() {
            return;
        }
        self.meter_bar = self.bar();
        self.meter_beat = self.beat;
        self.meter = beats.clamp(1.0, MAX_METER);
    }

    pub(crate) fn set_running(&mut self, running: bool) {
        self.settle();
        self.running = running;
    }

    /// Moves to `beat` (bars follow); `t` keeps counting.
    pub(crate) fn locate(&mut self, beat: f64) {
        if !beat.is_finite() {
            return;
        }
        self.beat = beat;
        self.meter_beat = beat;
        self.meter_bar = beat / self.meter;
        self.settle();
    }

    /// One frame on.
    pub(crate) fn advance(&mut self) {
        if !self.running {
            return;
        }
        self.frames += 1;
        if self.left > 0 {
            // Gliding: the beat grows by the tempo of each frame.
            self.beat += self.bpm / (60.0 * self.sample_rate);
            self.left -= 1;
            if self.left == 0 {
                self.bpm = self.target;
                self.settle();
            } else {
                self.bpm += self.step;
            }
        } else {
            let n = (self.frames - self.anchor_frames) as f64;
            self.beat = self.anchor_beat + n * self.bpm / (60.0 * self.sample_rate);
        }
    }

    /// Advances past `frames` frames without writing them anywhere: at a steady tempo in
    /// one step, to the same beat frame-by-frame advancing gives.
    pub(crate) fn skip(&mut self, frames: usize) {
        if !self.running {
            return;
        }
        if self.left > 0 {
            for _ in 0..frames {
                self.advance();
            }
            return;
        }
        self.frames += frames as u64;
        let n = (self.frames - self.anchor_frames) as f64;
        self.beat = self.anchor_beat + n * self.bpm / (60.0 * self.sample_rate);
    }

    /// Writes the values of the next `frames` frames into `clock`, advancing past them.
    pub(crate) fn fill(&mut self, clock: &mut Clock, frames: usize) {
        for f in 0..frames.min(MAX_BLOCK) {
            clock.t[f] = self.frames as f64 / self.sample_rate;
            clock.beat[f] = self.beat;
            clock.bar[f] = self.bar();
            clock.bpm[f] = self.bpm;
            self.advance();
        }
    }

    /// The beat of the next boundary of `q` at or after the current beat, or `None` when
    /// `q` does not quantize. A bar line is where `bar` is whole.
    pub(crate) fn boundary(&self, q: Quantize) -> Option<f64> {
        match q {
            Quantize::None => None,
            Quantize::Bar => {
                let bar = self.bar().ceil();
                Some(self.meter_beat + (bar - self.meter_bar) * self.meter)
            }
            Quantize::Beats(n) => Some((self.beat / n).ceil() * n),
        }
    }

    /// Of the next `frames` frames, the first whose beat is at or past `boundary`.
    pub(crate) fn reaches(&self, boundary: f64, frames: usize) -> Option<usize> {
        let mut ahead = *self;
        for f in 0..frames {
            if ahead.beat >= boundary {
                return Some(f);
            }
            ahead.advance();
        }
        None
    }

    /// Publishes the values at engine frame `frame` (the next one to render).
    pub(crate) fn publish(&self, shared: &Shared, frame: u64) {
        // A sequence lock: odd while writing, so `read_at` never mixes two blocks.
        let seq = shared.seq.load(Ordering::Relaxed);
        shared.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        shared.frame.store(frame, Ordering::Relaxed);
        shared.bpm.store(self.bpm.to_bits(), Ordering::Relaxed);
        shared.beat.store(self.beat.to_bits(), Ordering::Relaxed);
        shared.bar.store(self.bar().to_bits(), Ordering::Relaxed);
        shared.meter.store(self.meter.to_bits(), Ordering::Relaxed);
        shared
            .running
            .store(u64::from(self.running), Ordering::Relaxed);
        shared.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

/// The transport's values as the DSP thread last published them.
#[derive(Debug)]
pub(crate) struct Shared {
    bpm: AtomicU64,
    beat: AtomicU64,
    bar: AtomicU64,
    meter: AtomicU64,
    running: AtomicU64,
    /// The engine frame the values belong to, and the sequence lock's count.
    frame: AtomicU64,
    seq: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            bpm: AtomicU64::new(DEFAULT_BPM.to_bits()),
            beat: AtomicU64::new(0),
            bar: AtomicU64::new(0),
            meter: AtomicU64::new(4.0f64.to_bits()),
            running: AtomicU64::new(1),
            frame: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        }
    }
}

/// Reads the transport from any thread: the values as of the last block rendered.
#[derive(Debug, Clone)]
pub struct ClockReader(pub(crate) Arc<Shared>);

/// The transport at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockReading {
    /// Tempo, beats per minute.
    pub bpm: f64,
    /// Beats since the start, fractional.
    pub beat: f64,
    /// Bars since the start, fractional.
    pub bar: f64,
    /// Beats per bar.
    pub meter: f64,
    /// False while the transport is stopped.
    pub running: bool,
}

impl ClockReading {
    /// `bar.beat`, counted from 1 as musicians do (`1.1` is the first beat).
    pub fn bar_beat(&self) -> String {
        let bar = self.bar.floor();
        let beat = ((self.bar - bar) * self.meter).floor();
        format!("{}.{}", bar as i64 + 1, beat as i64 + 1)
    }
}

impl ClockReader {
    /// The latest values.
    pub fn read(&self) -> ClockReading {
        let get = |a: &AtomicU64| f64::from_bits(a.load(Ordering::Relaxed));
        ClockReading {
            bpm: get(&self.0.bpm),
            beat: get(&self.0.beat),
            bar: get(&self.0.bar),
            meter: get(&self.0.meter),
            running: self.0.running.load(Ordering::Relaxed) != 0,
        }
    }

    /// The latest values and the engine frame they belong to (the beat is the one that
    /// frame renders with), read together: never half of one block and half of the next.
    pub fn read_at(&self) -> (ClockReading, u64) {
        loop {
            let before = self.0.seq.load(Ordering::Acquire);
            let reading = self.read();
            let frame = self.0.frame.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if before.is_multiple_of(2) && self.0.seq.load(Ordering::Relaxed) == before {
                return (reading, frame);
            }
            std::hint::spin_loop();
        }
    }
}

/// The transport's commands, sent like every other.
impl Controller {
    /// Ramps the tempo to `bpm` over `glide` frames; the beat stays continuous. The tempo is
    /// clamped to [`MIN_BPM`](crate::MIN_BPM)`..=`[`MAX_BPM`](crate::MAX_BPM); a tempo that
    /// is not finite is ignored.
    pub fn set_tempo(&mut self, bpm: f64, glide: u32) {
        if bpm.is_finite() {
            self.send(Command::Tempo { bpm, glide });
        }
    }

    /// Sets the beats per bar (clamped to `1..=`[`MAX_METER`](crate::MAX_METER)).
    pub fn set_meter(&mut self, beats: f64) {
        if beats.is_finite() {
            self.send(Command::Meter { beats });
        }
    }

    /// Runs (`true`) or holds (`false`) the transport.
    pub fn set_transport(&mut self, running: bool) {
        self.send(if running {
            Command::TransportStart
        } else {
            Command::TransportStop
        });
    }

    /// Moves the transport to beat 0 and runs it from engine frame `frame` on, to the
    /// frame: a start stamped with the frame it takes effect at (MIDI clock in). Until then
    /// the transport stands still; a frame already past starts it at once, at the beat it
    /// would have reached since.
    pub fn start_at(&mut self, frame: u64) {
        self.send(Command::StartAt { frame });
    }

    /// Moves the transport to `beat`.
    pub fn locate(&mut self, beat: f64) {
        if beat.is_finite() {
            self.send(Command::Locate { beat });
        }
    }

    /// Reads the transport as of the last block rendered.
    pub fn clock(&self) -> &ClockReader {
        &self.clock_reader
    }
}

/// Folds a swap still waiting for its boundary (`older`) into the `newer` one that replaces
/// it: a merge keeps the waiting patch's signals it lists, as new signals of its own (the
/// main thread counted them as playing). Returns what is left of `older`, to be retired.
/// Allocates nothing: the merge reserved room for every signal it keeps.
pub(crate) fn absorb(newer: &mut Patch, mut older: Box<Patch>) -> Box<Patch> {
    let Some(keep) = &mut newer.keep else {
        return older;
    };
    let mut i = 0;
    while i < older.signals.len() {
        let block = older.signals[i].block;
        if keep.contains(&block) && newer.signals.len() < newer.signals.capacity() {
            let moved = older.signals.swap_remove(i);
            keep.retain(|b| *b != block);
            newer.signals.push(moved);
        } else {
            i += 1;
        }
    }
    match &older.keep {
        // The waiting swap replaced the whole patch: nothing running stays.
        None => keep.clear(),
        Some(kept) => keep.retain(|b| kept.contains(b)),
    }
    older
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_beats_land_on_their_frame() {
        let mut t = Transport::new(48_000);
        let mut clock = Clock::still();
        let mut at = 0;
        let mut onsets = Vec::new();
        let mut last = -1.0f64;
        while at < 100_000 {
            t.fill(&mut clock, 256);
            for f in 0..256 {
                if clock.beat[f].floor() > last.floor() {
                    onsets.push(at + f);
                }
                last = clock.beat[f];
            }
            at += 256;
        }
        assert_eq!(onsets[..5], [0, 24_000, 48_000, 72_000, 96_000]);
    }

    #[test]
    fn read_at_gives_the_beat_with_its_frame() {
        let shared = Arc::new(Shared::default());
        let mut t = Transport::new(48_000);
        t.skip(36_000);
        t.publish(&shared, 36_000);
        let (reading, frame) = ClockReader(shared).read_at();
        assert_eq!((reading.beat, frame), (1.5, 36_000));
    }

    #[test]
    fn quantize_reads_its_names() {
        assert_eq!(Quantize::parse("bar"), Ok(Quantize::Bar));
        assert_eq!(Quantize::parse("beat"), Ok(Quantize::Beats(1.0)));
        assert_eq!(Quantize::parse("0.5"), Ok(Quantize::Beats(0.5)));
        assert!(Quantize::parse("0").unwrap_err().contains("'0'"));
    }

    #[test]
    fn bar_beat_counts_from_one() {
        let r = ClockReading {
            bpm: 120.0,
            beat: 5.5,
            bar: 5.5 / 4.0,
            meter: 4.0,
            running: true,
        };
        assert_eq!(r.bar_beat(), "2.2");
    }
}
