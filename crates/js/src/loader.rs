//! Loading a signals file into a patch: one QuickJS runtime (a "cartridge") per load.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flux_engine::{Block, Fault, Patch, StateAllocator, StateBlock, StateMemory, Tier};
use flux_jit::analyze::too_deep;

use crate::cartridge::Cartridge;
use crate::diag::{Diagnostic, Location};
use crate::modules::{read_source, Imports};

mod preflight;
mod run;

const LOG_CAPACITY: usize = 1024;
/// The largest first line [`Loader::load_snippet_at`] places code at.
pub const MAX_FIRST_LINE: u32 = 1_000_000;
/// The largest first column [`Loader::load_snippet_at`] places code at.
pub const MAX_FIRST_COL: u32 = 10_000;
/// Stack of the thread a load runs on (address space; pages are used as touched).
const LOAD_STACK: usize = 512 << 20;

/// How loads are done.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Sample rate the signals will render at.
    pub sample_rate: u32,
    /// Output channels the signals are mapped onto.
    pub channels: usize,
    /// Longest a file (top level and factories) may run while it loads.
    pub load_time_limit: Duration,
    /// Longest a signal's `update` may take for one block before it is disabled.
    pub update_time_limit: Duration,
    /// Largest heap of one runtime, in bytes.
    pub memory_limit: usize,
    /// Which tier runs the signals.
    pub tier: TierChoice,
    /// Seed of `Math.random` in native signals.
    pub seed: u64,
    /// Whether imports may reach files outside the folder of the loaded file (and below).
    pub imports_anywhere: bool,
    /// Audio each signal of a load renders as a trial, on a copy of the state, before the
    /// load is given back (0, the default: no trial). A fault there fails the load.
    pub preflight: Duration,
}

/// Which tier runs a load's signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierChoice {
    /// Native where the compiler handles the code, JavaScript otherwise.
    #[default]
    Auto,
    /// Native for every signal; a signal that cannot be compiled fails the load.
    Native,
    /// JavaScript only.
    Js,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            sample_rate: 48_000,
            channels: 1,
            load_time_limit: Duration::from_secs(5),
            update_time_limit: Duration::from_millis(250),
            memory_limit: 256 << 20,
            tier: TierChoice::Auto,
            seed: 0x5EED,
            imports_anywhere: false,
            preflight: Duration::ZERO,
        }
    }
}

/// What a successful load gives.
pub struct Loaded {
    /// The patch, ready to swap in.
    pub patch: Patch,
    /// Live-control calls the code made (`mute`, `solo`, `stop`, `gain`, ...), in order.
    pub actions: Vec<Action>,
    /// Its signals, in patch order.
    pub signals: Vec<SignalInfo>,
    /// Time from reading the file to a finished patch.
    pub elapsed: Duration,
    /// What the load did with the state of the library's units.
    pub units: UnitReport,
    /// The files it imported (canonical paths, in load order): a watcher reloads on their
    /// change too.
    pub imports: Vec<PathBuf>,
    /// The value the code ends with, as the REPL shows it (`2` for `1 + 1`): `None` for
    /// `undefined` (and a module) or the signal `flux()` returns.
    pub value: Option<String>,
    pub(crate) cartridge: Option<Arc<Cartridge>>,
}

/// What a load did with the state of the units its code made, unit by unit
/// (`signal:name`, e.g. `drums:kick.env`; a unit with no name is called by its kind).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitReport {
    /// Units that found their state from before: the same name, kind and size.
    pub kept: Vec<String>,
    /// Units that start from zero.
    pub made: Vec<String>,
    /// Units the last load of the same file made and this one does not: their state is
    /// no longer used.
    pub dropped: Vec<String>,
}

impl UnitReport {
    /// One line for a reload: `units: 3 kept, 1 new (a:lfo), 1 dropped (a:sub)`, or `None`
    /// when the code makes no units.
    pub fn summary(&self) -> Option<String> {
        if self.kept.is_empty() && self.made.is_empty() && self.dropped.is_empty() {
            return None;
        }
        let list = |v: &[String]| {
            let shown: Vec<&str> = v.iter().take(4).map(String::as_str).collect();
            let more = if v.len() > 4 { ", ..." } else { "" };
            format!(" ({}{more})", shown.join(", "))
        };
        let mut line = format!("units: {} kept", self.kept.len());
        if !self.made.is_empty() {
            line += &format!(", {} new{}", self.made.len(), list(&self.made));
        }
        if !self.dropped.is_empty() {
            line += &format!(", {} dropped{}", self.dropped.len(), list(&self.dropped));
        }
        Some(line)
    }
}

/// The name a unit's key (`signal \u{1} names \u{1} kind[#n] \u{1} part`) is shown by.
fn unit_name(key: &str) -> String {
    let mut parts = key.split('\u{1}');
    let signal = parts.next().unwrap_or_default();
    let names = parts.next().unwrap_or_default();
    let kind = parts.next().unwrap_or_default();
    let name = if names.is_empty() { kind } else { names };
    let repeat = kind
        .split_once('#')
        .map_or(String::new(), |(_, n)| format!("#{n}"));
    let name = if names.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{repeat}")
    };
    if signal.is_empty() {
        name
    } else {
        format!("{signal}:{name}")
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("signals", &self.signals)
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

impl Loaded {
    /// A load with nothing in it: no signals, no calls.
    pub fn empty() -> Self {
        Self {
            patch: Patch::new(Vec::new()),
            actions: Vec::new(),
            signals: Vec::new(),
            elapsed: Duration::ZERO,
            units: UnitReport::default(),
            imports: Vec::new(),
            value: None,
            cartridge: None,
        }
    }

    /// Calls every signal's `update` once and returns the channels it gave, or its fault.
    ///
    /// This advances the signals' state by one frame: use it only on a loader whose state
    /// memory plays nothing (as `flux check` does).
    pub fn probe_channels(&self) -> Vec<Result<usize, Fault>> {
        let Some(cartridge) = &self.cartridge else {
            return Vec::new();
        };
        let channels = cartridge.channels;
        let mut out = vec![0.0; channels];
        (0..self.signals.len())
            .map(|index| {
                let mut block = Block {
                    frames: 1,
                    channels,
                    sample_rate: f64::from(cartridge.sample_rate),
                    clock: &flux_engine::STILL,
                    out: &mut out,
                };
                cartridge.render(index, &mut block)
            })
            .collect()
    }
}

/// A live-control call made by loaded code, to be carried out on the running patch.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `stop(id, fade?)`: fade the signal out and remove it.
    Stop(String, Option<f64>),
    /// `mute(id, fade?)`.
    Mute(String, Option<f64>),
    /// `unmute(id, fade?)`.
    Unmute(String, Option<f64>),
    /// `solo(id, fade?)`: mute every other signal.
    Solo(String, Option<f64>),
    /// `unsolo(fade?)`: bring back every signal a solo muted.
    Unsolo(Option<f64>),
    /// `clear(fade?)`: remove every signal defined before.
    Clear(Option<f64>),
    /// `gain(x)`: the master gain.
    Gain(f64),
    /// `play(id, fn, fade)`: the fade the new signal comes in with.
    Fade(String, f64),
    /// `tempo(bpm, glide?)`: the transport's tempo, reached over `glide` seconds.
    Tempo(f64, Option<f64>),
}

/// A signal of a loaded file.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalInfo {
    /// Its id.
    pub id: String,
    /// Where `flux()` was called for it.
    pub location: Option<Location>,
    /// Its state block.
    pub block: StateBlock,
    /// Which tier runs it.
    pub tier: Tier,
    /// Why it is not native (`line:col: construct`), when it is not.
    pub reason: Option<String>,
}

/// Loads signals files into patches. Lives on the main thread.
///
/// Each load runs in a new QuickJS runtime; the patch it makes keeps that runtime alive, and
/// the runtime is dropped with the patch, on the main thread. The state memory and the
/// allocation of its blocks are shared by every load, so an id keeps its state across loads.
pub struct Loader {
    state: Arc<StateMemory>,
    alloc: Arc<Mutex<StateAllocator>>,
    options: LoadOptions,
    /// The units each file's last load made, by file name, for what a reload drops.
    units: HashMap<String, BTreeSet<String>>,
    /// Sound files decoded by earlier loads (`sampler`).
    samples: crate::samples::SampleCache,
    /// The sounds each signal's last load placed, by id (a file's top level by
    /// [`top_level`]): a sound nobody holds is given back at a reclaim.
    sample_users: HashMap<String, BTreeSet<String>>,
    log_tx: SyncSender<String>,
    log_rx: Receiver<String>,
    logs_dropped: Arc<AtomicU64>,
    /// The imports of the last load, failed or not.
    last_imports: Option<Imports>,
    /// A loader that runs trial loads for another: it runs no trial load of its own.
    twin: bool,
    /// Ids with state that were not playing at a reclaim, and since when.
    gone: HashMap<String, Instant>,
    /// The transport, for the tempo and beat a trial starts at.
    clock: Option<flux_engine::ClockReader>,
}

/// What the sounds a file's top level placed are held by in `sample_users`: this, then
/// the file's name.
const TOP_LEVEL: &str = "\u{2}top\u{1}";

/// The holder of the sounds the top level of the file `name` placed.
fn top_level(name: &str) -> String {
    format!("{TOP_LEVEL}{name}")
}

/// How long an id must have been gone (not playing) before [`Loader::reclaim`] gives its
/// state back.
pub const RECLAIM_AFTER: Duration = Duration::from_secs(60);

impl Loader {
    /// A loader over `state`, handing out blocks with `alloc`.
    pub fn new(state: Arc<StateMemory>, alloc: StateAllocator, options: LoadOptions) -> Self {
        let (log_tx, log_rx) = sync_channel(LOG_CAPACITY);
        Self {
            state,
            alloc: Arc::new(Mutex::new(alloc)),
            options,
            units: HashMap::new(),
            samples: Default::default(),
            sample_users: HashMap::new(),
            log_tx,
            log_rx,
            logs_dropped: Arc::new(AtomicU64::new(0)),
            last_imports: None,
            twin: false,
            gone: HashMap::new(),
            clock: None,
        }
    }

    /// Lets pre-flight trials start at the transport's tempo and beat.
    pub fn set_clock(&mut self, clock: flux_engine::ClockReader) {
        self.clock = Some(clock);
    }

    /// The options loads use.
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// The state memory signals use.
    pub fn state(&self) -> &Arc<StateMemory> {
        &self.state
    }

    /// Gives back the state of ids that have not been `playing` at any reclaim for
    /// [`RECLAIM_AFTER`], so a long set never runs out of state memory (such an id that
    /// comes back starts from zero), and frees what no live patch may play any more.
    /// `epoch` is the last patch generation sent, `alive` the oldest one the engine may
    /// still play ([`flux_engine::Controller::oldest_live`]): state given back now is
    /// handed out again only once every patch up to `epoch` has ended.
    pub fn reclaim(&mut self, playing: &[String], epoch: u64, alive: u64, now: Instant) {
        let Ok(mut alloc) = self.alloc.lock() else {
            return;
        };
        alloc.set_epoch(epoch);
        let ids: Vec<String> = alloc.ids().map(str::to_owned).collect();
        for id in ids {
            if playing.contains(&id) {
                self.gone.remove(&id);
                continue;
            }
            let since = *self.gone.entry(id.clone()).or_insert(now);
            if now.saturating_duration_since(since) >= RECLAIM_AFTER {
                alloc.release(&id);
                self.gone.remove(&id);
            }
        }
        // Sounds no signal with state holds any more (an older version of a file that
        // changed, a sampler taken out of the code) are given back too.
        self.sample_users
            .retain(|user, _| user.starts_with(TOP_LEVEL) || alloc.get(user).is_some());
        let held: BTreeSet<&String> = self.sample_users.values().flatten().collect();
        let unheld: Vec<String> = alloc
            .unit_keys_of(crate::samples::SAMPLE_OWNER)
            .into_iter()
            .filter(|key| !held.contains(key))
            .collect();
        for key in unheld {
            alloc.release_unit(&key);
            if let Ok(mut cache) = self.samples.lock() {
                cache.remove(&key);
            }
        }
        alloc.recycle(alive, &self.state);
    }

    /// Slots of the state memory handed out so far (blocks, units, guards).
    pub fn allocator_used(&self) -> usize {
        self.alloc.lock().map_or(0, |a| a.used())
    }

    /// The block of `id`, if it has one.
    pub fn block_of(&self, id: &str) -> Option<StateBlock> {
        self.alloc.lock().ok()?.get(id)
    }

    /// The files the last load read or looked for through imports, whether it loaded or
    /// not (a module with a syntax error, a missing one): a watcher reloads when one of
    /// them changes or appears.
    pub fn last_imports(&self) -> Vec<PathBuf> {
        self.last_imports
            .as_ref()
            .map_or_else(Vec::new, Imports::watch_list)
    }

    /// Lines signals printed with `console.log` since the last call, oldest first, and how
    /// many were dropped because nobody read them in time.
    pub fn drain_logs(&self) -> (Vec<String>, u64) {
        let lines = self.log_rx.try_iter().collect();
        (lines, self.logs_dropped.swap(0, Ordering::Relaxed))
    }

    /// Loads the file at `path`.
    ///
    /// # Errors
    ///
    /// A [`Diagnostic`] when the file cannot be read, does not parse, throws while it runs,
    /// runs too long, or defines a signal badly. Nothing is changed then: loading is
    /// all-or-nothing.
    pub fn load_file(&mut self, path: &Path) -> Result<Loaded, Diagnostic> {
        let started = Instant::now();
        let name = path.to_string_lossy().into_owned();
        let source = read_source(path).map_err(|e| {
            let (line, col) = e.place.unwrap_or((1, 1));
            Diagnostic {
                location: Location {
                    file: name.clone(),
                    line,
                    col,
                },
                message: format!("cannot load the file: {e}"),
            }
        })?;
        self.load_inner(&name, &source, started, &[])
    }

    /// Loads `source` as if it were the file `name` (imports resolve next to `name`).
    ///
    /// # Errors
    ///
    /// As [`load_file`](Self::load_file).
    pub fn load_source(&mut self, name: &str, source: &str) -> Result<Loaded, Diagnostic> {
        self.load_inner(name, source, Instant::now(), &[])
    }

    /// Loads code sent to a running patch whose signals are `running` (what `list()` shows).
    ///
    /// # Errors
    ///
    /// As [`load_file`](Self::load_file).
    pub fn load_snippet(
        &mut self,
        name: &str,
        source: &str,
        running: &[String],
    ) -> Result<Loaded, Diagnostic> {
        self.load_snippet_at(name, source, running, 1, 1)
    }

    /// Like [`load_snippet`](Self::load_snippet), for code that starts at `line` and `col`
    /// (from 1) of the file `name` (an editor's paragraph): every place the load and its
    /// signals report (syntax errors, throws while playing, `flux()` calls, `update`s) is
    /// in the file's lines and columns. The code is run behind `line - 1` empty lines and
    /// `col - 1` spaces, so QuickJS and the compiler count as the file does; `line` is
    /// taken as at most [`MAX_FIRST_LINE`] and `col` as at most [`MAX_FIRST_COL`].
    ///
    /// # Errors
    ///
    /// As [`load_file`](Self::load_file).
    pub fn load_snippet_at(
        &mut self,
        name: &str,
        source: &str,
        running: &[String],
        line: u32,
        col: u32,
    ) -> Result<Loaded, Diagnostic> {
        let (line, col) = (line.clamp(1, MAX_FIRST_LINE), col.clamp(1, MAX_FIRST_COL));
        if (line, col) == (1, 1) {
            return self.load_inner(name, source, Instant::now(), running);
        }
        let mut placed = String::with_capacity(source.len() + (line + col) as usize);
        placed.extend(std::iter::repeat_n('\n', line as usize - 1));
        placed.extend(std::iter::repeat_n(' ', col as usize - 1));
        placed.push_str(source);
        self.load_inner(name, &placed, Instant::now(), running)
    }

    /// Loads on a thread of its own with a large stack: parsing, instrumenting and compiling
    /// recurse along the shape of the code, and a file at the limits [`too_deep`] allows
    /// would overflow the main thread's stack.
    fn load_inner(
        &mut self,
        name: &str,
        source: &str,
        started: Instant,
        running: &[String],
    ) -> Result<Loaded, Diagnostic> {
        if let Some((line, col, message)) = too_deep(source) {
            return Err(Diagnostic {
                location: Location {
                    file: name.to_owned(),
                    line,
                    col,
                },
                message: format!("{message}: Flux does not load shapes this deep"),
            });
        }
        // First a trial load on a copy of the state and of the allocator: what the file's
        // top level and factories write reaches nothing that plays, and a load that fails
        // there fails before touching the real state or handing out a block.
        let trial = if self.twin {
            None
        } else {
            Some(self.trial_load(name, source, running)?)
        };
        // Every signal native: the trial load is the load, its code moves onto the real
        // memory. Otherwise the interpreted signals need a runtime over the real memory:
        // the file loads again, there.
        let trial = match trial {
            Some(trial) if trial.all_native() => {
                return self.adopt(name, trial).map(|mut loaded| {
                    loaded.elapsed = started.elapsed();
                    loaded
                });
            }
            other => other,
        };
        let checkpoint = self.alloc.lock().ok().map(|mut a| a.checkpoint());
        let sample_users = self.sample_users.clone();
        let result = std::thread::scope(|scope| {
            let load = std::thread::Builder::new()
                .name("flux-load".into())
                .stack_size(LOAD_STACK)
                // The second pass gets a time budget of its own.
                .spawn_scoped(scope, || {
                    self.load_here(name, source, Instant::now(), running)
                });
            match load.map(|thread| thread.join()) {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                Err(e) => Err(Diagnostic {
                    location: Location {
                        file: name.to_owned(),
                        line: 1,
                        col: 1,
                    },
                    message: format!("cannot start a thread to load the file: {e}"),
                }),
            }
        });
        let result = match (result, trial) {
            (Ok(loaded), Some(trial)) if !self.options.preflight.is_zero() => {
                let (scratch, signals) = trial.into_parts();
                self.preflight(name, loaded, &scratch, signals)
            }
            (result, _) => result,
        };
        let result = result.map(|mut loaded| {
            loaded.elapsed = started.elapsed();
            loaded
        });
        // A load that fails keeps none of the state it was given.
        if let (Err(_), Some(checkpoint)) = (&result, checkpoint) {
            if let Ok(mut alloc) = self.alloc.lock() {
                alloc.rollback(checkpoint, &self.state);
            }
            self.sample_users = sample_users;
        }
        result
    }
}
