//! Underruns on the play log: when the output ran short and by how many frames, a burst of
//! them told in one line.
//!
//! The output notes each underrun in the engine's [`Counters`] (lock-free, no allocation);
//! the play loop collects them here, groups them ([`Coalesce`], pure and tested without an
//! output) and keeps the list for `--stats`.

use flux_engine::{Counters, Underrun};

/// Most underruns `--stats` lists (the first ones); the count and the total of missing
/// frames are never capped.
pub const MAX_LISTED: usize = 1000;

/// Output time one line of the log covers at most, in seconds: the log says at most one
/// line per this much of the output's time.
pub const WINDOW_S: f64 = 0.1;

/// Underruns close together, told in one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// The output frame where the first one's silence began.
    pub first: u64,
    /// The output frame where the last one's silence ended.
    pub end: u64,
    /// How many underruns.
    pub count: u64,
    /// Frames of silence in all.
    pub missing: u64,
}

impl Burst {
    fn start(u: Underrun) -> Self {
        Self {
            first: u.frame,
            end: u.frame + u.missing,
            count: 1,
            missing: u.missing,
        }
    }

    /// `12.4 s: underrun, 128 frames`, or `12.4 s: 5 underruns, 640 frames in 95 ms`: the
    /// time is the output's (the place in a `--record` file).
    pub fn line(&self, sample_rate: u32) -> String {
        let rate = f64::from(sample_rate);
        let at = self.first as f64 / rate;
        let frames = plural(self.missing, "frame");
        if self.count == 1 {
            format!("{at:.1} s: underrun, {frames}")
        } else {
            let span = (self.end - self.first) as f64 * 1e3 / rate;
            format!(
                "{at:.1} s: {} underruns, {frames} in {span:.0} ms",
                self.count
            )
        }
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Groups underruns into bursts that span at most `window` output frames from their first.
#[derive(Debug)]
pub struct Coalesce {
    window: u64,
    open: Option<Burst>,
}

impl Coalesce {
    /// Bursts of at most `window` frames.
    pub fn new(window: u64) -> Self {
        Self {
            window: window.max(1),
            open: None,
        }
    }

    /// Adds an underrun; returns the burst it closed, if it begins a new one.
    pub fn push(&mut self, u: Underrun) -> Option<Burst> {
        match &mut self.open {
            Some(b) if u.frame < b.first + self.window => {
                b.end = u.frame + u.missing;
                b.count += 1;
                b.missing += u.missing;
                None
            }
            _ => self.open.replace(Burst::start(u)),
        }
    }

    /// Closes the open burst once the output has played past its window (`played`: the
    /// output's frame now).
    pub fn flush(&mut self, played: u64) -> Option<Burst> {
        match self.open {
            Some(b) if played >= b.first + self.window => self.open.take(),
            _ => None,
        }
    }

    /// Closes the open burst.
    pub fn finish(&mut self) -> Option<Burst> {
        self.open.take()
    }
}

/// The play loop's record of underruns: lines for the log, lists for `--stats`.
#[derive(Debug)]
pub struct UnderrunLog {
    sample_rate: u32,
    seen: u64,
    coalesce: Coalesce,
    /// Output time of each underrun, in seconds (the first [`MAX_LISTED`]).
    pub times_s: Vec<f64>,
    /// Frames of silence of each underrun (the same ones).
    pub frames: Vec<u64>,
}

impl UnderrunLog {
    /// A log of an output running at `sample_rate`.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            seen: 0,
            coalesce: Coalesce::new((WINDOW_S * f64::from(sample_rate)) as u64),
            times_s: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Collects the underruns the output noted since the last call; returns the lines to
    /// print (a burst is told once its window is over).
    pub fn poll(&mut self, counters: &Counters) -> Vec<String> {
        let (list, lost) = counters.underruns_since(&mut self.seen);
        let mut lines = Vec::new();
        if lost > 0 {
            lines.push(format!(
                "{lost} underrun{} not timed (the log fell behind)",
                if lost == 1 { "" } else { "s" }
            ));
        }
        for u in list {
            if self.times_s.len() < MAX_LISTED {
                self.times_s
                    .push(u.frame as f64 / f64::from(self.sample_rate));
                self.frames.push(u.missing);
            }
            lines.extend(self.coalesce.push(u).map(|b| b.line(self.sample_rate)));
        }
        let played = counters.snapshot().frames_played;
        lines.extend(
            self.coalesce
                .flush(played)
                .map(|b| b.line(self.sample_rate)),
        );
        lines
    }

    /// Collects the last underruns and tells the open burst.
    pub fn finish(&mut self, counters: &Counters) -> Vec<String> {
        let mut lines = self.poll(counters);
        lines.extend(self.coalesce.finish().map(|b| b.line(self.sample_rate)));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(frame: u64, missing: u64) -> Underrun {
        Underrun { frame, missing }
    }

    #[test]
    fn a_burst_is_one_line_and_a_lone_underrun_says_its_frames() {
        // 100 ms windows at 48 kHz.
        let mut c = Coalesce::new(4800);
        assert_eq!(c.push(u(595_200, 128)), None);
        assert_eq!(c.push(u(595_456, 128)), None);
        assert_eq!(c.push(u(599_036, 64)), None);
        // Past the window: the burst is told, a new one begins.
        let burst = c.push(u(700_000, 128)).unwrap();
        assert_eq!(
            burst,
            Burst {
                first: 595_200,
                end: 599_100,
                count: 3,
                missing: 320
            }
        );
        assert_eq!(
            burst.line(48_000),
            "12.4 s: 3 underruns, 320 frames in 81 ms"
        );
        // The output has not played past the new one's window yet.
        assert_eq!(c.flush(704_000), None);
        let lone = c.flush(704_800).unwrap();
        assert_eq!(lone.line(48_000), "14.6 s: underrun, 128 frames");
        assert_eq!(c.finish(), None);
    }
}
