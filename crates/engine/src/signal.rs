//! What a signal is to the engine: code that renders a block of frames.

use std::fmt;

use crate::state::{StateBlock, StateMemory};
use crate::transport::{Clock, Quantize};

/// One block of output for one signal.
///
/// `out` is interleaved, `channels` wide and `frames` long, and zeroed before the call
/// (unless the signal says it [fills the block](Signal::fills_block)). A
/// signal with fewer channels than the output maps itself onto them (a mono signal plays on
/// every channel); channels beyond the output's are dropped by the signal.
#[derive(Debug)]
pub struct Block<'a> {
    /// Frames to render.
    pub frames: usize,
    /// Output channels.
    pub channels: usize,
    /// Sample rate in Hz, as JavaScript's `update(sr)` receives it.
    pub sample_rate: f64,
    /// The transport's values for each frame of the block (the same for every signal);
    /// [`STILL`](crate::STILL) outside an engine.
    pub clock: &'a Clock,
    /// Where the samples go.
    pub out: &'a mut [f64],
}

/// The code of one signal, interpreted or native.
///
/// The engine calls [`render`](Signal::render) on the DSP thread, once per block, in patch
/// order. Native implementations must be real-time safe (no allocation, locks, I/O or
/// unbounded work). Interpreted ones cannot avoid allocation; the ring buffer absorbs it.
pub trait Signal: Send {
    /// Renders `block.frames` frames into `block.out`, advancing the signal's state.
    ///
    /// # Errors
    ///
    /// A [`Fault`] when the code fails; the engine then silences and disables the signal,
    /// puts its state block back as it was before the block, and reports the fault.
    fn render(&mut self, block: &mut Block<'_>) -> Result<(), Fault>;

    /// Which tier runs this signal's code.
    fn tier(&self) -> Tier;

    /// False when the signal never reads the block's [`Clock`](crate::Clock): the engine
    /// then need not fill it for a block where no signal reads it.
    fn reads_clock(&self) -> bool {
        true
    }

    /// True when a successful [`render`](Signal::render) writes every sample of the block,
    /// so the engine need not zero it first.
    fn fills_block(&self) -> bool {
        false
    }

    /// A copy of this signal's code that reads and writes `state` instead of the memory it
    /// was made for (a copy of it, for a trial off the DSP thread), or `None` when the code
    /// cannot move (interpreted code is bound to its memory).
    ///
    /// Called on the main thread.
    fn rebased(&self, state: &std::sync::Arc<StateMemory>) -> Option<Box<dyn Signal>> {
        let _ = state;
        None
    }

    /// Where the code is (`file:line:col` of its `update`), to name the place of faults
    /// that carry none ([`Fault::OutOfFuel`], [`Fault::ReturnedUndefined`]).
    ///
    /// Called on the main thread, when the patch is sent to the engine.
    fn location(&self) -> Option<&str> {
        None
    }
}

/// Where a signal's code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The embedded JavaScript interpreter.
    Js,
    /// Machine code compiled at load time.
    Native,
}

impl Tier {
    /// The tier's name as the command line and JSON output spell it.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Js => "js",
            Tier::Native => "native",
        }
    }
}

/// Why a signal was stopped while it played.
///
/// Native code reports plain values ([`OutOfFuel`](Fault::OutOfFuel),
/// [`ReturnedUndefined`](Fault::ReturnedUndefined)); the [`Controller`](crate::Controller)
/// turns them into an [`Error`](Fault::Error) naming the signal and its place, on the main
/// thread, so nothing is formatted on the DSP thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The code threw or failed; the message names the place (`file:line:col: ...`).
    Error(Box<str>),
    /// Native code ran its loops this many times in one block (an endless loop?).
    OutOfFuel {
        /// Loop iterations allowed per block.
        iterations: u64,
    },
    /// Native code's `update` returned `undefined`.
    ReturnedUndefined,
    /// The code ran far past its time limit for one block.
    TimeLimit {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The code wrote past its state block, into the guard slots after it.
    Overrun {
        /// The slot written, as an offset from the block's first slot (`mem[idx + k]`;
        /// negative before the block).
        slot: i64,
        /// Slots in the block.
        len: usize,
    },
    /// The code produced a sample louder than [`crate::MAX_SAMPLE`].
    TooLoud {
        /// The value.
        value: f64,
        /// Output channel it appeared on.
        channel: usize,
        /// Frame (since the engine started) it appeared at.
        frame: u64,
    },
    /// The code produced NaN or an infinity.
    NonFinite {
        /// The bad value.
        value: f64,
        /// Output channel it appeared on.
        channel: usize,
        /// Frame (since the engine started) it appeared at.
        frame: u64,
    },
    /// The engine's load stayed over its limit and this signal, the most expensive, was
    /// faded out so the others play on.
    Overload {
        /// The signal's share of the block's duration, over the last load window.
        share: f64,
        /// The whole engine's load over that window (its CPU time over the audio's time).
        load: f64,
        /// The limit it stayed over.
        limit: f64,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Error(message) => f.write_str(message),
            Fault::OutOfFuel { iterations } => write!(
                f,
                "update ran {iterations} loop iterations in one block (an endless loop?)"
            ),
            Fault::ReturnedUndefined => f.write_str(
                "TypeError: update returned undefined; expected a number or an array of numbers",
            ),
            Fault::TimeLimit { limit_ms } => {
                write!(f, "update ran longer than {limit_ms} ms for one block")
            }
            Fault::Overrun { slot, len } => write!(
                f,
                "update wrote mem[idx {} {}], outside the {len} slots of its block \
                 (units of the library, such as saw() or delay(), bring state of their own)",
                if *slot < 0 { '-' } else { '+' },
                slot.unsigned_abs()
            ),
            Fault::TooLoud {
                value,
                channel,
                frame,
            } => write!(
                f,
                "update returned {value:e} on channel {channel} at frame {frame}, louder than \
                 the ±{} a signal may give (60 dB over full scale)",
                crate::MAX_SAMPLE
            ),
            Fault::NonFinite {
                value,
                channel,
                frame,
            } => write!(
                f,
                "update returned {} on channel {channel} at frame {frame}",
                js_number(*value)
            ),
            Fault::Overload { share, load, limit } => write!(
                f,
                "overload: update took {:.0}% of each block's time, the engine {:.0}% (over its \
                 {:.0}% limit for {:.0} ms); faded out so the other signals play on",
                share * 100.0,
                load * 100.0,
                limit * 100.0,
                crate::overload::OVERLOAD_WINDOW
                    * f64::from(crate::overload::OVERLOAD_STRIKES)
                    * 1e3
            ),
        }
    }
}

/// Spells a non-finite number the way JavaScript prints it.
fn js_number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "Infinity".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Infinity".to_owned()
    } else {
        value.to_string()
    }
}

/// The state a signal owns besides its block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Ranges of the units it made (oscillators, filters, envelopes): copied for crossfades
    /// and put back after a fault, as its block is. Sample memory of delay lines is not
    /// listed: it is too large to copy every block.
    pub units: Vec<StateBlock>,
    /// Slots before and after its block that must stay zero: a write there is an
    /// [`Fault::Overrun`].
    pub guards: Vec<StateBlock>,
}

impl Footprint {
    /// Slots of `block` and the units together.
    fn len(&self, block: StateBlock) -> usize {
        block.len + self.units.iter().map(|u| u.len).sum::<usize>()
    }
}

/// A signal as it sits in a [`Patch`].
pub struct PatchSignal {
    /// The id the file gave it.
    pub id: String,
    /// Its state block.
    pub block: StateBlock,
    /// The rest of its state.
    pub footprint: Footprint,
    /// Its code.
    pub code: Box<dyn Signal>,
    pub(crate) enabled: bool,
    /// During a crossfade: how this signal comes in.
    pub(crate) entry: Entry,
    /// During a crossfade, in the old patch: whether a new signal took over this block.
    pub(crate) kept: bool,
    /// During a crossfade, in the old patch: the state the old code runs on.
    pub(crate) shadow: Box<[f64]>,
    /// Room for a copy of the state: taken before each block to put back after a fault, or
    /// holding the real state while the old code of a crossfade runs on its shadow.
    pub(crate) spare: Box<[f64]>,
    /// Gain (mute, solo) and its ramp.
    pub(crate) gain: Ramp,
    /// The controller's name for this signal in fault reports (0: not sent yet).
    pub(crate) key: u64,
    /// What plays after a fault: the last good frame, fading out.
    pub(crate) tail: Tail,
    /// Time its renders took in the overload policy's current window (wall clock).
    pub(crate) cost: std::time::Duration,
}

/// The soft end of a signal that faulted: the last frame it played, held and faded to 0
/// with a raised cosine, so a fault never steps the output.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// The last frame the signal played, one value per output channel (empty until the
    /// controller sizes it: a signal without room for it ends with a cut).
    last: Box<[f64]>,
    /// Frames the fade lasts.
    len: u32,
    /// Frames of the fade still to play (0: not fading).
    left: u32,
}

impl Tail {
    /// Room for a frame of `channels`, fading over `len` frames.
    pub(crate) fn new(channels: usize, len: u32) -> Self {
        Self {
            last: vec![0.0; channels].into_boxed_slice(),
            len: len.max(1),
            left: 0,
        }
    }

    /// True while the fade plays.
    pub(crate) fn is_playing(&self) -> bool {
        self.left > 0
    }

    /// Remembers the last frame of a block the signal rendered well.
    pub(crate) fn keep(&mut self, buf: &[f64], ch: usize) {
        if self.last.len() == ch && buf.len() >= ch {
            self.last.copy_from_slice(&buf[buf.len() - ch..]);
        }
    }

    /// Starts the fade from the last frame kept, for a signal that stops between blocks.
    pub(crate) fn fade_out(&mut self) {
        if !self.last.is_empty() {
            self.left = self.len;
        }
    }

    /// Starts the fade after a fault, from the last good frame before frame `good` of
    /// `buf` (or of an earlier block when `good` is 0), and plays it from there on.
    pub(crate) fn start(&mut self, buf: &mut [f64], ch: usize, good: usize) {
        if self.last.len() != ch {
            return;
        }
        if good > 0 {
            self.last.copy_from_slice(&buf[(good - 1) * ch..good * ch]);
        }
        self.left = self.len;
        self.play(buf, ch, good);
    }

    /// Writes the fade into frames `from..` of `buf` (zero once it has ended).
    pub(crate) fn play(&mut self, buf: &mut [f64], ch: usize, from: usize) {
        let len = f64::from(self.len);
        for frame in buf[from * ch..].chunks_mut(ch) {
            if self.left == 0 {
                frame.fill(0.0);
                continue;
            }
            let x = f64::from(self.len - self.left + 1) / len;
            let g = 0.5 + 0.5 * (std::f64::consts::PI * x).cos();
            for (o, l) in frame.iter_mut().zip(self.last.iter()) {
                *o = l * g;
            }
            self.left -= 1;
        }
    }
}

/// How a signal of a new patch comes in while the old patch fades out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// It was playing already (moved over by a merge): it plays on as it was.
    Steady,
    /// It is new: it fades in.
    FadeIn,
    /// It replaces signal `usize` of the old patch: a crossfade.
    From(usize),
}

/// A gain that ramps linearly to a target over a number of frames.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ramp {
    gain: f64,
    target: f64,
    step: f64,
    left: u32,
}

impl Default for Ramp {
    fn default() -> Self {
        Self {
            gain: 1.0,
            target: 1.0,
            step: 0.0,
            left: 0,
        }
    }
}

impl Ramp {
    /// Ramps to `target` over `frames` (0: at once).
    pub(crate) fn set(&mut self, target: f64, frames: u32) {
        self.target = target;
        if frames == 0 {
            self.gain = target;
            self.left = 0;
        } else {
            self.step = (target - self.gain) / f64::from(frames);
            self.left = frames;
        }
    }

    /// Scales `buf` (frames of `ch` channels), advancing the ramp frame by frame.
    pub(crate) fn apply(&mut self, buf: &mut [f64], ch: usize) {
        if self.left == 0 {
            if self.gain != 1.0 {
                buf.iter_mut().for_each(|x| *x *= self.gain);
            }
            return;
        }
        for frame in buf.chunks_mut(ch) {
            if self.left > 0 {
                self.left -= 1;
                self.gain = if self.left == 0 {
                    self.target
                } else {
                    self.gain + self.step
                };
            }
            frame.iter_mut().for_each(|x| *x *= self.gain);
        }
    }
}

impl PatchSignal {
    /// A signal ready to play.
    pub fn new(id: impl Into<String>, block: StateBlock, code: Box<dyn Signal>) -> Self {
        Self::with_footprint(id, block, Footprint::default(), code)
    }

    /// A signal ready to play, with state beyond its block.
    pub fn with_footprint(
        id: impl Into<String>,
        block: StateBlock,
        footprint: Footprint,
        code: Box<dyn Signal>,
    ) -> Self {
        let len = footprint.len(block);
        Self {
            id: id.into(),
            block,
            footprint,
            code,
            enabled: true,
            entry: Entry::Steady,
            kept: false,
            shadow: vec![0.0; len].into_boxed_slice(),
            spare: vec![0.0; len].into_boxed_slice(),
            gain: Ramp::default(),
            key: 0,
            tail: Tail::default(),
            cost: std::time::Duration::ZERO,
        }
    }

    /// The block, then each unit's range.
    fn ranges(&self) -> impl Iterator<Item = StateBlock> + '_ {
        std::iter::once(self.block).chain(self.footprint.units.iter().copied())
    }

    /// Copies the signal's state into `shadow` (`to_shadow`) or `spare`.
    pub(crate) fn save(&mut self, state: &StateMemory, to_shadow: bool) {
        let mut at = 0;
        let ranges: [&[StateBlock]; 2] = [std::slice::from_ref(&self.block), &self.footprint.units];
        let out = if to_shadow {
            &mut self.shadow
        } else {
            &mut self.spare
        };
        for r in ranges.into_iter().flatten() {
            state.save(*r, &mut out[at..at + r.len]);
            at += r.len;
        }
    }

    /// Writes `shadow` (`from_shadow`) or `spare` back into the signal's state.
    pub(crate) fn restore(&self, state: &StateMemory, from_shadow: bool) {
        let mut at = 0;
        let src = if from_shadow {
            &self.shadow
        } else {
            &self.spare
        };
        for r in self.ranges() {
            state.restore(r, &src[at..at + r.len]);
            at += r.len;
        }
    }
}

impl fmt::Debug for PatchSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatchSignal")
            .field("id", &self.id)
            .field("block", &self.block)
            .field("tier", &self.code.tier())
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// The set of signals one load produced. Swapped in whole, never edited in place.
#[derive(Debug, Default)]
pub struct Patch {
    pub(crate) signals: Vec<PatchSignal>,
    pub(crate) generation: u64,
    /// For a merge: the running signals (by state block) that stay, next to the new ones.
    pub(crate) keep: Option<Vec<StateBlock>>,
    /// When the engine may swap it in.
    pub(crate) quantize: Quantize,
}

impl Patch {
    /// A patch of `signals`, rendered and mixed in this order.
    pub fn new(signals: Vec<PatchSignal>) -> Self {
        Self {
            signals,
            generation: 0,
            keep: None,
            quantize: Quantize::None,
        }
    }

    /// The signals, in render order.
    pub fn signals(&self) -> &[PatchSignal] {
        &self.signals
    }

    /// The signals, owned, in render order.
    pub fn into_signals(self) -> Vec<PatchSignal> {
        self.signals
    }

    /// Number of signals.
    pub fn len(&self) -> usize {
        self.signals.len()
    }

    /// True when the patch has no signals.
    pub fn is_empty(&self) -> bool {
        self.signals.is_empty()
    }
}
