//! Loading a signals file into a patch: one QuickJS runtime (a "cartridge") per load.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use flux_engine::{
    Block, Fault, Patch, PatchSignal, Signal, StateAllocator, StateBlock, StateMemory, Tier,
    MAX_BLOCK,
};
use flux_jit::analyze::{instrument, PositionMap};
use flux_jit::{compile, Captured, NativeSignal, Request, Target};
use rquickjs::context::EvalOptions;
use rquickjs::loader::{ImportAttributes, Loader as ModuleLoader, Resolver};
use rquickjs::module::Declared;
use rquickjs::FromJs;
use rquickjs::{
    ArrayBuffer, CaughtError, Context, Ctx, Function, Module, Object, Runtime, TypedArray, Value,
};

use crate::diag::{describe_exception, Diagnostic, Location, Place, PRELUDE_NAME};

const PRELUDE: &str = include_str!("prelude.js");
/// Name the built-in API module resolves to; any import ending in `flux.js` gets it.
const API_MODULE: &str = "flux:api";
const API_SOURCE: &str = "const a = globalThis.__flux.api;\n\
export const flux = a.flux, clear = a.clear, remove = a.remove, list = a.list;\n\
export const play = a.play, stop = a.stop, mute = a.mute, unmute = a.unmute;\n\
export const solo = a.solo, gain = a.gain;\n\
export default a;\n";
const LOG_CAPACITY: usize = 1024;

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
    cartridge: Option<Arc<Cartridge>>,
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
    /// `clear(fade?)`: remove every signal defined before.
    Clear(Option<f64>),
    /// `gain(x)`: the master gain.
    Gain(f64),
    /// `play(id, fn, fade)`: the fade the new signal comes in with.
    Fade(String, f64),
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
    log_tx: SyncSender<String>,
    log_rx: Receiver<String>,
    logs_dropped: Arc<AtomicU64>,
}

impl Loader {
    /// A loader over `state`, handing out blocks with `alloc`.
    pub fn new(state: Arc<StateMemory>, alloc: StateAllocator, options: LoadOptions) -> Self {
        let (log_tx, log_rx) = sync_channel(LOG_CAPACITY);
        Self {
            state,
            alloc: Arc::new(Mutex::new(alloc)),
            options,
            log_tx,
            log_rx,
            logs_dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The options loads use.
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// The state memory signals use.
    pub fn state(&self) -> &Arc<StateMemory> {
        &self.state
    }

    /// The block of `id`, if it has one.
    pub fn block_of(&self, id: &str) -> Option<StateBlock> {
        self.alloc.lock().ok()?.get(id)
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
        let source = std::fs::read_to_string(path).map_err(|e| Diagnostic {
            location: Location {
                file: name.clone(),
                line: 1,
                col: 1,
            },
            message: format!("cannot read the file: {e}"),
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
        self.load_inner(name, source, Instant::now(), running)
    }

    fn load_inner(
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
        runtime.set_loader(FileResolver, FileLoader);
        let context =
            Context::full(&runtime).map_err(|e| fail(format!("cannot start QuickJS: {e}")))?;

        let is_module = is_module(source);
        // Tag the functions for the native tier (unless only the JavaScript tier is wanted).
        let tagged = match self.options.tier {
            TierChoice::Js => None,
            _ => instrument(source, is_module),
        };
        let locator = Arc::new(Locator {
            file: name.to_owned(),
            positions: tagged.as_ref().map(|t| t.positions.clone()),
        });
        let run_source = tagged.as_ref().map_or(source, |t| t.source.as_str());
        let sites = tagged.as_ref().map_or_else(Vec::new, |t| {
            t.functions
                .iter()
                .map(|f| {
                    f.flux_call
                        .map_or_else(String::new, |(l, c)| format!("{name}:{l}:{c}"))
                })
                .collect()
        });
        let hooks = Hooks {
            state: self.state.clone(),
            alloc: self.alloc.clone(),
            log_tx: self.log_tx.clone(),
            logs_dropped: self.logs_dropped.clone(),
            out_len: MAX_BLOCK * self.options.channels,
            sites,
            running: running.to_vec(),
        };
        let (entries, requests, actions) = context.with(|ctx| -> Result<_, Diagnostic> {
            hooks
                .install(&ctx)
                .map_err(|e| fail(format!("cannot set up the Flux API: {e}")))?;
            watchdog.arm(self.options.load_time_limit);
            let run = evaluate(&ctx, name, run_source, is_module);
            let fired = watchdog.disarm();
            run.map_err(|caught| {
                let (location, message) = caught_to_message(&ctx, caught, &locator);
                let message = if fired {
                    format!(
                        "the file ran longer than {} ms while loading (an endless loop?)",
                        self.options.load_time_limit.as_millis()
                    )
                } else {
                    message
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
            let (flux, finish) = api().map_err(|e| fail(format!("the Flux API is gone: {e}")))?;
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
            let actions = read_actions(&flux)
                .map_err(|e| fail(format!("cannot read the control calls: {e}")))?;
            let requests: Vec<Result<Request, String>> = match &tagged {
                Some(_) => (0..entries.len())
                    .map(|i| native_request(&flux, i, &entries[i].0, self.options.seed))
                    .collect(),
                None => Vec::new(),
            };
            Ok((entries, requests, actions))
        })?;

        // Compile what can be compiled; the rest stays on the JavaScript tier.
        let mut native: Vec<Option<Result<NativeSignal, String>>> =
            (0..entries.len()).map(|_| None).collect();
        if let Some(tagged) = &tagged {
            let target = Target {
                channels: self.options.channels,
                state: self.state.clone(),
                file: name.to_owned(),
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
            let results = compile(source, is_module, &tagged.functions, &wanted, &target);
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
        let mut signals = Vec::with_capacity(entries.len());
        let mut infos = Vec::with_capacity(entries.len());
        for (index, ((id, place), native)) in entries.into_iter().zip(native).enumerate() {
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
                    let js = Box::new(JsSignal {
                        cartridge: cartridge.clone(),
                        index,
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
            signals.push(PatchSignal::new(id, block, code));
        }
        Ok(Loaded {
            patch: Patch::new(signals),
            actions,
            signals: infos,
            elapsed: started.elapsed(),
            cartridge: Some(cartridge),
        })
    }
}

/// What the native tier needs to compile signal `index`: its `update`'s tag and captures.
fn native_request(flux: &Object<'_>, index: usize, id: &str, seed: u64) -> Result<Request, String> {
    let describe = || -> rquickjs::Result<Result<Request, String>> {
        let update: Function = flux.get::<_, Function>("update")?.call((index,))?;
        let Some((function, values)) = tag_of(flux, update.into_value())? else {
            return Ok(Err("its update was not written in this file".to_owned()));
        };
        let mut captures = Vec::with_capacity(values.len());
        for v in values {
            captures.push(capture(flux, v, 0)?);
        }
        Ok(Ok(Request {
            id: id.to_owned(),
            function,
            captures,
            seed: seed ^ hash(id),
        }))
    };
    describe().map_err(|e| format!("cannot read its update: {e}"))?
}

/// The live-control calls the code made, from the prelude's list.
fn read_actions(flux: &Object<'_>) -> rquickjs::Result<Vec<Action>> {
    let list: Function = flux.get("actions")?;
    let raw: Vec<(String, String, f64)> = list
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
            (
                kind.unwrap_or_default(),
                id.unwrap_or_default(),
                x.unwrap_or(-1.0),
            )
        })
        .collect();
    Ok(raw
        .into_iter()
        .filter_map(|(kind, id, x)| {
            let fade = (x >= 0.0).then_some(x);
            Some(match kind.as_str() {
                "stop" => Action::Stop(id, fade),
                "mute" => Action::Mute(id, fade),
                "unmute" => Action::Unmute(id, fade),
                "solo" => Action::Solo(id, fade),
                "clear" => Action::Clear(fade),
                "gain" => Action::Gain(x),
                "fade" => Action::Fade(id, x),
                _ => return None,
            })
        })
        .collect())
}

/// The tag of a function: its id and its captured values, when the instrumentation saw it.
fn tag_of<'js>(
    flux: &Object<'js>,
    f: Value<'js>,
) -> rquickjs::Result<Option<(usize, Vec<Value<'js>>)>> {
    let tag_of: Function = flux.get("tagOf")?;
    let tag: Option<Vec<Value>> = tag_of.call((f,))?;
    let Some(mut tag) = tag else { return Ok(None) };
    if tag.len() != 2 {
        return Ok(None);
    }
    let values = tag
        .pop()
        .map(|v| Vec::<Value>::from_js(&v.ctx().clone(), v))
        .transpose()?;
    let id = tag.pop().and_then(|v| v.as_number());
    Ok(id.zip(values).map(|(id, values)| (id as usize, values)))
}

/// FNV-1a, to give each signal its own random sequence from one seed.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads a captured JavaScript value for the compiler.
fn capture<'js>(flux: &Object<'js>, v: Value<'js>, depth: usize) -> rquickjs::Result<Captured> {
    if depth > 8 {
        return Ok(Captured::Other("nested more than 8 deep".into()));
    }
    if let Some(n) = v.as_number() {
        return Ok(Captured::Number(n));
    }
    if let Some(b) = v.as_bool() {
        return Ok(Captured::Bool(b));
    }
    if v.is_undefined() {
        return Ok(Captured::Undefined);
    }
    if v.is_null() {
        return Ok(Captured::Null);
    }
    let classify: Function = flux.get("classify")?;
    let kind: String = classify.call((v.clone(),))?;
    Ok(match kind.as_str() {
        "state" => Captured::State,
        "function" => match tag_of(flux, v)? {
            Some((id, values)) => Captured::Function {
                id,
                captures: values
                    .into_iter()
                    .map(|v| capture(flux, v, depth + 1))
                    .collect::<rquickjs::Result<_>>()?,
            },
            None => Captured::Other("a function Flux cannot see into".into()),
        },
        "array" | "typed" => {
            let items: Vec<Value> = if kind == "typed" {
                let from: Function = flux.get("toArray")?;
                from.call((v,))?
            } else {
                Vec::<Value>::from_js(&v.ctx().clone(), v)?
            };
            if items.len() > 1 << 16 {
                Captured::Other("an array of more than 65536 elements".into())
            } else {
                Captured::Array(
                    items
                        .into_iter()
                        .map(|v| capture(flux, v, depth + 1))
                        .collect::<rquickjs::Result<_>>()?,
                )
            }
        }
        "object" => {
            let obj = Object::from_value(v)?;
            let mut fields = Vec::new();
            for key in obj.keys::<String>() {
                let key = key?;
                let value: Value = obj.get(&key)?;
                fields.push((key, capture(flux, value, depth + 1)?));
            }
            Captured::Object(fields)
        }
        other => Captured::Other(other.strip_prefix("other:").unwrap_or(other).to_owned()),
    })
}

/// Takes positions QuickJS reports in the tagged source back to the user's file.
struct Locator {
    file: String,
    positions: Option<PositionMap>,
}

impl Locator {
    fn map(&self, mut l: Location) -> Location {
        if let (Some(map), true) = (&self.positions, l.file == self.file) {
            (l.line, l.col) = map.original(l.line, l.col);
        }
        l
    }
}

/// True when `source` is an ES module: it has an `import` or `export` statement.
///
/// A small scanner, not a parser: it skips comments, strings and template literals and looks
/// for the keyword at the start of a statement. `import(...)` and `import.meta` do not count.
fn is_module(source: &str) -> bool {
    let b = source.as_bytes();
    let mut i = 0;
    // Whether the last significant character lets a statement start here.
    let mut statement_start = true;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    statement_start |= b[i] == b'\n';
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'\'' | b'"' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                statement_start = false;
            }
            b'\n' | b';' | b'{' | b'}' => statement_start = true,
            c if c.is_ascii_whitespace() => {}
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let word = &b[start..i];
                if statement_start && (word == b"import" || word == b"export") {
                    let next = b[i..].iter().find(|c| !c.is_ascii_whitespace());
                    if word == b"export" || !matches!(next, Some(b'(') | Some(b'.')) {
                        return true;
                    }
                }
                statement_start = false;
                continue;
            }
            _ => statement_start = false,
        }
        i += 1;
    }
    false
}

fn evaluate<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    source: &str,
    is_module: bool,
) -> Result<(), CaughtError<'js>> {
    use rquickjs::CatchResultExt;
    if is_module {
        let module = Module::declare(ctx.clone(), name, source).catch(ctx)?;
        let (_, promise) = module.eval().catch(ctx)?;
        promise.finish::<()>().catch(ctx)
    } else {
        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = false;
        options.filename = Some(name.to_owned());
        ctx.eval_with_options::<(), _>(source, options).catch(ctx)
    }
}

/// The message of a caught exception and its location in the user's file, when known.
fn caught_to_message<'js>(
    ctx: &Ctx<'js>,
    caught: CaughtError<'js>,
    locator: &Locator,
) -> (Option<Location>, String) {
    let (place, message) = match caught {
        CaughtError::Exception(e) => describe_exception(ctx, &e.into_value()),
        CaughtError::Value(v) => describe_exception(ctx, &v),
        CaughtError::Error(e) => (Place::Nowhere, e.to_string()),
    };
    let location = match place {
        Place::Stack(l) => Some(locator.map(l)),
        Place::Api(l) => Some(l),
        Place::Nowhere => None,
    };
    (location, message)
}

/// What the prelude gets from Rust.
struct Hooks {
    state: Arc<StateMemory>,
    alloc: Arc<Mutex<StateAllocator>>,
    log_tx: SyncSender<String>,
    logs_dropped: Arc<AtomicU64>,
    out_len: usize,
    /// For each tagged function, `file:line:col` of the `flux(` it is the factory of.
    sites: Vec<String>,
    /// Ids of the signals already playing.
    running: Vec<String>,
}

impl Hooks {
    fn install(self, ctx: &Ctx<'_>) -> rquickjs::Result<()> {
        let globals = ctx.globals();
        let memory = ArrayBuffer::from_source(ctx.clone(), StateView(self.state.clone()))?;
        globals.set("FLUX_STATE", TypedArray::<f64>::from_arraybuffer(memory)?)?;

        let hooks = Object::new(ctx.clone())?;
        let alloc = self.alloc;
        hooks.set(
            "block",
            Function::new(ctx.clone(), move |ctx: Ctx<'_>, id: String| {
                let mut alloc = alloc.lock().map_err(|_| {
                    rquickjs::Exception::throw_internal(&ctx, "the state allocator is poisoned")
                })?;
                match alloc.block_of(&id) {
                    Ok(block) => Ok(block.offset as f64),
                    Err(full) => Err(rquickjs::Exception::throw_range(
                        &ctx,
                        &format!("flux('{id}'): {full}"),
                    )),
                }
            })?,
        )?;
        let (log_tx, dropped) = (self.log_tx, self.logs_dropped);
        hooks.set(
            "log",
            Function::new(ctx.clone(), move |line: String| {
                if let Err(TrySendError::Full(_)) = log_tx.try_send(line) {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            })?,
        )?;
        hooks.set("sites", self.sites)?;
        hooks.set("running", self.running)?;
        hooks.set(
            "out",
            TypedArray::<f64>::new(ctx.clone(), vec![0.0f64; self.out_len])?,
        )?;

        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = true;
        options.filename = Some(PRELUDE_NAME.to_owned());
        let make: Function = ctx.eval_with_options(PRELUDE, options)?;
        let flux: Object = make.call((hooks.clone(),))?;
        flux.set("out", hooks.get::<_, Value>("out")?)?;
        // Non-writable and non-configurable, so user code cannot replace the render hook.
        let define: Function =
            ctx.eval("(o) => Object.defineProperty(globalThis, '__flux', { value: o })")?;
        define.call::<_, Value>((flux,))?;
        Ok(())
    }
}

/// The state memory as a JavaScript `ArrayBuffer`.
struct StateView(Arc<StateMemory>);

// SAFETY: the pointer is valid for `len` bytes for as long as the `Arc` (moved into the
// buffer) lives. The memory is shared on purpose: Rust reads and writes it only through
// atomics, and JavaScript's plain aligned 8-byte accesses never tear (see `StateMemory`).
unsafe impl rquickjs::ArrayBufferSource for StateView {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr().cast()
    }

    fn len(&self) -> usize {
        self.0.len() * std::mem::size_of::<f64>()
    }
}

/// Resolves `*flux.js` to the built-in API and relative paths to files.
struct FileResolver;

impl Resolver for FileResolver {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let _ = ctx;
        if name.ends_with("flux.js") {
            return Ok(API_MODULE.to_owned());
        }
        if !(name.starts_with("./") || name.starts_with("../") || name.starts_with('/')) {
            return Err(rquickjs::Error::new_resolving_message(
                base,
                name,
                "only relative paths and flux.js can be imported",
            ));
        }
        let dir = Path::new(base).parent().unwrap_or(Path::new(""));
        Ok(normalize(&dir.join(name)).to_string_lossy().into_owned())
    }
}

/// Joins `.` and `..` away without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Declares the built-in API module and modules read from files.
struct FileLoader;

impl ModuleLoader for FileLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        if name == API_MODULE {
            return Module::declare(ctx.clone(), API_MODULE, API_SOURCE);
        }
        let source = std::fs::read_to_string(name).map_err(|e| {
            rquickjs::Error::new_loading_message(name, format!("cannot read it: {e}"))
        })?;
        Module::declare(ctx.clone(), name, source)
    }
}

/// A deadline the interrupt handler checks while JavaScript runs.
#[derive(Default)]
struct Watchdog {
    /// Nanoseconds since [`epoch`], or 0 when disarmed.
    deadline: AtomicU64,
    fired: AtomicBool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64 + 1
}

impl Watchdog {
    fn arm(&self, limit: Duration) {
        self.fired.store(false, Ordering::Relaxed);
        let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX / 2);
        self.deadline.store(now_ns() + limit, Ordering::Relaxed);
    }

    /// Disarms and tells whether the deadline passed while armed.
    fn disarm(&self) -> bool {
        self.deadline.store(0, Ordering::Relaxed);
        self.fired.swap(false, Ordering::Relaxed)
    }

    fn expired(&self) -> bool {
        let deadline = self.deadline.load(Ordering::Relaxed);
        let expired = deadline != 0 && now_ns() > deadline;
        if expired {
            self.fired.store(true, Ordering::Relaxed);
        }
        expired
    }
}

/// One load's runtime, shared by the signals it made.
///
/// Only the thread that holds the patch calls into it, through [`Context::with`], which
/// takes the runtime's lock; nobody else ever contends for it. It is dropped with the last
/// signal, on the main thread.
struct Cartridge {
    context: Context,
    runtime: Runtime,
    watchdog: Arc<Watchdog>,
    update_limit: Duration,
    sample_rate: u32,
    channels: usize,
    locator: Arc<Locator>,
}

impl Cartridge {
    /// Renders signal `index` into `block`; returns the channels of its first frame.
    fn render(&self, index: usize, block: &mut Block<'_>) -> Result<usize, Fault> {
        use rquickjs::CatchResultExt;
        let _keep = &self.runtime;
        self.context.with(|ctx| {
            let setup = || -> rquickjs::Result<(Function<'_>, TypedArray<'_, f64>)> {
                let flux: Object = ctx.globals().get("__flux")?;
                Ok((flux.get("render")?, flux.get("out")?))
            };
            let (render, out) = setup().map_err(|e| Fault::Error(e.to_string().into()))?;
            self.watchdog.arm(self.update_limit);
            let result = render
                .call::<_, f64>((index, block.frames, block.sample_rate, block.channels))
                .catch(&ctx);
            let fired = self.watchdog.disarm();
            match result {
                Ok(first) => {
                    let n = block.frames * block.channels;
                    // SAFETY: no JavaScript runs while the bytes are borrowed.
                    let bytes = unsafe { out.as_bytes() }.unwrap_or(&[]);
                    for (o, b) in block.out[..n].iter_mut().zip(bytes.chunks_exact(8)) {
                        *o = f64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
                    }
                    Ok(first as usize)
                }
                Err(_) if fired => Err(Fault::TimeLimit {
                    limit_ms: self.update_limit.as_millis() as u64,
                }),
                Err(caught) => {
                    let (location, message) = caught_to_message(&ctx, caught, &self.locator);
                    Err(Fault::Error(match location {
                        Some(l) => format!("{l}: {message}").into(),
                        None => message.into(),
                    }))
                }
            }
        })
    }
}

/// A signal on the JavaScript tier: its `update` is called once per frame.
struct JsSignal {
    cartridge: Arc<Cartridge>,
    index: usize,
}

impl Signal for JsSignal {
    fn render(&mut self, block: &mut Block<'_>) -> Result<(), Fault> {
        self.cartridge.render(self.index, block).map(drop)
    }

    fn tier(&self) -> Tier {
        Tier::Js
    }
}

#[cfg(test)]
mod tests {
    use super::is_module;

    #[test]
    fn modules_are_told_from_scripts() {
        assert!(is_module("// c\nimport { flux } from './flux.js';"));
        assert!(is_module("/* a\n b */ export const x = 1;"));
        assert!(is_module("flux('a', f);\nimport{flux}from'flux.js'"));
        assert!(!is_module("flux('a', f); // import x from 'y'"));
        assert!(!is_module("const s = 'import x from y';"));
        assert!(!is_module(
            "import('./x.js').then(f);\nconst u = import.meta;"
        ));
        assert!(!is_module("const important = 1; a.import = 2;"));
        assert!(!is_module("let b = ;"));
    }
}
