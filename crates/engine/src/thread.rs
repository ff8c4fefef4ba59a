//! The DSP thread: renders blocks into the ring buffer and keeps it at its fill.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};

use crate::counters::Counters;
use crate::engine::{Engine, MAX_BLOCK};
use crate::tap::Tap;

/// Shortest sleep of the DSP thread while the ring is full.
const MIN_SLEEP: Duration = Duration::from_micros(250);

/// How long the DSP thread's loop may stand still before [`DspThread::check`] calls it
/// stuck. Its longest legitimate turn is one block of signals, each cut off at its time
/// limit (a quarter of a second on the JavaScript tier).
pub const STALL_LIMIT: Duration = Duration::from_millis(900);

/// How long [`DspThread::stop`] waits for the thread to end.
pub const STOP_WAIT: Duration = Duration::from_secs(2);

/// What went wrong with a DSP thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DspFailure {
    /// The thread panicked (with this message) and has ended: nothing renders.
    Panicked(String),
    /// The thread's loop has not turned for this long: it is stuck (in a signal's code?).
    Stalled(Duration),
    /// The thread did not end within this long of being asked to stop; it was left behind.
    NotStopped(Duration),
}

impl fmt::Display for DspFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DspFailure::Panicked(message) => {
                write!(f, "the DSP thread panicked and stopped: {message}")
            }
            DspFailure::Stalled(d) => write!(
                f,
                "the DSP thread has not run for {:.1} s (stuck in a signal's code?)",
                d.as_secs_f64()
            ),
            DspFailure::NotStopped(d) => write!(
                f,
                "the DSP thread did not stop within {:.1} s; leaving it behind",
                d.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for DspFailure {}

/// An output the DSP thread drives itself (see [`DspThread::spawn_driving`]).
pub trait Drive: Send + 'static {
    /// Called on the DSP thread when the ring is full: waits for the output's next period
    /// (at most about a period, so the thread can stop) and takes what is due from
    /// `reader`. Real-time rules apply: no allocation, lock or I/O.
    fn drive(&mut self, reader: &mut OutputReader);
}

impl<F: FnMut(&mut OutputReader) + Send + 'static> Drive for F {
    fn drive(&mut self, reader: &mut OutputReader) {
        self(reader);
    }
}

/// A running DSP thread. Stops and joins on [`stop`](DspThread::stop) or drop, waiting at
/// most [`STOP_WAIT`]; [`check`](DspThread::check) tells whether it is dead or stuck.
pub struct DspThread {
    stop: Arc<AtomicBool>,
    realtime: Arc<AtomicBool>,
    handle: Option<JoinHandle<Engine>>,
    counters: Arc<Counters>,
    /// The heartbeat last seen, and when it last changed.
    beat: (u64, Instant),
    /// The failure found, once found.
    failed: Option<DspFailure>,
}

impl DspThread {
    /// Starts rendering `engine` into a ring of `ring_frames` frames.
    ///
    /// The thread keeps the ring full: it renders a block whenever there is room for one and
    /// otherwise sleeps for about the time the output needs to make room. An empty patch costs
    /// a few hundred short wake-ups a second, not a core. Every rendered block is also
    /// copied into each of `taps` (after the clip); a tap with no room drops the block and
    /// counts it, never waited for (see [`Tap::write`]).
    ///
    /// # Errors
    ///
    /// When the operating system cannot start a thread.
    ///
    /// # Panics
    ///
    /// When a tap's channel count is not the engine's.
    pub fn spawn(
        engine: Engine,
        ring_frames: usize,
        taps: Vec<Tap>,
    ) -> std::io::Result<(DspThread, OutputReader)> {
        let (thread, reader) = Self::start(engine, ring_frames, taps, None)?;
        Ok((thread, reader.expect("the reader stays out")))
    }

    /// Starts rendering `engine` into a ring of `ring_frames` frames that `drive` empties on
    /// the same thread: when the ring is full, the thread calls `drive` (which waits for the
    /// output's next period and takes it) instead of sleeping. One thread wakes once per
    /// period where a clocked output and the DSP thread would wake twice; the null output
    /// is driven so (`NullClock` in the audio crate).
    ///
    /// # Errors
    ///
    /// When the operating system cannot start a thread.
    ///
    /// # Panics
    ///
    /// When a tap's channel count is not the engine's.
    pub fn spawn_driving(
        engine: Engine,
        ring_frames: usize,
        taps: Vec<Tap>,
        drive: impl Drive,
    ) -> std::io::Result<DspThread> {
        Ok(Self::start(engine, ring_frames, taps, Some(Box::new(drive)))?.0)
    }

    fn start(
        mut engine: Engine,
        ring_frames: usize,
        mut taps: Vec<Tap>,
        drive: Option<Box<dyn Drive>>,
    ) -> std::io::Result<(DspThread, Option<OutputReader>)> {
        let config = engine.config();
        let ch = config.channels;
        for tap in &taps {
            assert_eq!(
                tap.channels(),
                ch,
                "a tap of {} channels on an engine of {ch}",
                tap.channels()
            );
        }
        let block = config.block.min(ring_frames.max(1));
        let (mut ring, reader) = RingBuffer::<f32>::new(ring_frames.max(block) * ch);
        let counters = engine.counters().clone();
        let reader = OutputReader {
            frames_taken: 0,
            ring: reader,
            counters: counters.clone(),
            channels: ch,
            capacity_frames: ring_frames.max(block),
            block,
        };
        // The reader goes to the thread when the thread drives the output itself.
        let (mut driven, reader) = match drive {
            Some(drive) => (Some((drive, reader)), None),
            None => (None, Some(reader)),
        };
        let beats = counters.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let realtime = Arc::new(AtomicBool::new(false));
        let promoted_flag = realtime.clone();
        let frame_time = 1.0 / f64::from(config.sample_rate);
        let handle = thread::Builder::new()
            .name("flux-dsp".into())
            .spawn(move || {
                promoted_flag.store(flux_rt::promote_to_realtime(), Ordering::Relaxed);
                let mut scratch = vec![0.0f32; MAX_BLOCK * ch];
                while !stop_flag.load(Ordering::Relaxed) {
                    beats.beat();
                    let free = ring.slots() / ch;
                    if free < block {
                        match &mut driven {
                            Some((drive, reader)) => drive.drive(reader),
                            None => {
                                let wait = (block - free) as f64 * frame_time;
                                thread::sleep(Duration::from_secs_f64(wait).max(MIN_SLEEP));
                            }
                        }
                        continue;
                    }
                    let out = &mut scratch[..block * ch];
                    engine.process(out);
                    write_all(&mut ring, out);
                    for tap in &mut taps {
                        tap.write(out);
                    }
                }
                engine
            })?;
        Ok((
            DspThread {
                stop,
                realtime,
                handle: Some(handle),
                beat: (counters.heartbeat(), Instant::now()),
                counters,
                failed: None,
            },
            reader,
        ))
    }

    /// True once the thread runs with a real-time scheduling policy.
    ///
    /// The thread asks for one when it starts (`SCHED_FIFO` on Unix, the highest priority
    /// elsewhere); without the privilege it runs at normal priority, which works but is more
    /// exposed to a busy machine.
    pub fn is_realtime(&self) -> bool {
        self.realtime.load(Ordering::Relaxed)
    }

    /// Tells whether the thread is alive and turning: an error once it has panicked, or
    /// when its loop has stood still for [`STALL_LIMIT`]. Call it regularly from the main
    /// thread (every few tens of milliseconds); a panic is found at the first call after
    /// it, a stall within `STALL_LIMIT` and one call.
    ///
    /// # Errors
    ///
    /// The [`DspFailure`], and the same one at every later call.
    pub fn check(&mut self) -> Result<(), DspFailure> {
        if let Some(failure) = &self.failed {
            return Err(failure.clone());
        }
        if self.handle.as_ref().is_some_and(JoinHandle::is_finished) {
            // The loop ends only when asked to stop: a finished thread panicked.
            let message = match self.handle.take().map(JoinHandle::join) {
                Some(Err(payload)) => panic_message(payload.as_ref()),
                _ => "it ended on its own".to_owned(),
            };
            return Err(self.fail(DspFailure::Panicked(message)));
        }
        let now = Instant::now();
        let beat = self.counters.heartbeat();
        if beat != self.beat.0 {
            self.beat = (beat, now);
            return Ok(());
        }
        let still = now.duration_since(self.beat.1);
        if still >= STALL_LIMIT {
            return Err(self.fail(DspFailure::Stalled(still)));
        }
        Ok(())
    }

    fn fail(&mut self, failure: DspFailure) -> DspFailure {
        self.failed = Some(failure.clone());
        failure
    }

    /// Stops the thread and returns its engine, to be dropped on the caller's thread;
    /// `None` when it had panicked or did not end within [`STOP_WAIT`].
    pub fn stop(mut self) -> Option<Engine> {
        self.stop_within(STOP_WAIT).ok()
    }

    /// Asks the thread to stop and waits at most `wait` for it to end.
    ///
    /// # Errors
    ///
    /// [`DspFailure::Panicked`] when it had panicked; [`DspFailure::NotStopped`] when it
    /// did not end in time (it is left running, detached, with its engine).
    pub fn stop_within(&mut self, wait: Duration) -> Result<Engine, DspFailure> {
        self.stop.store(true, Ordering::Relaxed);
        let Some(handle) = self.handle.take() else {
            return Err(self
                .failed
                .clone()
                .unwrap_or(DspFailure::Panicked("it was stopped before".into())));
        };
        let deadline = Instant::now() + wait;
        while !handle.is_finished() {
            if Instant::now() >= deadline {
                return Err(self.fail(DspFailure::NotStopped(wait)));
            }
            thread::sleep(Duration::from_millis(1));
        }
        handle
            .join()
            .map_err(|payload| self.fail(DspFailure::Panicked(panic_message(payload.as_ref()))))
    }
}

impl Drop for DspThread {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.stop_within(STOP_WAIT);
        }
    }
}

/// The message a panic carried, when it is a string.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Copies `samples` into `ring`, which the caller made sure has room.
fn write_all(ring: &mut Producer<f32>, samples: &[f32]) {
    if let Ok(chunk) = ring.write_chunk_uninit(samples.len()) {
        chunk.fill_from_iter(samples.iter().copied());
    }
}

/// The output's end of the ring: hands frames to a device callback or a clock.
pub struct OutputReader {
    ring: Consumer<f32>,
    counters: Arc<Counters>,
    channels: usize,
    capacity_frames: usize,
    block: usize,
    /// Frames taken from the ring so far: the index of the next rendered frame to play.
    frames_taken: u64,
}

impl OutputReader {
    /// Fills `out` (interleaved, whole frames) from the ring.
    ///
    /// When the ring holds fewer frames than `out` needs, the rest is silence and an
    /// underrun is counted. Real-time safe: no allocation, lock or wait.
    pub fn fill(&mut self, out: &mut [f32]) {
        let want = out.len() - out.len() % self.channels;
        let have = self.ring.slots() - self.ring.slots() % self.channels;
        let n = want.min(have);
        if let Ok(chunk) = self.ring.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            out[..a.len()].copy_from_slice(a);
            out[a.len()..a.len() + b.len()].copy_from_slice(b);
            chunk.commit_all();
        }
        out[n..].fill(0.0);
        self.counters
            .add_played(out.len() / self.channels, n < want);
        self.frames_taken += (n / self.channels) as u64;
        self.counters.taken(self.frames_taken);
    }

    /// Frames waiting in the ring.
    pub fn available_frames(&self) -> usize {
        self.ring.slots() / self.channels
    }

    /// The ring's depth in frames.
    pub fn capacity_frames(&self) -> usize {
        self.capacity_frames
    }

    /// Waits (on the calling thread, not the DSP thread) until the ring is full, so an output
    /// started afterwards does not begin with an underrun. Gives up after `timeout`.
    pub fn wait_primed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // The DSP thread writes whole blocks, so the ring is full at the last whole block.
        let full = self.capacity_frames - self.capacity_frames % self.block;
        while self.available_frames() < full {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// The live counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}
