//! Signals written in Rust, for testing the engine without a JavaScript tier.
#![allow(
    dead_code,
    missing_docs,
    reason = "shared by several test binaries, each using a part"
)]

use std::sync::Arc;

use flux_engine::{Block, Fault, Signal, StateBlock, StateMemory, Tier};

/// A sine oscillator keeping its phase in slot 0 of its block, as the seed's examples do.
pub struct Sine {
    pub state: Arc<StateMemory>,
    pub block: StateBlock,
    pub freq: f64,
    pub gain: f64,
}

/// A cosine on the same phase slot as [`Sine`]: a different shape, the same phase.
pub struct Cosine(pub Sine);

impl Signal for Cosine {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        let s = &self.0;
        let slot = s.block.offset;
        for frame in b.out.chunks_mut(b.channels) {
            let phase = (s.state.get(slot).unwrap() + s.freq / b.sample_rate) % 1.0;
            s.state.set(slot, phase);
            frame.fill((phase * std::f64::consts::TAU).cos() * s.gain);
        }
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

impl Signal for Sine {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        let slot = self.block.offset;
        for frame in b.out.chunks_mut(b.channels) {
            let phase = (self.state.get(slot).unwrap() + self.freq / b.sample_rate) % 1.0;
            self.state.set(slot, phase);
            let s = (phase * std::f64::consts::TAU).sin() * self.gain;
            frame.fill(s);
        }
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

/// Advances its slot like a sine, then returns NaN from frame `bad_at` of its life on.
pub struct GoesBad {
    pub state: Arc<StateMemory>,
    pub block: StateBlock,
    pub bad_at: u64,
    pub frames: u64,
}

impl Signal for GoesBad {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        for frame in b.out.chunks_mut(b.channels) {
            let slot = self.block.offset;
            self.state.set(slot, self.state.get(slot).unwrap() + 1.0);
            let s = if self.frames >= self.bad_at {
                f64::NAN
            } else {
                0.25
            };
            frame.fill(s);
            self.frames += 1;
        }
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

/// Fails with an error on its first block.
pub struct Throws;

impl Signal for Throws {
    fn render(&mut self, _: &mut Block<'_>) -> Result<(), Fault> {
        Err(Fault::Error("signals.js:3:9: Error: boom".into()))
    }

    fn tier(&self) -> Tier {
        Tier::Js
    }
}

/// Plays 0.25 for `ok_blocks` blocks, then fails with `fault` from then on. The fault is
/// made beforehand, so failing allocates nothing; a `location` names native faults.
pub struct FailsLater {
    pub ok_blocks: u32,
    pub fault: Option<Fault>,
    pub location: Option<&'static str>,
}

impl Signal for FailsLater {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        if self.ok_blocks == 0 {
            return Err(self.fault.take().unwrap_or(Fault::ReturnedUndefined));
        }
        self.ok_blocks -= 1;
        b.out.fill(0.25);
        Ok(())
    }

    fn tier(&self) -> Tier {
        if self.location.is_some() {
            Tier::Native
        } else {
            Tier::Js
        }
    }

    fn location(&self) -> Option<&str> {
        self.location
    }
}

/// An engine of one channel at `sample_rate` playing [`Sine`] `tone` (`freq` Hz, `gain`).
pub fn tone_engine(
    sample_rate: u32,
    freq: f64,
    gain: f64,
) -> (flux_engine::Controller, flux_engine::Engine) {
    let state = Arc::new(StateMemory::new(4096));
    let mut alloc = flux_engine::StateAllocator::new(4096, 64);
    let (mut ctl, eng) = flux_engine::engine(
        flux_engine::EngineConfig::new(sample_rate, 1),
        state.clone(),
    );
    let block = alloc.block_of("tone").unwrap();
    let tone = Sine {
        state,
        block,
        freq,
        gain,
    };
    ctl.swap(flux_engine::Patch::new(vec![
        flux_engine::PatchSignal::new("tone", block, Box::new(tone)),
    ]));
    (ctl, eng)
}
