//! The harness of the unit library's tests (`tests/dsp.rs`): signals built from the
//! library (built into every load), rendered on one or both tiers, and measurements.

use std::sync::Arc;
use std::time::Duration;

use flux_engine::{Block, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader, TierChoice};

pub const DSP: &str = include_str!("../../src/dsp.js");
pub const SR: u32 = 48_000;
/// State memory for the tests: signals' blocks and the units' slots and buffers.
pub const MEMORY: usize = 1 << 19;

/// A signal 't' that makes units in `setup` and returns `expr` each frame; `n` is the frame
/// number.
pub fn signal(setup: &str, expr: &str) -> String {
    signal_body(setup, &format!("return {expr};"))
}

/// Like [`signal`], with statements for the frame's body (the frame count lives in the
/// signal's own slot `idx`).
pub fn signal_body(setup: &str, body: &str) -> String {
    format!(
        "flux('t', (mem, idx) => {{\n  {setup}\n  return {{ update: () => {{\n    const n = mem[idx];\n    mem[idx] = n + 1;\n    {body}\n  }} }};\n}});"
    )
}

/// Renders `test` (with the library) on one tier: `frames` frames of `channels` channels,
/// interleaved, straight from the signal (no master gain or tanh).
pub fn render(sr: u32, test: &str, tier: TierChoice, channels: usize, frames: usize) -> Vec<f64> {
    render_with_state(sr, test, tier, channels, frames).0
}

/// Like [`render`]; also returns the state memory's bits afterwards.
pub fn render_with_state(
    sr: u32,
    test: &str,
    tier: TierChoice,
    channels: usize,
    frames: usize,
) -> (Vec<f64>, Vec<u64>) {
    let state = Arc::new(StateMemory::new(MEMORY));
    let mut loader = Loader::new(
        state.clone(),
        StateAllocator::new(MEMORY, 64),
        LoadOptions {
            sample_rate: sr,
            channels,
            tier,
            load_time_limit: Duration::from_secs(20),
            ..LoadOptions::default()
        },
    );
    let loaded = loader
        .load_source("dsp-test.js", test)
        .unwrap_or_else(|d| panic!("{d}\n{test}"));
    let want = if tier == TierChoice::Native {
        Tier::Native
    } else {
        Tier::Js
    };
    for s in &loaded.signals {
        assert_eq!(s.tier, want, "{}: {:?}\n{test}", s.id, s.reason);
    }
    let mut signals = loaded.patch.into_signals();
    assert_eq!(signals.len(), 1, "{test}");
    let code = &mut signals[0].code;
    let mut out = vec![0.0; frames * channels];
    for chunk in out.chunks_mut(128 * channels) {
        let mut block = Block {
            frames: chunk.len() / channels,
            channels,
            sample_rate: f64::from(sr),
            clock: &flux_engine::STILL,
            out: chunk,
        };
        code.render(&mut block)
            .unwrap_or_else(|f| panic!("{f}\n{test}"));
    }
    let bits = (0..MEMORY)
        .map(|i| state.get(i).unwrap().to_bits())
        .collect();
    (out, bits)
}

/// Renders on both tiers, asserts the same bits (output and state memory), returns the
/// output.
pub fn both_at(sr: u32, test: &str, channels: usize, frames: usize) -> Vec<f64> {
    let (js, js_state) = render_with_state(sr, test, TierChoice::Js, channels, frames);
    let (native, native_state) = render_with_state(sr, test, TierChoice::Native, channels, frames);
    if let Some(i) = (0..MEMORY).find(|&i| js_state[i] != native_state[i]) {
        panic!(
            "state slot {i}: js {:e} native {:e}\n{test}",
            f64::from_bits(js_state[i]),
            f64::from_bits(native_state[i])
        );
    }
    for (i, (a, b)) in js.iter().zip(&native).enumerate() {
        assert!(
            a.to_bits() == b.to_bits(),
            "sample {i}: js {a:e} native {b:e}\n{test}"
        );
    }
    native
}

pub fn both(test: &str, channels: usize, frames: usize) -> Vec<f64> {
    both_at(SR, test, channels, frames)
}

/// The samples that are not 0, with their frames.
pub fn nonzero(out: &[f64]) -> Vec<(usize, f64)> {
    out.iter()
        .copied()
        .enumerate()
        .filter(|&(_, v)| v != 0.0)
        .collect()
}

pub fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

/// Magnitudes of the DFT of `x` (length a power of two), bins 0..=n/2.
pub fn spectrum(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    assert!(n.is_power_of_two());
    let bits = n.trailing_zeros();
    let mut re: Vec<f64> = vec![0.0; n];
    let mut im: Vec<f64> = vec![0.0; n];
    for (i, &v) in x.iter().enumerate() {
        re[i.reverse_bits() >> (usize::BITS - bits)] = v;
    }
    let mut len = 2;
    while len <= n {
        let step = -std::f64::consts::TAU / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (step * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * c - im[b] * s;
                let ti = re[b] * s + im[b] * c;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len *= 2;
    }
    (0..=n / 2).map(|k| re[k].hypot(im[k])).collect()
}

/// Frequency from the rising zero crossings of `x` (interpolated), in Hz.
pub fn pitch(x: &[f64], sr: f64) -> f64 {
    let mut crossings = Vec::new();
    for i in 1..x.len() {
        if x[i - 1] < 0.0 && x[i] >= 0.0 {
            crossings.push(i as f64 - 1.0 + x[i - 1] / (x[i - 1] - x[i]));
        }
    }
    assert!(crossings.len() > 2, "no pitch");
    let span = crossings[crossings.len() - 1] - crossings[0];
    (crossings.len() - 1) as f64 * sr / span
}

pub fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

pub fn channel(x: &[f64], channels: usize, c: usize) -> Vec<f64> {
    x.iter().skip(c).step_by(channels).copied().collect()
}
