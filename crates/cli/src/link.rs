//! Ableton Link (the `link` feature, GPL-2.0-or-later): tempo and beat phase shared with the
//! other Link peers on the network.
//!
//! A thread, `flux-link`, owns the Link instance. It wakes every 3 to 7 ms, at random, and
//! notes which engine frame the output has taken ([`Counters::output_frame`]) and when, on
//! Link's host clock; the earliest of these notes over the last second tells when each
//! engine frame reaches the output. Each time it also reads the engine's beat at a known
//! frame ([`ClockReader::read_at`]), asks the session for its beat at that frame's
//! presentation time (quantum: the meter's beats per bar), and posts one correction for the
//! play loop, which applies it through the session's controller: the DSP thread only ever
//! sees the usual tempo and locate commands.
//!
//! - Tempo: the engine takes the session's tempo at once, without a glide.
//! - Phase within a sixteenth of a beat: a tempo nudge (at most 2% of the tempo) gliding
//!   back to the session's tempo over half a second, which alone closes the error (each
//!   new correction replaces it), so `clock.beat` stays continuous.
//! - Phase further off (joining a session, a peer moving the timeline), or over 1 ms just
//!   after an underrun or a stall of the output: a locate.
//!
//! The user's tempo changes (`tempo()`, `:tempo`, OSC, the protocol) are committed to the
//! session at the presentation time of the frame they start at: at once, or step by step
//! while a glide runs (meanwhile only an underrun's locate corrects the engine). Alone in a session, Flux moves the session's timeline to its own beat once, so
//! starting Link never makes it jump.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flux_engine::{ClockReader, Counters};
use rusty_link::{AblLink, SessionState};
use serde::Serialize;

use crate::session::Session;
use crate::worker::Worker;

/// The thread wakes every 3 to 7 ms (5 on average), at random, so its notes of the output's
/// position fall at every phase of the output's periods.
const WAKE_US: std::ops::Range<u64> = 3_000..7_000;
/// Beyond this phase error, in beats, the engine is located instead of nudged (a nudge
/// would take over 3 s).
const LOCATE_BEYOND: f64 = 1.0 / 16.0;
/// The time a nudge takes to close a phase error, in seconds (each correction replaces the
/// last, so while they come every tick the error shrinks as if over half of it).
const NUDGE_SECONDS: f64 = 0.5;
/// The largest nudge, as a share of the tempo.
const NUDGE_MAX: f64 = 0.02;
/// For this long after an underrun (µs), a phase error beyond `UNDERRUN_LOCATE_MS` is a
/// locate.
const UNDERRUN_US: i64 = 300_000;
/// See `UNDERRUN_US`.
const UNDERRUN_LOCATE_MS: f64 = 1.0;
/// How much later than before (µs) a quarter second's earliest note must be to tell that the
/// output fell behind.
const STALL_US: f64 = 500.0;
/// After a locate or a tempo change, seconds before the phase error counts in the report.
const SETTLE_SECONDS: f64 = 2.0;
/// Samples kept for the report: two minutes at one per 10 ms (every other wake-up).
const MAX_SAMPLES: usize = 12_000;

/// What the engine plays on, for timing: its sample rate, the frames the output takes at a
/// time, and the output's latency past the moment it takes them.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Frames per second.
    pub sample_rate: u32,
    /// Frames the output takes at a time.
    pub period: u32,
    /// From the output taking a frame to the speaker playing it, in frames.
    pub latency: u32,
}

/// A correction for the play loop to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Correction {
    /// Play at `bpm + nudge`, gliding back to `bpm` over [`NUDGE_SECONDS`]: the nudge
    /// closes its phase error even if no other correction follows.
    Tempo { bpm: f64, nudge: f64 },
    /// The engine's beat at `frame` should be `beat`; it goes at `bpm`, which it plays on
    /// when `follow` (not during the user's glide).
    Locate {
        beat: f64,
        frame: u64,
        bpm: f64,
        follow: bool,
    },
}

/// What the play loop and the Link thread hand each other.
#[derive(Debug, Default)]
struct Inbox {
    /// The user's latest tempo (bpm, glide frames, and the engine frame it starts at, about),
    /// for the thread to commit.
    asked: Option<(f64, u32, u64)>,
    /// Counts the user's tempo changes: a correction made before the latest is dropped.
    generation: u64,
    /// The latest correction and the generation it was made under.
    correction: Option<(u64, Correction)>,
    /// Lines to print (peers joining and leaving).
    notes: Vec<String>,
}

/// What Link did over a run, for `--stats`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct LinkReport {
    /// Peers in the session at the end (other than this Flux).
    pub peers: u64,
    /// The session's tempo at the end.
    pub bpm: f64,
    /// The quantum at the end (the meter's beats per bar).
    pub quantum: f64,
    /// Locates the thread asked for.
    pub locates: u64,
    /// The engine's phase against the session's, in ms, while settled: mean and largest
    /// absolute value, and how many measurements (one per wake-up).
    pub phase_error_ms_mean: f64,
    /// See `phase_error_ms_mean`.
    pub phase_error_ms_max: f64,
    /// See `phase_error_ms_mean`.
    pub phase_error_count: u64,
    /// About every 10 ms: `[host time in µs, engine beat, engine bpm]`, the beat being the one
    /// the output presents at that host time (Link's clock: `CLOCK_MONOTONIC_RAW`).
    pub samples: Vec<[f64; 3]>,
    /// Host times (µs) at which the thread saw an underrun: the output fell behind by its
    /// silence, and the phase with it until the next correction.
    pub underruns_us: Vec<f64>,
    /// Host times (µs) at which the output was found to have fallen behind without an
    /// underrun (a stall of its own): treated as an underrun.
    pub stalls_us: Vec<f64>,
}

/// A running Link session, seen from the play loop.
pub struct Link {
    inbox: Arc<Mutex<Inbox>>,
    worker: Worker<LinkReport>,
    sample_rate: f64,
    /// The tempo and nudge the play loop last gave the engine for Link.
    sent: Option<(f64, f64)>,
}

impl Link {
    /// Joins the Link session at `bpm` (the session keeps its own tempo if it has peers)
    /// and starts the thread that keeps the engine in time with it.
    ///
    /// # Errors
    ///
    /// When the thread cannot start.
    pub fn start(
        bpm: f64,
        clock: ClockReader,
        counters: Arc<Counters>,
        timing: Timing,
    ) -> anyhow::Result<Self> {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let shared = inbox.clone();
        let worker = Worker::spawn("flux-link", move |stop| {
            let link = AblLink::new(bpm);
            link.enable(true);
            let report = follow(&link, &shared, stop, &clock, &counters, timing);
            link.enable(false);
            report
        })?;
        Ok(Self {
            inbox,
            worker,
            sample_rate: f64::from(timing.sample_rate),
            sent: None,
        })
    }

    /// Passes the user's tempo changes to the session and applies the latest correction;
    /// returns the lines to print. Call once per tick of the play loop.
    pub fn tick(&mut self, session: &mut Session) -> Vec<String> {
        let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((bpm, glide)) = session.take_tempo_request() {
            // The engine takes it on the block after the one it published last, or on that
            // one if it is rendering it now: a block's error at most.
            let (_, next) = session.clock_reader().read_at();
            inbox.asked = Some((bpm, glide, next));
            inbox.generation += 1;
            inbox.correction = None;
            self.sent = None;
        }
        let generation = inbox.generation;
        match inbox.correction.take() {
            Some((g, Correction::Tempo { bpm, nudge }))
                // A nudge is sent again each time (its glide back has started); a still
                // tempo only when it changes.
                if g == generation && (nudge != 0.0 || self.sent != Some((bpm, nudge))) =>
            {
                let frames = (NUDGE_SECONDS * self.sample_rate) as u32;
                session.follow_tempo(bpm + nudge, 0);
                session.follow_tempo(bpm, if nudge == 0.0 { 0 } else { frames });
                self.sent = Some((bpm, nudge));
            }
            Some((
                g,
                Correction::Locate {
                    beat,
                    frame,
                    bpm,
                    follow,
                },
            )) if g == generation => {
                // The locate lands on the next block, which starts at the frame the engine
                // published last (a block later if it is rendering one now).
                let (_, next) = session.clock_reader().read_at();
                let ahead = next.saturating_sub(frame) as f64;
                session.locate(beat + ahead * bpm / (60.0 * self.sample_rate));
                if follow {
                    session.follow_tempo(bpm, 0);
                    self.sent = Some((bpm, 0.0));
                }
            }
            _ => {}
        }
        std::mem::take(&mut inbox.notes)
    }

    /// Leaves the session; what happened, or `None` when the thread panicked.
    pub fn stop(self) -> Option<LinkReport> {
        self.worker.stop()
    }
}

/// When engine frames reach the output, on Link's host clock: the earliest of `host time -
/// output frame / rate` over the last second (the moments right after the output took
/// frames), kept in four quarter-second buckets so a drifting sound card is followed.
#[derive(Debug)]
struct OutputClock {
    us_per_frame: f64,
    buckets: [f64; 4],
    bucket: usize,
    bucket_start: i64,
    underrun_frames: u64,
}

impl OutputClock {
    fn new(sample_rate: u32) -> Self {
        Self {
            us_per_frame: 1e6 / f64::from(sample_rate),
            buckets: [f64::INFINITY; 4],
            bucket: 0,
            bucket_start: 0,
            underrun_frames: 0,
        }
    }

    /// Notes that at host time `now` the output had taken `frame` frames, with
    /// `underrun_frames` of silence so far. An underrun (more silence than before) moves the
    /// mapping: the notes start over. So does a quarter second whose notes all came more
    /// than [`STALL_US`] late (an output that fell behind without counting silence, as the
    /// null output does when it skips ahead): the older notes are dropped.
    fn note(&mut self, now: i64, frame: u64, underrun_frames: u64) -> Moved {
        if frame == 0 {
            return Moved::No;
        }
        let mut moved = Moved::No;
        if underrun_frames != self.underrun_frames {
            self.underrun_frames = underrun_frames;
            self.buckets = [f64::INFINITY; 4];
            moved = Moved::Underrun;
        }
        if now - self.bucket_start >= 250_000 {
            let done = self.buckets[self.bucket];
            let before = self.earliest();
            if done.is_finite() && done > before + STALL_US {
                self.buckets = [f64::INFINITY; 4];
                self.buckets[self.bucket] = done;
                moved = Moved::Stall;
            }
            self.bucket = (self.bucket + 1) % self.buckets.len();
            self.buckets[self.bucket] = f64::INFINITY;
            self.bucket_start = now;
        }
        let zero = now as f64 - frame as f64 * self.us_per_frame;
        let b = &mut self.buckets[self.bucket];
        *b = b.min(zero);
        moved
    }

    fn earliest(&self) -> f64 {
        self.buckets.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// The host time at which the output took engine frame `frame`, once it has been seen.
    fn taken_at(&self, frame: u64) -> Option<f64> {
        let zero = self.earliest();
        zero.is_finite()
            .then_some(zero + frame as f64 * self.us_per_frame)
    }
}

/// A xorshift generator: wake-up times need no better.
struct Dice(u64);

impl Dice {
    /// A number in `range`.
    fn within(&mut self, range: std::ops::Range<u64>) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        range.start + self.0 % (range.end - range.start)
    }
}

/// What a note of the output's position found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moved {
    /// Nothing new.
    No,
    /// An underrun: the output is behind by its silence.
    Underrun,
    /// The output fell behind without an underrun.
    Stall,
}

/// `x` wrapped into `-q/2..q/2`.
fn wrap(x: f64, q: f64) -> f64 {
    x - (x / q).round() * q
}

/// The tempo to add at `bpm`, gliding back to nothing over [`NUDGE_SECONDS`], that closes a
/// phase error of `error` beats (a linear ramp gains half its start over its length), at
/// most [`NUDGE_MAX`] of the tempo.
fn nudge(bpm: f64, error: f64) -> f64 {
    let extra = 2.0 * error * 60.0 / NUDGE_SECONDS;
    extra.clamp(-bpm * NUDGE_MAX, bpm * NUDGE_MAX)
}

/// The Link thread's loop, until `stop`.
fn follow(
    link: &AblLink,
    inbox: &Mutex<Inbox>,
    stop: &AtomicBool,
    clock: &ClockReader,
    counters: &Counters,
    timing: Timing,
) -> LinkReport {
    let mut out = OutputClock::new(timing.sample_rate);
    let mut state = SessionState::new();
    let mut report = LinkReport::default();
    let mut error_sum = 0.0;
    let rate = f64::from(timing.sample_rate);
    // From the output taking a frame to the speaker: the frames before it in the same
    // period, then the latency.
    let present_us = f64::from(timing.period + timing.latency) * 1e6 / rate;
    let mut turn = 0u32;
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut peers = 0u64;
    // Until then, a glide of the user's runs and the session follows the engine.
    let mut leading_until = i64::MIN;
    let mut settled_from = link.clock_micros() + (SETTLE_SECONDS * 1e6) as i64;
    let mut last_session_bpm = f64::NAN;
    let mut aligned_alone = false;
    let mut underrun_until = i64::MIN;
    // The target of the user's glide running now.
    let mut glide_to: Option<f64> = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_micros(dice.within(WAKE_US)));
        let now = link.clock_micros();
        // The output counts its frames, then its silence: a note read between the two
        // would be an underrun's worth early, so one that straddles a change is dropped.
        let missing = counters.underrun_frames();
        let frame = counters.output_frame();
        if counters.underrun_frames() == missing {
            let moved = out.note(now, frame, missing);
            match moved {
                Moved::No => {}
                Moved::Underrun => report.underruns_us.push(now as f64),
                Moved::Stall => report.stalls_us.push(now as f64),
            }
            if moved != Moved::No {
                underrun_until = now + UNDERRUN_US;
            }
        }
        turn += 1;
        let (asked, generation) = {
            let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
            let n = link.num_peers();
            if n != peers {
                inbox.notes.push(format!("link: {n} peers"));
                peers = n;
            }
            (inbox.asked.take(), inbox.generation)
        };
        link.capture_app_session_state(&mut state);
        if let Some((bpm, glide, from)) = asked {
            // The change is heard when its first frame plays: the session changes there.
            let at = out.taken_at(from).map_or(now, |t| (t + present_us) as i64);
            if glide == 0 {
                state.set_tempo(bpm, at);
                link.commit_app_session_state(&state);
            } else {
                glide_to = Some(bpm);
            }
            leading_until = at + (f64::from(glide) * 1e6 / rate) as i64;
            settled_from = leading_until + (SETTLE_SECONDS * 1e6) as i64;
        }
        let (reading, frame) = clock.read_at();
        let Some(taken) = out.taken_at(frame) else {
            continue;
        };
        if !reading.running {
            continue;
        }
        let host = taken + present_us;
        let quantum = reading.meter;
        report.quantum = quantum;
        let gliding = glide_to.is_some();
        if gliding {
            // The user's glide: the session takes the engine's tempo as it goes, and its
            // target once the frame presented is past its end. Only an underrun's locate
            // corrects the engine meanwhile.
            let bpm = match host as i64 >= leading_until {
                true => glide_to.take().unwrap_or(reading.bpm),
                false => reading.bpm,
            };
            state.set_tempo(bpm, host as i64);
            link.commit_app_session_state(&state);
        } else if peers == 0 && !aligned_alone {
            // Alone: the session takes Flux's beat, rather than Flux jumping to it.
            state.request_beat_at_time(reading.beat, host as i64, quantum);
            link.commit_app_session_state(&state);
            aligned_alone = true;
            continue;
        }
        let bpm = state.tempo();
        if bpm != last_session_bpm {
            if last_session_bpm.is_finite() {
                settled_from = now + (SETTLE_SECONDS * 1e6) as i64;
            }
            last_session_bpm = bpm;
        }
        let error = wrap(
            state.beat_at_time(host as i64, quantum) - reading.beat,
            quantum,
        );
        // An underrun delays the output by its silence: the engine is put back in phase at
        // once rather than nudged for a second.
        let far = if now < underrun_until {
            UNDERRUN_LOCATE_MS * bpm / 60_000.0
        } else {
            LOCATE_BEYOND
        };
        let correction = if error.abs() > far {
            report.locates += 1;
            settled_from = now + (SETTLE_SECONDS * 1e6) as i64;
            Some(Correction::Locate {
                beat: reading.beat + error,
                frame,
                bpm,
                follow: !gliding,
            })
        } else {
            (!gliding).then(|| Correction::Tempo {
                bpm,
                nudge: nudge(bpm, error),
            })
        };
        if let Some(correction) = correction {
            inbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .correction = Some((generation, correction));
        }
        if now >= settled_from {
            let ms = (error * 60_000.0 / bpm).abs();
            error_sum += ms;
            report.phase_error_count += 1;
            report.phase_error_ms_max = report.phase_error_ms_max.max(ms);
        }
        if turn.is_multiple_of(2) && report.samples.len() < MAX_SAMPLES {
            report.samples.push([host, reading.beat, reading.bpm]);
        }
    }
    report.peers = peers;
    link.capture_app_session_state(&mut state);
    report.bpm = state.tempo();
    if report.phase_error_count > 0 {
        report.phase_error_ms_mean = error_sum / report.phase_error_count as f64;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_wrap_to_the_nearest_bar() {
        assert_eq!(wrap(3.9, 4.0), -0.10000000000000009);
        assert_eq!(wrap(0.1, 4.0), 0.1);
        assert_eq!(wrap(-4.2, 4.0), -0.20000000000000018);
    }

    #[test]
    fn a_nudge_is_gentle_and_bounded() {
        // 2.5 ms behind at 120 bpm (0.005 beats): 1.2 bpm faster, back to 120 over half
        // a second, gains 0.6 beats a minute for half a second: 0.005 beats.
        assert!((nudge(120.0, 0.005) - 1.2).abs() < 1e-9);
        assert_eq!(nudge(120.0, 0.2), 120.0 * 0.02);
        assert_eq!(nudge(120.0, -0.2), -120.0 * 0.02);
    }

    #[test]
    fn the_output_clock_keeps_the_earliest_note() {
        let mut c = OutputClock::new(48_000);
        assert_eq!(c.taken_at(0), None);
        // The output takes 480 frames every 10 ms; notes come late by 0..3 ms.
        for (k, late) in [(1u64, 3_000i64), (2, 1_000), (3, 2_000)] {
            assert_eq!(c.note(10_000 * k as i64 + late, 480 * k, 0), Moved::No);
        }
        assert_eq!(c.taken_at(4_800), Some(101_000.0));
        // An underrun starts over.
        assert_eq!(c.note(60_000, 960, 100), Moved::Underrun);
        assert_eq!(c.taken_at(960), Some(60_000.0));
        // Then every note comes 2 ms later than that: the output fell behind. Once a
        // whole quarter second of them is in, the earlier notes go.
        let moved: Vec<Moved> = (1..=50u64)
            .map(|k| c.note(62_000 + 10_000 * k as i64, 960 + 480 * k, 100))
            .collect();
        assert_eq!(moved.iter().filter(|m| **m == Moved::Stall).count(), 1);
        assert_eq!(c.taken_at(960), Some(62_000.0));
    }
}
