//! The status line of `flux play`: signals and their tier, DSP load, underruns and the last
//! reload, kept on the last line of the terminal.
//!
//! Drawn only when standard error is a terminal. The play loop clears it before it prints
//! anything and draws it again at the end of each tick, so printed lines scroll above it.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use flux_engine::Counters;

use crate::session::Session;

/// How often the text is recomputed.
const EVERY: Duration = Duration::from_millis(250);
/// The line is cut to this many characters, so it never wraps on an 80-column terminal.
const WIDTH: usize = 79;

/// The status line; does nothing when standard error is not a terminal.
pub struct StatusLine {
    enabled: bool,
    shown: bool,
    text: String,
    updated: Option<Instant>,
    /// Blocks and summed load at the last update, for the load over the last interval.
    last: (u64, f64),
    /// The master's levels, compact (`pk -6.0 rms -9.0 -23 LUFS`).
    levels: String,
    /// Each signal's share of the DSP thread's time, in percent, by id.
    shares: HashMap<String, f64>,
}

impl StatusLine {
    /// A status line, on when standard error is a terminal.
    pub fn new() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
            shown: false,
            text: String::new(),
            updated: None,
            last: (0, 0.0),
            levels: String::new(),
            shares: HashMap::new(),
        }
    }

    /// Erases the line, so that what is printed next starts on a clean line.
    pub fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
        }
    }

    /// Sets the master's levels shown from the next update on.
    pub fn set_levels(&mut self, levels: String) {
        self.levels = levels;
    }

    /// Sets each signal's DSP share (percent, by id) shown from the next update on.
    pub fn set_shares(&mut self, shares: HashMap<String, f64>) {
        self.shares = shares;
    }

    /// Draws the line, with its text recomputed at most every 250 ms.
    pub fn draw(&mut self, session: &Session, counters: &Counters) {
        if !self.enabled {
            return;
        }
        if self.updated.is_none_or(|t| t.elapsed() >= EVERY) {
            self.updated = Some(Instant::now());
            let stats = counters.snapshot();
            let sum = stats.dsp_load_mean * stats.blocks as f64;
            let load = if stats.blocks > self.last.0 {
                (sum - self.last.1) / (stats.blocks - self.last.0) as f64
            } else {
                stats.dsp_load_last
            };
            self.last = (stats.blocks, sum);
            self.text = text(session, load, stats.underruns, &self.levels, &self.shares);
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K\x1b[7m{}\x1b[0m", self.text);
        let _ = err.flush();
        self.shown = true;
    }
}

/// `120 bpm 3.2 | DSP 1.2% | 0 underruns | pk -6.0 rms -9.0 -23 LUFS | reload 0.9 ms | tone
/// native 0.3%, hum js 0.8%`, cut to fit.
fn text(
    session: &Session,
    load: f64,
    underruns: u64,
    levels: &str,
    shares: &HashMap<String, f64>,
) -> String {
    let reload = session
        .reload_ms
        .last()
        .map_or(String::new(), |ms| format!(" | reload {ms:.1} ms"));
    let signals: Vec<String> = session
        .signals()
        .iter()
        .map(|s| {
            let muted = if session.gain_of(&s.id) == 0.0 {
                " (muted)"
            } else {
                ""
            };
            let share = shares
                .get(&s.id)
                .map_or(String::new(), |p| format!(" {p:.1}%"));
            format!(
                "{} {}{share}{muted}",
                crate::text::escape(&s.id),
                s.tier.name()
            )
        })
        .collect();
    let clock = session.clock();
    let line = format!(
        " {} bpm {} | DSP {:.1}% | {underruns} underruns | {levels}{reload} | {} ",
        if clock.bpm.fract() == 0.0 {
            format!("{:.0}", clock.bpm)
        } else {
            format!("{:.1}", clock.bpm)
        },
        clock.bar_beat(),
        load * 100.0,
        if signals.is_empty() {
            "no signals".to_owned()
        } else {
            signals.join(", ")
        }
    );
    if line.chars().count() > WIDTH {
        let cut: String = line.chars().take(WIDTH - 2).collect();
        cut + "… "
    } else {
        line
    }
}
