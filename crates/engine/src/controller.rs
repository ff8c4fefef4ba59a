//! The main thread's handle on the engine: sends commands and patches, takes back the
//! patches the engine is done with and the faults it reported.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use rtrb::{Consumer, Producer};

use crate::counters::Counters;
use crate::engine::{Command, EngineConfig, Event, PENDING_LIMIT};
use crate::master::MasterConfig;
use crate::meter::MeterReader;
use crate::midi::MidiSender;
use crate::signal::{Fault, Patch, Tail};
use crate::state::StateBlock;
use crate::transport::{ClockReader, Quantize};

/// A fault as the main thread reports it: which signal, and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalFault {
    /// The signal's id.
    pub id: String,
    /// What went wrong.
    pub fault: Fault,
    /// `file:line:col` of the signal's code ([`Signal::location`](crate::Signal::location)),
    /// when it knows it: the place of faults that carry none (NaN, too loud, overrun).
    pub location: Option<String>,
}
/// How the main thread names a signal in fault reports.
#[derive(Debug)]
pub(crate) struct Name {
    id: String,
    /// `file:line:col` of its code, when the signal knows it.
    location: Option<String>,
}

/// The main thread's handle on an [`Engine`](crate::Engine): sends commands, collects what
/// comes back.
pub struct Controller {
    pub(crate) commands: Producer<Command>,
    pub(crate) retired: Consumer<Box<Patch>>,
    pub(crate) events: Consumer<Event>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) generation: u64,
    /// Signals sent to the engine and not yet handed back, by key: to name their faults.
    pub(crate) names: HashMap<u64, Name>,
    /// Generations of the patches sent and not handed back yet.
    pub(crate) live: BTreeSet<u64>,
    /// The sending end of MIDI in, until someone takes it.
    pub(crate) midi: Option<MidiSender>,
    /// The reading end of MIDI clock out, until someone takes it.
    pub(crate) midi_clock: Option<crate::midi::clock_out::ClockTicks>,
    pub(crate) next_key: u64,
    pub(crate) pending: VecDeque<Command>,
    /// Commands dropped because `pending` was full.
    pub(crate) dropped: u64,
    pub(crate) fade: u32,
    pub(crate) quantize: Quantize,
    pub(crate) clock_reader: ClockReader,
    pub(crate) config: EngineConfig,
    pub(crate) meter_reader: MeterReader,
}

impl Controller {
    /// Sets the crossfade of later swaps, in frames (0, the default: switch at once).
    pub fn set_fade(&mut self, frames: u32) {
        self.fade = frames;
    }

    /// Frames a signal fades out over after a fault: the crossfade, at least 5 ms.
    pub fn fault_fade(&self) -> u32 {
        self.fade.max(self.config.sample_rate / 200)
    }

    /// Quantizes later swaps and merges: each waits for the first frame whose beat reaches
    /// the next boundary, and its crossfade starts there ([`Quantize::None`], the default:
    /// the next block).
    pub fn set_quantize(&mut self, quantize: Quantize) {
        self.quantize = quantize;
    }

    /// The quantization of later swaps.
    pub fn quantize(&self) -> Quantize {
        self.quantize
    }

    /// Sends `patch` to be played from the next block on (or the next boundary, under
    /// [`set_quantize`](Controller::set_quantize)), crossfading from the running one.
    ///
    /// Returns the generation number given to the patch.
    pub fn swap(&mut self, mut patch: Patch) -> u64 {
        self.generation += 1;
        patch.generation = self.generation;
        patch.quantize = self.quantize;
        for s in &mut patch.signals {
            self.next_key += 1;
            s.key = self.next_key;
            s.tail = Tail::new(self.config.channels, self.fault_fade());
            let name = Name {
                id: s.id.clone(),
                location: s.code.location().map(str::to_owned),
            };
            self.names.insert(s.key, name);
        }
        self.live.insert(self.generation);
        let fade = self.fade;
        self.send(Command::Swap {
            patch: Box::new(patch),
            fade,
        });
        self.generation
    }

    /// Sends `patch` to be merged into the running one: the running signals on the state
    /// blocks in `keep` stay as they are; the others are replaced by (or crossfade into) the
    /// patch's signals on the same blocks, or fade out.
    ///
    /// Returns the generation number given to the merged patch.
    pub fn merge(&mut self, mut patch: Patch, keep: Vec<StateBlock>) -> u64 {
        patch.signals.reserve(keep.len());
        patch.keep = Some(keep);
        self.swap(patch)
    }

    /// The largest gain of a signal or of the master: 4 (+12 dB). Gains are clamped to
    /// `0.0..=MAX_GAIN`.
    pub const MAX_GAIN: f64 = 4.0;

    /// Ramps the gain of the signal on `block` to `gain` over `fade` frames (0 mutes).
    ///
    /// The gain is clamped to `0.0..=MAX_GAIN`; a gain that is not finite is ignored.
    pub fn set_gain(&mut self, block: StateBlock, gain: f64, fade: u32) {
        if let Some(gain) = Self::clamp_gain(gain) {
            self.send(Command::Gain {
                block: block.offset,
                gain,
                fade,
            });
        }
    }

    /// Ramps the master gain to `gain` over `fade` frames.
    ///
    /// The gain is clamped to `0.0..=MAX_GAIN`; a gain that is not finite is ignored.
    pub fn set_master(&mut self, gain: f64, fade: u32) {
        if let Some(gain) = Self::clamp_gain(gain) {
            self.send(Command::Master { gain, fade });
        }
    }

    /// Sets up the master stage (mode, ceiling, DC blocker) from the next block on.
    ///
    /// # Errors
    ///
    /// A ceiling out of range (see [`MasterConfig::check`]); nothing is sent.
    pub fn set_master_stage(&mut self, config: MasterConfig) -> Result<(), String> {
        config.check()?;
        self.send(Command::MasterStage(config));
        Ok(())
    }

    /// The reader of the engine's meters (see [`MeterReader`]).
    pub fn meters(&self) -> MeterReader {
        self.meter_reader.clone()
    }

    /// `gain` clamped to `0.0..=MAX_GAIN`, or `None` when it is not finite.
    pub fn clamp_gain(gain: f64) -> Option<f64> {
        gain.is_finite().then(|| gain.clamp(0.0, Self::MAX_GAIN))
    }

    /// Turns the overload policy on with `limit` (the DSP thread's CPU time over each
    /// block's duration, clamped to [`OVERLOAD_RANGE`]) or off (`None`, the default; also
    /// for a limit that is not a number). See [`crate::overload`].
    ///
    /// [`OVERLOAD_RANGE`]: crate::overload::OVERLOAD_RANGE
    pub fn set_overload(&mut self, limit: Option<f64>) {
        self.send(Command::Overload(limit));
    }

    /// Resumes rendering signals.
    pub fn start(&mut self) {
        self.send(Command::Start);
    }

    /// Silences the output and holds every signal where it is.
    pub fn stop(&mut self) {
        self.send(Command::Stop);
    }

    /// Fades the whole output out over [`PANIC_FADE`](crate::PANIC_FADE) and stops, until
    /// [`start`] (which fades it back in as fast).
    ///
    /// [`start`]: Controller::start
    pub fn panic(&mut self) {
        self.send(Command::Panic);
    }

    pub(crate) fn send(&mut self, command: Command) {
        self.flush();
        // Commands wait here, in order, while the queue is full; an engine that does not
        // take them (stalled or dead) does not make them pile up without end.
        if self.pending.len() >= PENDING_LIMIT {
            self.dropped += 1;
            if let Command::Swap { patch, .. } = &command {
                for s in &patch.signals {
                    self.names.remove(&s.key);
                }
                self.live.remove(&patch.generation);
            }
            return;
        }
        self.pending.push_back(command);
        self.flush();
    }

    /// Commands dropped because the engine did not take them and [`PENDING_LIMIT`] were
    /// already waiting: nonzero means the engine has stopped taking commands.
    pub fn dropped_commands(&self) -> u64 {
        self.dropped
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
        // Patches first: the engine reported their faults before handing them back, so
        // the events read next include every fault of theirs, named before they go.
        let mut retired = Vec::new();
        while let Ok(patch) = self.retired.pop() {
            retired.push(patch);
        }
        let mut faults = Vec::new();
        while let Ok(Event::Fault { key, block, fault }) = self.events.pop() {
            faults.push(self.name(key, block, fault));
        }
        for patch in retired {
            for s in &patch.signals {
                self.names.remove(&s.key);
            }
            self.live.remove(&patch.generation);
        }
        faults
    }

    /// Names a fault's signal, and turns a native fault into a message with its place.
    fn name(&self, key: u64, block: usize, fault: Fault) -> SignalFault {
        let name = self.names.get(&key);
        let id = name.map_or_else(|| format!("@{block}"), |n| n.id.clone());
        let at = name
            .and_then(|n| n.location.as_deref())
            .map(|l| format!("{l}: "))
            .unwrap_or_default();
        let fault = match fault {
            Fault::OutOfFuel { iterations } => Fault::Error(
                format!(
                    "{at}update of '{id}' ran {iterations} loop iterations in one block (an endless loop?)"
                )
                .into(),
            ),
            Fault::ReturnedUndefined => Fault::Error(
                format!(
                    "{at}TypeError: update of '{id}' returned undefined; expected a number or an array of numbers"
                )
                .into(),
            ),
            other => other,
        };
        let location = name.and_then(|n| n.location.clone());
        SignalFault {
            id,
            fault,
            location,
        }
    }

    /// The sending end of MIDI in (see [`crate::midi`]), for the thread that receives MIDI;
    /// `None` once taken.
    pub fn take_midi(&mut self) -> Option<MidiSender> {
        self.midi.take()
    }

    /// The reading end of MIDI clock out (see [`crate::midi::clock_out`]), for the thread
    /// that writes MIDI; taking it turns clock out on. `None` once taken.
    pub fn take_midi_clock(&mut self) -> Option<crate::midi::clock_out::ClockTicks> {
        self.midi_clock.take().map(|t| t.turn_on())
    }

    /// The generation of the last patch sent (0 before the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The oldest generation of a patch the engine may still play: every patch before it
    /// has been handed back (see [`collect`](Self::collect)). State that only older patches
    /// used can be given to new signals.
    pub fn oldest_live(&self) -> u64 {
        self.live.first().copied().unwrap_or(self.generation + 1)
    }

    /// The live counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}
