//! An engine and a loader on one tier, for the tests of what signals read from the
//! transport and from MIDI in (`clock.rs`, `midi.rs`): load, render, and compare tiers.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

use std::sync::Arc;

use flux_engine::{engine, Controller, Engine, EngineConfig, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader, TierChoice};

/// The sample rate of every rig.
pub const SR: u32 = 48_000;

/// A loader and an engine sharing a state memory, on one tier.
pub struct Rig {
    pub loader: Loader,
    pub ctl: Controller,
    pub eng: Engine,
    pub tier: Tier,
    pub channels: usize,
}

/// A rig of `channels` channels whose loads run on `tier`.
pub fn rig(tier: TierChoice, channels: usize) -> Rig {
    let state = Arc::new(StateMemory::new(1 << 16));
    let options = LoadOptions {
        sample_rate: SR,
        channels,
        tier,
        ..LoadOptions::default()
    };
    let loader = Loader::new(state.clone(), StateAllocator::new(1 << 16, 64), options);
    let (ctl, eng) = engine(EngineConfig::new(SR, channels), state);
    let tier = if tier == TierChoice::Native {
        Tier::Native
    } else {
        Tier::Js
    };
    Rig {
        loader,
        ctl,
        eng,
        tier,
        channels,
    }
}

impl Rig {
    /// Loads `source` (as `clock.js`), checks every signal runs on the rig's tier, and
    /// swaps it in.
    pub fn swap(&mut self, source: &str) {
        let loaded = self
            .loader
            .load_source("clock.js", source)
            .unwrap_or_else(|d| panic!("{d}\n{source}"));
        for s in &loaded.signals {
            assert_eq!(s.tier, self.tier, "{}: {:?}", s.id, s.reason);
        }
        self.ctl.swap(loaded.patch);
    }

    /// Renders `frames` frames in uneven chunks.
    pub fn render(&mut self, frames: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; frames * self.channels];
        for chunk in out.chunks_mut(101 * self.channels) {
            self.eng.process(chunk);
        }
        out
    }
}

/// Runs `scenario` on both tiers, asserts they agree bit for bit, returns the output.
pub fn both(channels: usize, scenario: impl Fn(&mut Rig) -> Vec<f32>) -> Vec<f32> {
    let js = scenario(&mut rig(TierChoice::Js, channels));
    let native = scenario(&mut rig(TierChoice::Native, channels));
    assert_eq!(js.len(), native.len());
    for (i, (a, b)) in js.iter().zip(&native).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "sample {i}: js {a} native {b}");
    }
    native
}
