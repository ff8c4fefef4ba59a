//! The device output: any output device of any cpal host (ALSA, JACK, CoreAudio, WASAPI).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    BufferSize, DeviceDirection, FromSample, HostId, Sample, SampleFormat, SizedSample,
    StreamConfig, SupportedBufferSize, SupportedStreamConfig, SupportedStreamConfigRange,
};

use crate::error::tidy;
use crate::running::{Running, Status};
use crate::{Error, ErrorKind, Source};

/// How long to wait for a backend (e.g. a stuck JACK server) to build a stream.
const BUILD_TIMEOUT: Duration = Duration::from_secs(10);

/// Frames per chunk when the device wants another sample format than f32 and its period
/// is unknown. Larger callbacks are converted chunk by chunk.
const DEFAULT_SCRATCH_FRAMES: u32 = 1024;

/// The largest scratch buffer, in frames, whatever the period.
const MAX_SCRATCH_FRAMES: u32 = 16_384;

/// What to ask of an output device. `None` takes the device's own default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OutputConfig {
    /// Frames per second per channel, e.g. 48000.
    pub sample_rate: Option<u32>,
    /// Samples per frame, e.g. 2 for stereo.
    pub channels: Option<u16>,
    /// Frames per device callback. Used only when the device says it supports this size;
    /// otherwise the device picks.
    pub period_frames: Option<u32>,
}

/// One output device, as [`list_devices`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// The host (audio API) it belongs to, e.g. `"ALSA"` or `"JACK"`.
    pub host: String,
    /// Its human name, e.g. `"Default Audio Device"` or `"JACK Output"`.
    pub name: String,
    /// The host's id for it, e.g. the ALSA PCM name `"default"` or `"hw:CARD=PCH,DEV=0"`.
    pub id: String,
    /// Whether it is its host's default output device.
    pub default: bool,
    /// Its default sample rate.
    pub sample_rate: u32,
    /// Its default channel count.
    pub channels: u16,
}

impl DeviceInfo {
    /// `"HOST: name"`, the form [`Device::name`] reports; [`open_device`] accepts it too.
    pub fn full_name(&self) -> String {
        format!("{}: {}", self.host, self.name)
    }
}

impl fmt::Display for DeviceInfo {
    /// One line, e.g. `ALSA: Default Audio Device [default], 48000 Hz, 2 channels (default)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}], {} Hz, {} channels",
            self.host, self.name, self.id, self.sample_rate, self.channels
        )?;
        if self.default {
            f.write_str(" (default)")?;
        }
        Ok(())
    }
}

/// An opened output device that is not started yet.
///
/// Its sample rate and channel count are final, so the caller can build its engine to
/// match before calling [`start`](Device::start).
#[derive(Debug)]
pub struct Device {
    device: cpal::Device,
    host: &'static str,
    name: String,
    id: String,
    config: StreamConfig,
    format: SampleFormat,
    period_frames: Option<u32>,
}

impl Device {
    /// Frames per second per channel the stream will run at.
    pub fn sample_rate(&self) -> u32 {
        self.config.sample_rate
    }

    /// Samples per frame the stream will run with.
    pub fn channels(&self) -> u16 {
        self.config.channels
    }

    /// `"HOST: name"`, e.g. `"ALSA: Default Audio Device"` or `"JACK: JACK Output"`.
    pub fn name(&self) -> String {
        format!("{}: {}", self.host, self.name)
    }

    /// The host's id for the device, e.g. `"default"` or `"hw:CARD=PCH,DEV=0"` on ALSA.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Frames per callback, when known before starting: the requested period when the
    /// device accepted it, or the only period the device offers (a JACK server's).
    pub fn period_frames(&self) -> Option<u32> {
        self.period_frames
    }

    /// The device's sample format, e.g. `"f32"` or `"i16"`. Sources always write f32;
    /// other formats are converted in the callback.
    pub fn sample_format(&self) -> String {
        self.format.to_string()
    }

    /// Starts the stream. From now on the device's callback thread calls `source` each
    /// time the device wants frames, until the returned [`Running`] is stopped or dropped.
    ///
    /// The source is called with whole frames; how many per call is up to the device,
    /// usually [`period_frames`](Device::period_frames). When the device's format is not
    /// f32, one device callback may become several smaller calls.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnsupportedConfig`] if the device refuses the configuration after all;
    /// [`ErrorKind::DeviceLost`] if it has gone away since it was opened;
    /// [`ErrorKind::Stream`] for other backend failures (device busy, server error).
    pub fn start(self, source: impl Source) -> Result<Running, Error> {
        let name = self.name();
        let status = Arc::new(Status::new(name.clone()));
        let stream = match self.format {
            SampleFormat::F32 => self.build_f32(source, &status),
            SampleFormat::F64 => self.build::<f64>(source, &status),
            SampleFormat::I8 => self.build::<i8>(source, &status),
            SampleFormat::I16 => self.build::<i16>(source, &status),
            SampleFormat::I24 => self.build::<cpal::I24>(source, &status),
            SampleFormat::I32 => self.build::<i32>(source, &status),
            SampleFormat::I64 => self.build::<i64>(source, &status),
            SampleFormat::U8 => self.build::<u8>(source, &status),
            SampleFormat::U16 => self.build::<u16>(source, &status),
            SampleFormat::U24 => self.build::<cpal::U24>(source, &status),
            SampleFormat::U32 => self.build::<u32>(source, &status),
            SampleFormat::U64 => self.build::<u64>(source, &status),
            other => {
                return Err(Error::new(
                    ErrorKind::UnsupportedConfig,
                    format!("cannot start \"{name}\": sample format {other} is not supported"),
                ))
            }
        }
        .map_err(|e| Error::from_cpal(&format!("cannot start \"{name}\""), &e))?;
        stream
            .play()
            .map_err(|e| Error::from_cpal(&format!("cannot start \"{name}\""), &e))?;
        Ok(Running::device(stream, status))
    }

    /// Builds a stream that lets the source write straight into the device's buffer.
    fn build_f32(
        &self,
        mut source: impl Source,
        status: &Arc<Status>,
    ) -> Result<cpal::Stream, cpal::Error> {
        let status = Arc::clone(status);
        self.device.build_output_stream::<f32, _, _>(
            self.config,
            move |out: &mut [f32], _: &cpal::OutputCallbackInfo| source.fill(out),
            move |error| status.report_device_error(error),
            Some(BUILD_TIMEOUT),
        )
    }

    /// Builds a stream that renders into an f32 scratch buffer and converts to `T`.
    fn build<T>(
        &self,
        mut source: impl Source,
        status: &Arc<Status>,
    ) -> Result<cpal::Stream, cpal::Error>
    where
        T: SizedSample + FromSample<f32>,
    {
        let frames = self
            .period_frames
            .unwrap_or(DEFAULT_SCRATCH_FRAMES)
            .clamp(1, MAX_SCRATCH_FRAMES);
        // Allocated here, before the stream exists; the callback only reuses it.
        let mut scratch = vec![0.0_f32; frames as usize * usize::from(self.config.channels)];
        let status = Arc::clone(status);
        self.device.build_output_stream::<T, _, _>(
            self.config,
            move |out: &mut [T], _: &cpal::OutputCallbackInfo| {
                render_converted(&mut source, &mut scratch, out)
            },
            move |error| status.report_device_error(error),
            Some(BUILD_TIMEOUT),
        )
    }
}

/// The largest f32 below 1.0 that every integer format can hold: 24-bit formats overflow
/// at exactly 1.0.
const MAX_BELOW_ONE: f32 = 1.0 - 1.0 / 8_388_608.0;

/// Fills `out` from `source` through `scratch`, converting f32 to `T`, in chunks of at most
/// `scratch.len()` samples. Samples are clipped to the format's range.
///
/// Real-time safe: no allocation, no locks. `scratch.len()` must be a non-zero whole number
/// of frames, and so must `out.len()`; then every chunk is whole frames too.
fn render_converted<T>(source: &mut impl Source, scratch: &mut [f32], out: &mut [T])
where
    T: Sample + FromSample<f32>,
{
    for chunk in out.chunks_mut(scratch.len()) {
        let buffer = &mut scratch[..chunk.len()];
        source.fill(buffer);
        for (sample, &value) in chunk.iter_mut().zip(buffer.iter()) {
            *sample = T::from_sample(value.clamp(-1.0, MAX_BELOW_ONE));
        }
    }
}

/// Opens an output device, choosing the stream configuration but not starting it.
///
/// With `name` `None` this is the default output device of the default host (ALSA on
/// Linux). With a name, the output devices of every available host are searched (on Linux
/// JACK, when a JACK server runs, then ALSA): first for a device whose name, id or
/// `"HOST: name"` equals `name`, then for one where any of these contains `name`, ignoring
/// case. The first match in [`list_devices`] order wins.
///
/// Settings left `None` in `config` take the device's default. A period is asked for only
/// when the device reports that it supports that size; [`Device::period_frames`] says what
/// was obtained.
///
/// # Errors
///
/// [`ErrorKind::NoDevice`] if `name` is `None` and there is no default device or it cannot
/// be opened; [`ErrorKind::DeviceNotFound`] if no device matches `name` (the message lists
/// the available devices); [`ErrorKind::UnsupportedConfig`] if the device does not support
/// the requested rate and channels (the message says what it supports);
/// [`ErrorKind::InvalidInput`] if `name` is empty or a requested value is zero;
/// [`ErrorKind::Stream`] or [`ErrorKind::DeviceLost`] if a named device fails while it is
/// being queried.
pub fn open_device(name: Option<&str>, config: &OutputConfig) -> Result<Device, Error> {
    check_config(config)?;
    let _quiet = crate::quiet::Quiet::new();
    match name {
        None => open_default(config),
        Some("") => Err(Error::new(
            ErrorKind::InvalidInput,
            "a device name cannot be empty",
        )),
        Some(name) => open_named(name, config),
    }
}

/// Lists the output devices of every available host, with their default rate and channels.
///
/// ALSA's unclocked `null` PCM is left out (neither listed nor opened by name): the
/// real-time [`NullOutput`](crate::NullOutput) stands for it. Devices that fail to report a
/// default configuration are left out. Probing opens each device briefly, so this may take
/// a moment. alsa-lib's own diagnostics (for devices that do not exist on this machine)
/// are dropped.
pub fn list_devices() -> Vec<DeviceInfo> {
    let _quiet = crate::quiet::Quiet::new();
    candidates()
        .into_iter()
        .filter_map(|candidate| {
            let config = candidate.device.default_output_config().ok()?;
            Some(DeviceInfo {
                host: candidate.host.to_owned(),
                name: candidate.name,
                id: candidate.id,
                default: candidate.default,
                sample_rate: config.sample_rate(),
                channels: config.channels(),
            })
        })
        .collect()
}

fn check_config(config: &OutputConfig) -> Result<(), Error> {
    let zero = if config.sample_rate == Some(0) {
        Some("sample rate")
    } else if config.channels == Some(0) {
        Some("channel count")
    } else if config.period_frames == Some(0) {
        Some("period")
    } else {
        None
    };
    match zero {
        Some(what) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("a {what} of 0 is not valid"),
        )),
        None => Ok(()),
    }
}

fn open_default(config: &OutputConfig) -> Result<Device, Error> {
    let host = cpal::default_host();
    let host_name = host.id().name();
    let Some(device) = host.default_output_device() else {
        return Err(Error::new(
            ErrorKind::NoDevice,
            format!("the {host_name} host has no default output device"),
        ));
    };
    let candidate = Candidate::new(device, host.id(), true);
    let full_name = candidate.full_name();
    // Only the default device itself is probed, so a machine without sound fails fast.
    if let Err(e) = candidate.device.supported_output_configs() {
        return Err(Error::new(
            ErrorKind::NoDevice,
            format!(
                "cannot open the default output device \"{full_name}\": {}",
                tidy(&e.to_string())
            ),
        ));
    }
    configure(candidate, config)
}

fn open_named(name: &str, config: &OutputConfig) -> Result<Device, Error> {
    let mut candidates = candidates();
    let exact = candidates
        .iter()
        .position(|c| c.name == name || c.id == name || c.full_name() == name);
    let lower = name.to_lowercase();
    let found = exact.or_else(|| {
        candidates.iter().position(|c| {
            c.name.to_lowercase().contains(&lower)
                || c.id.to_lowercase().contains(&lower)
                || c.full_name().to_lowercase().contains(&lower)
        })
    });
    match found {
        Some(index) => configure(candidates.swap_remove(index), config),
        None => Err(Error::new(
            ErrorKind::DeviceNotFound,
            not_found_message(name, &candidates),
        )),
    }
}

fn not_found_message(name: &str, candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return format!("no output device named \"{name}\"; no output devices are available");
    }
    let list: Vec<String> = candidates
        .iter()
        .map(|c| format!("\"{}\" [{}]", c.full_name(), c.id))
        .collect();
    format!(
        "no output device named \"{name}\"; available devices are: {}",
        list.join(", ")
    )
}

/// An output device found on some host, with the labels it is looked up by.
struct Candidate {
    device: cpal::Device,
    host: &'static str,
    name: String,
    id: String,
    default: bool,
}

impl Candidate {
    fn new(device: cpal::Device, host: HostId, default: bool) -> Candidate {
        let name = device
            .description()
            .map(|d| d.name().to_owned())
            .unwrap_or_else(|_| device.to_string());
        let id = device.id().map(|id| id.id().to_owned()).unwrap_or_default();
        Candidate {
            device,
            host: host.name(),
            name,
            id,
            default,
        }
    }

    fn full_name(&self) -> String {
        format!("{}: {}", self.host, self.name)
    }
}

/// The output devices of every available host, in host order.
fn candidates() -> Vec<Candidate> {
    let mut found = Vec::new();
    for host_id in cpal::available_hosts() {
        let Ok(host) = cpal::host_from_id(host_id) else {
            continue;
        };
        let default_id = host.default_output_device().and_then(|d| d.id().ok());
        let Ok(devices) = host.output_devices() else {
            continue;
        };
        for device in devices {
            // JACK lists its input device among the output devices too.
            let direction = device.description().map(|d| d.direction());
            if direction.is_ok_and(|d| d == DeviceDirection::Input) {
                continue;
            }
            let default = default_id.is_some() && device.id().ok() == default_id;
            let candidate = Candidate::new(device, host_id, default);
            // ALSA's `null` PCM has no clock (it takes samples as fast as they come): the
            // real-time null output (`--null`) is the one to use.
            if host_id.name() == "ALSA" && candidate.id == "null" {
                continue;
            }
            found.push(candidate);
        }
    }
    found
}

/// Chooses the stream configuration for `candidate` that honours `request`.
fn configure(candidate: Candidate, request: &OutputConfig) -> Result<Device, Error> {
    let full_name = candidate.full_name();
    let ranges: Vec<SupportedStreamConfigRange> = candidate
        .device
        .supported_output_configs()
        .map_err(|e| Error::from_cpal(&format!("cannot query \"{full_name}\""), &e))?
        .filter(|range| is_pcm(range.sample_format()))
        .collect();
    let default = candidate
        .device
        .default_output_config()
        .ok()
        .filter(|config| is_pcm(config.sample_format()));
    let chosen = choose(&ranges, default, request).ok_or_else(|| {
        Error::new(
            ErrorKind::UnsupportedConfig,
            unsupported_message(&full_name, &ranges, default, request),
        )
    })?;
    let (buffer_size, period_frames) = match (request.period_frames, *chosen.buffer_size()) {
        (Some(frames), SupportedBufferSize::Range { min, max })
            if (min..=max).contains(&frames) =>
        {
            (BufferSize::Fixed(frames), Some(frames))
        }
        (_, SupportedBufferSize::Range { min, max }) if min == max && min > 0 => {
            (BufferSize::Default, Some(min))
        }
        _ => (BufferSize::Default, None),
    };
    Ok(Device {
        device: candidate.device,
        host: candidate.host,
        name: candidate.name,
        id: candidate.id,
        config: StreamConfig {
            channels: chosen.channels(),
            sample_rate: chosen.sample_rate(),
            buffer_size,
        },
        format: chosen.sample_format(),
        period_frames,
    })
}

/// Picks the configuration: the device default when it fits the request, else the best
/// supported range that fits (f32 first, then wider formats).
fn choose(
    ranges: &[SupportedStreamConfigRange],
    default: Option<SupportedStreamConfig>,
    request: &OutputConfig,
) -> Option<SupportedStreamConfig> {
    let rate = request.sample_rate.or(default.map(|d| d.sample_rate()));
    let channels = request.channels.or(default.map(|d| d.channels()));
    if let Some(default) = default {
        if Some(default.sample_rate()) == rate && Some(default.channels()) == channels {
            return Some(default);
        }
    }
    let best = ranges
        .iter()
        .filter(|range| channels.is_none_or(|c| range.channels() == c))
        .filter(|range| rate.is_none_or(|r| range.contains_rate(r)))
        .max_by(|a, b| a.cmp_default_heuristics(b))?;
    match rate {
        Some(rate) => best.try_with_sample_rate(rate),
        None => Some(
            best.try_with_standard_sample_rate()
                .unwrap_or_else(|| best.with_max_sample_rate()),
        ),
    }
}

fn is_pcm(format: SampleFormat) -> bool {
    !matches!(
        format,
        SampleFormat::DsdU8 | SampleFormat::DsdU16 | SampleFormat::DsdU32
    )
}

fn unsupported_message(
    full_name: &str,
    ranges: &[SupportedStreamConfigRange],
    default: Option<SupportedStreamConfig>,
    request: &OutputConfig,
) -> String {
    let rate = request.sample_rate.or(default.map(|d| d.sample_rate()));
    let channels = request.channels.or(default.map(|d| d.channels()));
    let wanted = match (rate, channels) {
        (Some(rate), Some(channels)) => format!("{rate} Hz with {channels} channels"),
        (Some(rate), None) => format!("{rate} Hz"),
        (None, Some(channels)) => format!("{channels} channels"),
        (None, None) => "any PCM format".to_owned(),
    };
    if ranges.is_empty() {
        return format!(
            "\"{full_name}\" does not support {wanted}; it reports no PCM output formats"
        );
    }
    let mut channel_counts: Vec<u16> = ranges.iter().map(|r| r.channels()).collect();
    channel_counts.sort_unstable();
    channel_counts.dedup();
    let mut rates: Vec<(u32, u32)> = ranges
        .iter()
        .map(|r| (r.min_sample_rate(), r.max_sample_rate()))
        .collect();
    rates.sort_unstable();
    rates.dedup();
    let rates: Vec<String> = rates
        .iter()
        .map(|&(min, max)| {
            if min == max {
                format!("{min} Hz")
            } else {
                format!("{min}-{max} Hz")
            }
        })
        .collect();
    format!(
        "\"{full_name}\" does not support {wanted}; it supports {} channels at {}",
        spans(&channel_counts),
        rates.join(", ")
    )
}

/// Writes sorted numbers compactly: `[1, 2, 3, 6]` becomes `"1-3, 6"`.
fn spans(numbers: &[u16]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_compacts_runs() {
        assert_eq!(spans(&[1, 2, 3, 6]), "1-3, 6");
        assert_eq!(spans(&[2]), "2");
        assert_eq!(spans(&[]), "");
    }

    /// Writes frame numbers / 4 and records the length of each call, without allocating.
    struct Ramp {
        channels: usize,
        next: f32,
        calls: [usize; 8],
        call_count: usize,
    }

    impl Source for Ramp {
        fn fill(&mut self, out: &mut [f32]) {
            self.calls[self.call_count] = out.len();
            self.call_count += 1;
            for frame in out.chunks_mut(self.channels) {
                frame.fill(self.next);
                self.next += 0.25;
            }
        }
    }

    #[test]
    fn render_converted_splits_into_whole_frames_and_converts() {
        let channels = 2;
        let mut source = Ramp {
            channels,
            next: 0.0,
            calls: [0; 8],
            call_count: 0,
        };
        // Three frames of scratch against seven frames of output: chunks of 3, 3 and 1.
        let mut scratch = vec![0.0_f32; 3 * channels];
        let mut out = vec![0_i16; 7 * channels];
        assert_no_alloc::assert_no_alloc(|| render_converted(&mut source, &mut scratch, &mut out));
        assert_eq!(source.calls[..source.call_count], [6, 6, 2]);
        let expected: Vec<i16> = [0, 8192, 16384, 24576, 32767, 32767, 32767]
            .iter()
            .flat_map(|&v| [v; 2])
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn render_converted_keeps_24_bit_samples_in_range() {
        let mut source = |out: &mut [f32]| {
            out.copy_from_slice(&[1.0, -1.0, 2.0, f32::NAN]);
        };
        let mut scratch = vec![0.0_f32; 4];
        let mut out = vec![cpal::I24::EQUILIBRIUM; 4];
        render_converted(&mut source, &mut scratch, &mut out);
        let values: Vec<i32> = out.iter().map(|s| s.inner()).collect();
        assert_eq!(values, [8_388_607, -8_388_608, 8_388_607, 0]);
    }

    #[test]
    fn choose_prefers_the_default_then_f32() {
        let range = |channels, format| {
            SupportedStreamConfigRange::new(
                channels,
                8_000,
                96_000,
                SupportedBufferSize::Range { min: 64, max: 4096 },
                format,
            )
        };
        let ranges = [
            range(2, SampleFormat::I16),
            range(2, SampleFormat::F32),
            range(1, SampleFormat::I32),
        ];
        let default = Some(range(2, SampleFormat::I16).with_sample_rate(44_100));
        let none = OutputConfig::default();
        assert_eq!(choose(&ranges, default, &none), default);
        let request = OutputConfig {
            sample_rate: Some(48_000),
            ..OutputConfig::default()
        };
        let chosen = choose(&ranges, default, &request).unwrap();
        assert_eq!(chosen.sample_format(), SampleFormat::F32);
        assert_eq!((chosen.sample_rate(), chosen.channels()), (48_000, 2));
        let mono = OutputConfig {
            channels: Some(1),
            ..OutputConfig::default()
        };
        let chosen = choose(&ranges, default, &mono).unwrap();
        assert_eq!(chosen.sample_format(), SampleFormat::I32);
        assert_eq!(chosen.sample_rate(), 44_100);
        let too_fast = OutputConfig {
            sample_rate: Some(192_000),
            ..OutputConfig::default()
        };
        assert_eq!(choose(&ranges, default, &too_fast), None);
        let message = unsupported_message("TEST: dev", &ranges, default, &too_fast);
        assert_eq!(
            message,
            "\"TEST: dev\" does not support 192000 Hz with 2 channels; it supports 1-2 channels at \
             8000-96000 Hz"
        );
    }
}
