//! The Flux DSP core.
//!
//! The engine knows nothing of JavaScript, files, sockets or devices. It is built in a few
//! steps:
//!
//! 1. A [`StateMemory`] of f64 slots outlives every reload; a [`StateAllocator`] gives each
//!    signal id a block of it for the life of the process.
//! 2. A loader (the `flux-js` crate) turns a file into a [`Patch`]: a list of
//!    [`PatchSignal`]s, each with its id, its state block and its code (a [`Signal`]).
//! 3. [`engine()`] makes an [`Engine`] (the DSP side) and a [`Controller`] (the main side),
//!    joined by lock-free queues: commands go one way, retired patches and faults come back,
//!    so nothing is ever freed on the DSP thread.
//! 4. [`DspThread::spawn`] runs the engine on its own thread, rendering into a lock-free
//!    ring that an output drains through an [`OutputReader`]. An offline render calls
//!    [`Engine::process`] directly instead: same engine, no ring, no clock.
//! 5. The mix leaves through a [`MasterStage`] (`tanh`, a limiter, a clip or nothing);
//!    [`meter`]s measure each signal and the master on the way ([`Controller::meters`]).
//! 6. A [`tap()`] gives readers off the DSP thread (a recorder, a scope) a copy of what
//!    plays; the DSP thread drops blocks there rather than wait for a slow reader.
//!
//! Which thread may call what: [`Engine`] methods run on the thread that renders; the
//! [`Controller`], the allocator and patch building run on the main thread; [`Counters`]
//! are read from anywhere.

// The state memory's slots are shared with signal code that stores them with plain
// aligned 8-byte stores (QuickJS's Float64Array, native kernels): those are single,
// untearable accesses only on 64-bit targets (see docs/ARCHITECTURE.md, "State memory").
#[cfg(not(all(target_has_atomic = "64", target_pointer_width = "64")))]
compile_error!(
    "flux-engine needs a 64-bit target: 8-byte stores into the state memory could tear here"
);

mod allocator;
mod controller;
mod counters;
mod engine;
mod guard;
pub mod master;
pub mod meter;
pub mod midi;
pub mod overload;
mod signal;
mod state;
mod tap;
mod thread;
mod transport;

pub use allocator::{Checkpoint, StateAllocator, StateFull};
pub use controller::{Controller, SignalFault};
pub use counters::{Counters, Stats, Underrun, UNDERRUN_LOG};
pub use engine::{
    engine, Command, Engine, EngineConfig, DEFAULT_BLOCK, MAX_BLOCK, MAX_SAMPLE, PANIC_FADE,
    PENDING_LIMIT,
};
pub use guard::{first_bad_sample, trial, TrialSpec};
pub use master::{MasterConfig, MasterMode, MasterStage};
pub use meter::{Level, MeterReader};
pub use midi::{MidiEvent, MidiSender, MidiValues, MIDI_VOICES};
pub use rtrb;
pub use signal::{Block, Fault, Footprint, Patch, PatchSignal, Signal, Tier};
pub use state::{StateBlock, StateMemory, DEFAULT_BLOCK_SLOTS, DEFAULT_GUARD_SLOTS, DEFAULT_SLOTS};
pub use tap::{tap, Tap, TapReader};
pub use thread::{Drive, DspFailure, DspThread, OutputReader, STALL_LIMIT, STOP_WAIT};
pub use transport::{
    Clock, ClockReader, ClockReading, Quantize, DEFAULT_BPM, MAX_BPM, MAX_METER, MIN_BPM, STILL,
};
