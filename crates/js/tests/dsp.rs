//! The unit library (`crates/js/src/dsp.js`) against its definitions, on both tiers.
//!
//! Every test renders a small signal built from the units once on the JavaScript tier and
//! once on the native tier, asserts that both give the same bits, and measures the output
//! against the unit's definition in docs/DSP.md. Measured figures are printed (run with
//! `--nocapture` to see them).

use std::sync::Arc;
use std::time::Duration;

use flux_engine::{Block, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader, TierChoice};
use proptest::prelude::*;

const DSP: &str = include_str!("../src/dsp.js");
const SR: u32 = 48_000;
/// State memory for the tests: the loader's blocks use the first 32,768 slots, the shim's
/// unit slots and buffers the rest.
const MEMORY: usize = 1 << 20;
const FIRST_UNIT_SLOT: usize = 32_768;

/// Stands in for the plumbing that will provide the library: defines the names dsp.js
/// expects (`mem`, `SR`, `SEED`, `slots`, `buffer`) and appends the library.
fn with_library(sr: u32, test: &str) -> String {
    format!(
        "const mem = FLUX_STATE;\nconst SR = {sr};\nconst SEED = 12345;\n\
         let nextSlot = {FIRST_UNIT_SLOT};\n\
         function slots(n) {{ const s = nextSlot; nextSlot += n; return s; }}\n\
         function buffer(n) {{ return slots(n); }}\n{DSP}\n{test}\n"
    )
}

/// A signal 't' that makes units in `setup` and returns `expr` each frame; `n` is the frame
/// number.
fn signal(setup: &str, expr: &str) -> String {
    format!(
        "flux('t', () => {{\n  const frame = slots(1);\n  {setup}\n  return {{ update: () => {{\n    const n = mem[frame];\n    mem[frame] = n + 1;\n    return {expr};\n  }} }};\n}});"
    )
}

/// Renders `test` (with the library) on one tier: `frames` frames of `channels` channels,
/// interleaved, straight from the signal (no master gain or tanh).
fn render(sr: u32, test: &str, tier: TierChoice, channels: usize, frames: usize) -> Vec<f64> {
    let source = with_library(sr, test);
    let state = Arc::new(StateMemory::new(MEMORY));
    let mut loader = Loader::new(
        state,
        StateAllocator::new(FIRST_UNIT_SLOT, 64),
        LoadOptions {
            sample_rate: sr,
            channels,
            tier,
            load_time_limit: Duration::from_secs(20),
            ..LoadOptions::default()
        },
    );
    let loaded = loader
        .load_source("dsp-test.js", &source)
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
            out: chunk,
        };
        code.render(&mut block)
            .unwrap_or_else(|f| panic!("{f}\n{test}"));
    }
    out
}

/// Renders on both tiers, asserts the same bits, returns the output.
fn both_at(sr: u32, test: &str, channels: usize, frames: usize) -> Vec<f64> {
    let js = render(sr, test, TierChoice::Js, channels, frames);
    let native = render(sr, test, TierChoice::Native, channels, frames);
    for (i, (a, b)) in js.iter().zip(&native).enumerate() {
        assert!(
            a.to_bits() == b.to_bits(),
            "sample {i}: js {a:e} native {b:e}\n{test}"
        );
    }
    native
}

fn both(test: &str, channels: usize, frames: usize) -> Vec<f64> {
    both_at(SR, test, channels, frames)
}

fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

/// Magnitudes of the DFT of `x` (length a power of two), bins 0..=n/2.
fn spectrum(x: &[f64]) -> Vec<f64> {
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
fn pitch(x: &[f64], sr: f64) -> f64 {
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

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

fn channel(x: &[f64], channels: usize, c: usize) -> Vec<f64> {
    x.iter().skip(c).step_by(channels).copied().collect()
}

#[test]
fn oscillators_have_their_pitch_and_range() {
    // Band-limiting rounds the edges of saw, square and pulse and leaves a Gibbs overshoot
    // up to 1.14 over [-1, 1] (docs/DSP.md).
    for (unit, call, lo, hi) in [
        ("sine()", "o(440)", -1.0, 1.0),
        ("saw()", "o(440)", -1.14, 1.14),
        ("square()", "o(440)", -1.14, 1.14),
        ("tri()", "o(440)", -1.0, 1.0),
        ("pulse()", "o(440, 0.25)", -1.14, 1.14),
        ("phasor()", "o(440) - 0.5", -0.5, 0.5),
    ] {
        let out = both(&signal(&format!("const o = {unit};"), call), 1, 9600);
        let f = pitch(&out[64..], f64::from(SR));
        let min = out.iter().copied().fold(f64::INFINITY, f64::min);
        let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!("{unit}: pitch {f:.4} Hz, range {min:.4}..{max:.4}");
        assert!((f - 440.0).abs() < 0.05, "{unit}: {f} Hz");
        assert!(min >= lo && max <= hi, "{unit}: {min}..{max}");
        assert!(min < lo + 0.2 && max > hi - 0.2, "{unit}: {min}..{max}");
    }
}

#[test]
fn band_limited_oscillators_alias_at_least_40_db_under_the_fundamental_at_4_khz() {
    // 343 cycles in 4096 frames (4019.5 Hz): harmonics and aliases each fall on one bin, and
    // aliases (which fold onto 4 kHz multiples at exactly 4 kHz) land apart from harmonics.
    let n = 4096;
    let bin = 343;
    let freq = f64::from(SR) * bin as f64 / n as f64;
    for (unit, call) in [
        ("saw()", format!("o({freq:?})")),
        ("square()", format!("o({freq:?})")),
        ("tri()", format!("o({freq:?})")),
        ("pulse()", format!("o({freq:?}, 0.3)")),
    ] {
        let out = both(&signal(&format!("const o = {unit};"), &call), 1, n + 64);
        let mags = spectrum(&out[64..]);
        let fundamental = mags[bin];
        let (worst, at) = (1..mags.len())
            .filter(|k| k % bin != 0)
            .map(|k| (db(mags[k] / fundamental), k))
            .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a });
        let hz = at as f64 * f64::from(SR) / n as f64;
        println!("{unit} at {freq} Hz: worst alias {worst:.1} dB at {hz:.0} Hz");
        assert!(worst <= -40.0, "{unit}: alias {worst} dB at {hz} Hz");
    }
}
