//! The one error type of this crate.

use std::fmt;

/// What went wrong, so the caller can choose what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// There is no default output device, or it cannot be opened.
    ///
    /// Name a device (see [`list_devices`](crate::list_devices)), start a sound server, or
    /// play through a [`NullOutput`](crate::NullOutput) instead.
    NoDevice,
    /// No output device matches the given name.
    ///
    /// The message lists the available devices: pass one of those names.
    DeviceNotFound,
    /// The device refuses the requested sample rate, channel count, period or sample format.
    ///
    /// The message says what the device supports. Ask for one of those values, or leave the
    /// setting `None` to take the device's own default.
    UnsupportedConfig,
    /// The stream could not be built or started, or it failed while running (device busy,
    /// backend error, a panicking source).
    ///
    /// Try again, pick another device, or fall back to a [`NullOutput`](crate::NullOutput).
    Stream,
    /// The device or its sound server went away (unplugged, server stopped).
    ///
    /// Open the device again once it is back, or fall back to a
    /// [`NullOutput`](crate::NullOutput).
    DeviceLost,
    /// Creating or writing a file failed.
    ///
    /// Check the path, its permissions and the free space.
    Io,
    /// An argument is invalid, such as a slice that is not a whole number of frames or a
    /// sample rate of zero.
    ///
    /// This is a bug in the caller: fix the call.
    InvalidInput,
}

/// An error from this crate: a kind to act on and a message for people.
///
/// The message is lowercase, has no trailing period and names the bad value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Makes an error of `kind` with a message for people.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for people, the same text as `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Wraps a cpal error, keeping its meaning, with `context` in front of its text.
    pub(crate) fn from_cpal(context: &str, error: &cpal::Error) -> Error {
        Error::new(
            kind_of(error.kind()),
            format!("{context}: {}", tidy(&error.to_string())),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Maps a cpal error kind to what the caller of this crate can do about it.
pub(crate) fn kind_of(kind: cpal::ErrorKind) -> ErrorKind {
    match kind {
        cpal::ErrorKind::UnsupportedConfig | cpal::ErrorKind::InvalidInput => {
            ErrorKind::UnsupportedConfig
        }
        cpal::ErrorKind::DeviceNotAvailable
        | cpal::ErrorKind::StreamInvalidated
        | cpal::ErrorKind::HostUnavailable => ErrorKind::DeviceLost,
        _ => ErrorKind::Stream,
    }
}

/// Brings a foreign message to house style: lowercase start, no trailing period.
///
/// An acronym at the start ("ALSA ...") keeps its case.
pub(crate) fn tidy(message: &str) -> String {
    let message = message.trim().trim_end_matches('.');
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let second_is_upper = chars.next().is_some_and(char::is_uppercase);
    if first.is_uppercase() && !second_is_upper {
        first
            .to_lowercase()
            .chain(message[first.len_utf8()..].chars())
            .collect()
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn tidy_lowercases_words_but_not_acronyms() {
        assert_eq!(
            tidy("Sample rate 44100 Hz is bad."),
            "sample rate 44100 Hz is bad"
        );
        assert_eq!(tidy("ALSA is not available"), "ALSA is not available");
        assert_eq!(tidy(""), "");
        assert_eq!(tidy("É"), "é");
    }
}
