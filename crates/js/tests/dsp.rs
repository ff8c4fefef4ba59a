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
    signal_body(setup, &format!("return {expr};"))
}

/// Like [`signal`], with statements for the frame's body.
fn signal_body(setup: &str, body: &str) -> String {
    format!(
        "flux('t', () => {{\n  const frame = slots(1);\n  {setup}\n  return {{ update: () => {{\n    const n = mem[frame];\n    mem[frame] = n + 1;\n    {body}\n  }} }};\n}});"
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

#[test]
fn noise_is_white_seeded_and_repeats() {
    // Two noise units in one signal: each repeats across renders (and tiers) and they differ.
    let out = both(
        &signal("const a = noise(); const b = noise();", "[a(), b()]"),
        2,
        65_536,
    );
    let (a, b) = (channel(&out, 2, 0), channel(&out, 2, 1));
    assert_ne!(a[..64], b[..64]);
    let again = render(
        SR,
        &signal("const a = noise(); const b = noise();", "[a(), b()]"),
        TierChoice::Native,
        2,
        65_536,
    );
    assert_eq!(out, again);
    let mean = a.iter().sum::<f64>() / a.len() as f64;
    let (min, max) = a
        .iter()
        .fold((1.0f64, -1.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    // Flat: the power in each quarter of the spectrum (16 averaged 4096-point blocks).
    let mut power = vec![0.0; 2049];
    for block in a.chunks(4096) {
        for (p, m) in power.iter_mut().zip(spectrum(block)) {
            *p += m * m;
        }
    }
    let quarter = |q: usize| power[1 + q * 512..1 + (q + 1) * 512].iter().sum::<f64>();
    let spread: Vec<f64> = (0..4)
        .map(|q| 10.0 * (quarter(q) / quarter(0)).log10())
        .collect();
    println!(
        "noise: mean {mean:.4}, rms {:.4}, range {min:.4}..{max:.4}, quarter bands {spread:.2?} dB",
        rms(&a)
    );
    assert!(mean.abs() < 0.01 && min >= -1.0 && max < 1.0 && (rms(&a) - 0.577).abs() < 0.01);
    assert!(spread.iter().all(|d| d.abs() < 0.3), "{spread:?}");
}

#[test]
fn pink_noise_falls_3_db_per_octave() {
    let out = both(&signal("const p = pink();", "p()"), 1, 65_536);
    let mut power = vec![0.0; 2049];
    for block in out.chunks(4096) {
        for (p, m) in power.iter_mut().zip(spectrum(block)) {
            *p += m * m;
        }
    }
    // Mean power density in octaves from 93.75 Hz (bin 8) to 12 kHz (bin 1024).
    let bands: Vec<f64> = (0..7)
        .map(|o| {
            let (lo, hi) = (8 << o, 16 << o);
            10.0 * (power[lo..hi].iter().sum::<f64>() / (hi - lo) as f64).log10()
        })
        .collect();
    let steps: Vec<f64> = bands.windows(2).map(|w| w[1] - w[0]).collect();
    let slope = (bands[6] - bands[0]) / 6.0;
    println!(
        "pink: slope {slope:.2} dB/octave, octave steps {steps:.2?}, rms {:.3}",
        rms(&out)
    );
    assert!((slope + 3.01).abs() < 0.25, "{slope}");
    assert!(steps.iter().all(|s| (s + 3.01).abs() < 1.0), "{steps:?}");
}

#[test]
fn adsr_stages_are_sample_exact_and_retrigger_without_a_jump() {
    // Gate on at 0, off at 24,000, on again at 30,000 (mid-release).
    let out = both(
        &signal(
            "const e = adsr(0.01, 0.1, 0.5, 0.2);",
            "e(n < 24000 || n >= 30000 ? 1 : 0)",
        ),
        1,
        31_000,
    );
    assert_eq!(out[0], 0.0);
    assert!(
        out[479] < 1.0 && out[480] == 1.0,
        "{} {}",
        out[479],
        out[480]
    );
    assert!(out[1..=480].windows(2).all(|w| w[1] > w[0]));
    assert!(out[480 + 4799] > 0.5 && out[480 + 4800] == 0.5);
    assert!(out[5280..24_000].iter().all(|&v| v == 0.5));
    // Release: from the sustain level to exactly 0 in 0.2 s (9,600 frames).
    assert_eq!(out[24_000], 0.5);
    assert!(out[24_000 + 5000] > 0.0 && out[24_000 + 5000] < 0.5);
    // Retrigger at 30,000 before the release ended: no jump, 1 again 480 frames later.
    let before = out[29_999];
    assert!(before > 0.0);
    assert_eq!(out[30_000], before);
    assert!(out[30_479] < 1.0 && out[30_480] == 1.0);
    // A release that runs its course ends at exactly 0 after 9,600 frames.
    let out = both(
        &signal(
            "const e = adsr(0.01, 0.1, 0.5, 0.2);",
            "e(n < 6000 ? 1 : 0)",
        ),
        1,
        16_000,
    );
    assert!(out[6000 + 9599] > 0.0 && out[6000 + 9600] == 0.0);
    assert!(out[15_600..].iter().all(|&v| v == 0.0));
    println!(
        "adsr: 1 at frame 480, 0.5 at 5,280, 0 at 9,600 after release, retrigger from {before:.4}"
    );
}

#[test]
fn ar_is_one_shot_and_decay_falls_60_db_in_its_time() {
    let out = both(
        &signal(
            "const e = ar(0.005, 0.1);",
            "e(n === 0 || n === 10000 ? 1 : 0)",
        ),
        1,
        12_000,
    );
    assert!(out[239] < 1.0 && out[240] == 1.0);
    assert!(out[240 + 4799] > 0.0 && out[240 + 4800] == 0.0);
    assert!(out[5040..10_000].iter().all(|&v| v == 0.0));
    assert!(out[10_240] == 1.0);
    let out = both(
        &signal("const e = decay(0.5);", "e(n % 30000 === 0 ? 1 : 0)"),
        1,
        31_000,
    );
    assert_eq!(out[0], 1.0);
    let at = out[24_000];
    println!("decay(0.5): {at:.9} after 0.5 s ({:.3} dB)", db(at));
    assert!((at - 0.001).abs() < 1e-9, "{at}");
    assert_eq!(out[30_000], 1.0);
}

/// Gain (dB) of `filter` (an expression of `x`) for a sine of `freq` Hz, steady state.
fn gain(setup: &str, filter: &str, freq: f64) -> f64 {
    let out = both(
        &signal_body(
            &format!("const o = sine(); {setup}"),
            &format!("const x = o({freq:?}); return {filter};"),
        ),
        1,
        14_400,
    );
    // The last 0.1 s holds a whole number of cycles of every tested frequency.
    db(rms(&out[9600..]) * 2f64.sqrt())
}

#[test]
fn filters_pass_and_cut_as_defined() {
    let cases: &[(&str, &str, f64, f64, f64)] = &[
        // (unit, call, frequency, lowest and highest gain in dB)
        ("lowpass()", "f(x, 1000, 0.7071)", 100.0, -0.5, 0.5),
        ("lowpass()", "f(x, 1000, 0.7071)", 4000.0, -1000.0, -20.0),
        ("lowpass()", "f(x, 1000, 0.7071)", 1000.0, -3.05, -2.97),
        ("highpass()", "f(x, 1000, 0.7071)", 10_000.0, -0.5, 0.5),
        ("highpass()", "f(x, 1000, 0.7071)", 250.0, -1000.0, -20.0),
        ("bandpass()", "f(x, 1000, 2)", 1000.0, -0.05, 0.05),
        ("bandpass()", "f(x, 1000, 2)", 100.0, -1000.0, -20.0),
        ("bandpass()", "f(x, 1000, 2)", 10_000.0, -1000.0, -20.0),
        ("notch()", "f(x, 1000, 0.7071)", 1000.0, -1000.0, -40.0),
        ("notch()", "f(x, 1000, 0.7071)", 100.0, -0.5, 0.5),
        ("notch()", "f(x, 1000, 0.7071)", 10_000.0, -0.5, 0.5),
        ("onepole()", "f(x, 1000)", 100.0, -0.1, 0.0),
        ("onepole()", "f(x, 1000)", 1000.0, -3.05, -2.97),
        ("onepole()", "f(x, 1000)", 10_000.0, -1000.0, -19.0),
    ];
    for &(unit, call, freq, lo, hi) in cases {
        let g = gain(&format!("const f = {unit};"), call, freq);
        println!("{unit} {call} at {freq} Hz: {g:.2} dB");
        assert!(g >= lo && g <= hi, "{unit} {call} at {freq} Hz: {g} dB");
    }
}

#[test]
fn filters_stay_stable_with_cutoff_and_q_swept_every_sample() {
    for mode in ["lowpass", "highpass", "bandpass", "notch"] {
        let out = both(
            &signal(
                &format!("const f = {mode}(); const x = noise(); const lfo = sine(); const lfo2 = sine();"),
                "f(x(), 10000 + 9990 * lfo(3000), 10 + 9.5 * lfo2(77))",
            ),
            1,
            9600,
        );
        let peak = out.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        println!("{mode} swept at audio rate: peak {peak:.2}");
        assert!(
            out.iter().all(|v| v.is_finite()) && peak < 50.0,
            "{mode}: {peak}"
        );
        // Out-of-range settings are clamped, not passed on.
        let out = both(
            &signal(
                &format!("const f = {mode}(); const x = noise();"),
                "f(x(), n % 2 ? 1e9 : -5, n % 3 ? 0 : 1e9)",
            ),
            1,
            2000,
        );
        assert!(
            out.iter().all(|v| v.is_finite() && v.abs() < 100.0),
            "{mode}"
        );
    }
}
