//! The unit library (`crates/js/src/dsp.js`) against its definitions, on both tiers.
//!
//! Every test renders a small signal built from the units once on the JavaScript tier and
//! once on the native tier, asserts that both give the same bits, and measures the output
//! against the unit's definition in docs/DSP.md. Measured figures are printed (run with
//! `--nocapture` to see them). The harness is in `dsp_support`.

mod dsp_support;

use std::sync::Arc;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use dsp_support::*;
use flux_engine::{Block, StateAllocator, StateMemory};
use flux_js::{LoadOptions, Loader, TierChoice};
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn oscillators_have_their_pitch_range_and_level() {
    // Band-limiting rounds the edges of saw, square and pulse and leaves a Gibbs overshoot
    // up to 1.14 over [-1, 1] (docs/DSP.md). `mean` is the DC over 44 whole cycles.
    for (unit, call, lo, hi, mean) in [
        ("sine()", "o(440)", -1.0, 1.0, 0.0),
        ("saw()", "o(440)", -1.14, 1.14, 0.0),
        ("square()", "o(440)", -1.14, 1.14, 0.0),
        ("tri()", "o(440)", -1.0, 1.0, 0.0),
        ("pulse()", "o(440, 0.25)", -1.14, 1.14, -0.5),
        ("phasor()", "o(440) - 0.5", -0.5, 0.5, 0.0),
    ] {
        let out = both(&signal(&format!("const o = {unit};"), call), 1, 4800 + 64);
        let f = pitch(&out[64..], f64::from(SR));
        let min = out.iter().copied().fold(f64::INFINITY, f64::min);
        let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let dc = out[64..].iter().sum::<f64>() / 4800.0;
        println!("{unit}: pitch {f:.4} Hz, range {min:.4}..{max:.4}, mean {dc:.5}");
        assert!((f - 440.0).abs() < 0.05, "{unit}: {f} Hz");
        assert!(min >= lo && max <= hi, "{unit}: {min}..{max}");
        assert!(min < lo + 0.2 && max > hi - 0.2, "{unit}: {min}..{max}");
        assert!((dc - mean).abs() < 0.005, "{unit}: mean {dc}");
    }
    // Other sample rates: the band-limiting table is in samples, the pitch in Hz.
    for sr in [44_100, 96_000] {
        for unit in ["saw()", "tri()", "square()"] {
            let out = both_at(
                sr,
                &signal(&format!("const o = {unit};"), "o(1000)"),
                1,
                4800,
            );
            let f = pitch(&out[64..], f64::from(sr));
            println!("{unit} at {sr} Hz: pitch {f:.4} Hz");
            assert!((f - 1000.0).abs() < 0.1, "{unit} at {sr}: {f} Hz");
        }
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
        // Backwards (negative frequencies, as through-zero FM makes them).
        ("saw()", format!("o({:?})", -freq)),
        ("tri()", format!("o({:?})", -freq)),
        ("pulse()", format!("o({:?}, 0.3)", -freq)),
    ] {
        let out = both(&signal(&format!("const o = {unit};"), &call), 1, n + 64);
        let mags = spectrum(&out[64..]);
        let fundamental = mags[bin];
        let (worst, at) = (1..mags.len())
            .filter(|k| k % bin != 0)
            .map(|k| (db(mags[k] / fundamental), k))
            .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a });
        let hz = at as f64 * f64::from(SR) / n as f64;
        println!("{unit} {call}: worst alias {worst:.1} dB at {hz:.0} Hz");
        assert!(worst <= -40.0, "{unit}: alias {worst} dB at {hz} Hz");
    }
}

#[test]
fn noise_is_white_seeded_and_repeats() {
    // Two noise units in one signal: each repeats across renders (and tiers) and they differ.
    let out = both(
        &signal("const a = noise(); const b = noise();", "[a(), b()]"),
        2,
        32_768,
    );
    let (a, b) = (channel(&out, 2, 0), channel(&out, 2, 1));
    assert_ne!(a[..64], b[..64]);
    let again = render(
        SR,
        &signal("const a = noise(); const b = noise();", "[a(), b()]"),
        TierChoice::Native,
        2,
        32_768,
    );
    assert_eq!(out, again);
    let mean = a.iter().sum::<f64>() / a.len() as f64;
    let (min, max) = a
        .iter()
        .fold((1.0f64, -1.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    // Flat: the power in each quarter of the spectrum (8 averaged 4096-point blocks).
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
        9600,
    );
    // The last 0.1 s holds a whole number of cycles of every tested frequency.
    db(rms(&out[4800..]) * 2f64.sqrt())
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

#[test]
fn a_delay_of_a_quarter_second_moves_an_impulse_by_exactly_12000_frames() {
    let out = both(
        &signal("const d = delay(1);", "d(n === 0 ? 1 : 0, 0.25)"),
        1,
        12_100,
    );
    let hits = nonzero(&out);
    assert_eq!(hits, vec![(12_000, 1.0)]);
    // Half a sample more: linear interpolation splits the impulse.
    let out = both(
        &signal(
            "const d = delay(1);",
            &format!("d(n === 0 ? 1 : 0, {:?})", 0.25 + 0.5 / 48_000.0),
        ),
        1,
        12_100,
    );
    let hits = nonzero(&out);
    assert_eq!(hits, vec![(12_000, 0.5), (12_001, 0.5)]);
    // Without a time: 0.25 s.
    let out = both(
        &signal("const d = delay();", "d(n === 0 ? 1 : 0)"),
        1,
        12_100,
    );
    assert_eq!(out[12_000], 1.0);
}

#[test]
fn a_two_second_line_at_96_khz_holds_two_seconds() {
    let out = both_at(
        96_000,
        &signal("const d = delay(2);", "d(n === 0 ? 1 : 0, 2)"),
        1,
        192_001,
    );
    let hits: Vec<usize> = (0..out.len()).filter(|&i| out[i] != 0.0).collect();
    assert_eq!(hits, vec![192_000]);
}

#[test]
fn comb_echoes_and_allpass_is_flat() {
    let out = both(
        &signal("const c = comb(0.1);", "c(n === 0 ? 1 : 0, 0.01, 0.5)"),
        1,
        2000,
    );
    let hits = nonzero(&out);
    assert_eq!(
        hits,
        vec![
            (0, 1.0),
            (480, 0.5),
            (960, 0.25),
            (1440, 0.125),
            (1920, 0.0625)
        ]
    );
    let out = both(
        &signal("const a = allpass(0.1);", "a(n === 0 ? 1 : 0, 0.01, 0.5)"),
        1,
        8192,
    );
    assert_eq!(out[0], -0.5);
    assert_eq!(out[480], 0.75);
    assert_eq!(out[960], 0.375);
    let mags = spectrum(&out);
    let (lo, hi) = mags[1..]
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &m| {
            (lo.min(db(m)), hi.max(db(m)))
        });
    println!("allpass(0.01 s, 0.5): magnitude {lo:.4}..{hi:.4} dB");
    assert!(lo > -0.1 && hi < 0.1, "{lo}..{hi}");
}

/// RT60 (s) from the energy decay curve of `out` (stereo): the slope from -5 to -25 dB.
fn rt60(out: &[f64]) -> f64 {
    let energy: Vec<f64> = out.chunks(2).map(|f| f[0] * f[0] + f[1] * f[1]).collect();
    let mut edc = vec![0.0; energy.len()];
    let mut acc = 0.0;
    for i in (0..energy.len()).rev() {
        acc += energy[i];
        edc[i] = acc;
    }
    let level = |i: usize| 10.0 * (edc[i] / edc[0]).log10();
    let t5 = (0..edc.len()).find(|&i| level(i) <= -5.0).unwrap();
    let t25 = (0..edc.len()).find(|&i| level(i) <= -25.0).unwrap();
    3.0 * (t25 - t5) as f64 / f64::from(SR)
}

#[test]
fn reverb_decays_60_db_in_its_size() {
    for (size, frames) in [(0.3, 17_280), (0.8, 46_080)] {
        let out = both(
            &signal(
                &format!("const r = reverb({size:?}, 0, 1);"),
                "r(n === 0 ? 1 : 0)",
            ),
            2,
            frames,
        );
        let t = rt60(&out);
        println!("reverb({size}, 0, 1): RT60 {t:.3} s");
        assert!((t - size).abs() < 0.1 * size, "{size}: {t}");
    }
    // Defaults: a 2 s tail with damping, 30 % wet; stereo, and the two sides differ.
    let out = both(
        &signal("const r = reverb();", "r(n === 0 ? 1 : 0)"),
        2,
        4800,
    );
    assert_eq!(out[0], 0.7);
    let (l, r) = (channel(&out, 2, 0), channel(&out, 2, 1));
    assert!(rms(&l[1..]) > 0.001 && l != r);
}

#[test]
fn shapers_and_levels_compute_their_definitions() {
    let calls = [
        ("mtof(69)", 440.0),
        ("mtof(81)", 880.0),
        ("mtof(57)", 220.0),
        ("mtof()", 440.0),
        ("dbtoa(0)", 1.0),
        ("dbtoa(-20)", 0.1),
        ("dbtoa(40)", 100.0),
        ("fold(0.5)", 0.5),
        ("fold(1.5)", 0.5),
        ("fold(-2.5)", 0.5),
        ("fold(0.5, 3)", 0.5),
        ("clip(2)", 1.0),
        ("clip(-3, 0.5)", -0.5),
        ("clip(0.25)", 0.25),
        ("drive(0.5, 2)", 1f64.tanh()),
        ("drive(0.5)", 0.5f64.tanh()),
        ("crush(0.3, 3)", 0.25),
        ("crush(0.3)", 0.296875),
        ("mix(1, 2, 3)", 6.0),
        ("mix(1, 2, 3, 4, 5, 6, 7, 8)", 36.0),
        ("mix()", 0.0),
    ];
    let list: Vec<&str> = calls.iter().map(|c| c.0).collect();
    let out = both(
        &signal("", &format!("[{}]", list.join(", "))),
        calls.len(),
        2,
    );
    for (i, (call, want)) in calls.iter().enumerate() {
        let got = out[i];
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{call}: {got}, want {want}"
        );
    }
}

#[test]
fn pan_keeps_the_power() {
    let out = both(
        &signal("const o = sine();", "pan(o(440) * 0.8, Math.sin(n * 0.01))"),
        2,
        2000,
    );
    let x = both(&signal("const o = sine();", "o(440) * 0.8"), 1, 2000);
    for (f, x) in out.chunks(2).zip(&x) {
        assert!((f[0] * f[0] + f[1] * f[1] - x * x).abs() < 1e-12);
    }
    // (Spread elements are outside the native subset: destructure instead.)
    let out = both(
        &signal_body(
            "",
            "const [a, b] = pan(1, -1); const [c, d] = pan(1, 1); const [e, f] = pan(1); \
             return [a, b, c, d, e, f];",
        ),
        6,
        1,
    );
    assert_eq!(out[0], 1.0);
    assert!(out[1].abs() < 1e-15 && out[2].abs() < 1e-15 && out[3] == 1.0);
    assert!((out[4] - 0.5f64.sqrt()).abs() < 1e-15 && (out[5] - 0.5f64.sqrt()).abs() < 1e-15);
}

#[test]
fn slew_limits_the_rate_of_change() {
    let out = both(
        &signal("const s = slew();", "s(n < 2000 ? 1 : 0, 0.01, 0.02)"),
        1,
        3000,
    );
    let up = out.iter().position(|&v| v == 1.0).unwrap();
    let down = 2000 + out[2000..].iter().position(|&v| v == 0.0).unwrap();
    println!("slew(0.01, 0.02): 1 at frame {up}, 0 at frame {down}");
    assert!(
        (479..=480).contains(&up) && (2959..=2960).contains(&down),
        "{up} {down}"
    );
    assert!(out[..up]
        .windows(2)
        .all(|w| (w[1] - w[0] - 1.0 / 480.0).abs() < 1e-12));
}

#[test]
fn every_unit_plays_natively_with_its_arguments_left_out() {
    let units = [
        "sine", "saw", "square", "tri", "pulse", "phasor", "noise", "pink", "adsr", "ar", "decay",
        "lowpass", "highpass", "bandpass", "notch", "onepole", "delay", "comb", "allpass", "slew",
    ];
    let setup: String = units
        .iter()
        .map(|u| format!("const u_{u} = {u}();"))
        .collect();
    let calls: Vec<String> = units
        .iter()
        .map(|u| match *u {
            "lowpass" | "highpass" | "bandpass" | "notch" | "onepole" | "delay" | "comb"
            | "allpass" | "slew" => format!("u_{u}(0.5)"),
            _ => format!("u_{u}()"),
        })
        .collect();
    let body = format!(
        "const [rl, rr] = u_reverb(0.1); const [pl, pr] = pan(0.5); \
         return [{}, rl, rr, fold(0.3), clip(0.3), drive(0.3), crush(0.3), mtof(), dbtoa(), mix(1, 2), pl, pr];",
        calls.join(", ")
    );
    let channels = units.len() + 2 + 8;
    let out = both(
        &signal_body(&format!("{setup} const u_reverb = reverb();"), &body),
        channels,
        512,
    );
    assert!(out.iter().all(|v| v.is_finite()));
    // Every export of the library is one of these.
    let library = DSP[DSP.find("const LIBRARY = {").unwrap()..].to_owned();
    for name in units.iter().chain(&[
        "reverb", "fold", "clip", "drive", "crush", "mtof", "dbtoa", "mix", "pan",
    ]) {
        assert!(
            library.contains(&format!("  {name},\n")),
            "{name} is not exported"
        );
    }
    // And `sampler`, which needs a sound file: tests/sampler.rs.
    assert!(library.contains("  sampler,\n"));
    assert_eq!(library.matches(",\n").count(), units.len() + 9 + 1);
}

// ----- random compositions -----

/// A unit with random settings, fed by `x`: (setup, expression).
fn unit(k: usize) -> impl Strategy<Value = (String, String)> {
    let freq = 20.0..8000.0f64;
    let amount = 0.0..4.0f64;
    prop_oneof![
        (freq.clone(), amount.clone()).prop_map(move |(f, a)| (
            format!("const u{k} = saw();"),
            format!("u{k}({f:?} + x * {a:?} * 100)")
        )),
        (freq.clone(), 0.0..1.0f64).prop_map(move |(f, w)| (
            format!("const u{k} = pulse();"),
            format!("x + u{k}({f:?}, {w:?})")
        )),
        freq.clone()
            .prop_map(move |f| (format!("const u{k} = tri();"), format!("x * u{k}({f:?})"))),
        freq.clone().prop_map(move |f| (
            format!("const u{k} = sine();"),
            format!("u{k}({f:?} * (1 + x))")
        )),
        (freq.clone(), 0.1..20.0f64, 0usize..4).prop_map(move |(f, q, m)| {
            let unit = ["lowpass", "highpass", "bandpass", "notch"][m];
            (
                format!("const u{k} = {unit}();"),
                format!("u{k}(x, {f:?} * (1.5 + x), {q:?})"),
            )
        }),
        freq.clone().prop_map(move |f| (
            format!("const u{k} = onepole();"),
            format!("u{k}(x, {f:?})")
        )),
        (0.0..0.02f64, -0.9..0.9f64).prop_map(move |(t, g)| (
            format!("const u{k} = comb(0.02);"),
            format!("u{k}(x, {t:?}, {g:?})")
        )),
        (0.0..0.02f64, -0.9..0.9f64).prop_map(move |(t, g)| (
            format!("const u{k} = allpass(0.02);"),
            format!("u{k}(x, {t:?}, {g:?})")
        )),
        (0.0..0.01f64).prop_map(move |t| (
            format!("const u{k} = delay(0.01);"),
            format!("u{k}(x, {t:?} * (1 + 0.5 * x))")
        )),
        (0.0..0.05f64, 0.0..0.05f64).prop_map(move |(a, d)| (
            format!("const u{k} = adsr({a:?}, {d:?}, 0.5, 0.01);"),
            format!("x * u{k}(x > 0 ? 1 : 0)")
        )),
        (0.001..0.05f64)
            .prop_map(move |t| (format!("const u{k} = slew();"), format!("u{k}(x, {t:?})"))),
        amount
            .clone()
            .prop_map(move |a| (String::new(), format!("fold(x, {a:?})"))),
        (1.0..12.0f64).prop_map(move |b| (String::new(), format!("crush(x, {b:?})"))),
        amount.prop_map(move |a| (String::new(), format!("drive(x, {a:?}) + clip(x, 0.5)"))),
        Just((
            format!("const u{k} = noise();"),
            format!("mix(x, u{k}() * 0.1)")
        )),
        Just((format!("const u{k} = pink();"), format!("x + u{k}()"))),
    ]
}

fn chain() -> impl Strategy<Value = String> {
    (0.1..0.9f64, 0.0..1.0f64, unit(0), unit(1), unit(2), unit(3), 2usize..=4).prop_map(
        |(size, pos, a, b, c, d, len)| {
            let units = [a, b, c, d];
            let setup: String = units[..len].iter().map(|u| u.0.clone()).collect::<Vec<_>>().join(" ");
            let body: String = units[..len].iter().map(|u| format!("x = {};", u.1)).collect::<Vec<_>>().join(" ");
            signal_body(
                &format!("{setup} const rv = reverb({size:?}, 0.4, 0.3);"),
                &format!("let x = 0.5; {body} const [l, r] = rv(clip(x, 4)); return [l + pan(x, {pos:?})[0], r];"),
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(debug_assertions) { 12 } else { 64 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_compositions_of_units_agree_across_tiers(src in chain()) {
        let out = both(&src, 2, 600);
        prop_assert!(out.iter().all(|v| v.is_finite()), "{}", src);
    }
}

#[test]
fn a_patch_built_from_the_library_renders_natively_without_allocating() {
    let test = signal_body(
        "const o = saw(); const p = pulse(); const e = adsr(); const f = lowpass(); \
         const d = delay(0.5); const c = comb(0.1); const r = reverb(); const s = slew(); \
         const x = pink();",
        "const env = e(n % 9000 < 4000 ? 1 : 0); \
         const y = f(o(mtof(45)) + p(110, 0.3) + x(), 400 + 3000 * env, 4); \
         const z = c(d(drive(y * env, 2), 0.05), 0.01, 0.7); \
         const [l, rr] = r(z * 0.5); const [pl, pr] = pan(z, s(0.5, 0.1)); \
         return [l + pl, rr + pr];",
    );
    let state = Arc::new(StateMemory::new(MEMORY));
    let mut loader = Loader::new(
        state,
        StateAllocator::new(MEMORY, 64),
        LoadOptions {
            channels: 2,
            tier: TierChoice::Native,
            ..LoadOptions::default()
        },
    );
    let loaded = loader.load_source("patch.js", &test).unwrap();
    println!("load and compile of a 9-unit patch: {:?}", loaded.elapsed);
    let mut signals = loaded.patch.into_signals();
    let code = &mut signals[0].code;
    let mut out = vec![0.0; 128 * 2];
    assert_no_alloc(|| {
        for _ in 0..64 {
            let mut block = Block {
                frames: 128,
                channels: 2,
                sample_rate: f64::from(SR),
                clock: &flux_engine::STILL,
                out: &mut out,
            };
            code.render(&mut block).unwrap();
        }
    });
    assert!(out.iter().any(|&v| v != 0.0));
}

#[test]
fn decaying_feedback_ends_at_zero_without_subnormal_numbers() {
    // (unit, frame expression, and the frame by which an impulse's tail is exactly 0)
    for (setup, expr, zero_by) in [
        ("const e = decay(0.01);", "e(n === 0 ? 1 : 0)", 6000),
        (
            "const f = lowpass();",
            "f(n === 0 ? 1 : 0, 5000, 0.5)",
            1000,
        ),
        ("const f = onepole();", "f(n === 0 ? 1 : 0, 5000)", 1000),
        (
            "const c = comb(0.01);",
            "c(n === 0 ? 1 : 0, 0.0001, 0.5)",
            1000,
        ),
        (
            "const a = allpass(0.01);",
            "a(n === 0 ? 1 : 0, 0.0001, 0.5)",
            1000,
        ),
        // The input diffusers ring longer than the 0.05 s network: 37,268 frames.
        (
            "const r = reverb(0.05, 0.5, 1);",
            "r(n === 0 ? 1 : 0)[0]",
            40_000,
        ),
    ] {
        let out = both(&signal(setup, expr), 1, zero_by + 1000);
        let subnormal = |v: &f64| *v != 0.0 && v.abs() < f64::MIN_POSITIVE;
        assert!(!out.iter().any(subnormal), "{setup}");
        let last = out.iter().rposition(|v| *v != 0.0).unwrap();
        println!("{setup}: last nonzero sample at frame {last}");
        assert!(last < zero_by, "{setup}: {last}");
    }
}

#[test]
fn the_example_in_the_docs_plays_natively() {
    let doc = include_str!("../../../docs/DSP.md");
    let start = doc.find("```js\n").unwrap() + 6;
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let out = both(example, 1, 48_000);
    assert!(rms(&out) > 0.01 && out.iter().all(|v| v.abs() < 1.0));
}

#[test]
fn units_made_at_the_top_level_play_natively() {
    let src = "const lead = saw();\nconst room = reverb(1, 0.5, 0.5);\n\
               flux('t', () => ({ update: () => room(lead(220) * 0.3) }));";
    let out = both(src, 2, 4800);
    assert!(rms(&out) > 0.05);
}

#[test]
fn envelopes_take_boolean_gates() {
    let setup = "const e = adsr(0.001, 0.01, 0.5, 0.01); const d = decay(0.1); const a = ar();";
    let with_bools = both(
        &signal(
            setup,
            "[e(n % 1000 < 500), d(n % 1000 < 10), a(n % 1000 === 0)]",
        ),
        3,
        3000,
    );
    let with_numbers = both(
        &signal(
            setup,
            "[e(n % 1000 < 500 ? 1 : 0), d(n % 1000 < 10 ? 1 : 0), a(n % 1000 === 0 ? 1 : 0)]",
        ),
        3,
        3000,
    );
    assert_eq!(with_bools, with_numbers);
}
