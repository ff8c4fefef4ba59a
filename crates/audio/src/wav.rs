//! The WAV writer: 32-bit float, interleaved.

use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::tidy;
use crate::{Error, ErrorKind};

/// Writes interleaved f32 frames to a 32-bit float WAV file.
///
/// Call [`finish`](WavWriter::finish) at the end: it writes the final sizes into the header
/// and reports any error. Dropping the writer also finishes the file, but loses the error.
pub struct WavWriter {
    inner: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
    channels: u16,
}

impl WavWriter {
    /// Creates (or truncates) the file at `path` and writes a header for 32-bit float
    /// samples at `sample_rate` with `channels` interleaved channels.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if `sample_rate` or `channels` is zero;
    /// [`ErrorKind::Io`] if the file cannot be created.
    pub fn create(
        path: impl AsRef<Path>,
        sample_rate: u32,
        channels: u16,
    ) -> Result<WavWriter, Error> {
        let path = path.as_ref();
        if sample_rate == 0 || channels == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "cannot write wav file \"{}\": {sample_rate} Hz with {channels} channels is not \
                     a valid format",
                    path.display()
                ),
            ));
        }
        let spec = hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let inner = hound::WavWriter::create(path, spec)
            .map_err(|e| io_error("cannot create wav file", path, &e))?;
        Ok(WavWriter {
            inner,
            path: path.to_owned(),
            channels,
        })
    }

    /// Appends interleaved frames.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if `frames` is not a whole number of frames (nothing is
    /// written then); [`ErrorKind::Io`] if writing fails or the file would pass the 4 GiB
    /// limit of the WAV format.
    pub fn write(&mut self, frames: &[f32]) -> Result<(), Error> {
        let channels = usize::from(self.channels);
        if !frames.len().is_multiple_of(channels) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "cannot write {} samples to wav file \"{}\": that is not a whole number of \
                     {channels}-channel frames",
                    frames.len(),
                    self.path.display()
                ),
            ));
        }
        for &sample in frames {
            self.inner
                .write_sample(sample)
                .map_err(|e| io_error("cannot write wav file", &self.path, &e))?;
        }
        Ok(())
    }

    /// Writes the final header and closes the file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] if the last writes fail.
    pub fn finish(self) -> Result<(), Error> {
        let WavWriter { inner, path, .. } = self;
        inner
            .finalize()
            .map_err(|e| io_error("cannot finish wav file", &path, &e))
    }

    /// The most frames of `channels` channels a WAV file holds: its sizes are 32-bit, so
    /// the data stays under 4 GiB (a little is kept for the header).
    pub fn max_frames(channels: u16) -> u64 {
        (u64::from(u32::MAX) - 4096) / (4 * u64::from(channels.max(1)))
    }

    /// The number of channels per frame.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// The frames written so far.
    pub fn frames_written(&self) -> u64 {
        u64::from(self.inner.duration())
    }
}

impl fmt::Debug for WavWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WavWriter")
            .field("path", &self.path)
            .field("channels", &self.channels)
            .field("frames_written", &self.frames_written())
            .finish()
    }
}

fn io_error(what: &str, path: &Path, error: &hound::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "{what} \"{}\": {}",
            path.display(),
            tidy(&error.to_string())
        ),
    )
}
