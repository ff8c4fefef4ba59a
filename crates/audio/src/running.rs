//! A started output and the news it sends back from its thread.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};

use cpal::traits::StreamTrait;

use crate::error::{kind_of, tidy};
use crate::null::NullThread;
use crate::{Error, ErrorKind};

/// A started output: the source is being called on the output's thread.
///
/// Dropping it, or calling [`stop`](Running::stop), stops the output: the device stream is
/// closed, or the null clock thread is told to stop and joined. After that the source is
/// never called again and has been dropped.
///
/// `Running` is `Send` (cpal 0.18 streams are `Send` on every platform), so it may be stopped
/// from another thread than the one that started it.
pub struct Running {
    backend: Backend,
    status: Arc<Status>,
}

enum Backend {
    Device {
        stream: cpal::Stream,
        period_frames: Option<u32>,
    },
    Null(NullThread),
    /// A [`NullClock`](crate::null::NullClock) ticked by another thread: stopping sets
    /// its flag.
    Clock {
        stop: Arc<AtomicBool>,
        period_frames: u32,
    },
}

impl Running {
    pub(crate) fn device(stream: cpal::Stream, status: Arc<Status>) -> Running {
        let period_frames = stream.buffer_size().ok().filter(|&frames| frames > 0);
        Running {
            backend: Backend::Device {
                stream,
                period_frames,
            },
            status,
        }
    }

    pub(crate) fn null(thread: NullThread, status: Arc<Status>) -> Running {
        Running {
            backend: Backend::Null(thread),
            status,
        }
    }

    pub(crate) fn clock(stop: Arc<AtomicBool>, period_frames: u32, status: Arc<Status>) -> Running {
        Running {
            backend: Backend::Clock {
                stop,
                period_frames,
            },
            status,
        }
    }

    /// Stops the output and waits until the source is no longer called.
    ///
    /// The same as dropping it; this name says it out loud.
    pub fn stop(self) {}

    /// The name of the output, e.g. `"ALSA: Default Audio Device"` or `"null"`.
    pub fn name(&self) -> &str {
        &self.status.name
    }

    /// Frames per callback as the stream reported it on starting, if the backend knows.
    pub fn period_frames(&self) -> Option<u32> {
        match &self.backend {
            Backend::Device { period_frames, .. } => *period_frames,
            Backend::Null(thread) => Some(thread.period_frames()),
            Backend::Clock { period_frames, .. } => Some(*period_frames),
        }
    }

    /// Takes the oldest error the running output reported, without blocking for long.
    ///
    /// Errors come from the backend (the device went away, the server stopped) or from a
    /// panicking source on the null clock thread. One error is kept until taken; later ones
    /// are counted and the count is added to the message. Underruns are not errors here: see
    /// [`xruns`](Running::xruns). Poll this from the control thread, e.g. with the status line.
    pub fn take_error(&self) -> Option<Error> {
        self.status.take()
    }

    /// How many underruns (xruns) the output has reported since it started.
    ///
    /// For a device this counts the backend's xrun reports. For a [`NullOutput`](crate::NullOutput)
    /// it counts the times its thread fell so far behind real time that it skipped ahead.
    pub fn xruns(&self) -> u64 {
        self.status.xruns.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("name", &self.status.name)
            .field("period_frames", &self.period_frames())
            .field("xruns", &self.xruns())
            .finish_non_exhaustive()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        match &mut self.backend {
            // The stream itself is closed when the field drops right after this.
            Backend::Device { stream, .. } => {
                let _ = stream.pause();
            }
            Backend::Null(thread) => thread.stop(),
            Backend::Clock { stop, .. } => stop.store(true, Ordering::Release),
        }
    }
}

/// What an output's thread reports to whoever holds its [`Running`].
///
/// The output's thread only ever uses `try_lock` and atomics here, so it never waits.
#[derive(Debug)]
pub(crate) struct Status {
    name: String,
    pending: Mutex<Option<Pending>>,
    missed: AtomicU64,
    pub(crate) xruns: AtomicU64,
}

#[derive(Debug)]
enum Pending {
    Device(cpal::Error),
    Other(Error),
}

impl Status {
    pub(crate) fn new(name: String) -> Status {
        Status {
            name,
            pending: Mutex::new(None),
            missed: AtomicU64::new(0),
            xruns: AtomicU64::new(0),
        }
    }

    /// Records an error from cpal's error callback. Real-time safe: never blocks, never allocates.
    pub(crate) fn report_device_error(&self, error: cpal::Error) {
        if error.kind() == cpal::ErrorKind::Xrun {
            self.xruns.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.put(Pending::Device(error));
    }

    /// Records an error found off the audio path (it may allocate).
    pub(crate) fn report(&self, error: Error) {
        self.put(Pending::Other(error));
    }

    fn put(&self, pending: Pending) {
        let slot = match self.pending.try_lock() {
            Ok(slot) => Some(slot),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        match slot {
            Some(mut slot) if slot.is_none() => *slot = Some(pending),
            // The slot is full or being read: count it instead of waiting.
            _ => {
                self.missed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn take(&self) -> Option<Error> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let missed = self.missed.swap(0, Ordering::Relaxed);
        let error = match pending {
            Some(Pending::Device(error)) => Error::new(
                kind_of(error.kind()),
                format!("output \"{}\": {}", self.name, tidy(&error.to_string())),
            ),
            Some(Pending::Other(error)) => error,
            None if missed > 0 => {
                return Some(Error::new(
                    ErrorKind::Stream,
                    format!(
                        "output \"{}\": {missed} errors were reported but not kept",
                        self.name
                    ),
                ))
            }
            None => return None,
        };
        if missed == 0 {
            return Some(error);
        }
        let message = format!("{} (and {missed} more errors not shown)", error.message());
        Some(Error::new(error.kind(), message))
    }
}
