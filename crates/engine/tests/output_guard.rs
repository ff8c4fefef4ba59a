//! Nothing bad reaches the ears: gains are clamped, and no NaN or infinity leaves
//! `Engine::process`.

use std::sync::Arc;

use flux_engine::{
    engine, Block, Controller, EngineConfig, Fault, Patch, PatchSignal, Signal, StateAllocator,
    StateMemory, Tier,
};

const SR: u32 = 48_000;

/// Plays one value for ever.
struct Constant(f64);

impl Signal for Constant {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        b.out.fill(self.0);
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

/// A patch of one constant signal per value.
fn constants(alloc: &mut StateAllocator, values: &[f64]) -> Patch {
    Patch::new(
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let id = format!("c{i}");
                let block = alloc.block_of(&id).unwrap();
                PatchSignal::new(id, block, Box::new(Constant(v)))
            })
            .collect(),
    )
}

fn setup() -> (Arc<StateMemory>, StateAllocator) {
    (
        Arc::new(StateMemory::new(4096)),
        StateAllocator::new(4096, 64),
    )
}

#[test]
fn master_gain_is_clamped_to_4_and_a_non_finite_gain_is_ignored() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state);
    ctl.set_fade(0);
    ctl.swap(constants(&mut alloc, &[0.1]));
    let mut out = vec![0.0f32; 256];
    eng.process(&mut out);
    assert_eq!(out[255], 0.1f64.tanh() as f32);
    ctl.set_master(1e300, 0);
    eng.process(&mut out);
    assert_eq!(out[255], 0.4f64.tanh() as f32);
    for bad in [f64::INFINITY, f64::NAN, f64::NEG_INFINITY] {
        ctl.set_master(bad, 0);
        eng.process(&mut out);
        assert_eq!(out[255], 0.4f64.tanh() as f32, "after set_master({bad})");
    }
    ctl.set_master(-3.0, 0);
    eng.process(&mut out);
    assert_eq!(out[255], 0.0);
    assert_eq!(Controller::clamp_gain(f64::NAN), None);
    assert_eq!(Controller::clamp_gain(9.0), Some(Controller::MAX_GAIN));
    // A signal's gain too.
    ctl.set_master(1.0, 0);
    ctl.set_gain(alloc.get("c0").unwrap(), f64::INFINITY, 0);
    eng.process(&mut out);
    assert_eq!(out[255], 0.1f64.tanh() as f32);
}

#[test]
fn signals_loud_enough_to_overflow_the_mix_are_faults_and_the_output_stays_finite() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 2), state);
    ctl.set_fade(0);
    // Each is finite; their sum would be infinite, and a master gain of 0 times it NaN.
    // Both are over MAX_SAMPLE: faults, silenced before they reach the mix.
    ctl.swap(constants(&mut alloc, &[1e308, 1e308, 0.25]));
    let mut out = vec![0.5f32; 512];
    eng.process(&mut out);
    assert!(
        out.iter().all(|s| *s == 0.25f64.tanh() as f32),
        "{:?}",
        &out[..4]
    );
    ctl.set_master(0.0, 0);
    eng.process(&mut out);
    assert!(out.iter().all(|s| *s == 0.0), "{:?}", &out[..4]);
    let faults = ctl.collect();
    assert_eq!(faults.len(), 2);
    assert!(faults
        .iter()
        .all(|f| matches!(f.fault, Fault::TooLoud { value, .. } if value == 1e308)));
    assert_eq!(eng.counters().snapshot().nonfinite_samples, 0);
}
