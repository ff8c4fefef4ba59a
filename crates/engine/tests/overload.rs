//! The overload policy: a signal that makes the engine's load stay over its limit fades
//! out softly and is reported, the others play on untouched; a patch within its budget,
//! or an engine with the policy off, loses nothing. The load is the thread's CPU time, so
//! the slow signal burns CPU time, not wall time: a busy machine cannot change the result.

mod common;

use std::sync::Arc;
use std::time::Duration;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use common::Sine;
use flux_engine::overload::{OVERLOAD_STRIKES, OVERLOAD_WINDOW};
use flux_engine::{
    engine, Block, Controller, Engine, EngineConfig, Fault, Patch, PatchSignal, Signal,
    StateAllocator, StateMemory, Tier,
};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const SR: u32 = 48_000;
/// The engine's default block: 128 frames, 2.67 ms at 48 kHz.
const BLOCK: usize = 128;

/// A steady 0.25 that burns `load` times each block's duration of the thread's CPU time.
struct Slow {
    load: f64,
}

impl Signal for Slow {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        let budget = Duration::from_secs_f64(b.frames as f64 / b.sample_rate);
        let want = budget.mul_f64(self.load);
        if let Some(start) = flux_rt::thread_cpu_time() {
            let mut x = 0u64;
            while flux_rt::thread_cpu_time().is_some_and(|now| now - start < want) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        b.out.fill(0.25);
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

/// A 440 Hz tone and a signal that burns `load` of each block, on an engine with the
/// policy at `limit`.
fn patch(load: f64, limit: Option<f64>) -> (Controller, Engine, Arc<StateMemory>) {
    let state = Arc::new(StateMemory::new(4096));
    let mut alloc = StateAllocator::new(4096, 64);
    let (mut ctl, eng) = engine(EngineConfig::new(SR, 1), state.clone());
    let tone_block = alloc.block_of("tone").unwrap();
    let slow_block = alloc.block_of("slow").unwrap();
    let tone = Sine {
        state: state.clone(),
        block: tone_block,
        freq: 440.0,
        gain: 0.5,
    };
    ctl.set_overload(limit);
    ctl.swap(Patch::new(vec![
        PatchSignal::new("tone", tone_block, Box::new(tone)),
        PatchSignal::new("slow", slow_block, Box::new(Slow { load })),
    ]));
    (ctl, eng, state)
}

/// The tone plus `dc`, as the engine's default `tanh` master plays it (the tone steps its
/// phase before each sample).
fn mixed(frame: usize, dc: f64) -> f32 {
    let phase = ((frame + 1) as f64 * 440.0 / f64::from(SR)) % 1.0;
    (0.5 * (phase * std::f64::consts::TAU).sin() + dc).tanh() as f32
}

/// The tone alone.
fn tone(frame: usize) -> f32 {
    mixed(frame, 0.0)
}

/// Frames of the four windows of audio over the limit that make a cut, at most.
fn strike_frames() -> usize {
    let window = (OVERLOAD_WINDOW * f64::from(SR)) as usize;
    // Windows close on the block that reaches them.
    window.div_ceil(BLOCK) * BLOCK * OVERLOAD_STRIKES as usize
}

#[test]
fn the_costliest_signal_fades_out_and_the_others_play_on() {
    // The slow signal takes 1.5 blocks of time per block: far over a 90 % limit.
    let (mut ctl, mut eng, _state) = patch(1.5, Some(0.9));
    let mut out = vec![0.0f32; strike_frames() + 9600];
    for chunk in out.chunks_mut(BLOCK) {
        assert_no_alloc(|| eng.process(chunk));
    }
    let faults = ctl.collect();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].id, "slow");
    let Fault::Overload { share, load, limit } = faults[0].fault else {
        panic!("{:?}", faults[0].fault);
    };
    assert_eq!(limit, 0.9);
    assert!(
        load >= 1.5 && share >= 1.4 && share <= load,
        "{share} {load}"
    );
    assert!(
        faults[0]
            .fault
            .to_string()
            .starts_with("overload: update took "),
        "{}",
        faults[0].fault
    );

    // Until the cut: the tone and the steady 0.25, mixed. The cut comes at a block's end,
    // after four windows: at most four of 50 ms of audio (sooner when 50 ms of CPU time
    // come first, as here: the slow signal takes 1.5 blocks of CPU time per block).
    let cut_at = (0..out.len())
        .find(|&i| (out[i] - mixed(i, 0.25)).abs() > 1e-6)
        .unwrap();
    assert_eq!(cut_at % BLOCK, 0, "{cut_at}");
    assert!((4 * BLOCK..=strike_frames()).contains(&cut_at), "{cut_at}");
    // The 0.25 fades out over the fault fade (5 ms): taken out of the mix, it falls from
    // 0.25 to 0 along a raised cosine, never faster than its steepest slope.
    let fade = ctl.fault_fade() as usize;
    let raw = |i: usize| f64::from(tone(i)).atanh();
    let rest: Vec<f64> = (cut_at - 1..cut_at + fade + 1)
        .map(|i| f64::from(out[i]).atanh() - raw(i))
        .collect();
    assert!((rest[0] - 0.25).abs() < 1e-5, "{}", rest[0]);
    assert!(rest[fade + 1].abs() < 1e-5, "{}", rest[fade + 1]);
    let slope = 0.25 * std::f64::consts::PI / 2.0 / fade as f64;
    for w in rest.windows(2) {
        assert!(w[1] <= w[0] + 1e-5, "{rest:?}");
        assert!(
            w[0] - w[1] <= slope * 1.01 + 1e-5,
            "{} > {slope}",
            w[0] - w[1]
        );
    }
    // Then the tone alone, sample for sample.
    for (i, &s) in out.iter().enumerate().skip(cut_at + fade) {
        assert!((s - tone(i)).abs() < 1e-6, "frame {i}: {s} != {}", tone(i));
    }
    // And no other cut: the tone costs next to nothing.
    let mut more = vec![0.0f32; 4 * strike_frames()];
    eng.process(&mut more);
    assert!(ctl.collect().is_empty());
}

#[test]
fn a_patch_within_its_budget_or_a_policy_off_loses_nothing() {
    // A fifth of each block is well under 90 %.
    let (mut within, mut eng, _s) = patch(0.2, Some(0.9));
    let mut out = vec![0.0f32; 3 * strike_frames()];
    eng.process(&mut out);
    assert!(within.collect().is_empty());
    // Over budget, but the policy is off (as for an offline render).
    let (mut off, mut eng, _s) = patch(1.5, None);
    let mut out = vec![0.0f32; 2 * strike_frames()];
    eng.process(&mut out);
    assert!(off.collect().is_empty());
    let last = out.len() - 1;
    let want = mixed(last, 0.25);
    assert!((out[last] - want).abs() < 1e-6, "{} != {want}", out[last]);
}

#[test]
fn signal_meters_count_the_time_each_signal_takes() {
    let (ctl, mut eng, _s) = patch(0.5, None);
    let meters = ctl.meters();
    let mut out = vec![0.0f32; 4800];
    eng.process(&mut out);
    let levels = meters.take_signals();
    assert_eq!(levels.len(), 2);
    let shares: Vec<f64> = levels
        .iter()
        .map(|(_, l)| l.dsp_share_since(&Default::default(), 1, SR))
        .collect();
    // The slow one took at least its half of the wall time; the tone next to nothing.
    let (most, least) = (shares[0].max(shares[1]), shares[0].min(shares[1]));
    assert!(most >= 0.5, "{shares:?}");
    assert!(least < 0.1, "{shares:?}");
}
