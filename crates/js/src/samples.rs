//! Sound files for the library's `sampler(path)`: found next to the signals file, decoded
//! once, kept in the state memory across reloads, read again when the file changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use flux_engine::{StateAllocator, StateMemory};

use crate::modules::Imports;

/// Largest sound file `sampler` reads.
pub const MAX_SAMPLE_BYTES: u64 = 256 << 20;

/// Sounds decoded so far, by key (path, modification time and size): their length in
/// frames and sample rate. Kept by the loader for its life, so a reload finds a sound in
/// the state memory without decoding it again.
pub(crate) type SampleCache = Arc<Mutex<HashMap<String, (usize, u32)>>>;

/// Where a sound lies in the state memory, as the library's `sampler` reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placed {
    /// First slot.
    pub offset: usize,
    /// Frames (one slot each: the channels are mixed to mono).
    pub frames: usize,
    /// Frames of the sound per frame of output at rate 1: its rate over the engine's.
    pub step: f64,
}

/// Finds `name` (relative to the signals file's folder, within the folder rules of
/// imports), decodes it unless the same file (path, time, size) is in the memory already,
/// and places it there.
///
/// # Errors
///
/// A message naming the file and what is wrong with it.
pub(crate) fn place(
    name: &str,
    imports: &Imports,
    alloc: &Mutex<StateAllocator>,
    state: &StateMemory,
    cache: &SampleCache,
    sample_rate: u32,
) -> Result<Placed, String> {
    let real = imports.resolve_file(name)?;
    let meta =
        std::fs::metadata(&real).map_err(|e| format!("cannot read {}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", real.display()));
    }
    if meta.len() > MAX_SAMPLE_BYTES {
        return Err(format!(
            "{} is {} bytes; sound files of at most {MAX_SAMPLE_BYTES} bytes are read",
            real.display(),
            meta.len()
        ));
    }
    let time = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = format!(
        "\u{2}sample\u{1}{}\u{1}{time}\u{1}{}",
        real.display(),
        meta.len()
    );
    let known = cache.lock().ok().and_then(|c| c.get(&key).copied());
    let (frames, rate, decoded) = match known {
        Some((frames, rate)) => (frames, rate, None),
        None => {
            let (samples, rate) = decode(&real)?;
            (samples.len(), rate, Some(samples))
        }
    };
    if frames < 2 {
        return Err(format!(
            "{} holds no sound (fewer than 2 frames)",
            real.display()
        ));
    }
    let (block, new) = alloc
        .lock()
        .map_err(|_| "the state allocator is poisoned".to_owned())?
        .unit(&key, frames)
        .map_err(|e| e.to_string())?;
    if new || decoded.is_some() {
        let samples = match decoded {
            Some(s) => s,
            None => decode(&real)?.0,
        };
        for (i, x) in samples.iter().enumerate() {
            state.set(block.offset + i, *x);
        }
    }
    if let Ok(mut c) = cache.lock() {
        c.insert(key, (frames, rate));
    }
    Ok(Placed {
        offset: block.offset,
        frames,
        step: f64::from(rate) / f64::from(sample_rate),
    })
}

/// Decodes a WAV file (integer PCM of 8 to 32 bits, or 32-bit float) to mono f64 samples in
/// [-1, 1], and its sample rate.
fn decode(path: &PathBuf) -> Result<(Vec<f64>, u32), String> {
    let fail = |e: hound::Error| format!("cannot decode {} as a WAV file: {e}", path.display());
    let reader = hound::WavReader::open(path).map_err(fail)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let raw: Vec<f64> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .map(|s| s.map(f64::from))
            .collect::<Result<_, _>>()
            .map_err(fail)?,
        hound::SampleFormat::Int => {
            let scale = 2f64.powi(i32::from(spec.bits_per_sample.clamp(1, 32)) - 1);
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|x| f64::from(x) / scale))
                .collect::<Result<_, _>>()
                .map_err(fail)?
        }
    };
    let mono = raw
        .chunks(channels)
        .map(|frame| {
            let sum: f64 = frame.iter().sum();
            let x = sum / channels as f64;
            if x.is_finite() {
                x.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    Ok((mono, spec.sample_rate.max(1)))
}
