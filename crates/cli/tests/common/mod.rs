//! Helpers for running the `flux` binary in tests.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `flux` binary under test.
pub fn flux() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flux"))
}

/// A file of the repository's `examples/`.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Runs `cmd`, returning its output; panics with its stderr when it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("cannot run flux")
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Reads a WAV file: (sample rate, channels, interleaved samples).
pub fn read_wav(path: &Path) -> (u32, u16, Vec<f32>) {
    let mut reader = hound::WavReader::open(path).expect("cannot open the WAV file");
    let spec = reader.spec();
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    assert_eq!(spec.bits_per_sample, 32);
    let samples = reader.samples::<f32>().map(Result::unwrap).collect();
    (spec.sample_rate, spec.channels, samples)
}

/// Upward zero crossings of a mono signal.
pub fn rising_crossings(samples: &[f32]) -> usize {
    samples
        .windows(2)
        .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
        .count()
}

/// The frequency of a periodic mono signal, from its first and last rising zero crossings
/// (linearly interpolated between samples).
pub fn frequency(samples: &[f32], sample_rate: u32) -> f64 {
    let crossings: Vec<f64> = samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + f64::from(-w[0] / (w[1] - w[0])))
        .collect();
    assert!(crossings.len() >= 2, "fewer than two zero crossings");
    let span = crossings[crossings.len() - 1] - crossings[0];
    (crossings.len() - 1) as f64 * f64::from(sample_rate) / span
}

/// A signals file with one sine of `freq` Hz, written like the seed's examples.
pub fn sine_file(freq: f64, shape: &str) -> String {
    format!(
        "import {{ flux }} from './flux.js';\n\
         flux('tone', (mem, idx) => {{\n\
           const freq = {freq:?};\n\
           return {{ update: (sr) => {{\n\
             mem[idx] = (mem[idx] + freq / sr) % 1.0;\n\
             return [Math.{shape}(mem[idx] * 2 * Math.PI) * 0.5];\n\
           }} }};\n\
         }});\n"
    )
}

/// A `flux play --record` file as the engine rendered it: (sample rate, channels,
/// interleaved samples) without the silences the output played in underruns, which the
/// `--stats` file lists. Tests that compare the sound with what the code makes use it, so
/// a busy machine's underruns do not move the samples.
pub fn read_rendered(rec: &Path, stats: &Path) -> (u32, u16, Vec<f32>) {
    let (rate, channels, samples) = read_wav(rec);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stats).unwrap()).unwrap();
    // Dropped blocks would move the silences.
    assert_eq!(s["recording_dropped_frames"], 0, "{s}");
    let times = s["underrun_times_s"].as_array().unwrap();
    let frames = s["underrun_frames"].as_array().unwrap();
    assert_eq!(Some(times.len() as u64), s["underruns"].as_u64(), "{s}");
    let ch = usize::from(channels);
    let mut out = Vec::with_capacity(samples.len());
    let mut from = 0;
    for (t, n) in times.iter().zip(frames) {
        let at = (t.as_f64().unwrap() * f64::from(rate)).round() as usize * ch;
        out.extend_from_slice(&samples[from..at]);
        from = at + n.as_u64().unwrap() as usize * ch;
    }
    out.extend_from_slice(&samples[from.min(samples.len())..]);
    (rate, channels, out)
}
