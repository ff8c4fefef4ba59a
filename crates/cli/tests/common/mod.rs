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
