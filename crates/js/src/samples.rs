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
/// frames, sample rate, and the decoded samples until a load has written them where they
/// stay (a trial load decodes a new sound; the real load that follows writes the same
/// samples without decoding them again). Kept by the loader for its life, so a reload
/// finds a sound in the state memory without decoding it again.
pub(crate) type SampleCache = Arc<Mutex<HashMap<String, Known>>>;

/// A decoded sound as the cache knows it: frames, sample rate, and the samples while no
/// real load has written them yet.
pub(crate) type Known = (usize, u32, Option<Arc<[f64]>>);

/// The owner of every sound's range in the allocator: sounds are shared by the signals
/// that play them, and given back when none of them reads a sound any more
/// ([`Loader::reclaim`](crate::Loader::reclaim)).
pub(crate) const SAMPLE_OWNER: &str = "\u{2}sample";

/// Where a sound lies in the state memory, as the library's `sampler` reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Placed {
    /// The sound's unit key in the allocator (path, modification time and size).
    pub key: String,
    /// First slot.
    pub offset: usize,
    /// Frames (one slot each: the channels are mixed to mono).
    pub frames: usize,
    /// Frames of the sound per frame of output at rate 1: its rate over the engine's.
    pub step: f64,
}

/// Finds `name` (relative to the signals file's folder, within the folder rules of
/// imports), decodes it unless the same file (path, time, size) is in the memory already,
/// and places it there. A `trial` load (on a copy of the memory) keeps what it decoded for
/// the real load that follows.
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
    trial: bool,
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
        "{SAMPLE_OWNER}\u{1}{}\u{1}{time}\u{1}{}",
        real.display(),
        meta.len()
    );
    let known = cache.lock().ok().and_then(|c| c.get(&key).cloned());
    let (frames, rate, mut decoded) = match known {
        Some((frames, rate, samples)) => (frames, rate, samples),
        None => {
            let (samples, rate) = decode(&real)?;
            (samples.len(), rate, Some(Arc::from(samples)))
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
    if new {
        let samples = match decoded.take() {
            Some(s) => s,
            None => Arc::from(decode(&real)?.0),
        };
        for (i, x) in samples.iter().enumerate() {
            state.set(block.offset + i, *x);
        }
        // A trial load keeps them for the real load that follows; a real load is done.
        decoded = trial.then_some(samples);
    } else if !trial {
        decoded = None;
    }
    if let Ok(mut c) = cache.lock() {
        c.insert(key.clone(), (frames, rate, decoded));
    }
    Ok(Placed {
        key,
        offset: block.offset,
        frames,
        step: f64::from(rate) / f64::from(sample_rate),
    })
}

/// Most frames a sound file may decode to: what the default state memory holds (a
/// compressed file can hold far more than its size suggests).
pub const MAX_SAMPLE_FRAMES: usize = flux_engine::DEFAULT_SLOTS;

/// Decodes a sound file to mono f64 samples in [-1, 1], and its sample rate: a WAV file
/// (`.wav`, `.wave`) with hound, anything else (FLAC, Ogg Vorbis) with symphonia.
fn decode(path: &PathBuf) -> Result<(Vec<f64>, u32), String> {
    let wav = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wav") || e.eq_ignore_ascii_case("wave"));
    if wav {
        decode_wav(path)
    } else {
        decode_other(path)
    }
}

/// Decodes a FLAC or Ogg Vorbis file (any format symphonia is built with here) to mono.
fn decode_other(path: &PathBuf) -> Result<(Vec<f64>, u32), String> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::DecoderOptions;
    use symphonia::core::errors::Error;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let fail = |e: &dyn std::fmt::Display| {
        format!(
            "cannot decode {} as a sound file (WAV, FLAC or Ogg Vorbis): {e}",
            path.display()
        )
    };
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| fail(&e))?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| fail(&"it holds no audio track"))?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    let rate = params
        .sample_rate
        .ok_or_else(|| fail(&"it gives no sample rate"))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| fail(&e))?;
    let mut mono = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            // The end, or a file cut short: it plays what it holds, as players do.
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(Error::ResetRequired) => break,
            Err(e) => return Err(fail(&e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A damaged packet is skipped, as players do.
            Err(Error::DecodeError(_)) => continue,
            Err(e) => return Err(fail(&e)),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let needed = decoded.capacity() * channels;
        if buffer.as_ref().is_none_or(|b| b.capacity() < needed) {
            buffer = Some(SampleBuffer::new(decoded.capacity() as u64, spec));
        }
        let Some(buf) = buffer.as_mut() else { continue };
        buf.copy_interleaved_ref(decoded);
        mono.extend(
            buf.samples()
                .chunks(channels)
                .map(|frame| mix(frame.iter().map(|&s| f64::from(s)), channels)),
        );
        if mono.len() > MAX_SAMPLE_FRAMES {
            return Err(format!(
                "{} decodes to more than {MAX_SAMPLE_FRAMES} frames; sound files up to that are read",
                path.display()
            ));
        }
    }
    Ok((mono, rate.max(1)))
}

/// One frame of `channels` samples mixed to mono, clamped to [-1, 1] (0 for what is not a
/// number).
fn mix(frame: impl Iterator<Item = f64>, channels: usize) -> f64 {
    let x = frame.sum::<f64>() / channels as f64;
    if x.is_finite() {
        x.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Decodes a WAV file (integer PCM of 8 to 32 bits, or 32-bit float).
fn decode_wav(path: &PathBuf) -> Result<(Vec<f64>, u32), String> {
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
        .map(|frame| mix(frame.iter().copied(), channels))
        .collect();
    Ok((mono, spec.sample_rate.max(1)))
}
