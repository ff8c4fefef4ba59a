//! A playing session: the loader and the engine's controller, and what reloads say.
//!
//! Shared by `play` (reloads on save) and `render` (swaps at set times), so both go through
//! the same path: load, swap, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use flux_engine::{
    ClockReading, Controller, Fault, Quantize, SignalFault, StateAllocator, StateMemory,
};
use flux_js::{Action, Diagnostic, LoadOptions, Loaded, Loader, Location, SignalInfo};

/// What editors are told about ([`Session::take_notices`]), as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A signal faulted while playing and was silenced.
    Fault {
        /// The signal.
        id: String,
        /// Where, when known.
        location: Option<Location>,
        /// What happened, without the place.
        message: String,
    },
    /// A load or sent code failed (a syntax error...); the old code plays on.
    Error(Diagnostic),
    /// A signal was loaded again without an error, or is gone: its faults are gone.
    Cleared {
        /// The signal.
        id: String,
        /// The file (or the `name` of sent code) it was loaded from again; `None` when
        /// it was stopped or left out of a reload.
        file: Option<String>,
    },
}

/// Notices kept for [`Session::take_notices`] at most; later ones are dropped.
const NOTICES: usize = 256;

/// How a reload went.
#[derive(Debug)]
pub enum Reload {
    /// The new patch is playing.
    Ok {
        /// Signals in the new patch.
        signals: usize,
        /// Load time.
        elapsed: Duration,
        /// What the load did with the units' state, when the code makes units.
        units: Option<String>,
    },
    /// The file failed; the old patch plays on.
    Failed {
        /// What went wrong.
        diagnostic: Diagnostic,
        /// Signals still playing.
        playing: usize,
        /// Time spent before failing.
        elapsed: Duration,
    },
}

impl Reload {
    /// The one line a reload prints.
    pub fn line(&self, file: &str) -> String {
        match self {
            Reload::Ok {
                signals,
                elapsed,
                units,
            } => format!(
                "{file}: ok, {signals} signal{}, loaded in {:.1} ms{}",
                plural(*signals),
                ms(*elapsed),
                units.as_ref().map_or(String::new(), |u| format!("; {u}"))
            ),
            Reload::Failed {
                diagnostic,
                playing,
                elapsed,
            } => format!(
                "{diagnostic} (still playing {playing} signal{}; {:.1} ms)",
                plural(*playing),
                ms(*elapsed)
            ),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Milliseconds, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The loader, the controller and the record of reloads.
pub struct Session {
    loader: Loader,
    controller: Controller,
    /// Faults collected before a load, reported at the next poll.
    pending_faults: Vec<SignalFault>,
    /// Signals of the patch last sent, and of the one before (faults may name either).
    current: Vec<SignalInfo>,
    previous: Vec<SignalInfo>,
    /// Reloads after the first load.
    pub reloads: u64,
    /// Reloads that failed.
    pub reload_errors: u64,
    /// Load time of every reload, in ms.
    pub reload_ms: Vec<f64>,
    loads: u64,
    /// The gain each signal was last set to (1 when absent), for listings.
    gains: HashMap<String, f64>,
    /// Signals a `solo` muted, with the gain each had before: `unsolo` gives it back.
    soloed_out: HashMap<String, f64>,
    /// The value the code last sent ended with, as the REPL shows it.
    value: Option<String>,
    /// The default crossfade, in frames.
    fade: u32,
    /// The patch last sent and when it was ready, until its first frame is heard.
    sent: Option<(u64, Instant)>,
    /// Reload-to-audible times, in ms: from a new patch being ready to its first frame
    /// leaving the ring.
    pub audible_ms: Vec<f64>,
    /// Lines to print at the next poll (refused gains of loaded code).
    notes: Vec<String>,
    /// Files the last file load read or looked for through imports.
    imports: Vec<PathBuf>,
    /// What editors have not been told yet.
    notices: Vec<Notice>,
    /// The tempo the user last asked for (bpm, glide frames), until Link takes it.
    tempo_asked: Option<(f64, u32)>,
}

/// Runs a load, turning a panic inside it (a bug in the loader or the compiler) into a
/// diagnostic: the running patch plays on.
fn guarded_load(
    name: &str,
    load: impl FnOnce() -> Result<Loaded, Diagnostic>,
) -> Result<Loaded, Diagnostic> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(load)).unwrap_or_else(|payload| {
        Err(Diagnostic {
            location: flux_js::Location {
                file: name.to_owned(),
                line: 1,
                col: 1,
            },
            message: format!(
                "internal error while loading (the sound plays on): {}",
                crate::worker::panic_message(payload.as_ref())
            ),
        })
    })
}

/// A master gain as a control asks for it: clamped to `0..=MAX_GAIN` (4).
///
/// # Errors
///
/// A gain that is negative or not a finite number, naming it.
pub fn gain_value(x: f64) -> Result<f64, String> {
    match Controller::clamp_gain(x) {
        Some(g) if x >= 0.0 => Ok(g),
        _ => Err(format!(
            "the gain must be a number from 0 to {}, not {x}",
            Controller::MAX_GAIN
        )),
    }
}

/// A tempo as a control asks for it: clamped to `MIN_BPM..=MAX_BPM` (20 to 999).
///
/// # Errors
///
/// A tempo that is not a number above 0, or a glide that is not a number of seconds from 0
/// to 600, naming it.
pub fn tempo_value(bpm: f64, glide: Option<f64>) -> Result<f64, String> {
    if let Some(g) = glide {
        if !(g.is_finite() && (0.0..=600.0).contains(&g)) {
            return Err(format!(
                "the glide must be a number of seconds from 0 to 600, not {g}"
            ));
        }
    }
    if bpm.is_finite() && bpm > 0.0 {
        Ok(bpm.clamp(flux_engine::MIN_BPM, flux_engine::MAX_BPM))
    } else {
        Err(format!(
            "the tempo must be a number of beats per minute (clamped to {} to {}), not {bpm}",
            flux_engine::MIN_BPM,
            flux_engine::MAX_BPM
        ))
    }
}

impl Session {
    /// A session whose engine is driven by `controller`.
    pub fn new(
        state: Arc<StateMemory>,
        alloc: StateAllocator,
        options: LoadOptions,
        controller: Controller,
    ) -> Self {
        let mut loader = Loader::new(state, alloc, options);
        loader.set_clock(controller.clock().clone());
        Self {
            pending_faults: Vec::new(),
            loader,
            controller,
            current: Vec::new(),
            previous: Vec::new(),
            reloads: 0,
            reload_errors: 0,
            reload_ms: Vec::new(),
            loads: 0,
            gains: HashMap::new(),
            soloed_out: HashMap::new(),
            value: None,
            fade: 0,
            sent: None,
            audible_ms: Vec::new(),
            notes: Vec::new(),
            imports: Vec::new(),
            notices: Vec::new(),
            tempo_asked: None,
        }
    }

    /// Sets the default crossfade of reloads and sent code, in frames.
    pub fn set_fade(&mut self, frames: u32) {
        self.fade = frames;
        self.controller.set_fade(frames);
    }

    fn frames(&self, seconds: Option<f64>) -> u32 {
        match seconds {
            Some(s) => (s.clamp(0.0, 600.0) * f64::from(self.loader.options().sample_rate)) as u32,
            None => self.fade,
        }
    }

    /// Loads `source` (the text of `path`) and, when it loads, swaps it in.
    pub fn load(&mut self, path: &Path, source: &str) -> Reload {
        let name = path.to_string_lossy();
        let started = Instant::now();
        self.reclaim();
        let loader = &mut self.loader;
        let result = guarded_load(&name, || loader.load_source(&name, source));
        let took = started.elapsed();
        // Loaded or not: a fix to a broken module must reload too.
        self.imports = self.loader.last_imports();
        let first = self.loads == 0;
        self.loads += 1;
        let reload = match result {
            Ok(loaded) => {
                let elapsed = took;
                let signals = loaded.signals.len();
                let units = loaded.units.summary();
                let actions = loaded.actions;
                self.previous = std::mem::replace(&mut self.current, loaded.signals);
                self.notify_gone();
                let generation = self.controller.swap(loaded.patch);
                self.sent = Some((generation, Instant::now()));
                self.apply_gains(&actions);
                Reload::Ok {
                    signals,
                    elapsed,
                    units,
                }
            }
            Err(diagnostic) => Reload::Failed {
                diagnostic,
                playing: self.current.len(),
                elapsed: took,
            },
        };
        self.notify_load(&name, &reload);
        if !first {
            self.reloads += 1;
            if matches!(reload, Reload::Failed { .. }) {
                self.reload_errors += 1;
            }
            self.reload_ms.push(ms(took));
        }
        reload
    }

    /// Like [`eval_at`](Self::eval_at), swapped in at the next boundary of `quantize` (the
    /// session's own quantization when `None`).
    pub fn eval_quantized(
        &mut self,
        name: &str,
        source: &str,
        quantize: Option<Quantize>,
        at: (u32, u32),
    ) -> Reload {
        let default = self.controller.quantize();
        self.controller.set_quantize(quantize.unwrap_or(default));
        let reload = self.eval_at(name, source, at);
        self.controller.set_quantize(default);
        reload
    }

    /// The transport as of the last block rendered.
    pub fn clock(&self) -> ClockReading {
        self.controller.clock().read()
    }

    /// The engine's controller (MIDI clock in sets the transport through it).
    pub fn controller_mut(&mut self) -> &mut Controller {
        &mut self.controller
    }

    /// A reader of the transport, for other threads (the scope).
    pub fn clock_reader(&self) -> flux_engine::ClockReader {
        self.controller.clock().clone()
    }

    /// Sets up the master stage from the next block on (the `master` request).
    ///
    /// # Errors
    ///
    /// A ceiling out of range, naming it.
    pub fn set_master_stage(&mut self, config: flux_engine::MasterConfig) -> Result<(), String> {
        self.controller.set_master_stage(config)
    }

    /// Evaluates code sent to the running patch: its signals are added or replace the
    /// running ones of the same id (crossfading), the rest play on; its `stop`, `mute`,
    /// `solo`, `gain`... calls act on the running patch.
    ///
    /// The code starts at `at` (line, column, from 1) of the file `name`: the places it
    /// reports, now and while it plays, are the file's.
    pub fn eval_at(&mut self, name: &str, source: &str, (line, col): (u32, u32)) -> Reload {
        let started = Instant::now();
        self.reclaim();
        let running: Vec<String> = self.current.iter().map(|s| s.id.clone()).collect();
        let loader = &mut self.loader;
        self.value = None;
        let load = || loader.load_snippet_at(name, source, &running, line, col);
        let mut loaded = match guarded_load(name, load) {
            Ok(loaded) => loaded,
            Err(diagnostic) => {
                let reload = Reload::Failed {
                    diagnostic,
                    playing: self.current.len(),
                    elapsed: started.elapsed(),
                };
                self.notify_load(name, &reload);
                return reload;
            }
        };
        let signals = loaded.signals.len();
        let units = loaded.units.summary();
        let ids: Vec<String> = loaded.signals.iter().map(|s| s.id.clone()).collect();
        self.value = loaded.value.take();
        self.merge(loaded);
        for id in ids {
            self.notice(Notice::Cleared {
                id,
                file: Some(name.to_owned()),
            });
        }
        Reload::Ok {
            signals,
            elapsed: started.elapsed(),
            units,
        }
    }

    /// Keeps `notice` for editors, unless [`NOTICES`] wait already.
    fn notice(&mut self, notice: Notice) {
        if self.notices.len() < NOTICES {
            self.notices.push(notice);
        }
    }

    /// The notices of a file load: its error, or every signal of the file cleared.
    fn notify_load(&mut self, file: &str, reload: &Reload) {
        match reload {
            Reload::Failed { diagnostic, .. } => self.notice(Notice::Error(diagnostic.clone())),
            Reload::Ok { .. } => {
                let ids: Vec<String> = self.current.iter().map(|s| s.id.clone()).collect();
                for id in ids {
                    self.notice(Notice::Cleared {
                        id,
                        file: Some(file.to_owned()),
                    });
                }
            }
        }
    }

    /// What editors have not been told yet (faults, failed loads, signals loaded again),
    /// oldest first; at most 256 are kept between calls.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Merges loaded code into the running patch (see [`eval_at`](Self::eval_at)).
    fn merge(&mut self, loaded: Loaded) {
        let Loaded {
            patch,
            actions,
            signals,
            ..
        } = loaded;
        let mut fade = None;
        let mut gone: Vec<&str> = Vec::new();
        let mut clear = false;
        for a in &actions {
            match a {
                Action::Stop(id, f) => {
                    gone.push(id);
                    fade = fade.or(*f);
                }
                Action::Clear(f) => {
                    clear = true;
                    fade = fade.or(*f);
                }
                Action::Fade(_, f) => fade = fade.or(Some(*f)),
                _ => {}
            }
        }
        let kept: Vec<SignalInfo> = self
            .current
            .iter()
            .filter(|s| !clear && !gone.contains(&s.id.as_str()))
            .filter(|s| !signals.iter().any(|n| n.id == s.id))
            .cloned()
            .collect();
        let keep = kept.iter().map(|s| s.block).collect();
        let frames = self.frames(fade);
        self.controller.set_fade(frames);
        let generation = self.controller.merge(patch, keep);
        self.sent = Some((generation, Instant::now()));
        self.controller.set_fade(self.fade);
        self.previous = std::mem::take(&mut self.current);
        self.current = kept.into_iter().chain(signals).collect();
        self.notify_gone();
        self.apply_gains(&actions);
    }

    /// Clears the faults of the signals the last swap or merge left out.
    fn notify_gone(&mut self) {
        let gone: Vec<String> = (self.previous.iter())
            .filter(|p| !self.current.iter().any(|s| s.id == p.id))
            .map(|p| p.id.clone())
            .collect();
        for id in gone {
            self.notice(Notice::Cleared { id, file: None });
        }
    }

    /// The value the code last given to [`eval_at`](Self::eval_at) ended with (`2` for `1 + 1`),
    /// once; `None` when it failed or ended with `undefined` or a signal.
    pub fn take_value(&mut self) -> Option<String> {
        self.value.take()
    }

    /// Carries out one live-control call on the running patch.
    ///
    /// # Errors
    ///
    /// When the call names a signal that is not playing; the message lists those that are.
    pub fn act(&mut self, action: Action) -> Result<(), String> {
        let id = match &action {
            Action::Stop(id, _)
            | Action::Mute(id, _)
            | Action::Unmute(id, _)
            | Action::Solo(id, _) => Some(id.clone()),
            _ => None,
        };
        if let Some(id) = id {
            if !self.current.iter().any(|s| s.id == id) {
                let playing: Vec<&str> = self.current.iter().map(|s| s.id.as_str()).collect();
                return Err(format!(
                    "no signal '{id}' is playing; playing: {}",
                    if playing.is_empty() {
                        "none".to_owned()
                    } else {
                        playing.join(", ")
                    }
                ));
            }
        }
        if let Action::Gain(x) = action {
            gain_value(x)?;
        }
        if let Action::Tempo(bpm, glide) = action {
            tempo_value(bpm, glide)?;
        }
        match action {
            Action::Stop(..) | Action::Clear(_) => {
                let mut empty = Loaded::empty();
                empty.actions.push(action);
                self.merge(empty);
            }
            other => self.apply_gains(&[other]),
        }
        Ok(())
    }

    /// Sends the gain changes among `actions` to the engine.
    fn apply_gains(&mut self, actions: &[Action]) {
        for a in actions {
            let (targets, fade): (Vec<(String, f64)>, Option<f64>) = match a {
                // Muted or unmuted by hand: a later unsolo leaves the signal be.
                Action::Mute(id, f) => {
                    self.soloed_out.remove(id);
                    (vec![(id.clone(), 0.0)], *f)
                }
                Action::Unmute(id, f) => {
                    self.soloed_out.remove(id);
                    (vec![(id.clone(), 1.0)], *f)
                }
                Action::Solo(id, f) => {
                    for s in self.current.iter().filter(|s| &s.id != id) {
                        let before = self.gains.get(&s.id).copied().unwrap_or(1.0);
                        self.soloed_out.entry(s.id.clone()).or_insert(before);
                    }
                    self.soloed_out.remove(id);
                    (
                        self.current
                            .iter()
                            .map(|s| (s.id.clone(), if &s.id == id { 1.0 } else { 0.0 }))
                            .collect(),
                        *f,
                    )
                }
                Action::Unsolo(f) => (self.soloed_out.drain().collect(), *f),
                Action::Tempo(bpm, glide) => {
                    match tempo_value(*bpm, *glide) {
                        Ok(bpm) => {
                            let frames = self.frames(Some(glide.unwrap_or(0.0)));
                            self.controller.set_tempo(bpm, frames);
                            self.tempo_asked = Some((bpm, frames));
                        }
                        Err(e) => self.notes.push(format!("tempo({bpm}) refused: {e}")),
                    }
                    continue;
                }
                Action::Gain(x) => {
                    match gain_value(*x) {
                        Ok(x) => {
                            let frames = self.frames(None);
                            self.controller.set_master(x, frames);
                        }
                        Err(e) => self.notes.push(format!("gain({x}) refused: {e}")),
                    }
                    continue;
                }
                _ => continue,
            };
            let frames = self.frames(fade);
            for (id, gain) in targets {
                if let Some(s) = self.current.iter().find(|s| s.id == id) {
                    self.controller.set_gain(s.block, gain, frames);
                    self.gains.insert(id, gain);
                }
            }
        }
    }

    /// Fades everything out within 10 ms and stops, until [`start`](Self::start).
    pub fn panic(&mut self) {
        self.controller.panic();
    }

    /// Plays again after [`panic`](Self::panic) or a stop, fading in.
    pub fn start(&mut self) {
        self.controller.start();
    }

    /// The tempo the user asked for since the last call (file, send, REPL, OSC): bpm and
    /// glide in frames. Link commits it to the session.
    #[cfg(feature = "link")]
    pub fn take_tempo_request(&mut self) -> Option<(f64, u32)> {
        self.tempo_asked.take()
    }

    /// Sets the tempo, gliding over `glide` frames, without counting it as the user's (Link
    /// following its session).
    #[cfg(feature = "link")]
    pub fn follow_tempo(&mut self, bpm: f64, glide: u32) {
        self.controller.set_tempo(bpm, glide);
    }

    /// Moves the transport to `beat` (Link aligning the beat phase).
    #[cfg(feature = "link")]
    pub fn locate(&mut self, beat: f64) {
        self.controller.locate(beat);
    }

    /// The files the last load of a file read or looked for through imports, whether it
    /// loaded or not.
    pub fn imports(&self) -> &[PathBuf] {
        &self.imports
    }

    /// The gain a signal was last set to.
    pub fn gain_of(&self, id: &str) -> f64 {
        self.gains.get(id).copied().unwrap_or(1.0)
    }

    /// The loader: state blocks by id ([`Loader::block_of`]) and the state memory.
    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// Signals of the patch last sent.
    pub fn signals(&self) -> &[SignalInfo] {
        &self.current
    }

    /// Generation of the patch last sent, until [`poll`](Self::poll) sees its first frame
    /// heard.
    pub fn unheard(&self) -> Option<u64> {
        self.sent.map(|(generation, _)| generation)
    }

    /// Drops retired patches; returns the lines to print for faults and `console.log`.
    pub fn poll(&mut self) -> Vec<String> {
        if let Some((generation, ready)) = self.sent {
            let (heard, at) = self.controller.counters().audible();
            if heard >= generation {
                self.audible_ms
                    .push(ms(at.saturating_duration_since(ready)));
                self.sent = None;
            }
        }
        let mut lines = Vec::new();
        let mut faults = std::mem::take(&mut self.pending_faults);
        faults.extend(self.controller.collect());
        for f in faults {
            let (location, message) = self.fault_place(&f);
            let silenced = format!("(signal '{}' silenced)", f.id);
            lines.push(match &location {
                Some(l) => format!("{l}: {message} {silenced}"),
                None => format!("{message} {silenced}"),
            });
            self.notice(Notice::Fault {
                id: f.id,
                location,
                message,
            });
        }
        lines.append(&mut self.notes);
        let (logs, dropped) = self.loader.drain_logs();
        lines.extend(logs);
        if dropped > 0 {
            lines.push(format!(
                "({dropped} console.log line{} dropped)",
                plural(dropped as usize)
            ));
        }
        lines
    }

    /// Gives back the state of ids gone for a while, and frees what no live patch plays
    /// (see [`Loader::reclaim`](flux_js::Loader::reclaim)); before each load.
    fn reclaim(&mut self) {
        // Patches the engine handed back, first: what only they played is free.
        let faults = self.controller.collect();
        self.pending_faults.extend(faults);
        let playing: Vec<String> = self.current.iter().map(|s| s.id.clone()).collect();
        let (epoch, alive) = (self.controller.generation(), self.controller.oldest_live());
        self.loader.reclaim(&playing, epoch, alive, Instant::now());
    }

    /// A fault's place and message: errors from the code carry their own place
    /// (`FILE:LINE:COL: message`); the others (NaN, too loud, overrun, time limit, a bad
    /// value returned) are put at the signal's `update`, or else at its `flux()` call.
    fn fault_place(&self, f: &SignalFault) -> (Option<Location>, String) {
        let (place, message) = match &f.fault {
            Fault::Error(message) => split_place(message),
            other => (None, other.to_string()),
        };
        let place = place
            .or_else(|| f.location.as_deref().and_then(Location::parse))
            .or_else(|| {
                self.current
                    .iter()
                    .chain(&self.previous)
                    .find(|s| s.id == f.id)
                    .and_then(|s| s.location.clone())
            });
        (place, message)
    }
}

/// `FILE:LINE:COL: message` split into its place and message; a message without a place
/// is given whole.
fn split_place(text: &str) -> (Option<Location>, String) {
    for (i, _) in text.match_indices(": ") {
        if let Some(l) = Location::parse(&text[..i]) {
            return (Some(l), text[i + 2..].to_owned());
        }
    }
    (None, text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_split_from_their_place() {
        let (l, m) = split_place("dir/a b.js:22:26: ReferenceError: frq is not defined");
        assert_eq!(l.unwrap().to_string(), "dir/a b.js:22:26");
        assert_eq!(m, "ReferenceError: frq is not defined");
        assert_eq!(split_place("TypeError: x").0, None);
        assert_eq!(split_place("TypeError: x").1, "TypeError: x");
    }

    #[test]
    fn a_panic_while_loading_becomes_a_diagnostic() {
        let result = guarded_load("song.js", || panic!("compiler bug"));
        let d = result.unwrap_err();
        assert_eq!(
            d.to_string(),
            "song.js:1:1: internal error while loading (the sound plays on): compiler bug"
        );
    }

    #[test]
    fn gains_are_clamped_and_non_finite_ones_refused() {
        assert_eq!(gain_value(9.0), Ok(4.0));
        assert_eq!(gain_value(0.5), Ok(0.5));
        assert!(gain_value(f64::NAN).is_err());
        assert!(gain_value(-0.1).is_err());
        assert_eq!(
            gain_value(f64::INFINITY).unwrap_err(),
            "the gain must be a number from 0 to 4, not inf"
        );
    }
}
