//! The loader on any source text: the nesting scan, oxc's instrumentation, QuickJS and the
//! Cranelift compiler, on both `TierChoice::Auto` and `TierChoice::Js`; each signal of a
//! load then renders two blocks (native kernels and `update`s run). A small state memory
//! and low time and memory limits keep each input short.

#![no_main]

use std::sync::Arc;
use std::time::Duration;

use flux_engine::{Block, StateAllocator, StateMemory, STILL};
use flux_js::{LoadOptions, Loader, TierChoice};
use libfuzzer_sys::fuzz_target;

/// Where the source claims to be: a folder that does not exist, so no import resolves.
const NAME: &str = "/nonexistent-flux-fuzz/fuzz.js";
/// Frames of each block a signal renders.
const FRAMES: usize = 64;

fn load(tier: TierChoice, source: &str) {
    let slots = 1024;
    let mut loader = Loader::new(
        Arc::new(StateMemory::new(slots)),
        StateAllocator::new(slots, 64),
        LoadOptions {
            load_time_limit: Duration::from_millis(50),
            update_time_limit: Duration::from_millis(5),
            memory_limit: 32 << 20,
            tier,
            ..LoadOptions::default()
        },
    );
    let Ok(loaded) = loader.load_source(NAME, source) else {
        return;
    };
    let mut out = [0.0; FRAMES];
    for mut signal in loaded.patch.into_signals() {
        for _ in 0..2 {
            let mut block = Block {
                frames: FRAMES,
                channels: 1,
                sample_rate: 48_000.0,
                clock: &STILL,
                out: &mut out,
            };
            // A fault disables the signal, as the engine does.
            if signal.code.render(&mut block).is_err() {
                break;
            }
        }
    }
}

fuzz_target!(|source: &str| {
    load(TierChoice::Auto, source);
    load(TierChoice::Js, source);
});
