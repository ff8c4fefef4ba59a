//! Flux outputs: move interleaved f32 frames from a [`Source`] to a sound device, to a
//! real-time null clock, or to a WAV file.
//!
//! This crate knows nothing about signals. A source is anything that can fill a buffer of
//! interleaved f32 samples; in Flux it is the consumer end of the engine's ring buffer.
//!
//! # The model
//!
//! 1. **Open.** [`open_device`] finds an output device and fixes its sample rate and
//!    channel count ([`OutputConfig`] fields left `None` take the device's defaults). The
//!    [`Device`] it returns is not running yet, so the caller can build its engine at the
//!    device's rate and width first. [`list_devices`] shows what there is to open. A
//!    [`NullOutput`] stands in when there is no sound card.
//! 2. **Start.** [`Device::start`] or [`NullOutput::start`] hands over the source and
//!    returns a [`Running`] output.
//! 3. **Run.** The source is called from then on, **on the output's own thread**: the
//!    device's callback thread (an ALSA worker thread, the JACK process thread, ...) or the
//!    null clock thread. [`Source::fill`] must therefore be real-time safe: no allocation,
//!    no locks that another thread may hold, no I/O, no waiting.
//!    [`Running::take_error`] and [`Running::xruns`] report trouble without blocking either
//!    side.
//! 4. **Stop.** Dropping the [`Running`] (or [`Running::stop`]) stops the output and drops
//!    the source; the source is not called after that.
//!
//! ```no_run
//! use flux_audio::{open_device, OutputConfig};
//!
//! let device = open_device(None, &OutputConfig::default())?;
//! let (rate, channels) = (device.sample_rate() as f32, usize::from(device.channels()));
//! let mut phase = 0.0_f32;
//! let running = device.start(move |out: &mut [f32]| {
//!     for frame in out.chunks_mut(channels) {
//!         frame.fill(0.2 * (phase * std::f32::consts::TAU).sin());
//!         phase = (phase + 440.0 / rate).fract();
//!     }
//! })?;
//! std::thread::sleep(std::time::Duration::from_secs(1));
//! running.stop();
//! # Ok::<(), flux_audio::Error>(())
//! ```
//!
//! Offline rendering does not need a thread at all: write frames with [`WavWriter`] as fast
//! as the engine makes them.

mod device;
mod error;
mod null;
mod quiet;
pub use quiet::Quiet;
mod running;
mod wav;

pub use device::{list_devices, open_device, Device, DeviceInfo, OutputConfig};
pub use error::{Error, ErrorKind};
pub use null::{NullClock, NullOutput};
pub use running::Running;
pub use wav::WavWriter;

/// Where an output takes its frames from.
///
/// # Real-time contract
///
/// [`fill`](Source::fill) is called on the output's own thread (a device callback or the
/// null clock thread), once per period, for as long as the output runs. It must be
/// real-time safe: it may not allocate, free, take a lock another thread may hold, do I/O
/// or wait. It must return quickly; a late return is an audible dropout.
pub trait Source: Send + 'static {
    /// Writes the next frames into `out`.
    ///
    /// `out` is interleaved, as wide as the output's channel count, and always holds a
    /// whole number of frames; the number of frames may change from call to call. Its old
    /// contents are unspecified: write every sample (silence is `0.0`).
    fn fill(&mut self, out: &mut [f32]);
}

impl<F: FnMut(&mut [f32]) + Send + 'static> Source for F {
    fn fill(&mut self, out: &mut [f32]) {
        self(out)
    }
}

// The unit tests prove the conversion path does not allocate.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;
