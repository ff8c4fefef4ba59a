//! The engine's mixing, swapping and fault handling, with signals written in Rust.

mod common;

use std::sync::Arc;

use common::{GoesBad, Sine, Throws};
use flux_engine::{engine, EngineConfig, Fault, Patch, PatchSignal, StateAllocator, StateMemory};

const SR: u32 = 48_000;

fn setup() -> (Arc<StateMemory>, StateAllocator) {
    (
        Arc::new(StateMemory::new(4096)),
        StateAllocator::new(4096, 64),
    )
}

fn sine(state: &Arc<StateMemory>, alloc: &mut StateAllocator, id: &str, freq: f64) -> PatchSignal {
    let block = alloc.block_of(id).unwrap();
    PatchSignal::new(
        id,
        block,
        Box::new(Sine {
            state: state.clone(),
            block,
            freq,
            gain: 0.5,
        }),
    )
}

/// Counts upward zero crossings of channel 0 over `frames`, as a pitch measure.
fn rising_crossings(samples: &[f32], channels: usize) -> usize {
    let ch0: Vec<f32> = samples.iter().step_by(channels).copied().collect();
    ch0.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count()
}

#[test]
fn a_sine_plays_at_its_pitch_on_every_channel() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 2), state.clone());
    ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 440.0)]));
    let mut out = vec![0.0f32; SR as usize * 2];
    eng.process(&mut out);
    let crossings = rising_crossings(&out, 2);
    assert!((439..=441).contains(&crossings), "{crossings} crossings");
    for frame in out.chunks(2) {
        assert_eq!(frame[0], frame[1]);
    }
    // The mix is soft-clipped: tanh(0.5 * sin) peaks at tanh(0.5).
    let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.5f32.tanh()).abs() < 1e-3, "peak {peak}");
}

#[test]
fn a_swap_keeps_the_phase_of_a_signal() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 440.0)]));
    let mut before = vec![0.0f32; 1000];
    eng.process(&mut before);
    let phase = state.get(alloc.get("a").unwrap().offset).unwrap();
    ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 660.0)]));
    let mut after = vec![0.0f32; 1000];
    eng.process(&mut after);
    // The first sample after the swap continues from the old phase at the new frequency.
    let expected = (((phase + 660.0 / f64::from(SR)) % 1.0) * std::f64::consts::TAU).sin() * 0.5;
    assert!((f64::from(after[0]) - expected.tanh()).abs() < 1e-6);
    // No jump: the step across the swap is no larger than the largest step of the new tone.
    let max_step = after
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!((after[0] - before[999]).abs() <= max_step * 1.01);
    ctl.collect();
}

#[test]
fn a_nan_signal_is_silenced_and_the_others_play_on() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    let bad_block = alloc.block_of("bad").unwrap();
    let bad = PatchSignal::new(
        "bad",
        bad_block,
        Box::new(GoesBad {
            state: state.clone(),
            block: bad_block,
            bad_at: 200,
            frames: 0,
        }),
    );
    ctl.swap(Patch::new(vec![
        sine(&state, &mut alloc, "good", 100.0),
        bad,
    ]));
    let mut with_bad = vec![0.0f32; 1024];
    eng.process(&mut with_bad);
    assert!(with_bad.iter().all(|s| s.is_finite()));
    let faults = ctl.collect();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].id, "bad");
    assert!(matches!(
        faults[0].fault,
        Fault::NonFinite {
            frame: 200,
            channel: 0,
            ..
        }
    ));
    assert_eq!(
        faults[0].fault.to_string(),
        "update returned NaN on channel 0 at frame 200"
    );
    // Its state is put back to the start of the block that failed (block size 128: 128).
    assert_eq!(state.get(bad_block.offset), Some(128.0));

    // The good signal renders exactly as it does alone.
    let (state2, mut alloc2) = setup();
    let (mut ctl2, mut eng2) = engine(EngineConfig::new(SR, 1), state2.clone());
    ctl2.swap(Patch::new(vec![sine(&state2, &mut alloc2, "good", 100.0)]));
    let mut alone = vec![0.0f32; 1024];
    eng2.process(&mut alone);
    // Up to the bad frame both signals played; from then on only the good one.
    assert_eq!(&with_bad[256..], &alone[256..]);
}

#[test]
fn a_throwing_signal_is_reported_once_and_the_others_play_on() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    let block = alloc.block_of("thrower").unwrap();
    ctl.swap(Patch::new(vec![
        PatchSignal::new("thrower", block, Box::new(Throws)),
        sine(&state, &mut alloc, "good", 100.0),
    ]));
    let mut out = vec![0.0f32; 4096];
    eng.process(&mut out);
    eng.process(&mut out);
    let faults = ctl.collect();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].id, "thrower");
    assert_eq!(faults[0].fault.to_string(), "signals.js:3:9: Error: boom");
    assert!(out.iter().any(|s| s.abs() > 0.1));
}

#[test]
fn stop_silences_and_holds_signals_start_resumes() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 440.0)]));
    let mut out = vec![0.0f32; 256];
    eng.process(&mut out);
    let slot = alloc.get("a").unwrap().offset;
    let phase = state.get(slot);
    ctl.stop();
    eng.process(&mut out);
    assert!(out.iter().all(|&s| s == 0.0));
    assert_eq!(state.get(slot), phase);
    ctl.start();
    eng.process(&mut out);
    assert!(out.iter().any(|&s| s != 0.0));
}

#[test]
fn retired_patches_come_back_to_the_controller() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    let mut out = vec![0.0f32; 128];
    for i in 0..100 {
        ctl.swap(Patch::new(vec![sine(
            &state,
            &mut alloc,
            "a",
            100.0 + f64::from(i),
        )]));
        eng.process(&mut out);
        ctl.collect();
    }
    assert!(ctl.is_flushed());
}
