//! The null output: a real-time clock thread that pulls frames like a sound card and drops them.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::running::{Running, Status};
use crate::{Error, ErrorKind, Source};

/// How far the clock may fall behind real time before it counts an xrun and skips ahead,
/// instead of calling the source back to back to catch up.
const MAX_LAG: Duration = Duration::from_millis(50);

/// An output that consumes frames at the sample rate and discards them.
///
/// It stands in for a sound card on headless machines and in tests: a thread calls
/// [`Source::fill`] with exactly `period_frames` frames once per period. Periods are timed
/// against absolute deadlines counted from the start, so the clock does not drift, and the
/// thread sleeps between periods. If the thread falls more than 50 ms behind (the machine
/// was suspended or overloaded) it counts an xrun and carries on from the present.
///
/// Like a sound card's callback thread, the clock asks for a real-time scheduling policy
/// (`SCHED_FIFO` on Unix; `FLUX_NO_REALTIME=1` turns it off), so a busy machine (a browser
/// drawing the scope, a build) does not make it late and then pull periods back to back.
/// Without the privilege it runs at normal priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NullOutput {
    sample_rate: u32,
    channels: u16,
    period_frames: u32,
}

impl NullOutput {
    /// Makes a null output of the given shape.
    ///
    /// # Panics
    ///
    /// Panics if any argument is zero.
    pub fn new(sample_rate: u32, channels: u16, period_frames: u32) -> NullOutput {
        assert!(
            sample_rate > 0,
            "the null output needs a sample rate above 0"
        );
        assert!(channels > 0, "the null output needs at least 1 channel");
        assert!(
            period_frames > 0,
            "the null output needs at least 1 frame per period"
        );
        NullOutput {
            sample_rate,
            channels,
            period_frames,
        }
    }

    /// Frames per second per channel.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples per frame.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Frames per call to [`Source::fill`].
    pub fn period_frames(&self) -> u32 {
        self.period_frames
    }

    /// Starts the clock thread, which calls `source` once per period until the returned
    /// [`Running`] is stopped or dropped.
    ///
    /// The first period is pulled at once, as a device pulls its first buffer.
    ///
    /// # Panics
    ///
    /// Panics if the operating system refuses to start a thread.
    pub fn start(self, source: impl Source) -> Running {
        let status = Arc::new(Status::new("null".to_owned()));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = thread::Builder::new()
            .name("flux-null-output".to_owned())
            .spawn({
                let status = Arc::clone(&status);
                let stop = Arc::clone(&stop);
                move || run_guarded(self, source, &stop, &status)
            })
            .expect("cannot start the null output thread");
        let thread = NullThread {
            stop,
            handle: Some(handle),
            period_frames: self.period_frames,
        };
        Running::null(thread, status)
    }
}

/// The handle [`Running`] keeps to stop the clock thread.
#[derive(Debug)]
pub(crate) struct NullThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    period_frames: u32,
}

impl NullThread {
    pub(crate) fn period_frames(&self) -> u32 {
        self.period_frames
    }

    /// Tells the thread to stop, wakes it, and waits for it.
    pub(crate) fn stop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        self.stop.store(true, Ordering::Release);
        handle.thread().unpark();
        // A panic in the source was caught and reported on the thread itself.
        let _ = handle.join();
    }
}

/// Runs the clock and turns a panic in the source into a reported error.
fn run_guarded(output: NullOutput, source: impl Source, stop: &AtomicBool, status: &Status) {
    flux_rt::promote_to_realtime();
    let result = panic::catch_unwind(AssertUnwindSafe(|| run(output, source, stop, status)));
    if let Err(payload) = result {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        status.report(Error::new(
            ErrorKind::Stream,
            format!("output \"null\": the source panicked and the output stopped: {what}"),
        ));
    }
}

fn run(output: NullOutput, mut source: impl Source, stop: &AtomicBool, status: &Status) {
    let period = u64::from(output.period_frames);
    let mut buffer = vec![0.0_f32; output.period_frames as usize * usize::from(output.channels)];
    let mut base = Instant::now();
    let mut frames_since_base: u64 = 0;
    while !stop.load(Ordering::Acquire) {
        source.fill(&mut buffer);
        frames_since_base += period;
        let deadline = base + frames_to_duration(frames_since_base, output.sample_rate);
        let now = Instant::now();
        if now > deadline + MAX_LAG {
            status.xruns.fetch_add(1, Ordering::Relaxed);
            base = now;
            frames_since_base = 0;
            continue;
        }
        sleep_until(deadline, stop);
    }
}

/// Sleeps until `deadline`, waking early only to stop.
fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        // Parking, not sleeping, so that `NullThread::stop` can wake the thread at once.
        thread::park_timeout(deadline - now);
    }
}

/// The exact time `frames` take at `sample_rate`, rounded down to a nanosecond.
fn frames_to_duration(frames: u64, sample_rate: u32) -> Duration {
    let nanos = u128::from(frames) * 1_000_000_000 / u128::from(sample_rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::frames_to_duration;
    use std::time::Duration;

    #[test]
    fn frames_to_duration_is_exact_over_long_runs() {
        assert_eq!(frames_to_duration(48_000, 48_000), Duration::from_secs(1));
        // A day at 44.1 kHz does not drift by a single nanosecond.
        let day = 44_100 * 86_400;
        assert_eq!(frames_to_duration(day, 44_100), Duration::from_secs(86_400));
        assert_eq!(frames_to_duration(1, 3), Duration::from_nanos(333_333_333));
    }
}
