//! The master section's options and the levels of a session: the engine's meters (peak,
//! RMS, clips, per signal and for the master) read on the main thread, and the master's
//! short-term loudness (EBU R128, the `ebur128` crate) measured here, off the DSP thread,
//! from a tap (`flux play`) or the rendered frames (`flux render`).

use std::collections::{BTreeMap, HashMap};

use clap::Args;
use ebur128::{Channel, EbuR128, Mode};
use flux_engine::meter::dbfs;
use flux_engine::{Level, MasterConfig, MasterMode, MeterReader};
use flux_js::SignalInfo;
use serde::{Deserialize, Serialize};

/// The master section's options, shared by `play` and `render`.
#[derive(Debug, Clone, Args)]
pub struct MasterArgs {
    /// What the mix goes through last: tanh soft clip, a look-ahead peak limiter at the
    /// ceiling (2 ms of added latency), a hard clip at the ceiling, or nothing (samples
    /// beyond full scale reach the device, which clips them).
    #[arg(long, value_name = "tanh|limit|clip|none", default_value = "tanh",
          value_parser = parse_mode)]
    master: MasterMode,
    /// Ceiling of `--master limit` and `--master clip`, in dBFS (-60 to 0).
    #[arg(long, value_name = "DB", default_value_t = flux_engine::master::DEFAULT_CEILING_DB,
          allow_negative_numbers = true, value_parser = parse_ceiling)]
    ceiling: f64,
    /// Remove DC from the mix before the master stage (a one-pole high-pass at 5 Hz).
    #[arg(long)]
    dc_block: bool,
}

fn parse_mode(text: &str) -> Result<MasterMode, String> {
    text.parse()
}

fn parse_ceiling(text: &str) -> Result<f64, String> {
    let db: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of dBFS"))?;
    let config = MasterConfig {
        ceiling_db: db,
        ..MasterConfig::default()
    };
    config.check().map(|()| db)
}

impl MasterArgs {
    /// The master stage these options ask for.
    pub fn config(&self) -> MasterConfig {
        MasterConfig {
            mode: self.master,
            ceiling_db: self.ceiling,
            dc_block: self.dc_block,
        }
    }

    /// Sets the master stage of a new engine; returns the notes to print: the latency the
    /// limiter adds, a ceiling the mode ignores.
    pub fn setup(
        &self,
        controller: &mut flux_engine::Controller,
        sample_rate: u32,
    ) -> anyhow::Result<Vec<String>> {
        controller
            .set_master_stage(self.config())
            .map_err(anyhow::Error::msg)?;
        let mut notes = Vec::new();
        match self.master {
            MasterMode::Limit => {
                let stage = flux_engine::MasterStage::new(self.config(), sample_rate, 1);
                let frames = stage.latency_frames();
                notes.push(format!(
                    "master: limit at {} dBFS, {frames} frames ({:.1} ms) of look-ahead latency",
                    self.ceiling,
                    frames as f64 * 1e3 / f64::from(sample_rate)
                ));
            }
            MasterMode::Tanh | MasterMode::None
                if self.ceiling != flux_engine::master::DEFAULT_CEILING_DB =>
            {
                notes.push(format!(
                    "note: --ceiling applies to --master limit and clip; {} ignores it",
                    self.master
                ));
            }
            _ => {}
        }
        Ok(notes)
    }
}

/// The levels of the master, as `--stats`, the protocol and the scope give them. Silence
/// reads `null` (minus infinity dB).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterLevels {
    /// Largest sample leaving the master stage, dBFS.
    pub peak_dbfs: Option<f64>,
    /// RMS of what leaves the master stage (every channel), dBFS.
    pub rms_dbfs: Option<f64>,
    /// Short-term loudness (EBU R128, 3 s), LUFS.
    pub lufs_short: Option<f64>,
    /// Samples at or over full scale going into the master stage.
    pub clips: u64,
}

/// The levels of one signal (after its gain, before the mix).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalLevels {
    /// Largest sample, dBFS.
    pub peak_dbfs: Option<f64>,
    /// RMS (every channel), dBFS.
    pub rms_dbfs: Option<f64>,
    /// Samples at or over full scale.
    pub clips: u64,
    /// Its share of the DSP thread's time: the time its renders took over the audio's
    /// time, in percent (wall clock, so a busy machine reads high).
    pub dsp_percent: f64,
}

/// Levels of the master and of each signal, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelsReport {
    /// The master.
    pub master: MasterLevels,
    /// Each signal, by id.
    pub signals: BTreeMap<String, SignalLevels>,
}

/// `Some(dB)`, or `None` for silence.
fn db(amplitude: f64) -> Option<f64> {
    let d = dbfs(amplitude);
    d.is_finite().then_some(d)
}

/// One meter as the main thread follows it: the last reading, the window being gathered,
/// and the whole run.
#[derive(Debug, Clone, Copy, Default)]
struct Track {
    /// The last reading (running totals).
    last: Level,
    /// Totals when the current window began, and its peak so far.
    window_start: Level,
    window_peak: f64,
    /// The last closed window: peak, RMS and the reading it ended on.
    shown: (f64, f64),
    shown_level: (Level, Level),
    /// Largest sample over the run.
    run_peak: f64,
}

impl Track {
    fn add(&mut self, level: Level) {
        self.last = level;
        self.window_peak = self.window_peak.max(level.peak);
        self.run_peak = self.run_peak.max(level.peak);
    }

    fn close_window(&mut self) {
        self.shown = (self.window_peak, self.last.rms_since(&self.window_start));
        self.shown_level = (self.window_start, self.last);
        self.window_start = self.last;
        self.window_peak = 0.0;
    }
}

/// Samples of the master (frames times channels) a shown window covers: a quarter second.
const WINDOW_SECONDS: f64 = 0.25;
/// The loudness is read after every 100 ms of audio, as EBU R128 asks of a meter.
const LOUDNESS_STEP_SECONDS: f64 = 0.1;
/// Steps in the short-term (3 s) window.
const SHORT_TERM_STEPS: usize = 30;

/// The short-term loudness (3 s) as the mean of its thirty 100 ms energies, so a read sums
/// 100 ms of audio, not 3 s of it ten times a second.
#[derive(Debug, Clone)]
struct ShortTerm {
    energies: [f64; SHORT_TERM_STEPS],
    next: usize,
}

impl ShortTerm {
    fn new() -> Self {
        Self {
            energies: [0.0; SHORT_TERM_STEPS],
            next: 0,
        }
    }

    /// Adds the loudness of the last 100 ms and returns that of the last 3 s (LUFS).
    fn step(&mut self, lufs_100ms: f64) -> f64 {
        // BS.1770: loudness = -0.691 + 10 log10(energy); silence is -inf, energy 0.
        self.energies[self.next] = 10f64.powf((lufs_100ms + 0.691) / 10.0);
        self.next = (self.next + 1) % SHORT_TERM_STEPS;
        let mean = self.energies.iter().sum::<f64>() / SHORT_TERM_STEPS as f64;
        if mean > 0.0 {
            10.0 * mean.log10() - 0.691
        } else {
            f64::NEG_INFINITY
        }
    }
}

/// The levels of a session: readings of the engine's meters and the master's loudness.
/// Main thread only.
pub struct Levels {
    reader: MeterReader,
    sample_rate: u32,
    channels: usize,
    master: Track,
    signals: HashMap<usize, Track>,
    /// Ids by state-block offset: every signal seen, playing or not.
    names: HashMap<usize, String>,
    /// Offsets of the signals playing now.
    playing: Vec<usize>,
    loudness: Option<EbuR128>,
    short_term: ShortTerm,
    /// Frames fed to the loudness meter since it was last read.
    unread: usize,
    lufs_now: f64,
    lufs_max: f64,
}

impl Levels {
    /// Levels of an engine of `channels` channels at `sample_rate`, read through `reader`.
    pub fn new(reader: MeterReader, sample_rate: u32, channels: usize) -> Self {
        let loudness = EbuR128::new(channels as u32, sample_rate, Mode::M)
            .ok()
            .map(|mut meter| {
                // A mono output counts as both speakers of a stereo pair (BS.1770 dual mono).
                if channels == 1 {
                    let _ = meter.set_channel(0, Channel::DualMono);
                }
                meter
            });
        Self {
            reader,
            sample_rate,
            channels,
            master: Track::default(),
            signals: HashMap::new(),
            names: HashMap::new(),
            playing: Vec::new(),
            loudness,
            short_term: ShortTerm::new(),
            unread: 0,
            lufs_now: f64::NEG_INFINITY,
            lufs_max: f64::NEG_INFINITY,
        }
    }

    /// Notes which signals play, to name their meters (an id keeps its name after it stops).
    pub fn set_signals(&mut self, signals: &[SignalInfo]) {
        self.playing = signals.iter().map(|s| s.block.offset).collect();
        for s in signals {
            self.names.insert(s.block.offset, s.id.clone());
        }
    }

    /// Feeds frames that played (interleaved) to the loudness meter.
    pub fn feed(&mut self, frames: &[f32]) {
        let Some(meter) = &mut self.loudness else {
            return;
        };
        let step = ((LOUDNESS_STEP_SECONDS * f64::from(self.sample_rate)) as usize).max(1);
        let mut rest = frames;
        while !rest.is_empty() {
            let take = (step - self.unread).min(rest.len() / self.channels);
            if take == 0 {
                break;
            }
            let (now, later) = rest.split_at(take * self.channels);
            if meter.add_frames_f32(now).is_err() {
                return;
            }
            rest = later;
            self.unread += take;
            if self.unread >= step {
                self.unread = 0;
                let step_ms = (LOUDNESS_STEP_SECONDS * 1000.0) as u32;
                if let Ok(lufs) = meter.loudness_window(step_ms) {
                    let lufs = self.short_term.step(lufs);
                    self.lufs_now = lufs;
                    if lufs > self.lufs_max {
                        self.lufs_max = lufs;
                    }
                }
            }
        }
    }

    /// Reads the meters; closes the shown window after every quarter second of audio.
    pub fn update(&mut self) {
        self.master.add(self.reader.take_master());
        for (offset, level) in self.reader.take_signals() {
            self.signals.entry(offset).or_default().add(level);
        }
        let window = (WINDOW_SECONDS * f64::from(self.sample_rate)) as u64 * self.channels as u64;
        if self.master.last.samples - self.master.window_start.samples >= window {
            self.master.close_window();
            for track in self.signals.values_mut() {
                track.close_window();
            }
        }
    }

    /// The levels now: the last quarter second (the loudness: the last 3 s), signals that
    /// play; clip counts over the run.
    pub fn now(&self) -> LevelsReport {
        let t = &self.master;
        LevelsReport {
            master: MasterLevels {
                peak_dbfs: db(t.shown.0),
                rms_dbfs: db(t.shown.1),
                lufs_short: self.lufs_now.is_finite().then_some(self.lufs_now),
                clips: t.last.clips,
            },
            signals: self
                .playing
                .iter()
                .filter_map(|offset| {
                    let name = self.names.get(offset)?;
                    let t = self.signals.get(offset)?;
                    let (from, to) = t.shown_level;
                    let levels = SignalLevels {
                        peak_dbfs: db(t.shown.0),
                        rms_dbfs: db(t.shown.1),
                        clips: t.last.clips,
                        dsp_percent: self.percent(&to, &from),
                    };
                    Some((name.clone(), levels))
                })
                .collect(),
        }
    }

    /// The levels over the whole run: the largest sample, the RMS of every sample, the
    /// largest short-term loudness; every signal that played.
    pub fn run(&self) -> LevelsReport {
        LevelsReport {
            master: MasterLevels {
                peak_dbfs: db(self.master.run_peak),
                rms_dbfs: db(self.master.last.rms()),
                lufs_short: self.lufs_max.is_finite().then_some(self.lufs_max),
                clips: self.master.last.clips,
            },
            signals: self
                .signals
                .iter()
                .filter_map(|(offset, t)| {
                    let name = self.names.get(offset)?;
                    let levels = SignalLevels {
                        peak_dbfs: db(t.run_peak),
                        rms_dbfs: db(t.last.rms()),
                        clips: t.last.clips,
                        dsp_percent: self.percent(&t.last, &Level::default()),
                    };
                    Some((name.clone(), levels))
                })
                .collect(),
        }
    }

    /// A signal's DSP share between two readings, in percent, to 0.1.
    fn percent(&self, to: &Level, from: &Level) -> f64 {
        let share = to.dsp_share_since(from, self.channels, self.sample_rate);
        (share * 1000.0).round() / 10.0
    }

    /// The master for the status line: `pk -6.0 rms -9.0 -23 LUFS`.
    pub fn compact(&self) -> String {
        let now = self.now();
        let f = |d: Option<f64>| d.map_or("-inf".to_owned(), |d| format!("{d:.1}"));
        let lufs = now
            .master
            .lufs_short
            .map_or(String::new(), |l| format!(" {l:.0} LUFS"));
        let clips = match now.master.clips {
            0 => String::new(),
            n => format!(" {n} clips"),
        };
        format!(
            "pk {} rms {}{lufs}{clips}",
            f(now.master.peak_dbfs),
            f(now.master.rms_dbfs)
        )
    }
}

impl LevelsReport {
    /// One line: `master peak -6.02 dBFS, rms -9.03 dBFS, -23.0 LUFS short-term, 0 clips |
    /// a peak -6.02 dBFS, rms -9.03 dBFS, 0 clips, DSP 0.4%`.
    pub fn line(&self) -> String {
        let f = |d: Option<f64>| d.map_or("-inf".to_owned(), |d| format!("{d:.2}"));
        let m = &self.master;
        let mut line = format!(
            "master peak {} dBFS, rms {} dBFS, {} LUFS short-term, {} clips",
            f(m.peak_dbfs),
            f(m.rms_dbfs),
            m.lufs_short
                .map_or("-inf".to_owned(), |l| format!("{l:.1}")),
            m.clips
        );
        for (id, s) in &self.signals {
            line += &format!(
                " | {} peak {} dBFS, rms {} dBFS, {} clips, DSP {:.1}%",
                crate::text::escape(id),
                f(s.peak_dbfs),
                f(s.rms_dbfs),
                s.clips,
                s.dsp_percent
            );
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EBU Tech 3341, case 1: a stereo 1 kHz sine at -23 dBFS reads -23.0 LUFS (± 0.1).
    #[test]
    fn a_stereo_sine_at_minus_23_dbfs_reads_minus_23_lufs() {
        let (_ctl, _eng) = flux_engine::engine(
            flux_engine::EngineConfig::new(48_000, 2),
            std::sync::Arc::new(flux_engine::StateMemory::new(1024)),
        );
        let mut levels = Levels::new(_ctl.meters(), 48_000, 2);
        let amp = 10f64.powf(-23.0 / 20.0);
        let frames: Vec<f32> = (0..48_000 * 4)
            .flat_map(|i| {
                let x = amp * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48_000.0).sin();
                [x as f32, x as f32]
            })
            .collect();
        for chunk in frames.chunks(1234) {
            levels.feed(chunk);
        }
        let lufs = levels.run().master.lufs_short.unwrap();
        assert!((lufs + 23.0).abs() < 0.1, "{lufs}");
    }

    /// The short-term loudness summed from 100 ms steps is the meter's own 3 s reading.
    #[test]
    fn the_short_term_loudness_from_steps_is_the_meters_own() {
        let (_ctl, _eng) = flux_engine::engine(
            flux_engine::EngineConfig::new(48_000, 2),
            std::sync::Arc::new(flux_engine::StateMemory::new(1024)),
        );
        let mut levels = Levels::new(_ctl.meters(), 48_000, 2);
        let mut reference = EbuR128::new(2, 48_000, Mode::S).unwrap();
        // Silence, then a tone that swells and a noisy burst, over 6 s.
        let mut seed = 1u32;
        let frames: Vec<f32> = (0..48_000 * 6)
            .flat_map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let t = f64::from(i) / 48_000.0;
                let tone = (t / 6.0) * (2.0 * std::f64::consts::PI * 220.0 * t).sin();
                let noise = if (2.5..3.2).contains(&t) {
                    f64::from(seed >> 8) / f64::from(1u32 << 24) - 0.5
                } else {
                    0.0
                };
                let x = if t < 0.5 { 0.0 } else { tone + noise };
                [x as f32, (0.5 * x) as f32]
            })
            .collect();
        let mut steps = 0;
        for chunk in frames.chunks(4_800 * 2) {
            levels.feed(chunk);
            reference.add_frames_f32(chunk).unwrap();
            let want = reference.loudness_shortterm().unwrap();
            let got = levels.lufs_now;
            assert!(
                got == want || (got - want).abs() < 1e-9,
                "step {steps}: {got} against {want}"
            );
            steps += 1;
        }
        assert_eq!(steps, 60);
    }
}
