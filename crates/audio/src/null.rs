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
        let clock = self.new_clock();
        let (stop, status) = (Arc::clone(&clock.stop), Arc::clone(&clock.status));
        let handle = thread::Builder::new()
            .name("flux-null-output".to_owned())
            .spawn(move || run_guarded(clock, source))
            .expect("cannot start the null output thread");
        let thread = NullThread {
            stop,
            handle: Some(handle),
            period_frames: self.period_frames,
        };
        Running::null(thread, status)
    }
}

impl NullOutput {
    /// The clock without a thread of its own: the caller's thread calls
    /// [`NullClock::tick`] whenever it would wait for the output (the DSP thread does, when
    /// its ring is full), and the clock sleeps until the next period is due and takes it.
    /// One thread then wakes once per period instead of two. The returned [`Running`]
    /// stops the clock: afterwards `tick` only sleeps a period.
    pub fn clock(self) -> (NullClock, Running) {
        let clock = self.new_clock();
        let (stop, status) = (Arc::clone(&clock.stop), Arc::clone(&clock.status));
        (clock, Running::clock(stop, self.period_frames, status))
    }

    fn new_clock(self) -> NullClock {
        NullClock {
            output: self,
            buffer: vec![0.0; self.period_frames as usize * usize::from(self.channels)],
            base: None,
            frames_since_base: 0,
            stop: Arc::new(AtomicBool::new(false)),
            status: Arc::new(Status::new("null".to_owned())),
        }
    }
}

/// The null output's clock, run on a thread that has other work (see [`NullOutput::clock`]).
///
/// It keeps the semantics of the threaded clock: periods are due at absolute deadlines
/// from the first tick; every period due when `tick` wakes is taken back to back, as a
/// device would have taken them while the thread was busy (so a late thread underruns);
/// more than 50 ms behind, it counts an xrun and carries on from the present.
pub struct NullClock {
    output: NullOutput,
    buffer: Vec<f32>,
    base: Option<Instant>,
    frames_since_base: u64,
    stop: Arc<AtomicBool>,
    status: Arc<Status>,
}

impl NullClock {
    /// Waits until the next period is due and hands every due period to `source`; the first
    /// call takes one at once. Real-time safe: no allocation, lock or I/O.
    pub fn tick(&mut self, source: &mut impl FnMut(&mut [f32])) {
        let rate = self.output.sample_rate;
        let period = u64::from(self.output.period_frames);
        if self.stop.load(Ordering::Acquire) {
            thread::sleep(frames_to_duration(period, rate));
            return;
        }
        let Some(base) = self.base else {
            self.base = Some(Instant::now());
            self.pull(source);
            return;
        };
        let deadline = base + frames_to_duration(self.frames_since_base, rate);
        let now = Instant::now();
        if now > deadline + MAX_LAG {
            self.status.xruns.fetch_add(1, Ordering::Relaxed);
            self.base = Some(now);
            self.frames_since_base = 0;
            self.pull(source);
            return;
        }
        sleep_until(deadline, &self.stop);
        if self.stop.load(Ordering::Acquire) {
            return;
        }
        // At most MAX_LAG's worth, so the loop is bounded.
        loop {
            self.pull(source);
            let next = base + frames_to_duration(self.frames_since_base, rate);
            if Instant::now() < next || self.stop.load(Ordering::Acquire) {
                return;
            }
        }
    }

    fn pull(&mut self, source: &mut impl FnMut(&mut [f32])) {
        source(&mut self.buffer);
        self.frames_since_base += u64::from(self.output.period_frames);
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

/// Runs the clock on its own thread until stopped, and turns a panic in the source into a
/// reported error.
fn run_guarded(mut clock: NullClock, mut source: impl Source) {
    flux_rt::promote_to_realtime();
    let status = Arc::clone(&clock.status);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        while !clock.stop.load(Ordering::Acquire) {
            clock.tick(&mut |out: &mut [f32]| source.fill(out));
        }
    }));
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
    use super::*;

    #[test]
    fn frames_to_duration_is_exact_over_long_runs() {
        assert_eq!(frames_to_duration(48_000, 48_000), Duration::from_secs(1));
        // A day at 44.1 kHz does not drift by a single nanosecond.
        let day = 44_100 * 86_400;
        assert_eq!(frames_to_duration(day, 44_100), Duration::from_secs(86_400));
        assert_eq!(frames_to_duration(1, 3), Duration::from_nanos(333_333_333));
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn a_clock_takes_a_period_per_tick_in_real_time_and_every_due_one_when_late() {
        // 4800 frames per period at 48 kHz: 100 ms.
        let (mut clock, running) = NullOutput::new(48_000, 1, 4_800).clock();
        let calls = std::cell::Cell::new(0u32);
        let mut count = |out: &mut [f32]| {
            assert_eq!(out.len(), 4_800);
            out.fill(0.0);
            calls.set(calls.get() + 1);
        };
        let start = Instant::now();
        clock.tick(&mut count);
        assert_eq!(calls.get(), 1);
        clock.tick(&mut count);
        // The second period waits for its deadline.
        assert_eq!(calls.get(), 2);
        assert!(start.elapsed() >= Duration::from_millis(100));
        // A thread busy until 30 ms past the third deadline (200 ms) takes that period at
        // once and waits for no other.
        thread::sleep(Duration::from_millis(230).saturating_sub(start.elapsed()));
        clock.tick(&mut count);
        assert_eq!(calls.get(), 3);
        // Busy past two deadlines (300 and 400 ms): both are taken back to back, unless
        // this machine stalled the test past 50 ms more (then it is an xrun).
        thread::sleep(Duration::from_millis(430).saturating_sub(start.elapsed()));
        clock.tick(&mut count);
        assert!(
            calls.get() == 5 || running.xruns() == 1,
            "{} periods, {} xruns",
            calls.get(),
            running.xruns()
        );
        // Stopped, it takes nothing more.
        let taken = calls.get();
        drop(running);
        clock.tick(&mut count);
        assert_eq!(calls.get(), taken);
    }
}
