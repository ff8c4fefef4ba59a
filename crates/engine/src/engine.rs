//! The DSP core and its main-thread handle.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};

use crate::controller::Controller;
use crate::counters::Counters;
use crate::guard::{render_checked, render_on_shadow, report, Shape};
use crate::master::{MasterConfig, MasterStage};
use crate::meter::{self, Meters};
use crate::midi::{MidiIn, MidiSender};
use crate::overload::{Overload, Verdict};
use crate::signal::{Entry, Fault, Patch, PatchSignal, Ramp};
use crate::state::StateMemory;
use crate::transport::{self, absorb, Clock, ClockReader, Quantize, Transport};

/// Largest magnitude a signal's sample may have: 1000, 60 dB over full scale. A louder
/// sample is a fault ([`Fault::TooLoud`]), like NaN: one signal gone wild would otherwise
/// pin the mix at full scale and drown every other.
pub const MAX_SAMPLE: f64 = 1000.0;

/// Largest block the engine renders at once, in frames.
pub const MAX_BLOCK: usize = 256;
/// Block size the DSP thread renders by default, in frames.
pub const DEFAULT_BLOCK: usize = 128;

/// The fade of a panic, and of the start after it: 10 ms, in seconds.
pub const PANIC_FADE: f64 = 0.010;

const COMMAND_CAPACITY: usize = 64;
const RETIRED_CAPACITY: usize = 16;
const EVENT_CAPACITY: usize = 256;
/// Commands the controller holds while the engine's queue is full (a stalled or dead
/// engine); later ones are dropped and counted.
pub const PENDING_LIMIT: usize = 1024;

/// How the engine is set up. Fixed for its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: usize,
    /// Frames per rendered block, at most [`MAX_BLOCK`].
    pub block: usize,
}

impl EngineConfig {
    /// A config with the default block sizes.
    pub fn new(sample_rate: u32, channels: usize) -> Self {
        Self {
            sample_rate,
            channels,
            block: DEFAULT_BLOCK,
        }
    }
}

/// A request from the main thread to the DSP thread.
#[derive(Debug)]
pub enum Command {
    /// Play this patch from the next block on, crossfading from the old one over `fade`
    /// frames (0: switch at once); the old one then goes back to be dropped.
    Swap {
        /// The new patch.
        patch: Box<Patch>,
        /// Crossfade length in frames.
        fade: u32,
    },
    /// Ramp the gain of the signal on the state block at `block` to `gain`.
    Gain {
        /// Offset of the signal's state block.
        block: usize,
        /// The new gain (0 mutes).
        gain: f64,
        /// Ramp length in frames.
        fade: u32,
    },
    /// Ramp the master gain to `gain`.
    Master {
        /// The new gain.
        gain: f64,
        /// Ramp length in frames.
        fade: u32,
    },
    /// Set up the master stage: mode, ceiling, DC blocker.
    MasterStage(MasterConfig),
    /// Render signals (the default).
    Start,
    /// Output silence and hold every signal where it is.
    Stop,
    /// Fade the whole output out over [`PANIC_FADE`] of a second, then stop as
    /// [`Command::Stop`] does; the next [`Command::Start`] fades it back in as fast.
    Panic,
    /// Ramp the transport's tempo to `bpm` over `glide` frames.
    Tempo {
        /// Beats per minute (clamped to the transport's range).
        bpm: f64,
        /// Glide length in frames (0: at once).
        glide: u32,
    },
    /// Set the beats per bar.
    Meter {
        /// Beats per bar.
        beats: f64,
    },
    /// Run the transport (the default).
    TransportStart,
    /// Hold the transport: the clock stands still, signals play on.
    TransportStop,
    /// Move the transport to `beat`.
    Locate {
        /// The beat to go to.
        beat: f64,
    },
    /// Move the transport to beat 0 and run it from engine frame `frame` on (at once,
    /// carried forward, when that frame is past): a MIDI start, on its frame.
    StartAt {
        /// The engine frame beat 0 falls on.
        frame: u64,
    },
    /// Set the overload policy's limit, a fraction of each block's duration (`None`: off;
    /// see [`crate::overload`]).
    Overload(Option<f64>),
}

/// A message from the DSP thread to the main thread: plain values, nothing to format.
#[derive(Debug)]
pub(crate) enum Event {
    /// The signal the controller knows as `key`, on the state block starting at `block`,
    /// faulted.
    Fault {
        key: u64,
        block: usize,
        fault: Fault,
    },
}

/// Builds an engine and the controller that drives it.
///
/// The [`Engine`] goes to whoever renders (the DSP thread, or an offline renderer); the
/// [`Controller`] stays on the main thread.
pub fn engine(config: EngineConfig, state: Arc<StateMemory>) -> (Controller, Engine) {
    assert!(config.channels > 0, "an engine needs at least one channel");
    assert!(
        (1..=MAX_BLOCK).contains(&config.block),
        "block size {} is outside 1..={MAX_BLOCK}",
        config.block
    );
    let (cmd_tx, cmd_rx) = RingBuffer::new(COMMAND_CAPACITY);
    let (retired_tx, retired_rx) = RingBuffer::new(RETIRED_CAPACITY);
    let (event_tx, event_rx) = RingBuffer::new(EVENT_CAPACITY);
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(transport::Shared::default());
    let (meters, meter_reader) = meter::meters();
    let (midi_tx, midi_rx) = RingBuffer::new(crate::midi::MIDI_CAPACITY);
    let (clock_out, clock_ticks) = crate::midi::clock_out::clock_out();
    let engine = Engine {
        config,
        patch: Box::default(),
        commands: cmd_rx,
        retired: retired_tx,
        events: event_tx,
        state,
        counters: counters.clone(),
        signal_buf: vec![0.0; MAX_BLOCK * config.channels],
        old_buf: vec![0.0; MAX_BLOCK * config.channels],
        gains: vec![0.0; MAX_BLOCK],
        mix: vec![0.0; MAX_BLOCK * config.channels],
        fading: None,
        fade_pos: 0,
        fade_len: 0,
        master: Ramp::default(),
        panic: Ramp::default(),
        panicking: None,
        playing: true,
        frame: 0,
        transport: Transport::new(config.sample_rate),
        clock: Box::default(),
        clock_shared: shared.clone(),
        held: None,
        start_at: None,
        stage: MasterStage::new(MasterConfig::default(), config.sample_rate, config.channels),
        meters,
        overload: Overload::default(),
        midi: MidiIn::new(midi_rx),
        clock_out,
    };
    let controller = Controller {
        commands: cmd_tx,
        retired: retired_rx,
        events: event_rx,
        counters,
        generation: 0,
        names: HashMap::new(),
        live: std::collections::BTreeSet::new(),
        midi: Some(MidiSender::new(midi_tx)),
        midi_clock: Some(clock_ticks),
        next_key: 0,
        config,
        pending: VecDeque::new(),
        dropped: 0,
        fade: 0,
        quantize: Quantize::None,
        clock_reader: ClockReader(shared),
        meter_reader,
    };
    (controller, engine)
}

/// The DSP core: owns the running patch, renders and mixes it.
///
/// Lives on one thread at a time (the DSP thread, or the thread of an offline render).
/// [`process`](Engine::process) allocates, frees and locks nothing of its own; what signal
/// code does is up to its tier.
pub struct Engine {
    config: EngineConfig,
    patch: Box<Patch>,
    commands: Consumer<Command>,
    retired: Producer<Box<Patch>>,
    events: Producer<Event>,
    state: Arc<StateMemory>,
    counters: Arc<Counters>,
    signal_buf: Vec<f64>,
    old_buf: Vec<f64>,
    gains: Vec<f64>,
    mix: Vec<f64>,
    /// The patch being faded out, and where the fade is.
    fading: Option<Box<Patch>>,
    fade_pos: u32,
    fade_len: u32,
    /// The master gain, ramped like a signal's.
    master: Ramp,
    /// The panic fade (1, or 0 after a panic until the next start).
    panic: Ramp,
    /// Frames left of a panic's fade, after which the engine stops.
    panicking: Option<u32>,
    playing: bool,
    frame: u64,
    /// Tempo, meter and position; the clock of the block being rendered.
    transport: Transport,
    clock: Box<Clock>,
    clock_shared: Arc<transport::Shared>,
    /// A swap waiting: the patch, its fade, and the boundary beat of a quantized swap, or
    /// `None` for one that came while a crossfade was under way (it waits for its end).
    held: Option<(Box<Patch>, u32, Option<f64>)>,
    /// A transport start waiting for its frame ([`Command::StartAt`]).
    start_at: Option<u64>,
    /// What the mix goes through on its way out (tanh, limiter...), and the meters.
    stage: MasterStage,
    meters: Meters,
    /// The overload policy: the DSP thread's load over windows of blocks.
    overload: Overload,
    /// MIDI in: its queue and the voice it plays.
    midi: MidiIn,
    /// MIDI clock out: the ticks of the transport's beats.
    clock_out: crate::midi::clock_out::ClockOut,
}

impl Engine {
    /// The engine's setup.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// Frames rendered since the engine was made.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// The live counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Fills `out` (interleaved f32, whole frames) with the next frames of the mix.
    ///
    /// Drains the command queue before each block, renders every enabled signal, sums them,
    /// runs the sum through the master stage (`tanh` by default). Real-time safe: the engine
    /// itself allocates, frees and locks nothing here.
    pub fn process(&mut self, out: &mut [f32]) {
        let ch = self.config.channels;
        assert_eq!(out.len() % ch, 0, "output is not made of whole frames");
        for chunk in out.chunks_mut(self.config.block * ch) {
            self.apply_commands();
            let started = Instant::now();
            self.overload.begin();
            let frames = chunk.len() / ch;
            // A held swap splits the block at its boundary frame.
            let mut at = 0;
            while at < frames {
                let held = self.until_held(frames - at);
                let n = self.until_start(held);
                self.render_block(n);
                self.master.apply(&mut self.mix[..n * ch], ch);
                self.panic.apply(&mut self.mix[..n * ch], ch);
                // The master stage holds the final guard: nothing that is not a finite
                // number reaches the output.
                let out = &mut chunk[at * ch..(at + n) * ch];
                self.meters.master_input(&self.mix[..n * ch]);
                let guarded = self.stage.run(&self.mix[..n * ch], out);
                self.meters.master(out);
                if guarded > 0 {
                    self.counters.add_nonfinite(guarded);
                }
                self.frame += n as u64;
                at += n;
                if let Some(left) = self.panicking {
                    let left = left.saturating_sub(n as u32);
                    self.panicking = (left > 0).then_some(left);
                    self.playing &= left > 0;
                }
            }
            self.transport.publish(&self.clock_shared, self.frame);
            let budget = frames as f64 / f64::from(self.config.sample_rate);
            self.counters
                .add_block(frames, started.elapsed().as_secs_f64() / budget);
            match self.overload.end(frames, self.config.sample_rate) {
                Verdict::Open => {}
                Verdict::Closed => self.close_cost_window(None),
                Verdict::Cut(load) => self.close_cost_window(Some(load)),
            }
        }
    }

    /// Ends a window of the overload policy: under overload (`load`), the signal that took
    /// the most time fades out and is reported; every signal's count starts again.
    fn close_cost_window(&mut self, load: Option<f64>) {
        if let Some(load) = load {
            let window: Duration = self.patch.signals.iter().map(|s| s.cost).sum();
            let costliest = self
                .patch
                .signals
                .iter_mut()
                .filter(|s| s.enabled && !s.cost.is_zero())
                .max_by_key(|s| s.cost);
            if let Some(signal) = costliest {
                // The signal's share of the window's audio time, scaled from wall to CPU
                // time by its share of the signals' wall time.
                let share = load * signal.cost.as_secs_f64() / window.as_secs_f64().max(1e-12);
                signal.enabled = false;
                signal.tail.fade_out();
                let fault = Fault::Overload {
                    share,
                    load,
                    limit: self.overload.limit().unwrap_or(load),
                };
                report(&mut self.events, signal, fault);
            }
        }
        for s in &mut self.patch.signals {
            s.cost = Duration::ZERO;
        }
    }

    fn apply_commands(&mut self) {
        while let Ok(command) = self.commands.peek() {
            // A swap may send two patches back (one still fading, one replaced): never
            // drop one here for want of room.
            if matches!(command, Command::Swap { .. }) && self.retired.slots() < 3 {
                return;
            }
            let Ok(command) = self.commands.pop() else {
                return;
            };
            match command {
                Command::Swap { mut patch, fade } => {
                    // A newer swap replaces one still waiting for its boundary; a newer
                    // merge takes over the signals of the waiting one that it keeps.
                    if let Some((older, _, _)) = self.held.take() {
                        let older = absorb(&mut patch, older);
                        self.retire(older);
                    }
                    match self.transport.boundary(patch.quantize) {
                        Some(beat) => self.held = Some((patch, fade, Some(beat))),
                        // A crossfade under way ends as it began: the swap waits for it
                        // (at most the fade's length), so no fade is cut short.
                        None if self.fading.is_some() && self.playing => {
                            self.held = Some((patch, fade, None));
                        }
                        None => {
                            let generation = patch.generation;
                            self.swap(patch, fade);
                            self.counters.swapped(generation, self.frame);
                        }
                    }
                }
                Command::Gain { block, gain, fade } => {
                    let found = self
                        .patch
                        .signals
                        .iter_mut()
                        .find(|s| s.block.offset == block);
                    if let Some(s) = found {
                        s.gain.set(gain, fade);
                    }
                }
                Command::Master { gain, fade } => self.master.set(gain, fade),
                Command::MasterStage(config) => self.stage.configure(config),
                Command::Start => {
                    self.playing = true;
                    self.panicking = None;
                    self.panic.set(1.0, self.panic_frames());
                }
                Command::Stop => self.playing = false,
                Command::Panic => {
                    let frames = if self.playing { self.panic_frames() } else { 0 };
                    self.panic.set(0.0, frames);
                    self.panicking = Some(frames);
                }
                Command::Tempo { bpm, glide } => self.transport.set_tempo(bpm, u64::from(glide)),
                Command::Meter { beats } => self.transport.set_meter(beats),
                Command::TransportStart => self.transport.set_running(true),
                Command::TransportStop => self.transport.set_running(false),
                Command::Locate { beat } => self.transport.locate(beat),
                Command::StartAt { frame } => {
                    self.transport.set_running(false);
                    self.start_at = Some(frame);
                }
                Command::Overload(limit) => self.overload.set_limit(limit),
            }
        }
    }

    /// The frames of a panic's fade: [`PANIC_FADE`] at the engine's rate, at least 1.
    fn panic_frames(&self) -> u32 {
        ((PANIC_FADE * f64::from(self.config.sample_rate)) as u32).max(1)
    }

    /// Frames to render before a waiting transport start (at most `rest`); starts the
    /// transport first when its frame is now, or has passed (then at the beat it would have
    /// reached since).
    fn until_start(&mut self, rest: usize) -> usize {
        let Some(frame) = self.start_at else {
            return rest;
        };
        if frame > self.frame {
            return rest.min(usize::try_from(frame - self.frame).unwrap_or(usize::MAX));
        }
        self.start_at = None;
        let late = (self.frame - frame) as f64 / f64::from(self.config.sample_rate);
        self.transport.locate(late * self.transport.bpm() / 60.0);
        self.transport.set_running(true);
        rest
    }

    /// Frames to render before the held swap is due (at most `rest`); swaps it in first
    /// when it is due now.
    fn until_held(&mut self, rest: usize) -> usize {
        let Some((_, _, due)) = &self.held else {
            return rest;
        };
        let due = match due {
            // A stopped engine holds the clock, so it renders nothing that could pass the
            // boundary: render as usual.
            Some(_) if !self.playing => return rest,
            Some(boundary) => self.transport.reaches(*boundary, rest),
            // After the crossfade under way (at once when stopped: nothing is heard).
            None => match &self.fading {
                Some(_) if self.playing => {
                    Some(self.fade_len.saturating_sub(self.fade_pos) as usize)
                }
                _ => Some(0),
            },
        };
        match due {
            // Without room to send old patches back, the swap waits (late, never freeing).
            Some(0) if self.retired.slots() < 2 => rest,
            Some(0) => {
                if let Some((patch, fade, _)) = self.held.take() {
                    let generation = patch.generation;
                    self.swap(patch, fade);
                    self.counters.swapped(generation, self.frame);
                }
                rest
            }
            Some(n) => n.min(rest),
            None => rest,
        }
    }

    /// Sends a patch back to the main thread to be dropped there.
    fn retire(&mut self, patch: Box<Patch>) {
        if let Err(rtrb::PushError::Full(patch)) = self.retired.push(patch) {
            // Room was checked before; keep it alive rather than free it here.
            std::mem::forget(patch);
        }
    }

    fn swap(&mut self, patch: Box<Patch>, fade: u32) {
        // Only a quantized swap due during a fade gets here with one under way (others
        // wait for its end): the older fade ends at once.
        if let Some(older) = self.fading.take() {
            self.retire(older);
        }
        let mut old = std::mem::replace(&mut self.patch, patch);
        // Signals from this index on were moved over by a merge and play on untouched.
        let fresh = self.patch.signals.len();
        if let Some(keep) = &self.patch.keep {
            // A merge: running signals listed in `keep` move over as they are (code, state,
            // gain), within the capacity the main thread reserved.
            let mut i = 0;
            while i < old.signals.len() {
                let room = self.patch.signals.len() < self.patch.signals.capacity();
                if room && keep.contains(&old.signals[i].block) {
                    let moved = old.signals.swap_remove(i);
                    self.patch.signals.push(moved);
                } else {
                    i += 1;
                }
            }
        }
        if fade == 0 || old.signals.is_empty() && self.patch.signals.is_empty() {
            self.retire(old);
            return;
        }
        // Pair each new signal with the old one on the same state block. The old code will
        // run on a shadow copy of that block, so the new code keeps the true phase.
        for o in &mut old.signals {
            o.kept = false;
        }
        for (i, s) in self.patch.signals.iter_mut().enumerate() {
            s.entry = if i < fresh {
                Entry::FadeIn
            } else {
                Entry::Steady
            };
            if i >= fresh {
                continue;
            }
            if let Some(j) = old.signals.iter().position(|o| o.block == s.block) {
                let o = &mut old.signals[j];
                o.kept = true;
                // A replaced signal keeps its mute state.
                s.gain = o.gain;
                o.save(&self.state, true);
                s.entry = Entry::From(j);
            }
        }
        self.fading = Some(old);
        self.fade_pos = 0;
        self.fade_len = fade;
    }

    fn render_block(&mut self, frames: usize) {
        let ch = self.config.channels;
        let n = frames * ch;
        self.mix[..n].fill(0.0);
        if !self.playing {
            return;
        }
        // The clock is written only when a signal playing or fading out reads it.
        let reads = |p: &Patch| p.signals.iter().any(|s| s.code.reads_clock());
        let ticks = self.clock_out.is_on();
        if ticks || reads(&self.patch) || self.fading.as_deref().is_some_and(reads) {
            let running = self.transport.running();
            self.transport.fill(&mut self.clock, frames);
            self.midi.fill(Some(&mut self.clock), self.frame, frames);
            self.clock_out
                .fill(&self.clock, self.frame, frames, running);
        } else {
            self.transport.skip(frames);
            self.midi.fill(None, self.frame, frames);
        }
        let shape = Shape {
            frames,
            channels: ch,
            sample_rate: f64::from(self.config.sample_rate),
            clock: &self.clock,
        };
        let fading = self.fading.is_some();
        if fading {
            // Raised-cosine gains of the new patch for each frame of this block.
            let len = f64::from(self.fade_len);
            for (f, g) in self.gains[..frames].iter_mut().enumerate() {
                let x = ((f64::from(self.fade_pos) + f as f64 + 1.0) / len).min(1.0);
                *g = 0.5 - 0.5 * (std::f64::consts::PI * x).cos();
            }
        }
        for index in 0..self.patch.signals.len() {
            let signal = &mut self.patch.signals[index];
            if !signal.enabled && !signal.tail.is_playing() {
                continue;
            }
            let started = Instant::now();
            if let (Some(old), Entry::From(j)) = (&mut self.fading, signal.entry) {
                // The old code first, on its shadow state: where both write memory that is
                // not shadowed (delay lines), the new code's writes are the ones that stay.
                let old_buf = &mut self.old_buf[..n];
                let old = &mut old.signals[j];
                if let Some(fault) = render_on_shadow(&self.state, old, old_buf, shape, self.frame)
                {
                    report(&mut self.events, old, fault);
                }
                old.gain.apply(old_buf, ch);
            }
            let buf = &mut self.signal_buf[..n];
            let fault = render_checked(&self.state, signal, buf, shape, self.frame);
            if let Some(fault) = fault {
                report(&mut self.events, signal, fault);
            }
            let cost = started.elapsed();
            signal.cost += cost;
            signal.gain.apply(&mut self.signal_buf[..n], ch);
            self.meters
                .signal(signal.block.offset, &self.signal_buf[..n], cost);
            let entry = signal.entry;
            let mix = &mut self.mix[..n];
            match (&mut self.fading, entry) {
                (None, _) | (Some(_), Entry::Steady) => {
                    for (m, s) in mix.iter_mut().zip(&self.signal_buf[..n]) {
                        *m += s;
                    }
                }
                (Some(_), Entry::From(_)) => {
                    // The old code fades out as the new one fades in.
                    let old_buf = &self.old_buf[..n];
                    for (f, g) in self.gains[..frames].iter().enumerate() {
                        for c in 0..ch {
                            let i = f * ch + c;
                            mix[i] += self.signal_buf[i] * g + old_buf[i] * (1.0 - g);
                        }
                    }
                }
                (Some(_), Entry::FadeIn) => {
                    // A new signal fades in.
                    for (f, g) in self.gains[..frames].iter().enumerate() {
                        for c in 0..ch {
                            mix[f * ch + c] += self.signal_buf[f * ch + c] * g;
                        }
                    }
                }
            }
        }
        if let Some(old) = &mut self.fading {
            // Removed signals fade out on their own (real) state.
            let live = |s: &&mut PatchSignal| !s.kept && (s.enabled || s.tail.is_playing());
            for signal in old.signals.iter_mut().filter(live) {
                let buf = &mut self.old_buf[..n];
                let fault = render_checked(&self.state, signal, buf, shape, self.frame);
                if let Some(fault) = fault {
                    // A signal on its way out is reported like any other.
                    report(&mut self.events, signal, fault);
                }
                signal.gain.apply(buf, ch);
                for (f, g) in self.gains[..frames].iter().enumerate() {
                    for c in 0..ch {
                        self.mix[f * ch + c] += buf[f * ch + c] * (1.0 - g);
                    }
                }
            }
            self.fade_pos = self.fade_pos.saturating_add(frames as u32);
            if self.fade_pos >= self.fade_len {
                if let Some(old) = self.fading.take() {
                    self.retire(old);
                }
            }
        }
    }
}
