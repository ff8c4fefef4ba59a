//! MIDI in: note, controller and pitch bend events, stamped with the engine frame they take
//! effect at, reach the DSP thread through a lock-free queue and are applied at that frame,
//! into the block's [`Clock`] (`midi.note`, `midi.gate`, `midi.velocity`, `midi.bend`,
//! `midi.cc(n)` and the voices' `midi.noteOf(i)`... for signals). Messages of every channel
//! count alike.
//!
//! The mono voice (`midi.note`...) has last-note priority: the note is the last key pressed
//! of those still held; releasing it falls back to the one held before; the gate is 1 while
//! any key is held. The note and velocity stay at their last values after the gate closes (an
//! envelope's release keeps its pitch). The eight polyphonic voices are given out by the
//! allocator of `midi/voices.rs` ([`MIDI_VOICES`]).
//!
//! Controllers and voices change rarely, so they are not written frame by frame: the clock
//! carries their values at the block's start and the block's short list of changes
//! ([`MidiValues`]); a read at frame `f` takes the last change at or before `f`. With no
//! change in a block a read is one load, and nothing is written per frame.

use rtrb::{Consumer, Producer};

use crate::engine::MAX_BLOCK;
use crate::transport::Clock;

pub mod clock_out;
mod voices;

pub use voices::MIDI_VOICES;
use voices::{Start, Voices};

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

/// Controllers and voices: where each value is in [`MidiValues::start`].
pub mod at {
    use super::MIDI_VOICES;
    /// Controller `n` (0..128), data / 127.
    pub const CC: usize = 0;
    /// The note of voice `i`.
    pub const NOTE: usize = 128;
    /// The gate of voice `i`, 0 or 1.
    pub const GATE: usize = NOTE + MIDI_VOICES;
    /// The velocity of voice `i`, 0 to 1.
    pub const VELOCITY: usize = GATE + MIDI_VOICES;
    /// How many values there are.
    pub const VALUES: usize = VELOCITY + MIDI_VOICES;
}

/// Changes one block may carry; an event that would need more waits for the next block.
pub const MAX_CHANGES: usize = 64;

/// MIDI in's controllers and voices for one block: their values at its start and what
/// changed during it, as numbers only (the native and JavaScript tiers read them alike).
#[repr(C)]
#[derive(Debug, Clone, PartialEq)]
pub struct MidiValues {
    /// The values at the block's start, laid out as [`at`] says.
    pub start: [f64; at::VALUES],
    /// How many of `changes` are used.
    pub count: f64,
    /// The block's changes in frame order: (frame in the block, value index, value).
    pub changes: [[f64; 3]; MAX_CHANGES],
}

impl MidiValues {
    /// All values 0, no change.
    pub const fn still() -> Self {
        Self {
            start: [0.0; at::VALUES],
            count: 0.0,
            changes: [[0.0; 3]; MAX_CHANGES],
        }
    }

    /// Value `k` (an index of [`at`]'s layout, below [`at::VALUES`]) at frame `frame` of
    /// the block: the last change at or before it, else its value at the start.
    pub fn value(&self, frame: usize, k: usize) -> f64 {
        let mut v = self.start[k.min(at::VALUES - 1)];
        let n = (self.count as usize).min(MAX_CHANGES);
        for c in &self.changes[..n] {
            if c[0] > frame as f64 {
                break;
            }
            if c[1] == k as f64 {
                v = c[2];
            }
        }
        v
    }

    fn room(&self) -> usize {
        MAX_CHANGES - (self.count as usize).min(MAX_CHANGES)
    }
}

impl Default for MidiValues {
    fn default() -> Self {
        Self::still()
    }
}

/// Room an event needs in the block's changes before it is taken (all notes off: a gate
/// per voice).
const EVENT_ROOM: usize = MIDI_VOICES;

/// The receiving end, the mono voice and the polyphonic ones, on the DSP thread.
pub(crate) struct MidiIn {
    rx: Consumer<MidiEvent>,
    /// Keys held, in the order they were pressed (at most 128), with their velocities.
    held: [(u8, u8); 128],
    count: usize,
    note: f64,
    velocity: f64,
    bend: f64,
    voices: Voices,
    /// Controllers and voices now.
    values: [f64; at::VALUES],
    /// `values` changed since the clock's start values were written.
    dirty: bool,
}

/// Where a change goes: the block's list (and the frame in it), or nowhere (no signal
/// reads the clock).
type Log<'a> = Option<(&'a mut MidiValues, usize)>;

impl MidiIn {
    pub(crate) fn new(rx: Consumer<MidiEvent>) -> Self {
        Self {
            rx,
            held: [(0, 0); 128],
            count: 0,
            note: 0.0,
            velocity: 0.0,
            bend: 0.0,
            voices: Voices::default(),
            values: [0.0; at::VALUES],
            dirty: false,
        }
    }

    fn set(&mut self, log: &mut Log<'_>, k: usize, v: f64) {
        if self.values[k] == v {
            return;
        }
        self.values[k] = v;
        self.dirty = true;
        if let Some((m, frame)) = log {
            let n = (m.count as usize).min(MAX_CHANGES - 1);
            m.changes[n] = [*frame as f64, k as f64, v];
            m.count = (n + 1) as f64;
        }
    }

    fn room(log: &Log<'_>, need: usize) -> bool {
        log.as_ref().is_none_or(|(m, _)| m.room() >= need)
    }

    /// Opens the gates of voices that waited a frame, as room allows.
    fn restart(&mut self, log: &mut Log<'_>) {
        while self.voices.pending() && Self::room(log, 3) {
            let Some((i, key, velocity)) = self.voices.restart() else {
                return;
            };
            self.start_voice(log, i, key, velocity);
        }
    }

    fn start_voice(&mut self, log: &mut Log<'_>, i: usize, key: u8, velocity: u8) {
        self.set(log, at::NOTE + i, f64::from(key));
        self.set(log, at::VELOCITY + i, f64::from(velocity) / 127.0);
        self.set(log, at::GATE + i, 1.0);
    }

    /// Applies every queued event due by `frame` (events come in frame order) while the
    /// block's changes have room.
    fn apply_due(&mut self, frame: u64, log: &mut Log<'_>) {
        while let Ok(event) = self.rx.peek() {
            if event.frame > frame || !Self::room(log, EVENT_ROOM) {
                return;
            }
            let bytes = event.bytes;
            let _ = self.rx.pop();
            self.apply(bytes, log);
        }
    }

    /// One message: note on (velocity 0 is a note off), note off, controller (123 is all
    /// notes off), pitch bend; the rest is ignored.
    fn apply(&mut self, [status, key, value]: [u8; 3], log: &mut Log<'_>) {
        let key = key & 0x7f;
        let value = value & 0x7f;
        match status & 0xf0 {
            0x90 if value > 0 => {
                self.release(key);
                if self.count < self.held.len() {
                    self.held[self.count] = (key, value);
                    self.count += 1;
                }
                match self.voices.note_on(key, value) {
                    Start::Now(i) => self.start_voice(log, i, key, value),
                    Start::NextFrame(i) => self.set(log, at::GATE + i, 0.0),
                }
            }
            0x80 | 0x90 => {
                self.release(key);
                if let Some(i) = self.voices.note_off(key) {
                    self.set(log, at::GATE + i, 0.0);
                }
            }
            0xb0 => {
                self.set(log, at::CC + usize::from(key), f64::from(value) / 127.0);
                if key == 123 {
                    self.count = 0;
                    let off = self.voices.all_off();
                    for i in (0..MIDI_VOICES).filter(|i| off & (1 << i) != 0) {
                        self.set(log, at::GATE + i, 0.0);
                    }
                }
                return;
            }
            0xe0 => {
                let v = f64::from(u16::from(value) << 7 | u16::from(key)) - 8192.0;
                self.bend = if v >= 0.0 { v / 8191.0 } else { v / 8192.0 };
                return;
            }
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

    /// Applies the events of the `frames` frames from `first` on, writing the voices of
    /// each frame into `clock` (when signals read it) or only advancing (when none does).
    pub(crate) fn fill(&mut self, clock: Option<&mut Clock>, first: u64, frames: usize) {
        let Some(clock) = clock else {
            let mut log = None;
            self.apply_due((first + frames as u64).saturating_sub(1), &mut log);
            self.restart(&mut log);
            return;
        };
        let Clock {
            note,
            gate,
            velocity,
            bend,
            midi,
            ..
        } = clock;
        if self.dirty {
            midi.start = self.values;
            self.dirty = false;
        }
        midi.count = 0.0;
        for f in 0..frames.min(MAX_BLOCK) {
            let mut log = Some((&mut *midi, f));
            if self.voices.pending() {
                self.restart(&mut log);
            }
            self.apply_due(first + f as u64, &mut log);
            note[f] = self.note;
            gate[f] = if self.count > 0 { 1.0 } else { 0.0 };
            velocity[f] = self.velocity;
            bend[f] = self.bend;
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

    fn ev(frame: u64, bytes: [u8; 3]) -> MidiEvent {
        MidiEvent { frame, bytes }
    }

    #[test]
    fn a_controller_changes_at_its_frame_and_keeps_its_value() {
        let (mut tx, mut rx) = voice();
        tx.send(ev(5, [0xb0, 7, 127]));
        tx.send(ev(9, [0xb3, 7, 0]));
        tx.send(ev(9, [0xb0, 1, 64]));
        tx.send(ev(130, [0xe0, 0, 0]));
        tx.send(ev(131, [0xe0, 0x7f, 0x7f]));
        let mut clock = Clock::default();
        rx.fill(Some(&mut clock), 0, 128);
        let cc7: Vec<f64> = (0..12).map(|f| clock.midi.value(f, at::CC + 7)).collect();
        assert_eq!(cc7, [0., 0., 0., 0., 0., 1., 1., 1., 1., 0., 0., 0.]);
        assert_eq!(clock.midi.value(127, at::CC + 1), 64.0 / 127.0);
        assert_eq!(clock.midi.count, 3.0);
        // The next block starts from the values the last one ended with, with no changes.
        rx.fill(Some(&mut clock), 128, 128);
        assert_eq!(
            (clock.midi.count, clock.midi.start[at::CC + 1]),
            (0.0, 64.0 / 127.0)
        );
        assert_eq!(clock.midi.value(0, at::CC + 1), 64.0 / 127.0);
        assert_eq!(clock.bend[..4], [0.0, 0.0, -1.0, 1.0]);
        rx.fill(Some(&mut clock), 256, 128);
        assert_eq!(clock.midi.count, 0.0);
    }

    #[test]
    fn voices_play_in_the_clock_and_a_steal_closes_the_gate_for_a_frame() {
        let (mut tx, mut rx) = voice();
        let gates = |c: &Clock, f| -> Vec<f64> {
            (0..MIDI_VOICES)
                .map(|i| c.midi.value(f, at::GATE + i))
                .collect()
        };
        let mut clock = Clock::default();
        for k in 0..MIDI_VOICES as u8 {
            tx.send(ev(u64::from(k), [0x90, 60 + k, 127]));
        }
        tx.send(ev(10, [0x80, 61, 0]));
        tx.send(ev(12, [0x90, 72, 64]));
        tx.send(ev(14, [0x90, 73, 64]));
        rx.fill(Some(&mut clock), 0, 16);
        assert_eq!(gates(&clock, 7), [1.0; MIDI_VOICES]);
        assert_eq!(gates(&clock, 10)[1], 0.0);
        // Note 72 takes the voice released at frame 10, keeping its old note till then.
        assert_eq!(clock.midi.value(11, at::NOTE + 1), 61.0);
        assert_eq!(clock.midi.value(12, at::NOTE + 1), 72.0);
        assert_eq!(clock.midi.value(12, at::VELOCITY + 1), 64.0 / 127.0);
        // Note 73 steals voice 0 (the oldest): its gate closes at 14 and opens at 15.
        assert_eq!(gates(&clock, 14)[0], 0.0);
        assert_eq!(clock.midi.value(14, at::NOTE), 60.0);
        assert_eq!(
            (gates(&clock, 15)[0], clock.midi.value(15, at::NOTE)),
            (1.0, 73.0)
        );
    }

    #[test]
    fn a_block_full_of_changes_defers_the_rest_to_the_next_block() {
        let (tx, rx) = RingBuffer::new(256);
        let (mut tx, mut rx) = (MidiSender::new(tx), MidiIn::new(rx));
        for i in 0..100u8 {
            tx.send(ev(0, [0xb0, i, 127]));
        }
        let mut clock = Clock::default();
        rx.fill(Some(&mut clock), 0, 4);
        let taken = MAX_CHANGES - EVENT_ROOM + 1;
        assert_eq!(clock.midi.count as usize, taken);
        assert_eq!(clock.midi.value(3, at::CC + taken - 1), 1.0);
        assert_eq!(clock.midi.value(3, at::CC + taken), 0.0);
        rx.fill(Some(&mut clock), 4, 4);
        assert_eq!(clock.midi.value(0, at::CC + taken), 1.0);
        rx.fill(None, 8, 4);
        rx.fill(Some(&mut clock), 12, 4);
        assert_eq!(clock.midi.value(0, at::CC + 99), 1.0);
    }
}
