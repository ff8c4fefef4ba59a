//! MIDI clock out: 24 ticks per beat at the transport's beat, and start, continue and stop,
//! computed on the DSP thread from the block's beats and sent, each with its engine frame,
//! through a lock-free queue to whoever writes MIDI (a JACK process callback, a thread).
//!
//! Off until [`Controller::take_midi_clock`](crate::Controller::take_midi_clock) takes the
//! receiving end: only then does the engine write the block's beats when no signal reads
//! them, and look at them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::transport::Clock;

/// Messages the queue holds; more are dropped until the reader takes some.
pub const CLOCK_CAPACITY: usize = 1024;
/// MIDI clock: one of 24 ticks per beat.
pub const TICK: u8 = 0xf8;
/// MIDI start: the transport runs from beat 0.
pub const START: u8 = 0xfa;
/// MIDI continue: the transport runs on from where it stopped.
pub const CONTINUE: u8 = 0xfb;
/// MIDI stop.
pub const STOP: u8 = 0xfc;
/// Ticks per beat.
pub const PPQN: f64 = 24.0;

/// One clock message and the engine frame it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockMessage {
    /// The engine frame the output plays it at.
    pub frame: u64,
    /// [`TICK`], [`START`], [`CONTINUE`] or [`STOP`].
    pub byte: u8,
}

/// The reading end of MIDI clock out, for the thread that writes MIDI.
pub struct ClockTicks {
    rx: Consumer<ClockMessage>,
    on: Arc<AtomicBool>,
}

impl ClockTicks {
    /// The next message, without taking it.
    pub fn peek(&self) -> Option<ClockMessage> {
        self.rx.peek().ok().copied()
    }

    /// Takes the next message.
    pub fn pop(&mut self) -> Option<ClockMessage> {
        self.rx.pop().ok()
    }
}

impl Drop for ClockTicks {
    fn drop(&mut self) {
        self.on.store(false, Ordering::Relaxed);
    }
}

/// The DSP side: finds the ticks in each block's beats.
pub(crate) struct ClockOut {
    tx: Producer<ClockMessage>,
    on: Arc<AtomicBool>,
    /// Whether the transport ran in the last block seen.
    running: bool,
    /// The tick number due next.
    next: f64,
    started: bool,
}

/// Makes the DSP side and the reading end, off until the reading end is taken.
pub(crate) fn clock_out() -> (ClockOut, ClockTicks) {
    let (tx, rx) = RingBuffer::new(CLOCK_CAPACITY);
    let on = Arc::new(AtomicBool::new(false));
    let out = ClockOut {
        tx,
        on: on.clone(),
        running: false,
        next: 0.0,
        started: false,
    };
    (out, ClockTicks { rx, on })
}

impl ClockTicks {
    /// Turns the engine's side on (it is, from the next block).
    pub(crate) fn turn_on(self) -> Self {
        self.on.store(true, Ordering::Relaxed);
        self
    }
}

impl ClockOut {
    /// Whether someone reads the ticks (the engine must then write each block's beats).
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// The messages of a block of `frames` frames from engine frame `first`, whose beats
    /// are in `clock`, while the transport runs (`running`) or not.
    pub(crate) fn fill(&mut self, clock: &Clock, first: u64, frames: usize, running: bool) {
        if !self.is_on() {
            return;
        }
        let beat0 = clock.beat[0] * PPQN;
        if running != self.running || !self.started {
            let byte = match (running, self.started && beat0 > 0.0) {
                (false, _) => STOP,
                (true, true) => CONTINUE,
                (true, false) => START,
            };
            if running || self.started {
                self.send(first, byte);
            }
            self.started = true;
            self.running = running;
            self.next = beat0.ceil();
        }
        if !running {
            return;
        }
        for (f, beat) in clock.beat[..frames].iter().enumerate() {
            let tick = beat * PPQN;
            if tick < self.next - 1.0 || tick >= self.next + 1.0 {
                // Located elsewhere: the next whole tick from here.
                self.next = tick.ceil();
            }
            if tick >= self.next {
                self.send(first + f as u64, TICK);
                self.next += 1.0;
            }
        }
    }

    fn send(&mut self, frame: u64, byte: u8) {
        let _ = self.tx.push(ClockMessage { frame, byte });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;

    #[test]
    fn ticks_land_every_1000_frames_at_120_bpm_and_stop_and_start_are_sent() {
        let (mut out, ticks) = clock_out();
        let mut ticks = ticks.turn_on();
        let mut t = Transport::new(48_000);
        let mut clock = Clock::still();
        let mut first = 0;
        for _ in 0..40 {
            t.fill(&mut clock, 128);
            out.fill(&clock, first, 128, true);
            first += 128;
        }
        out.fill(&clock, first, 0, false);
        let got: Vec<ClockMessage> = std::iter::from_fn(|| ticks.pop()).collect();
        assert_eq!(
            got[0],
            ClockMessage {
                frame: 0,
                byte: START
            }
        );
        let frames: Vec<u64> = got[1..6].iter().map(|m| m.frame).collect();
        assert_eq!(frames, [0, 1000, 2000, 3000, 4000]);
        assert_eq!(got.len(), 1 + 6 + 1, "5120 frames hold ticks 0 to 5000");
        assert_eq!(got.last().map(|m| m.byte), Some(STOP));
    }

    #[test]
    fn nothing_is_sent_while_off() {
        let (mut out, mut ticks) = clock_out();
        let mut t = Transport::new(48_000);
        let mut clock = Clock::still();
        t.fill(&mut clock, 128);
        out.fill(&clock, 0, 128, true);
        assert_eq!(ticks.pop(), None);
    }
}
