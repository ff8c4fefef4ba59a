//! The master stage and the meters, through the engine: the limiter holds its ceiling and
//! leaves a quiet mix alone, `tanh` is the old output, meters read a test tone's level.

mod common;

use std::sync::Arc;

use common::Sine;
use flux_engine::meter::dbfs;
use flux_engine::{
    engine, Controller, Engine, EngineConfig, MasterConfig, MasterMode, Patch, PatchSignal,
    StateAllocator, StateMemory,
};

/// An engine playing one sine per `(id, freq, gain)`, its master stage set to `mode`.
fn playing(mode: MasterMode, sines: &[(&str, f64, f64)]) -> (Controller, Engine) {
    let state = Arc::new(StateMemory::new(4096));
    let mut alloc = StateAllocator::new(4096, 64);
    let (mut ctl, eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    let config = MasterConfig {
        mode,
        ..MasterConfig::default()
    };
    ctl.set_master_stage(config).unwrap();
    let signals = sines
        .iter()
        .map(|&(id, freq, gain)| {
            let block = alloc.block_of(id).unwrap();
            let code = Sine {
                state: state.clone(),
                block,
                freq,
                gain,
            };
            PatchSignal::new(id, block, Box::new(code))
        })
        .collect();
    ctl.swap(Patch::new(signals));
    (ctl, eng)
}

fn render(eng: &mut Engine, frames: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; frames * 2];
    eng.process(&mut out);
    out
}

#[test]
fn limit_keeps_a_loud_sum_under_the_ceiling_and_a_quiet_one_unchanged() {
    let (_ctl, mut eng) = playing(MasterMode::Limit, &[("a", 110.0, 1.0), ("b", 165.0, 1.0)]);
    let out = render(&mut eng, 48_000);
    let peak = out.iter().fold(0.0f32, |p, x| p.max(x.abs()));
    assert!(peak <= 0.891_251, "{peak}");
    assert!(peak > 0.88, "{peak}");

    let (_ctl, mut limited) = playing(MasterMode::Limit, &[("a", 1000.0, 0.5)]);
    let (_ctl2, mut plain) = playing(MasterMode::None, &[("a", 1000.0, 0.5)]);
    let limited = render(&mut limited, 48_000);
    let plain = render(&mut plain, 48_000);
    // 2 ms of look-ahead at 48 kHz.
    let d = 96 * 2;
    assert!(limited[..d].iter().all(|&x| x == 0.0));
    assert_eq!(&limited[d..], &plain[..plain.len() - d]);
}

#[test]
fn tanh_is_the_default_and_clip_cuts_at_the_ceiling() {
    let (_c, mut default) = playing(MasterMode::Tanh, &[("a", 440.0, 1.5)]);
    let out = render(&mut default, 4800);
    let (_c, mut none) = playing(MasterMode::None, &[("a", 440.0, 1.5)]);
    let raw = render(&mut none, 4800);
    for (o, r) in out.iter().zip(&raw) {
        // The mix is f64; `none` rounds it to f32 first, so compare within an f32 step.
        assert!((o - f64::from(*r).tanh() as f32).abs() < 1e-6);
    }
    assert!(
        raw.iter().any(|x| x.abs() > 1.4),
        "none passes the sine as it is"
    );
    let (_c, mut clip) = playing(MasterMode::Clip, &[("a", 440.0, 1.5)]);
    let out = render(&mut clip, 4800);
    let peak = out.iter().fold(0.0f32, |p, x| p.max(x.abs()));
    assert!(peak <= 0.891_251 && peak > 0.8912, "{peak}");
}

#[test]
fn meters_read_a_half_scale_sine() {
    let (ctl, mut eng) = playing(MasterMode::None, &[("a", 1000.0, 0.5)]);
    render(&mut eng, 48_000);
    let meters = ctl.meters();
    let master = meters.take_master();
    let signals = meters.take_signals();
    assert_eq!(signals.len(), 1);
    let signal = signals[0].1;
    for level in [master, signal] {
        assert!(
            (dbfs(level.peak) + 6.02).abs() < 0.1,
            "{}",
            dbfs(level.peak)
        );
        assert!(
            (dbfs(level.rms()) + 9.03).abs() < 0.1,
            "{}",
            dbfs(level.rms())
        );
        assert_eq!(level.clips, 0);
    }
}
