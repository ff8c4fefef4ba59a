//! The transport's clock on both tiers: every signal reads the same values to the frame,
//! whenever it was made; sequencing units fire on their frames; tempo glides stay smooth.

use std::sync::Arc;

use flux_engine::{engine, Controller, Engine, EngineConfig, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader, TierChoice};

const SR: u32 = 48_000;

struct Rig {
    loader: Loader,
    ctl: Controller,
    eng: Engine,
    tier: Tier,
    channels: usize,
}

fn rig(tier: TierChoice, channels: usize) -> Rig {
    let state = Arc::new(StateMemory::new(1 << 16));
    let loader = Loader::new(
        state.clone(),
        StateAllocator::new(1 << 16, 64),
        LoadOptions {
            sample_rate: SR,
            channels,
            tier,
            ..LoadOptions::default()
        },
    );
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
    fn swap(&mut self, source: &str) {
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
    fn render(&mut self, frames: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; frames * self.channels];
        for chunk in out.chunks_mut(101 * self.channels) {
            self.eng.process(chunk);
        }
        out
    }
}

/// Runs `scenario` on both tiers, asserts they agree bit for bit, returns the output.
fn both(channels: usize, scenario: impl Fn(&mut Rig) -> Vec<f32>) -> Vec<f32> {
    let js = scenario(&mut rig(TierChoice::Js, channels));
    let native = scenario(&mut rig(TierChoice::Native, channels));
    assert_eq!(js.len(), native.len());
    for (i, (a, b)) in js.iter().zip(&native).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "sample {i}: js {a} native {b}");
    }
    native
}

#[test]
fn a_signal_added_later_reads_the_same_beat() {
    let first = "flux('a', () => ({ update: () => [clock.beat * 1e-3, 0] }));";
    let second = "flux('a', () => ({ update: () => [clock.beat * 1e-3, 0] }));\n\
                  play('late', (s) => [0, s.beat * 1e-3]);";
    let out = both(2, |rig| {
        rig.swap(first);
        let mut out = rig.render(62_400);
        rig.swap(second);
        out.extend(rig.render(20_000));
        out
    });
    // From 1.3 s on, both channels carry the same beat (from 2.6 on), frame by frame.
    let frames: Vec<&[f32]> = out.chunks(2).collect();
    assert_eq!(frames[62_399][1], 0.0);
    assert!(frames[62_400][1] > 0.0);
    for (f, frame) in frames.iter().enumerate().skip(62_400) {
        assert_eq!(frame[0], frame[1], "frame {f}");
    }
    assert!((f64::from(frames[62_400][1]).atanh() * 1e3 - 2.6).abs() < 1e-3);
}
