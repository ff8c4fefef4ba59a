//! The Flux native tier: signals' `update` closures compiled to machine code with Cranelift.
//!
//! Two steps, around the JavaScript tier's load:
//!
//! 1. Before QuickJS runs a file, [`analyze::instrument`] tags every function in it, so that
//!    each closure object can tell its source and the values it captures.
//! 2. Once the file has loaded, [`compile`] takes each signal's `update` (by tag id) with
//!    its captured values and compiles it to a kernel that renders a whole block. A
//!    [`NativeSignal`] runs it on the DSP thread without allocating. What the compiler does
//!    not handle is [`Unsupported`], with the construct and its `line:col`; that signal
//!    stays on the JavaScript tier.
//!
//! Kernels compute what QuickJS computes, bit for bit: the same C library functions for
//! `Math`, `fmod` for `%`, JavaScript's rules for `Math.round`, `**` and ToInt32, and the
//! evaluation order of the source. Loops carry fuel; kernels touch the state memory only
//! at indices checked against its length.

pub mod analyze;
mod compile;
mod kernel;
mod lines;
pub mod skim;
pub mod units;

pub use compile::{compile, Captured, Request, Source, Target, Unsupported};
pub use kernel::{NativeSignal, FUEL_PER_BLOCK};
pub use lines::LineIndex;
