//! The Flux JavaScript tier: embedded QuickJS (QuickJS-ng, through rquickjs), the Flux JS API,
//! and loading signals files into [`flux_engine::Patch`]es.
//!
//! A [`Loader`] evaluates a file (a script, or an ES module whose `import ... from
//! '.../flux.js'` gets the built-in API) in a new runtime. The file calls `flux(id, factory)`;
//! each factory runs at once with `(mem, idx)`: `mem` is `globalThis.FLUX_STATE`, a
//! `Float64Array` over the engine's state memory, `idx` the offset of the id's block. The
//! `update(sr)` of the object it returns becomes a signal of the patch, called once per frame
//! on the DSP thread.
//!
//! Loading is all-or-nothing: a file that fails gives a [`Diagnostic`] with `file:line:col`
//! and no patch. A signal that fails while it plays (throws, returns a bad value, or runs
//! past its time limit) returns a [`flux_engine::Fault`] to the engine, which silences it.
//!
//! The interpreter allocates as it runs; the JavaScript tier is not real-time safe and relies
//! on the ring buffer to absorb its jitter.

mod capture;
mod cartridge;
mod diag;
mod hooks;
mod library;
mod loader;
mod modules;
mod samples;
mod trial;

pub use diag::{Diagnostic, Location};
pub use loader::{
    Action, LoadOptions, Loaded, Loader, SignalInfo, TierChoice, UnitReport, MAX_FIRST_COL,
    MAX_FIRST_LINE, RECLAIM_AFTER,
};
pub use modules::{read_source, SourceError, MAX_SOURCE_BYTES};
pub use trial::Trial;
