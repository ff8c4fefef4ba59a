//! The overload policy on `flux play`: a signal made slow on purpose is faded out and
//! reported at its place; the tone next to it plays on; `--stats` gives each signal's DSP
//! share. Underrun counts after the cut are a benchmark (`scripts/bench_overload.sh`), not
//! an assertion: a busy machine can cause underruns of its own.

mod common;

use common::{flux, frequency, read_rendered, run, stderr};

/// A 440 Hz tone and a signal that adds 0.25 after thousands of sines per sample: on the
/// JavaScript tier, several times a block's time.
const PATCH: &str = "import { flux } from './flux.js';\n\
flux('tone', (mem, idx) => ({ update: (sr) => {\n\
  mem[idx] = (mem[idx] + 440 / sr) % 1;\n\
  return [Math.sin(mem[idx] * 2 * Math.PI) * 0.5];\n\
} }));\n\
flux('slow', (mem, idx) => ({ update: (sr) => {\n\
  let x = 0;\n\
  for (let i = 0; i < 3000; i++) x += Math.sin(i);\n\
  return [0.25 + x * 1e-12];\n\
} }));\n";

/// `flux play` of [`PATCH`] (written to a new folder, returned with the command) on the
/// null output, mono, on the JavaScript tier, without pre-flight; more arguments follow.
fn play_patch() -> (tempfile::TempDir, std::process::Command) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.js");
    std::fs::write(&file, PATCH).unwrap();
    let mut play = flux();
    play.args([
        "play",
        "--null",
        "--channels",
        "1",
        "--tier",
        "js",
        "--preflight",
        "0",
    ])
    .arg(&file);
    (dir, play)
}

fn stats(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn an_overloading_signal_fades_out_and_the_tone_plays_on() {
    let (dir, mut play) = play_patch();
    let (rec, json) = (dir.path().join("rec.wav"), dir.path().join("stats.json"));
    let out = run(play
        .args(["--seconds", "4", "--record"])
        .arg(&rec)
        .arg("--stats")
        .arg(&json));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // Reported once, at the slow signal's code, with its share.
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("overload:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("slow.js:6:"), "{err}");
    assert!(lines[0].contains("(signal 'slow' silenced)"), "{err}");
    assert!(lines[0].contains("update took "), "{err}");

    let s = stats(&json);
    let share = |id: &str| s["levels"]["signals"][id]["dsp_percent"].as_f64().unwrap();
    assert!(share("slow") > 90.0, "{s}");
    assert!(share("tone") < share("slow") / 10.0, "{s}");

    // The last second of what was rendered is the tone alone: 440 Hz, no 0.25 offset.
    let (rate, _, samples) = read_rendered(&rec, &json);
    let last = &samples[samples.len() - rate as usize..];
    let f = frequency(last, rate);
    assert!((f - 440.0).abs() < 0.5, "{f} Hz");
    let mean = last.iter().map(|&x| f64::from(x)).sum::<f64>() / last.len() as f64;
    assert!(mean.abs() < 0.01, "mean {mean}");
    let peak = last.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    assert!((peak - 0.5f32.tanh()).abs() < 0.01, "peak {peak}");
    // Before the cut the offset was there: the slow signal played until it was cut (a
    // few tens of milliseconds: the cut comes after 200 ms of the thread's CPU time).
    let means: Vec<f64> = samples[..rate as usize / 2]
        .chunks(rate as usize / 200)
        .map(|c| c.iter().map(|&x| f64::from(x)).sum::<f64>() / c.len() as f64)
        .collect();
    assert!(means.iter().any(|&m| m > 0.15), "5 ms means {means:?}");
}

#[test]
fn overload_off_keeps_every_signal_and_bad_limits_are_refused() {
    for (value, message) in [
        ("5", "5% is outside 10% to 400% of a block's time"),
        ("lots", "\"lots\" is neither a percentage nor `off`"),
    ] {
        let out = run(flux().args(["play", "--null", "--seconds", "1", "--overload", value]));
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
    let (dir, mut play) = play_patch();
    let json = dir.path().join("stats.json");
    let out = run(play
        .args(["--overload", "off", "--seconds", "1.5", "--stats"])
        .arg(&json));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("overload:"), "{err}");
}
