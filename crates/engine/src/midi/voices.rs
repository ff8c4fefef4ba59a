//! The polyphonic voices of MIDI in: a small allocator, on the DSP thread.
//!
//! A note on takes the voice already playing its key (played again), else a free voice (one
//! whose gate is closed: the one that last played this key, else the one released longest
//! ago), else steals the voice whose note started first. A note off closes the gate of the
//! voice playing its key; the voice keeps its note and velocity, so a release keeps its
//! pitch. A voice played again or stolen closes its gate for one frame and opens it on the
//! next with the new note, so an envelope on the gate starts again.

/// The voices of MIDI in (`midi.voices` for signals).
pub const MIDI_VOICES: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
struct Voice {
    key: u8,
    velocity: u8,
    /// The key is held (or about to be, when `pending`).
    held: bool,
    /// Waiting a frame with its gate closed before it plays `key`.
    pending: bool,
    /// The order of its last note on, or of its last note off once released.
    since: u64,
}

/// What a note on did to a voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// The voice's gate opens now with its new note.
    Now(usize),
    /// The voice's gate closes now and opens on the next frame ([`Voices::restart`]).
    NextFrame(usize),
}

/// The voices and whose turn it is.
#[derive(Debug, Default)]
pub(crate) struct Voices {
    voices: [Voice; MIDI_VOICES],
    order: u64,
}

impl Voices {
    fn tick(&mut self) -> u64 {
        self.order += 1;
        self.order
    }

    /// Plays `key` at `velocity` (both 0..=127); says on which voice and when.
    pub(crate) fn note_on(&mut self, key: u8, velocity: u8) -> Start {
        let order = self.tick();
        let v = &self.voices;
        let again = v.iter().position(|x| x.held && x.key == key);
        let free = || {
            let same = v
                .iter()
                .position(|x| !x.held && x.since > 0 && x.key == key);
            same.or_else(|| {
                (0..MIDI_VOICES)
                    .filter(|&i| !v[i].held)
                    .min_by_key(|&i| v[i].since)
            })
        };
        let (i, start) = match again
            .map(Start::NextFrame)
            .or_else(|| free().map(Start::Now))
        {
            Some(Start::Now(i)) => (i, Start::Now(i)),
            Some(Start::NextFrame(i)) => (i, Start::NextFrame(i)),
            None => {
                let oldest = (0..MIDI_VOICES).min_by_key(|&i| v[i].since).unwrap_or(0);
                (oldest, Start::NextFrame(oldest))
            }
        };
        self.voices[i] = Voice {
            key,
            velocity,
            held: true,
            pending: matches!(start, Start::NextFrame(_)),
            since: order,
        };
        start
    }

    /// Releases `key`: the voice whose gate closes, if one played it.
    pub(crate) fn note_off(&mut self, key: u8) -> Option<usize> {
        let i = self.voices.iter().position(|x| x.held && x.key == key)?;
        let order = self.tick();
        let v = &mut self.voices[i];
        v.held = false;
        v.pending = false;
        v.since = order;
        Some(i)
    }

    /// Releases every voice playing; returns which, as bits.
    pub(crate) fn all_off(&mut self) -> u32 {
        let mut bits = 0;
        for i in 0..MIDI_VOICES {
            let key = self.voices[i].key;
            if self.voices[i].held && self.note_off(key).is_some() {
                bits |= 1 << i;
            }
        }
        bits
    }

    /// Whether a voice waits to open its gate.
    pub(crate) fn pending(&self) -> bool {
        self.voices.iter().any(|v| v.pending)
    }

    /// The next voice waiting to open its gate, no longer waiting: (voice, key, velocity).
    pub(crate) fn restart(&mut self) -> Option<(usize, u8, u8)> {
        let i = self.voices.iter().position(|v| v.pending)?;
        let v = &mut self.voices[i];
        v.pending = false;
        Some((i, v.key, v.velocity))
    }

    /// The key and velocity voice `i` plays.
    #[cfg(test)]
    pub(crate) fn note_of(&self, i: usize) -> (u8, u8) {
        (self.voices[i].key, self.voices[i].velocity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_voices_first_then_the_oldest_note_is_stolen() {
        let mut v = Voices::default();
        for k in 0..MIDI_VOICES as u8 {
            assert_eq!(v.note_on(60 + k, 100), Start::Now(usize::from(k)));
        }
        // All eight play: the ninth steals the first note's voice, a frame later.
        assert_eq!(v.note_on(80, 100), Start::NextFrame(0));
        assert_eq!(v.restart(), Some((0, 80, 100)));
        assert_eq!(v.restart(), None);
        // A released voice is taken before any steal; releasing keeps its note.
        assert_eq!(v.note_off(63), Some(3));
        assert_eq!(v.note_of(3), (63, 100));
        assert_eq!(v.note_on(90, 50), Start::Now(3));
        // A key played again restarts its own voice.
        assert_eq!(v.note_on(90, 70), Start::NextFrame(3));
        assert_eq!(v.note_off(42), None);
    }

    #[test]
    fn a_free_voice_that_played_the_key_is_taken_again() {
        let mut v = Voices::default();
        v.note_on(60, 1);
        v.note_on(62, 1);
        v.note_off(60);
        v.note_off(62);
        // Voices 2.. never played, voice 0 was released first, but voice 1 played 62.
        assert_eq!(v.note_on(62, 1), Start::Now(1));
        assert_eq!(v.note_on(64, 1), Start::Now(2));
        assert_eq!(v.all_off(), 0b110);
    }
}
