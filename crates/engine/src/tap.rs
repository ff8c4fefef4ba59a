//! Taps: copies of the output for readers off the DSP thread (a recorder, a scope).
//!
//! A tap is a lock-free ring of its own beside the output ring. The DSP thread copies every
//! block it renders into each tap, after the `tanh` clip, so a tap sees exactly what the
//! output plays. When a tap has no room for a whole block, because its reader is slow or
//! not reading at all, the block is dropped there and counted: the DSP thread never waits
//! for a tap, and a tap never slows the output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rtrb::{Consumer, Producer, RingBuffer};

/// Makes a tap of `channels` interleaved channels that holds up to `capacity_frames` frames,
/// and the reader of its other end.
///
/// Give the [`Tap`] to [`DspThread::spawn`](crate::DspThread::spawn) and read the
/// [`TapReader`] on any other thread. Call on the main thread: this allocates the ring.
///
/// # Panics
///
/// When `channels` is 0.
pub fn tap(channels: usize, capacity_frames: usize) -> (Tap, TapReader) {
    assert!(channels > 0, "a tap needs at least one channel");
    let (producer, consumer) = RingBuffer::new(capacity_frames.max(1) * channels);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        Tap {
            ring: producer,
            channels,
            dropped: dropped.clone(),
        },
        TapReader {
            ring: consumer,
            channels,
            dropped,
        },
    )
}

/// The DSP thread's end of a tap.
pub struct Tap {
    ring: Producer<f32>,
    channels: usize,
    dropped: Arc<AtomicU64>,
}

impl Tap {
    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Copies a block of interleaved frames into the tap, or drops the whole block when the
    /// tap has no room for it; returns whether it was copied.
    ///
    /// Called on the DSP thread. Real-time safe: no allocation, lock or wait. A block is
    /// copied whole or not at all, so a reader sees gaps only between blocks.
    pub fn write(&mut self, block: &[f32]) -> bool {
        debug_assert_eq!(block.len() % self.channels, 0, "not whole frames");
        match self.ring.write_chunk_uninit(block.len()) {
            Ok(chunk) => {
                chunk.fill_from_iter(block.iter().copied());
                true
            }
            Err(_) => {
                let frames = (block.len() / self.channels) as u64;
                self.dropped.fetch_add(frames, Ordering::Relaxed);
                false
            }
        }
    }
}

/// The reading end of a tap. Lives on any thread but the DSP thread.
pub struct TapReader {
    ring: Consumer<f32>,
    channels: usize,
    dropped: Arc<AtomicU64>,
}

impl TapReader {
    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames waiting to be read.
    pub fn available_frames(&self) -> usize {
        self.ring.slots() / self.channels
    }

    /// Frames the tap dropped so far because it had no room: its reader was slow or absent.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Appends up to `max_frames` of the oldest waiting frames to `out`; returns how many.
    pub fn read_into(&mut self, out: &mut Vec<f32>, max_frames: usize) -> usize {
        let frames = self.available_frames().min(max_frames);
        if let Ok(chunk) = self.ring.read_chunk(frames * self.channels) {
            let (a, b) = chunk.as_slices();
            out.extend_from_slice(a);
            out.extend_from_slice(b);
            chunk.commit_all();
        }
        frames
    }

    /// Discards up to `frames` of the oldest waiting frames; returns how many.
    pub fn skip(&mut self, frames: usize) -> usize {
        let frames = self.available_frames().min(frames);
        if let Ok(chunk) = self.ring.read_chunk(frames * self.channels) {
            chunk.commit_all();
        }
        frames
    }
}
