//! MIDI in: note and velocity events, stamped with the engine frame they take effect at,
//! reach the DSP thread through a lock-free queue and are applied at that frame, into the
//! block's [`Clock`] (`midi.note`, `midi.gate`, `midi.velocity` for signals).
//!
//! The voice is monophonic with last-note priority: the note is the last key pressed of
//! those still held; releasing it falls back to the one held before; the gate is 1 while any
//! key is held. The note and velocity stay at their last values after the gate closes (an
//! envelope's release keeps its pitch).

use rtrb::{Consumer, Producer};

use crate::transport::Clock;

/// Events the queue holds; more are dropped (and counted) until the engine takes some.
pub const MIDI_CAPACITY: usize = 1024;

/// One MIDI message and the engine frame it takes effect at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidiEvent {
    /// The engine frame (since the engine was made); a frame already rendered means the
    /// next one.
    pub frame: u64,
    /// The message: status byte and two data bytes (a shorter message pads with 0).
    pub bytes: [u8; 3],
}

/// The sending end of MIDI in, for the thread that receives MIDI (or a test).
pub struct MidiSender {
    tx: Producer<MidiEvent>,
    dropped: u64,
}

impl MidiSender {
    pub(crate) fn new(tx: Producer<MidiEvent>) -> Self {
        Self { tx, dropped: 0 }
    }

    /// Queues `event`; when the queue is full it is dropped and counted.
    pub fn send(&mut self, event: MidiEvent) {
        if self.tx.push(event).is_err() {
            self.dropped += 1;
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The receiving end and the voice, on the DSP thread.
pub(crate) struct MidiIn {
    rx: Consumer<MidiEvent>,
    /// Keys held, in the order they were pressed (at most 128), with their velocities.
    held: [(u8, u8); 128],
    count: usize,
    note: f64,
    velocity: f64,
}

impl MidiIn {
    pub(crate) fn new(rx: Consumer<MidiEvent>) -> Self {
        Self {
            rx,
            held: [(0, 0); 128],
            count: 0,
            note: 0.0,
            velocity: 0.0,
        }
    }

    /// Applies every queued event due by `frame` (events come in frame order).
    fn apply_due(&mut self, frame: u64) {
        while let Ok(event) = self.rx.peek() {
            if event.frame > frame {
                return;
            }
            let bytes = event.bytes;
            let _ = self.rx.pop();
            self.apply(bytes);
        }
    }

    /// One message: note on (velocity 0 is a note off), note off; the rest is ignored.
    fn apply(&mut self, [status, key, value]: [u8; 3]) {
        let key = key & 0x7f;
        match status & 0xf0 {
            0x90 if value > 0 => {
                self.release(key);
                if self.count < self.held.len() {
                    self.held[self.count] = (key, value & 0x7f);
                    self.count += 1;
                }
            }
            0x80 | 0x90 => self.release(key),
            _ => return,
        }
        if let Some(&(key, velocity)) = self.held[..self.count].last() {
            self.note = f64::from(key);
            self.velocity = f64::from(velocity) / 127.0;
        }
    }

    fn release(&mut self, key: u8) {
        if let Some(i) = self.held[..self.count].iter().position(|&(k, _)| k == key) {
            self.held.copy_within(i + 1..self.count, i);
            self.count -= 1;
        }
    }

    /// Applies the events of the `frames` frames from `first` on, writing the voice of each
    /// frame into `clock` (when signals read it) or only advancing (when none does).
    pub(crate) fn fill(&mut self, clock: Option<&mut Clock>, first: u64, frames: usize) {
        match clock {
            Some(clock) => {
                for f in 0..frames.min(clock.note.len()) {
                    self.apply_due(first + f as u64);
                    clock.note[f] = self.note;
                    clock.gate[f] = if self.count > 0 { 1.0 } else { 0.0 };
                    clock.velocity[f] = self.velocity;
                }
            }
            None => self.apply_due((first + frames as u64).saturating_sub(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtrb::RingBuffer;

    fn voice() -> (MidiSender, MidiIn) {
        let (tx, rx) = RingBuffer::new(16);
        (MidiSender::new(tx), MidiIn::new(rx))
    }

    #[test]
    fn events_take_effect_at_their_frame_with_last_note_priority() {
        let (mut tx, mut rx) = voice();
        let on = |frame, key, vel| MidiEvent {
            frame,
            bytes: [0x90, key, vel],
        };
        let off = |frame, key| MidiEvent {
            frame,
            bytes: [0x80, key, 0],
        };
        tx.send(on(3, 60, 127));
        tx.send(on(5, 64, 64));
        tx.send(off(7, 64));
        // A note on with velocity 0 is a note off.
        tx.send(on(9, 60, 0));
        let mut clock = Clock::default();
        rx.fill(Some(&mut clock), 0, 12);
        assert_eq!(
            clock.note[..12],
            [0.0, 0.0, 0.0, 60.0, 60.0, 64.0, 64.0, 60.0, 60.0, 60.0, 60.0, 60.0]
        );
        assert_eq!(
            clock.gate[..12],
            [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(clock.velocity[3], 1.0);
        assert_eq!(clock.velocity[5], 64.0 / 127.0);
        assert_eq!(clock.velocity[7], 1.0);
    }

    #[test]
    fn late_events_apply_at_once_and_skipped_blocks_still_advance() {
        let (mut tx, mut rx) = voice();
        tx.send(MidiEvent {
            frame: 2,
            bytes: [0x91, 48, 100],
        });
        // Nobody reads the clock for frames 0..10: the event still applies.
        rx.fill(None, 0, 10);
        let mut clock = Clock::default();
        tx.send(MidiEvent {
            frame: 5,
            bytes: [0x81, 48, 0],
        });
        // Frame 5 is past by the time the block of frames 10.. is rendered: at once.
        rx.fill(Some(&mut clock), 10, 4);
        assert_eq!(clock.note[..4], [48.0; 4]);
        assert_eq!(clock.gate[..4], [0.0; 4]);
    }

    #[test]
    fn other_messages_change_nothing_and_a_full_queue_counts_its_drops() {
        let (mut tx, mut rx) = voice();
        for _ in 0..20 {
            tx.send(MidiEvent {
                frame: 0,
                bytes: [0xb0, 1, 127],
            });
        }
        assert_eq!(tx.dropped(), 4);
        let mut clock = Clock::default();
        rx.fill(Some(&mut clock), 0, 2);
        assert_eq!(
            (clock.note[1], clock.gate[1], clock.velocity[1]),
            (0.0, 0.0, 0.0)
        );
    }
}
