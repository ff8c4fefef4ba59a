//! What the prelude gets from Rust: the state memory, the allocator, the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use flux_engine::{StateAllocator, StateBlock, StateMemory};
use rquickjs::context::EvalOptions;
use rquickjs::{ArrayBuffer, Ctx, Function, Object, TypedArray, Value};

use crate::diag::PRELUDE_NAME;
use crate::library::{library, LIBRARY_NAME};

const PRELUDE: &str = include_str!("prelude.js");

/// The longest signal id, in bytes (UTF-8); `flux()` refuses longer ones.
pub(crate) const MAX_ID_BYTES: usize = 256;

/// What the prelude gets from Rust.
pub(crate) struct Hooks {
    pub(crate) state: Arc<StateMemory>,
    pub(crate) alloc: Arc<Mutex<StateAllocator>>,
    pub(crate) log_tx: SyncSender<String>,
    pub(crate) logs_dropped: Arc<AtomicU64>,
    pub(crate) out_len: usize,
    /// For each tagged function, `file:line:col` of the `flux(` it is the factory of.
    pub(crate) sites: Vec<String>,
    /// Ids of the signals already playing.
    pub(crate) running: Vec<String>,
    /// The units this load made, in order.
    pub(crate) units: Arc<Mutex<Vec<UnitUse>>>,
    /// Sample rate, as the library's `SR`.
    pub(crate) sample_rate: u32,
    /// The library's `SEED`.
    pub(crate) seed: u64,
    /// Evaluate the library at once (the file names it), not only when asked.
    pub(crate) library: bool,
    /// The load's imports, which `sampler` paths follow the rules of.
    pub(crate) imports: crate::modules::Imports,
    /// Sounds decoded by earlier loads.
    pub(crate) samples: crate::samples::SampleCache,
}

/// Evaluates the unit library in `ctx` and adds its exports to the API (its unit makers
/// wrapped by the prelude), once; later calls do nothing.
pub(crate) fn install_library(ctx: &Ctx<'_>, sample_rate: u32, seed: u64) -> rquickjs::Result<()> {
    let flux: Object = ctx.globals().get("__flux")?;
    let has: Function = flux.get("hasLibrary")?;
    if has.call::<_, bool>(())? {
        return Ok(());
    }
    let lib = library();
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = true;
    options.filename = Some(LIBRARY_NAME.to_owned());
    let make: Function = ctx.eval_with_options(lib.tagged.as_str(), options)?;
    let made: Vec<Value> = make.call((
        ctx.globals().get::<_, Value>("FLUX_STATE")?,
        flux.get::<_, Value>("slots")?,
        flux.get::<_, Value>("buffer")?,
        f64::from(sample_rate),
        (seed % (1 << 32)) as f64,
        flux.get::<_, Value>("clock")?,
        flux.get::<_, Value>("sample")?,
    ))?;
    let install: Function = flux.get("library")?;
    let mut made = made.into_iter();
    let (exports, play) = (made.next(), made.next());
    install.call::<_, Value>((exports, lib.ctors.clone(), play))?;
    Ok(())
}

/// Whether `source` names the library: one of its exports, or `play` (whose per-frame
/// function is the library's), as an identifier in its code (not in a comment or a
/// string). A name that is something else there (a property, a local) loads the library
/// for nothing, which costs time, never correctness.
pub(crate) fn names_library(source: &str) -> bool {
    use flux_jit::skim::{skim, Piece};
    let lib = library();
    let b = source.as_bytes();
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let named = |w: &[u8]| w == b"play" || lib.exports.iter().any(|e| e.as_bytes() == w);
    let mut word: Option<usize> = None;
    let mut found = false;
    skim(source, |piece| {
        if let Piece::Code(i, c) = piece {
            if is_word(c) {
                word.get_or_insert(i);
                return true;
            }
        }
        if let Some(start) = word.take() {
            found = named(&b[start..piece.at()]);
        }
        !found
    });
    found || word.is_some_and(|start| named(&b[start..]))
}

/// State a unit of the library took while the file loaded.
#[derive(Debug, Clone)]
pub(crate) struct UnitUse {
    /// The unit's key (see prelude.js), with the part of its state (`\u{1}0`, `\u{1}1`...).
    pub key: String,
    /// Its slots.
    pub block: StateBlock,
    /// Sample memory (`buffer`), not copied for crossfades.
    pub big: bool,
    /// The signal whose factory made it ("" at top level).
    pub signal: String,
    /// Made by this load (no state kept).
    pub new: bool,
}

impl Hooks {
    pub(crate) fn install(self, ctx: &Ctx<'_>) -> rquickjs::Result<()> {
        let globals = ctx.globals();
        let memory = ArrayBuffer::from_source(ctx.clone(), StateView(self.state.clone()))?;
        globals.set("FLUX_STATE", TypedArray::<f64>::from_arraybuffer(memory)?)?;

        let hooks = Object::new(ctx.clone())?;
        let (alloc, state, units) = (self.alloc.clone(), self.state.clone(), self.units);
        hooks.set(
            "unit",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'_>, key: String, len: f64, big: bool, signal: String| {
                    let mut alloc = alloc.lock().map_err(|_| {
                        rquickjs::Exception::throw_internal(&ctx, "the state allocator is poisoned")
                    })?;
                    let (block, new) = alloc.unit(&key, len as usize).map_err(|full| {
                        rquickjs::Exception::throw_range(&ctx, &full.to_string())
                    })?;
                    if new {
                        state.touch(block);
                    }
                    if let Ok(mut units) = units.lock() {
                        units.push(UnitUse {
                            key,
                            block,
                            big,
                            signal,
                            new,
                        });
                    }
                    Ok::<f64, rquickjs::Error>(block.offset as f64)
                },
            )?,
        )?;
        let (alloc, state, imports, samples) = (
            self.alloc.clone(),
            self.state.clone(),
            self.imports,
            self.samples,
        );
        let sample_rate = self.sample_rate;
        hooks.set(
            "sample",
            Function::new(ctx.clone(), move |ctx: Ctx<'_>, name: String| {
                let placed =
                    crate::samples::place(&name, &imports, &alloc, &state, &samples, sample_rate)
                        .map_err(|why| {
                        rquickjs::Exception::throw_range(&ctx, &format!("sampler('{name}'): {why}"))
                    })?;
                Ok::<Vec<f64>, rquickjs::Error>(vec![
                    placed.offset as f64,
                    placed.frames as f64,
                    placed.step,
                ])
            })?,
        )?;
        let alloc = self.alloc;
        hooks.set(
            "block",
            Function::new(ctx.clone(), move |ctx: Ctx<'_>, id: String| {
                if id.len() > MAX_ID_BYTES {
                    let shown: String = id.chars().take(32).collect();
                    return Err(rquickjs::Exception::throw_range(
                        &ctx,
                        &format!(
                            "flux('{shown}...'): an id is at most {MAX_ID_BYTES} bytes, not {}",
                            id.len()
                        ),
                    ));
                }
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
        hooks.set("libraryNames", library().exports.clone())?;
        hooks.set("running", self.running)?;
        hooks.set(
            "out",
            TypedArray::<f64>::new(ctx.clone(), vec![0.0f64; self.out_len])?,
        )?;
        hooks.set(
            "clocks",
            TypedArray::<f64>::new(ctx.clone(), vec![0.0f64; 4 * flux_engine::MAX_BLOCK])?,
        )?;

        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = true;
        options.filename = Some(PRELUDE_NAME.to_owned());
        let make: Function = ctx.eval_with_options(PRELUDE, options)?;
        let flux: Object = make.call((hooks.clone(),))?;
        // Non-writable and non-configurable, and frozen by the prelude, so user code can
        // neither replace the object nor its render hook.
        let define: Function =
            ctx.eval("(o) => Object.defineProperty(globalThis, '__flux', { value: o })")?;
        define.call::<_, Value>((flux.clone(),))?;

        // The unit library: at once when the file names it, else when something asks.
        let (sample_rate, seed) = (self.sample_rate, self.seed);
        hooks.set(
            "loadLibrary",
            Function::new(ctx.clone(), move |ctx: Ctx<'_>| {
                install_library(&ctx, sample_rate, seed)
            })?,
        )?;
        if self.library {
            install_library(ctx, sample_rate, seed)?;
        }
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
