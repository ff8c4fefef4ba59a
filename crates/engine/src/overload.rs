//! The overload policy: when the DSP thread's own work stays over its budget, the most
//! expensive signal fades out, rather than every signal underrunning together.
//!
//! The engine times each signal's render with the wall clock (cheap: no system call) and
//! keeps the sum per signal over a window of [`OVERLOAD_WINDOW`] seconds of audio (or of the
//! thread's CPU time, when that comes first). The load that decides is the thread's CPU
//! time over the audio's duration: the wall clock would blame the engine for the time a
//! busy machine takes the core away. A window whose load is over the limit is a strike;
//! [`OVERLOAD_STRIKES`] in a row (a fifth of a second of overload) cut the signal that took
//! the most time in the last one. Off unless
//! asked for ([`crate::Controller::set_overload`]): an offline render has no deadline.

use std::time::Duration;

/// Seconds of audio a load window covers.
pub const OVERLOAD_WINDOW: f64 = 0.05;
/// Windows over the limit in a row before a signal is cut.
pub const OVERLOAD_STRIKES: u32 = 4;
/// The load limit `flux play` uses unless told: 90 % of each block's duration.
pub const DEFAULT_OVERLOAD: f64 = 0.9;
/// Lowest and highest limits accepted (as fractions of a block's duration).
pub const OVERLOAD_RANGE: std::ops::RangeInclusive<f64> = 0.1..=4.0;

/// What the end of a block means to the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// The window goes on.
    Open,
    /// The window closed within the limit (or the policy is off): start the next.
    Closed,
    /// The window closed and the load has been over the limit long enough: cut a signal.
    /// Carries the load of the last window.
    Cut(f64),
}

/// The policy's state on the DSP thread.
#[derive(Debug, Default)]
pub(crate) struct Overload {
    /// The limit, as a fraction of the block's duration; `None`: off.
    limit: Option<f64>,
    /// CPU time of the thread when the block began.
    started: Option<Duration>,
    /// CPU time and frames of the window so far.
    cpu: Duration,
    frames: u64,
    strikes: u32,
}

impl Overload {
    /// Sets the limit (`None`: off); the count starts again.
    pub(crate) fn set_limit(&mut self, limit: Option<f64>) {
        self.limit = limit
            .filter(|l| l.is_finite())
            .map(|l| l.clamp(*OVERLOAD_RANGE.start(), *OVERLOAD_RANGE.end()));
        self.cpu = Duration::ZERO;
        self.frames = 0;
        self.strikes = 0;
    }

    /// The limit, when the policy is on.
    pub(crate) fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// Notes the start of a block (reads the thread's CPU clock when the policy is on).
    pub(crate) fn begin(&mut self) {
        self.started = self.limit.and_then(|_| flux_rt::thread_cpu_time());
    }

    /// Notes the end of a block of `frames` frames at `sample_rate`.
    pub(crate) fn end(&mut self, frames: usize, sample_rate: u32) -> Verdict {
        let window = (OVERLOAD_WINDOW * f64::from(sample_rate)) as u64;
        self.frames += frames as u64;
        // The clock is read only when the policy is on: a syscall per block is a tenth of
        // a light patch's render.
        if let Some(started) = self.started.filter(|_| self.limit.is_some()) {
            if let Some(now) = flux_rt::thread_cpu_time() {
                self.cpu += now.saturating_sub(started);
            }
        }
        // A window is 50 ms of audio, or of CPU time when the load is high: a signal ten
        // times too slow is cut after a fifth of a second, not two.
        let long = Duration::from_secs_f64(OVERLOAD_WINDOW);
        if self.frames < window.max(1) && self.cpu < long {
            return Verdict::Open;
        }
        let budget = self.frames as f64 / f64::from(sample_rate);
        let load = self.cpu.as_secs_f64() / budget;
        self.cpu = Duration::ZERO;
        self.frames = 0;
        let Some(limit) = self.limit else {
            return Verdict::Closed;
        };
        if load <= limit {
            self.strikes = 0;
            return Verdict::Closed;
        }
        self.strikes += 1;
        if self.strikes < OVERLOAD_STRIKES {
            return Verdict::Closed;
        }
        self.strikes = 0;
        Verdict::Cut(load)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_close_every_fifty_ms_of_audio() {
        let mut o = Overload::default();
        // 2400 frames at 48 kHz: the window closes on the block that reaches it.
        let verdicts: Vec<Verdict> = (0..40).map(|_| o.end(128, 48_000)).collect();
        let closed: Vec<usize> = verdicts
            .iter()
            .enumerate()
            .filter(|(_, v)| **v == Verdict::Closed)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(closed, vec![18, 37]);
    }

    #[test]
    fn a_load_over_the_limit_for_four_windows_cuts() {
        let mut o = Overload::default();
        o.set_limit(Some(0.1));
        let mut cuts = Vec::new();
        for block in 0..60 {
            o.begin();
            // Burn 2 ms of the thread's CPU time: a fifth of the block's 10 ms.
            burn(Duration::from_millis(2));
            if let Verdict::Cut(load) = o.end(480, 48_000) {
                cuts.push((block, load));
            }
        }
        // Five blocks a window; four windows over the limit make a cut, then it starts over.
        let blocks: Vec<usize> = cuts.iter().map(|c| c.0).collect();
        assert_eq!(blocks, vec![19, 39, 59], "{cuts:?}");
        assert!(cuts.iter().all(|c| c.1 >= 0.2), "{cuts:?}");
    }

    /// Spins until the thread has used `cpu` more CPU time (a busy machine only makes
    /// it take longer).
    fn burn(cpu: Duration) {
        let Some(start) = flux_rt::thread_cpu_time() else {
            return;
        };
        let mut x = 0u64;
        while flux_rt::thread_cpu_time().unwrap() - start < cpu {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn limits_are_clamped_and_nan_turns_the_policy_off() {
        let mut o = Overload::default();
        o.set_limit(Some(100.0));
        assert_eq!(o.limit, Some(4.0));
        o.set_limit(Some(f64::NAN));
        assert_eq!(o.limit, None);
    }
}
