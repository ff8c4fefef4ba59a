//! MIDI clock in (`--midi-clock in`): follows an external tempo and transport.
//!
//! The thread that receives MIDI (midir's, or the JACK callback) stamps each clock message
//! with its engine frame, as it does notes, and queues it. The play loop takes the queue on
//! each tick (10 ms while it follows a clock) and runs a [`Follower`], whose [`Act`]s it hands to the controller:
//! the tempo from the spacing of the 24-per-beat ticks (smoothed, set with a short glide),
//! start (0xFA: to beat 0, running), continue (0xFB) and stop (0xFC). Nothing of it runs on
//! the DSP thread. Stamped frames, not arrival times, give the spacing, so the jitter of the
//! receiving thread does not reach the tempo.

use flux_engine::midi::clock_out::{CONTINUE, PPQN, START, STOP, TICK};

/// The glide of a tempo change, in seconds.
pub const GLIDE: f64 = 0.05;
/// The share of each tick's error the smoothed spacing takes back.
const SMOOTH: f64 = 0.1;
/// A spacing this far (as a share) from the smoothed one is an outlier.
const OUTLIER: f64 = 0.2;
/// A tempo change below this (in bpm) is not sent.
const STEADY: f64 = 0.01;

/// What the transport is to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// Ramp to this tempo (bpm) over [`GLIDE`].
    Tempo(f64),
    /// Locate beat 0 and run.
    Start,
    /// Run on from where it stands.
    Continue,
    /// Hold.
    Stop,
}

/// Follows clock messages; pure logic, fed stamped messages in order.
#[derive(Debug)]
pub struct Follower {
    sample_rate: f64,
    /// The frame of the last tick.
    last: Option<u64>,
    /// The smoothed frames between ticks.
    spacing: Option<f64>,
    /// The tempo last sent.
    sent: Option<f64>,
    /// Outlying spacings in a row.
    outliers: u32,
}

impl Follower {
    /// A follower for an engine at `sample_rate`.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate: f64::from(sample_rate),
            last: None,
            spacing: None,
            sent: None,
            outliers: 0,
        }
    }

    /// One message stamped with engine frame `frame`; what to do about it, if anything.
    pub fn feed(&mut self, frame: u64, byte: u8) -> Option<Act> {
        match byte {
            START => {
                self.last = None;
                Some(Act::Start)
            }
            CONTINUE => Some(Act::Continue),
            STOP => {
                self.last = None;
                Some(Act::Stop)
            }
            TICK => self.tick(frame),
            _ => None,
        }
    }

    fn tick(&mut self, frame: u64) -> Option<Act> {
        let last = self.last.replace(frame)?;
        let d = frame.checked_sub(last)? as f64;
        // Slower than the slowest tempo (a pause): start measuring again.
        let slowest = 60.0 * self.sample_rate / (flux_engine::MIN_BPM * PPQN);
        if d <= 0.0 || d > slowest {
            return None;
        }
        let spacing = match self.spacing {
            // One spacing far off (a stall of the sender or of Flux) is left out; four in
            // a row are a new tempo.
            Some(s) if (d - s).abs() > s * OUTLIER && self.outliers < 3 => {
                self.outliers += 1;
                return None;
            }
            Some(s) if (d - s).abs() > s * OUTLIER => d,
            Some(s) => s + (d - s) * SMOOTH,
            None => d,
        };
        self.outliers = 0;
        self.spacing = Some(spacing);
        let bpm = 60.0 * self.sample_rate / (spacing * PPQN);
        if self.sent.is_some_and(|s| (s - bpm).abs() < STEADY) {
            return None;
        }
        self.sent = Some(bpm);
        Some(Act::Tempo(bpm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_at_140_bpm_give_140_bpm_through_jitter() {
        let mut f = Follower::new(48_000);
        assert_eq!(f.feed(0, START), Some(Act::Start));
        let spacing = 60.0 * 48_000.0 / (140.0 * 24.0);
        let mut bpm = 0.0;
        for k in 0..480u64 {
            // Whole frames, and ±3 frames of jitter on every other tick.
            let jitter = if k % 2 == 0 { 3.0 } else { -3.0 };
            let at = (k as f64 * spacing + jitter).round() as u64 + 100;
            if let Some(Act::Tempo(b)) = f.feed(at, TICK) {
                bpm = b;
            }
        }
        assert!((bpm - 140.0).abs() < 0.5, "{bpm}");
        // A stall (one spacing of 2000 frames) moves nothing; a new tempo is taken.
        assert_eq!(f.feed(500_000, TICK), None);
        assert_eq!(f.feed(502_000, TICK), None);
        assert_eq!(f.feed(502_857, TICK), None);
        let mut faster = None;
        for k in 1..=6 {
            faster = f.feed(502_857 + 500 * k, TICK).or(faster);
        }
        assert_eq!(faster, Some(Act::Tempo(240.0)));
        assert_eq!(f.feed(10, STOP), Some(Act::Stop));
        // A pause of a second is not a tempo.
        assert_eq!(f.feed(1_000_000, TICK), None);
        assert_eq!(f.feed(2_000_000, TICK), None);
    }
}
