//! The DSP thread: renders blocks into the ring buffer and keeps it at its fill.

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

/// A running DSP thread. Stops and joins on [`stop`](DspThread::stop) or drop.
pub struct DspThread {
    stop: Arc<AtomicBool>,
    realtime: Arc<AtomicBool>,
    handle: Option<JoinHandle<Engine>>,
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
        mut engine: Engine,
        ring_frames: usize,
        mut taps: Vec<Tap>,
    ) -> std::io::Result<(DspThread, OutputReader)> {
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
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let realtime = Arc::new(AtomicBool::new(false));
        let promoted_flag = realtime.clone();
        let frame_time = 1.0 / f64::from(config.sample_rate);
        let handle = thread::Builder::new()
            .name("flux-dsp".into())
            .spawn(move || {
                promoted_flag.store(promote_to_realtime(), Ordering::Relaxed);
                let mut scratch = vec![0.0f32; MAX_BLOCK * ch];
                while !stop_flag.load(Ordering::Relaxed) {
                    let free = ring.slots() / ch;
                    if free < block {
                        let wait = (block - free) as f64 * frame_time;
                        thread::sleep(Duration::from_secs_f64(wait).max(MIN_SLEEP));
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
        let reader = OutputReader {
            frames_taken: 0,
            ring: reader,
            counters,
            channels: ch,
            capacity_frames: ring_frames.max(block),
            block,
        };
        Ok((
            DspThread {
                stop,
                realtime,
                handle: Some(handle),
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

    /// Stops the thread and returns its engine, to be dropped on the caller's thread.
    pub fn stop(mut self) -> Option<Engine> {
        self.join()
    }

    fn join(&mut self) -> Option<Engine> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok())
    }
}

impl Drop for DspThread {
    fn drop(&mut self) {
        self.join();
    }
}

/// Asks the OS to schedule the calling thread as a real-time (audio) thread.
fn promote_to_realtime() -> bool {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    if std::env::var_os("FLUX_NO_REALTIME").is_some() {
        return false;
    }
    #[cfg(unix)]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        let Ok(value) = ThreadPriorityValue::try_from(70u8) else {
            return false;
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(value),
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
        )
        .is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = ThreadPriorityValue::try_from(0u8);
        thread_priority::set_current_thread_priority(ThreadPriority::Max).is_ok()
    }
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
