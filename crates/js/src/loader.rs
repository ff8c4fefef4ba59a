//! Loading a signals file into a patch: one QuickJS runtime (a "cartridge") per load.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flux_engine::{
    Block, Fault, Footprint, Patch, PatchSignal, Signal, StateAllocator, StateBlock, StateMemory,
    Tier, MAX_BLOCK,
};
use flux_jit::analyze::{instrument_with, too_deep, Options};
use flux_jit::{compile, NativeSignal, Source, Target};
use rquickjs::{Context, Function, Object, Runtime, Value};

use crate::capture::native_requests;
use crate::cartridge::{caught_to_message, Cartridge, JsSignal, Locator, Watchdog};
use crate::diag::{Diagnostic, Location};
use crate::hooks::Hooks;
use crate::library::{library, LIBRARY_NAME};
use crate::modules::{
    evaluate, is_module, read_source, FileLoader, FileResolver, Imports, Tagging,
};

mod preflight;

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
    log_tx: SyncSender<String>,
    log_rx: Receiver<String>,
    logs_dropped: Arc<AtomicU64>,
    /// The imports of the last load, failed or not.
    last_imports: Option<Imports>,
    /// The copy of the state that trial loads and pre-flight trials run on, made at the
    /// first load.
    scratch: Option<Arc<StateMemory>>,
    /// A loader that runs trial loads for another: it runs no trial load of its own.
    twin: bool,
    /// Ids with state that were not playing at a reclaim, and since when.
    gone: HashMap<String, Instant>,
    /// The transport, for the tempo and beat a trial starts at.
    clock: Option<flux_engine::ClockReader>,
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
            log_tx,
            log_rx,
            logs_dropped: Arc::new(AtomicU64::new(0)),
            last_imports: None,
            scratch: None,
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
        let checkpoint = self.alloc.lock().ok().map(|mut a| a.checkpoint());
        let result = std::thread::scope(|scope| {
            let load = std::thread::Builder::new()
                .name("flux-load".into())
                .stack_size(LOAD_STACK)
                .spawn_scoped(scope, || self.load_here(name, source, started, running));
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
                self.preflight(name, loaded, trial)
            }
            (result, _) => result,
        };
        // A load that fails keeps none of the state it was given.
        if let (Err(_), Some(checkpoint)) = (&result, checkpoint) {
            if let Ok(mut alloc) = self.alloc.lock() {
                alloc.rollback(checkpoint, &self.state);
            }
        }
        result
    }

    fn load_here(
        &mut self,
        name: &str,
        source: &str,
        started: Instant,
        running: &[String],
    ) -> Result<Loaded, Diagnostic> {
        let fail = |message: String| Diagnostic {
            location: Location {
                file: name.to_owned(),
                line: 1,
                col: 1,
            },
            message,
        };
        let runtime = Runtime::new().map_err(|e| fail(format!("cannot start QuickJS: {e}")))?;
        runtime.set_memory_limit(self.options.memory_limit);
        runtime.set_max_stack_size(1 << 20);
        let watchdog = Arc::new(Watchdog::default());
        let dog = watchdog.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || dog.expired())));
        let imports = Imports::new(name, source, self.options.imports_anywhere);
        self.last_imports = Some(imports.clone());
        runtime.set_loader(FileResolver(imports.clone()), FileLoader(imports.clone()));
        let context =
            Context::full(&runtime).map_err(|e| fail(format!("cannot start QuickJS: {e}")))?;

        let is_module = is_module(source);
        // Tag the functions for the native tier and name the calls that make units. The
        // library's functions have the first tag ids.
        let lib = library();
        let ctors: Vec<&str> = lib.ctors.iter().map(String::as_str).collect();
        let tagged = instrument_with(
            source,
            is_module,
            &Options {
                id_base: lib.sites.len(),
                source: 1,
                unit_ctors: &ctors,
            },
        );
        let module_positions = Arc::new(Mutex::new(HashMap::new()));
        // Modules are tagged on every tier, as the file is: their units are named too.
        if let Some(t) = &tagged {
            imports.tag_modules(Tagging {
                next_id: lib.sites.len() + t.functions.len(),
                ctors: lib.ctors.clone(),
                modules: Vec::new(),
                positions: module_positions.clone(),
            });
        }
        let locator = Arc::new(Locator {
            file: name.to_owned(),
            positions: tagged.as_ref().map(|t| t.positions.clone()),
            modules: module_positions,
        });
        let run_source = tagged.as_ref().map_or(source, |t| t.source.as_str());
        let mut sites = vec![String::new(); lib.sites.len()];
        if let Some(t) = &tagged {
            sites.extend(t.functions.iter().map(|f| {
                f.flux_call
                    .map_or_else(String::new, |(l, c)| format!("{name}:{l}:{c}"))
            }));
        }
        let units = Arc::new(Mutex::new(Vec::new()));
        let hooks = Hooks {
            state: self.state.clone(),
            alloc: self.alloc.clone(),
            log_tx: self.log_tx.clone(),
            logs_dropped: self.logs_dropped.clone(),
            out_len: MAX_BLOCK * self.options.channels,
            sites,
            running: running.to_vec(),
            units: units.clone(),
            sample_rate: self.options.sample_rate,
            seed: self.options.seed,
            library: crate::hooks::names_library(source),
            imports: imports.clone(),
            samples: self.samples.clone(),
        };
        let (entries, requests, actions, globals, updates, value) =
            context.with(|ctx| -> Result<_, Diagnostic> {
                hooks
                    .install(&ctx)
                    .map_err(|e| fail(format!("cannot set up the Flux API: {e}")))?;
                watchdog.arm(self.options.load_time_limit);
                let run = evaluate(&ctx, name, run_source, is_module);
                let fired = watchdog.disarm();
                let value = run.map_err(|caught| {
                    // A refused import names itself and its place.
                    if let Some(refused) = imports.take_error() {
                        return refused;
                    }
                    let (location, message) = caught_to_message(&ctx, caught, &locator, &watchdog);
                    // A thrown value with no place of its own: the flux() whose factory threw.
                    let location = location.or_else(|| {
                        let flux: Object = ctx.globals().get("__flux").ok()?;
                        let at: Function = flux.get("failedAt").ok()?;
                        Location::parse(&at.call::<_, String>(()).ok()?)
                    });
                    // QuickJS gives an invalid regular expression no place: find it.
                    let location = location.or_else(|| {
                        if !message.starts_with("SyntaxError") {
                            return None;
                        }
                        let (line, col, _) = flux_jit::analyze::bad_regex(source, is_module)?;
                        Some(Location {
                            file: name.to_owned(),
                            line,
                            col,
                        })
                    });
                    let message = if fired {
                        format!(
                            "the file ran longer than {} ms while loading (an endless loop?)",
                            self.options.load_time_limit.as_millis()
                        )
                    } else {
                        message
                    };
                    // QuickJS names no place for where it stopped: the file's only loop
                    // outside functions, when it has one, is the likely one.
                    let location = match (fired, location) {
                        (true, at) if at.as_ref().is_none_or(|l| (l.line, l.col) == (1, 1)) => {
                            flux_jit::analyze::only_top_level_loop(source, is_module)
                                .map(|(line, col)| Location {
                                    file: name.to_owned(),
                                    line,
                                    col,
                                })
                                .or(at)
                        }
                        (_, at) => at,
                    };
                    Diagnostic {
                        location: location.unwrap_or_else(|| Location {
                            file: name.to_owned(),
                            line: 1,
                            col: 1,
                        }),
                        message,
                    }
                })?;
                let api = || -> rquickjs::Result<(Object<'_>, Function<'_>)> {
                    let flux: Object = ctx.globals().get("__flux")?;
                    let finish: Function = flux.get("finish")?;
                    Ok((flux, finish))
                };
                let (flux, finish) =
                    api().map_err(|e| fail(format!("the Flux API is gone: {e}")))?;
                let value = crate::cartridge::shown(&ctx, &flux, value, &watchdog);
                let entries: Vec<Vec<String>> = finish
                    .call(())
                    .map_err(|e| fail(format!("cannot list the signals: {e}")))?;
                // [id, where flux() was called]
                let entries: Vec<(String, String)> = entries
                    .into_iter()
                    .map(|mut e| {
                        let place = e.pop().unwrap_or_default();
                        (e.pop().unwrap_or_default(), place)
                    })
                    .collect();
                let updates = (0..entries.len())
                    .map(|i| crate::diag::update_place(&flux, i))
                    .collect::<Vec<_>>();
                let actions = read_actions(&flux)
                    .map_err(|e| fail(format!("cannot read the control calls: {e}")))?;
                let (globals, requests) = match &tagged {
                    Some(_) if self.options.tier != TierChoice::Js => native_requests(
                        &flux,
                        entries.iter().map(|e| e.0.as_str()),
                        self.options.seed,
                        &watchdog,
                        self.options
                            .load_time_limit
                            .saturating_sub(started.elapsed()),
                        // Scripts reach the library's functions as globals: those they name.
                        &lib.exports
                            .iter()
                            .filter(|e| !is_module && source.contains(e.as_str()))
                            .cloned()
                            .collect::<Vec<_>>(),
                    ),
                    _ => (Vec::new(), Vec::new()),
                };
                Ok((entries, requests, actions, globals, updates, value))
            })?;

        // Compile what can be compiled; the rest stays on the JavaScript tier.
        let mut native: Vec<Option<Result<NativeSignal, String>>> =
            (0..entries.len()).map(|_| None).collect();
        if let (Some(tagged), false) = (&tagged, self.options.tier == TierChoice::Js) {
            let target = Target {
                channels: self.options.channels,
                state: self.state.clone(),
                file: name.to_owned(),
                globals,
            };
            let mut wanted = Vec::new();
            let mut slots = Vec::new();
            for (i, r) in requests.into_iter().enumerate() {
                match r {
                    Ok(request) => {
                        wanted.push(request);
                        slots.push(i);
                    }
                    Err(reason) => native[i] = Some(Err(reason)),
                }
            }
            let modules = imports.tagged();
            let mut sites = lib.sites.clone();
            sites.extend(tagged.functions.iter().cloned());
            let mut sources = vec![
                Source {
                    name: LIBRARY_NAME,
                    text: &lib.source,
                    module: false,
                },
                Source {
                    name,
                    text: source,
                    module: is_module,
                },
            ];
            for (module, text, t) in &modules {
                sites.extend(t.functions.iter().cloned());
                sources.push(Source {
                    name: module,
                    text,
                    module: true,
                });
            }
            let results = compile(&sources, &sites, &wanted, &target);
            for (i, result) in slots.into_iter().zip(results) {
                native[i] = Some(result.map_err(|u| u.to_string()));
            }
        }

        let cartridge = Arc::new(Cartridge {
            context,
            runtime,
            watchdog,
            update_limit: self.options.update_time_limit,
            sample_rate: self.options.sample_rate,
            channels: self.options.channels,
            locator: locator.clone(),
        });
        let unit_uses = std::mem::take(&mut *units.lock().unwrap_or_else(|e| e.into_inner()));
        let guards = |block| {
            self.alloc
                .lock()
                .map(|a| a.guards_of(block))
                .unwrap_or_default()
        };
        let mut signals = Vec::with_capacity(entries.len());
        let mut infos = Vec::with_capacity(entries.len());
        for (index, (((id, place), native), update)) in
            entries.into_iter().zip(native).zip(updates).enumerate()
        {
            let block = self
                .block_of(&id)
                .ok_or_else(|| fail(format!("signal '{id}' has no state block")))?;
            // The prelude names the `flux(` the parser found (already in the user's
            // coordinates), or else a stack frame of the tagged source.
            let parsed_site = tagged.as_ref().is_some_and(|t| {
                t.functions.iter().any(|f| {
                    f.flux_call
                        .is_some_and(|(l, c)| place == format!("{name}:{l}:{c}"))
                })
            });
            let location =
                Location::parse(&place).map(|l| if parsed_site { l } else { locator.map(l) });
            let (code, tier, reason): (Box<dyn Signal>, Tier, Option<String>) = match native {
                Some(Ok(kernel)) => (Box::new(kernel), Tier::Native, None),
                other => {
                    let reason = match other {
                        Some(Err(reason)) => Some(reason),
                        _ => Some("the JavaScript tier was asked for".to_owned()),
                    };
                    if self.options.tier == TierChoice::Native {
                        return Err(Diagnostic {
                            location: location.unwrap_or_else(|| fail(String::new()).location),
                            message: format!(
                                "signal '{id}' cannot run on the native tier: {}",
                                reason.unwrap_or_default()
                            ),
                        });
                    }
                    // Faults without a place of their own (NaN) name the `update`.
                    let update = update
                        .as_deref()
                        .and_then(Location::parse)
                        .map(|l| locator.map(l).to_string());
                    let js = Box::new(JsSignal {
                        cartridge: cartridge.clone(),
                        index,
                        location: update,
                    });
                    (js, Tier::Js, reason)
                }
            };
            infos.push(SignalInfo {
                id: id.clone(),
                location,
                block,
                tier,
                reason,
            });
            let footprint = Footprint {
                units: unit_uses
                    .iter()
                    .filter(|u| u.signal == id && !u.big)
                    .map(|u| u.block)
                    .collect(),
                guards: guards(block),
            };
            signals.push(PatchSignal::with_footprint(id, block, footprint, code));
        }
        let mut report = UnitReport::default();
        let mut names = BTreeSet::new();
        for u in &unit_uses {
            let name = unit_name(&u.key);
            if names.insert(name.clone()) {
                if u.new {
                    report.made.push(name);
                } else {
                    report.kept.push(name);
                }
            }
        }
        report.kept.sort();
        report.made.sort();
        if running.is_empty() {
            if let Some(before) = self.units.insert(name.to_owned(), names.clone()) {
                report.dropped = before.difference(&names).cloned().collect();
            }
        }
        Ok(Loaded {
            patch: Patch::new(signals),
            actions,
            signals: infos,
            elapsed: started.elapsed(),
            units: report,
            imports: imports.files(),
            value,
            cartridge: Some(cartridge),
        })
    }
}

/// The live-control calls the code made, from the prelude's list.
fn read_actions(flux: &Object<'_>) -> rquickjs::Result<Vec<Action>> {
    let list: Function = flux.get("actions")?;
    let raw: Vec<(String, String, f64, f64)> = list
        .call::<_, Vec<Vec<Value>>>(())?
        .into_iter()
        .map(|a| {
            let kind = a
                .first()
                .and_then(|v| v.as_string())
                .and_then(|s| s.to_string().ok());
            let id = a
                .get(1)
                .and_then(|v| v.as_string())
                .and_then(|s| s.to_string().ok());
            let x = a.get(2).and_then(Value::as_number);
            let y = a.get(3).and_then(Value::as_number);
            (
                kind.unwrap_or_default(),
                id.unwrap_or_default(),
                x.unwrap_or(-1.0),
                y.unwrap_or(-1.0),
            )
        })
        .collect();
    Ok(raw
        .into_iter()
        .filter_map(|(kind, id, x, y)| {
            let fade = (x >= 0.0).then_some(x);
            Some(match kind.as_str() {
                "stop" => Action::Stop(id, fade),
                "mute" => Action::Mute(id, fade),
                "unmute" => Action::Unmute(id, fade),
                "solo" => Action::Solo(id, fade),
                "unsolo" => Action::Unsolo(fade),
                "clear" => Action::Clear(fade),
                "gain" => Action::Gain(x),
                "fade" => Action::Fade(id, x),
                "tempo" => Action::Tempo(x, (y >= 0.0).then_some(y)),
                _ => return None,
            })
        })
        .collect())
}
