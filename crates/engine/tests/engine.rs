//! The engine's mixing, swapping and fault handling, with signals written in Rust.

mod common;

use std::sync::Arc;

use common::{Cosine, GoesBad, Sine, Throws};
use flux_engine::{
    engine, EngineConfig, Fault, Patch, PatchSignal, Signal, StateAllocator, StateMemory,
};

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
    // Up to the bad frame both signals played; then the bad one's last good value fades out
    // with a raised cosine over 5 ms (240 frames, the shortest fault fade); then only the
    // good one plays.
    let fade = ctl.fault_fade() as usize;
    assert_eq!(fade, 240);
    for i in 0..fade {
        let bad_part = f64::from(with_bad[200 + i]).atanh() - f64::from(alone[200 + i]).atanh();
        let x = (i + 1) as f64 / fade as f64;
        let expected = 0.25 * (0.5 + 0.5 * (std::f64::consts::PI * x).cos());
        assert!(
            (bad_part - expected).abs() < 1e-5,
            "frame {}: {bad_part} vs {expected}",
            200 + i
        );
    }
    assert_eq!(&with_bad[200 + fade..], &alone[200 + fade..]);
}

/// A sine that throws from block `ok_blocks` on.
struct SineThenThrows {
    sine: Sine,
    ok_blocks: u32,
}

impl Signal for SineThenThrows {
    fn render(&mut self, b: &mut flux_engine::Block<'_>) -> Result<(), Fault> {
        if self.ok_blocks == 0 {
            return Err(Fault::Error("signals.js:9:5: Error: late".into()));
        }
        self.ok_blocks -= 1;
        self.sine.render(b)
    }

    fn tier(&self) -> flux_engine::Tier {
        flux_engine::Tier::Native
    }
}

#[test]
fn a_signal_that_throws_while_playing_fades_out_without_a_step() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    // A 20 ms crossfade makes a 20 ms fault fade.
    ctl.set_fade(960);
    let block = alloc.block_of("tone").unwrap();
    let sine = Sine {
        state: state.clone(),
        block,
        freq: 440.0,
        gain: 0.5,
    };
    // 2 s of tone (750 blocks of 128 frames), then it throws.
    let tone = SineThenThrows {
        sine,
        ok_blocks: 750,
    };
    ctl.swap(Patch::new(vec![PatchSignal::new(
        "tone",
        block,
        Box::new(tone),
    )]));
    let mut out = vec![0.0f32; 3 * SR as usize];
    eng.process(&mut out);
    let faults = ctl.collect();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].fault.to_string(), "signals.js:9:5: Error: late");
    let at = 750 * 128;
    let step = |w: &[f32]| (w[1] - w[0]).abs();
    let tone_step = out[..at].windows(2).map(step).fold(0.0, f32::max);
    let fault_step = out[at - 1..].windows(2).map(step).fold(0.0, f32::max);
    assert!(fault_step <= tone_step, "{fault_step} > {tone_step}");
    // The fade starts from the last sample played and ends 20 ms later; silence after.
    let x = 1.0 / 960.0;
    let first = f64::from(out[at - 1]).atanh() * (0.5 + 0.5 * (std::f64::consts::PI * x).cos());
    assert!((f64::from(out[at]).atanh() - first).abs() < 1e-6);
    assert!(out[at + 960..].iter().all(|&s| s == 0.0));
    // Its state is put back to the start of the failed block: the phase stands still.
    let phase = state.get(block.offset).unwrap();
    eng.process(&mut out[..256]);
    assert_eq!(state.get(block.offset), Some(phase));
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

/// The largest step between neighbouring samples.
fn max_step(s: &[f32]) -> f32 {
    s.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

fn cosine(
    state: &Arc<StateMemory>,
    alloc: &mut StateAllocator,
    id: &str,
    freq: f64,
) -> PatchSignal {
    let block = alloc.block_of(id).unwrap();
    PatchSignal::new(
        id,
        block,
        Box::new(Cosine(Sine {
            state: state.clone(),
            block,
            freq,
            gain: 0.5,
        })),
    )
}

#[test]
fn a_crossfaded_change_of_shape_has_no_click_and_keeps_the_true_phase() {
    let fade = 960; // 20 ms
    let run = |fade: u32| {
        let (state, mut alloc) = setup();
        let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
        ctl.set_fade(fade);
        ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 330.0)]));
        let mut out = vec![0.0f32; 4800];
        eng.process(&mut out[..1000]);
        let before = state.get(alloc.get("a").unwrap().offset).unwrap();
        ctl.swap(Patch::new(vec![cosine(&state, &mut alloc, "a", 330.0)]));
        eng.process(&mut out[1000..]);
        ctl.collect();
        (out, before)
    };
    // A hard switch from sin to cos on the same phase jumps.
    let (hard, _) = run(0);
    let own = max_step(&hard[..1000]);
    assert!(
        (hard[1000] - hard[999]).abs() > 5.0 * own,
        "the hard switch should click"
    );
    // The crossfade never steps further than the tones do on their own (plus a little for
    // the fade's own slope).
    let (soft, before) = run(fade);
    let worst = max_step(&soft[990..1000 + fade as usize + 10]);
    assert!(
        worst <= own * 1.1,
        "step {worst} across the fade, {own} in the tone"
    );
    // After the fade, the new code plays on the true phase: exactly what the cut plays.
    assert_eq!(&soft[1000 + fade as usize..], &hard[1000 + fade as usize..]);
    assert!(before > 0.0);
}

#[test]
fn added_signals_fade_in_and_removed_ones_fade_out() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    ctl.set_fade(480);
    ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 200.0)]));
    let mut a = vec![0.0f32; 2000];
    eng.process(&mut a);
    let own = max_step(&a);
    // Replace "a" by "b": a fades out while b fades in.
    ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "b", 200.0)]));
    let mut out = vec![0.0f32; 2000];
    eng.process(&mut out);
    assert!((out[0] - a[1999]).abs() <= own * 1.1);
    assert!(max_step(&out) <= own * 1.1, "{} > {own}", max_step(&out));
    // Remove everything: it fades to silence.
    ctl.swap(Patch::new(vec![]));
    let mut gone = vec![0.0f32; 1000];
    eng.process(&mut gone);
    assert!((gone[0] - out[1999]).abs() <= own * 1.1);
    assert!(gone[480..].iter().all(|&s| s == 0.0));
    assert!(max_step(&gone) <= own * 1.1);
    ctl.collect();
}

#[test]
fn a_merge_keeps_running_signals_and_mute_and_master_ramp_without_steps() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    ctl.set_fade(480);
    ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 220.0)]));
    let mut out = vec![0.0f32; 1000];
    eng.process(&mut out);
    // Reference: "a" alone, never touched.
    let (state2, mut alloc2) = setup();
    let (mut ctl2, mut eng2) = engine(EngineConfig::new(SR, 1), state2.clone());
    ctl2.swap(Patch::new(vec![sine(&state2, &mut alloc2, "a", 220.0)]));
    let mut alone = vec![0.0f32; 4000];
    eng2.process(&mut alone);

    // Merge in "b" while keeping "a": "a" goes on untouched, "b" fades in.
    let a_block = alloc.get("a").unwrap();
    ctl.merge(
        Patch::new(vec![sine(&state, &mut alloc, "b", 330.0)]),
        vec![a_block],
    );
    let mut merged = vec![0.0f32; 1000];
    eng.process(&mut merged);
    ctl.collect();
    assert!(
        merged.iter().zip(&alone[1000..2000]).any(|(m, a)| m != a),
        "b is heard"
    );
    // Mute "b" over 10 ms: afterwards the output is "a" alone again, sample for sample.
    ctl.set_gain(alloc.get("b").unwrap(), 0.0, 480);
    let mut muted = vec![0.0f32; 1000];
    eng.process(&mut muted);
    assert_eq!(&muted[480..], &alone[2480..3000]);
    // No step larger than the two tones make together.
    let both = max_step(&merged);
    assert!(
        max_step(&muted) <= both * 1.1,
        "{} vs {both}",
        max_step(&muted)
    );
    let own = max_step(&alone);
    // Master gain to 0 over 10 ms: silence after the ramp, no step on the way.
    ctl.set_master(0.0, 480);
    let mut quiet = vec![0.0f32; 1000];
    eng.process(&mut quiet);
    assert!(quiet[480..].iter().all(|&s| s == 0.0));
    assert!(max_step(&quiet) <= own * 1.1);
    ctl.collect();
}

#[test]
fn a_merge_leaves_the_signals_it_keeps_untouched_even_during_its_fade() {
    let (state, mut alloc) = setup();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
    ctl.set_fade(960);
    ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 220.0)]));
    let mut out = vec![0.0f32; 3000];
    eng.process(&mut out[..1000]);
    // Code that defines nothing new (a sent `console.log`, say) keeps "a" as it is.
    ctl.merge(Patch::new(vec![]), vec![alloc.get("a").unwrap()]);
    eng.process(&mut out[1000..]);
    ctl.collect();

    let (state2, mut alloc2) = setup();
    let (mut ctl2, mut eng2) = engine(EngineConfig::new(SR, 1), state2.clone());
    ctl2.set_fade(960);
    ctl2.swap(Patch::new(vec![sine(&state2, &mut alloc2, "a", 220.0)]));
    let mut alone = vec![0.0f32; 3000];
    eng2.process(&mut alone);
    assert_eq!(out, alone);
}

#[test]
fn a_change_sent_during_a_crossfade_waits_for_its_end() {
    // Run 1: a change comes 256 frames into the fade-in of "a", and another 256 frames
    // into the crossfade from "a" to "b". Run 2: the same changes sent when each fade has
    // ended. The fades are never cut short: both runs give the same samples.
    let run = |early: bool| -> Vec<f32> {
        let (state, mut alloc) = setup();
        let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state.clone());
        ctl.set_fade(960);
        ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "a", 220.0)]));
        let mut out = vec![0.0f32; 6000];
        let at = if early { 256 } else { 960 };
        eng.process(&mut out[..at]);
        // Sent code that defines nothing new keeps "a".
        ctl.merge(Patch::new(vec![]), vec![alloc.get("a").unwrap()]);
        eng.process(&mut out[at..2000]);
        ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "b", 330.0)]));
        let at = if early { 2256 } else { 2960 };
        eng.process(&mut out[2000..at]);
        ctl.swap(Patch::new(vec![sine(&state, &mut alloc, "c", 440.0)]));
        eng.process(&mut out[at..]);
        ctl.collect();
        out
    };
    let (early, late) = (run(true), run(false));
    let first = early.iter().zip(&late).position(|(a, b)| a != b);
    assert_eq!(first, None, "the first frame that differs");
    // And "c" did take over: the last frames are a 440 Hz tone.
    assert_eq!(rising_crossings(&early[4000..], 1), 18);
}
