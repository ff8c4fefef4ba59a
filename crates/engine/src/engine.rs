//! The DSP core and its main-thread handle.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::counters::Counters;
use crate::signal::{Block, Fault, Patch};
use crate::state::StateMemory;

/// Largest block the engine renders at once, in frames.
pub const MAX_BLOCK: usize = 256;
/// Block size the DSP thread renders by default, in frames.
pub const DEFAULT_BLOCK: usize = 128;

const COMMAND_CAPACITY: usize = 64;
const RETIRED_CAPACITY: usize = 16;
const EVENT_CAPACITY: usize = 256;
/// Generations of patch ids the controller remembers to name faults.
const REMEMBERED_GENERATIONS: usize = 8;

/// How the engine is set up. Fixed for its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: usize,
    /// Frames per rendered block, at most [`MAX_BLOCK`].
    pub block: usize,
    /// Slots per state block (the largest block a signal can have).
    pub state_block: usize,
}

impl EngineConfig {
    /// A config with the default block sizes.
    pub fn new(sample_rate: u32, channels: usize) -> Self {
        Self {
            sample_rate,
            channels,
            block: DEFAULT_BLOCK,
            state_block: crate::state::DEFAULT_BLOCK_SLOTS,
        }
    }
}

/// A request from the main thread to the DSP thread.
#[derive(Debug)]
pub enum Command {
    /// Play this patch from the next block on; the old one goes back to be dropped.
    Swap(Box<Patch>),
    /// Render signals (the default).
    Start,
    /// Output silence and hold every signal where it is.
    Stop,
}

/// A message from the DSP thread to the main thread.
#[derive(Debug)]
enum Event {
    Fault {
        generation: u64,
        index: usize,
        fault: Fault,
    },
}

/// A fault as the main thread reports it: which signal, and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalFault {
    /// The signal's id.
    pub id: String,
    /// What went wrong.
    pub fault: Fault,
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
    let engine = Engine {
        config,
        patch: Box::default(),
        commands: cmd_rx,
        retired: retired_tx,
        events: event_tx,
        state,
        counters: counters.clone(),
        signal_buf: vec![0.0; MAX_BLOCK * config.channels],
        mix: vec![0.0; MAX_BLOCK * config.channels],
        snapshot: vec![0.0; config.state_block],
        playing: true,
        frame: 0,
    };
    let controller = Controller {
        commands: cmd_tx,
        retired: retired_rx,
        events: event_rx,
        counters,
        generation: 0,
        names: VecDeque::new(),
        pending: VecDeque::new(),
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
    mix: Vec<f64>,
    snapshot: Vec<f64>,
    playing: bool,
    frame: u64,
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
    /// soft-clips each channel with `tanh`. Real-time safe: the engine itself allocates,
    /// frees and locks nothing here.
    pub fn process(&mut self, out: &mut [f32]) {
        let ch = self.config.channels;
        assert_eq!(out.len() % ch, 0, "output is not made of whole frames");
        for chunk in out.chunks_mut(self.config.block * ch) {
            self.apply_commands();
            let started = Instant::now();
            let frames = chunk.len() / ch;
            self.render_block(frames);
            for (o, m) in chunk.iter_mut().zip(&self.mix) {
                *o = m.tanh() as f32;
            }
            self.frame += frames as u64;
            let budget = frames as f64 / f64::from(self.config.sample_rate);
            self.counters
                .add_block(frames, started.elapsed().as_secs_f64() / budget);
        }
    }

    fn apply_commands(&mut self) {
        while let Ok(command) = self.commands.peek() {
            // A swap needs room to send the old patch back: never drop it here.
            if matches!(command, Command::Swap(_)) && self.retired.is_full() {
                return;
            }
            let Ok(command) = self.commands.pop() else {
                return;
            };
            match command {
                Command::Swap(patch) => {
                    let old = std::mem::replace(&mut self.patch, patch);
                    if let Err(rtrb::PushError::Full(old)) = self.retired.push(old) {
                        // Checked above; keep it alive rather than free it here.
                        std::mem::forget(old);
                    }
                }
                Command::Start => self.playing = true,
                Command::Stop => self.playing = false,
            }
        }
    }

    fn render_block(&mut self, frames: usize) {
        let ch = self.config.channels;
        let n = frames * ch;
        let mix = &mut self.mix[..n];
        mix.fill(0.0);
        if !self.playing {
            return;
        }
        let generation = self.patch.generation;
        for (index, signal) in self.patch.signals.iter_mut().enumerate() {
            if !signal.enabled {
                continue;
            }
            let buf = &mut self.signal_buf[..n];
            buf.fill(0.0);
            let saved = &mut self.snapshot[..signal.block.len.min(self.config.state_block)];
            let saved_block = crate::state::StateBlock {
                offset: signal.block.offset,
                len: saved.len(),
            };
            self.state.save(saved_block, saved);
            let mut block = Block {
                frames,
                channels: ch,
                sample_rate: f64::from(self.config.sample_rate),
                out: buf,
            };
            let result = signal.code.render(&mut block);
            let (good, fault) = match result {
                Ok(()) => match buf.iter().position(|x| !x.is_finite()) {
                    None => (n, None),
                    Some(pos) => (
                        pos - pos % ch,
                        Some(Fault::NonFinite {
                            value: buf[pos],
                            channel: pos % ch,
                            frame: self.frame + (pos / ch) as u64,
                        }),
                    ),
                },
                Err(fault) => (0, Some(fault)),
            };
            for (m, s) in mix.iter_mut().zip(&buf[..good]) {
                *m += s;
            }
            if let Some(fault) = fault {
                signal.enabled = false;
                self.state.restore(saved_block, saved);
                let event = Event::Fault {
                    generation,
                    index,
                    fault,
                };
                if let Err(rtrb::PushError::Full(event)) = self.events.push(event) {
                    // The main thread is not listening; a lost report must not free here.
                    std::mem::forget(event);
                }
            }
        }
    }
}

/// The main thread's handle on an [`Engine`]: sends commands, collects what comes back.
pub struct Controller {
    commands: Producer<Command>,
    retired: Consumer<Box<Patch>>,
    events: Consumer<Event>,
    counters: Arc<Counters>,
    generation: u64,
    names: VecDeque<(u64, Vec<String>)>,
    pending: VecDeque<Command>,
}

impl Controller {
    /// Sends `patch` to be played from the next block on.
    ///
    /// Returns the generation number given to the patch.
    pub fn swap(&mut self, mut patch: Patch) -> u64 {
        self.generation += 1;
        patch.generation = self.generation;
        let ids = patch.signals.iter().map(|s| s.id.clone()).collect();
        self.names.push_back((self.generation, ids));
        while self.names.len() > REMEMBERED_GENERATIONS {
            self.names.pop_front();
        }
        self.send(Command::Swap(Box::new(patch)));
        self.generation
    }

    /// Resumes rendering signals.
    pub fn start(&mut self) {
        self.send(Command::Start);
    }

    /// Silences the output and holds every signal where it is.
    pub fn stop(&mut self) {
        self.send(Command::Stop);
    }

    fn send(&mut self, command: Command) {
        // Commands wait here, in order, while the queue is full.
        self.pending.push_back(command);
        self.flush();
    }

    /// True when every command sent has reached the queue.
    pub fn is_flushed(&self) -> bool {
        self.pending.is_empty()
    }

    fn flush(&mut self) {
        while let Some(command) = self.pending.pop_front() {
            if let Err(rtrb::PushError::Full(command)) = self.commands.push(command) {
                self.pending.push_front(command);
                return;
            }
        }
    }

    /// Drops the patches the engine handed back and returns the faults it reported.
    ///
    /// Call it regularly (every few tens of milliseconds) from the main thread.
    pub fn collect(&mut self) -> Vec<SignalFault> {
        self.flush();
        while let Ok(patch) = self.retired.pop() {
            drop(patch);
        }
        let mut faults = Vec::new();
        while let Ok(Event::Fault {
            generation,
            index,
            fault,
        }) = self.events.pop()
        {
            let id = self
                .names
                .iter()
                .find(|(g, _)| *g == generation)
                .and_then(|(_, ids)| ids.get(index).cloned())
                .unwrap_or_else(|| format!("#{index}"));
            faults.push(SignalFault { id, fault });
        }
        faults
    }

    /// The live counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}
