//! The loader on any source text: the nesting scan, oxc's instrumentation, QuickJS and the
//! Cranelift compiler, on both `TierChoice::Auto` and `TierChoice::Js`; each signal of a
//! load then renders two blocks (native kernels and `update`s run). A small state memory
//! and low time and memory limits keep each input short.
//!
//! The tiers must agree: a signal that `Auto` compiled natively and that renders both
//! blocks on both tiers without a fault gives the same numbers on both, or the target
//! panics (a finding). 0 and -0, which mix to the same sample, count as equal, as do two
//! NaNs. Sources that name `random` are not compared: `Math.random` is not the same
//! generator on the two tiers.

#![no_main]

use std::sync::Arc;
use std::time::Duration;

use flux_engine::{Block, StateAllocator, StateMemory, Tier, STILL};
use flux_js::{LoadOptions, Loader, TierChoice};
use libfuzzer_sys::fuzz_target;

/// Where the source claims to be: a folder that does not exist, so no import resolves.
const NAME: &str = "/nonexistent-flux-fuzz/fuzz.js";
/// Frames of each block a signal renders.
const FRAMES: usize = 64;

/// What one signal of a load did: its id, its tier, and its two blocks (`None`: it
/// faulted).
type Rendered = (String, Tier, Option<Vec<u64>>);

fn load(tier: TierChoice, source: &str) -> Vec<Rendered> {
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
        return Vec::new();
    };
    let tiers: Vec<Tier> = loaded.signals.iter().map(|s| s.tier).collect();
    let mut rendered = Vec::new();
    for (signal, tier) in loaded.patch.into_signals().into_iter().zip(tiers) {
        let mut signal = signal;
        let mut bits = Some(Vec::with_capacity(2 * FRAMES));
        for _ in 0..2 {
            let mut out = [0.0; FRAMES];
            let mut block = Block {
                frames: FRAMES,
                channels: 1,
                sample_rate: 48_000.0,
                clock: &STILL,
                out: &mut out,
            };
            // A fault disables the signal, as the engine does.
            if signal.code.render(&mut block).is_err() {
                bits = None;
                break;
            }
            if let Some(b) = &mut bits {
                b.extend(out.iter().map(|x| x.to_bits()));
            }
        }
        rendered.push((signal.id.clone(), tier, bits));
    }
    rendered
}

fuzz_target!(|source: &str| {
    let auto = load(TierChoice::Auto, source);
    let js = load(TierChoice::Js, source);
    // `Math.random` differs between the tiers by design (native code draws from a
    // generator seeded with `--seed`, QuickJS from its own): no comparison then.
    if source.contains("random") {
        return;
    }
    for (id, tier, bits) in &auto {
        let Some((_, _, Some(theirs))) = js.iter().find(|(other, _, _)| other == id) else {
            continue;
        };
        if let (Tier::Native, Some(ours)) = (tier, bits) {
            // Equal as numbers: 0 and -0 mix to the same sample; NaNs (which the engine
            // takes for a fault) are equal whatever their bits.
            let same = |a: &u64, b: &u64| {
                let (a, b) = (f64::from_bits(*a), f64::from_bits(*b));
                a == b || a.is_nan() && b.is_nan()
            };
            if let Some(at) = ours.iter().zip(theirs).position(|(a, b)| !same(a, b)) {
                panic!(
                    "signal '{id}': the tiers differ at frame {at}: native {} against js {}",
                    f64::from_bits(ours[at]),
                    f64::from_bits(theirs[at])
                );
            }
        }
    }
});
