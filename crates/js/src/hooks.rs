//! What the prelude gets from Rust: the state memory, the allocator, the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use flux_engine::{StateAllocator, StateBlock, StateMemory};
use rquickjs::module::WriteOptions;
use rquickjs::{ArrayBuffer, Context, Ctx, Function, Module, Object, Runtime, TypedArray, Value};

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
    /// The sounds this load placed: (signal, key); the signal is "" at top level.
    pub(crate) sample_uses: Arc<Mutex<Vec<(String, String)>>>,
    /// This is a trial load, on a copy of the state (the real load follows).
    pub(crate) trial: bool,
}

/// A script of the API that every load evaluates (the prelude, the unit library), kept as
/// QuickJS bytecode once per process: loading bytecode takes a tenth of the time parsing
/// the prelude does (0.1 ms against 1.1 ms), on every load.
///
/// The script is an expression; it runs as a module whose default export is its value.
/// Line 1 is the module's own, so the script's lines are one lower in QuickJS's positions
/// ([`SCRIPT_LINE_SHIFT`]).
struct Compiled {
    name: &'static str,
    source: fn() -> &'static str,
    bytecode: OnceLock<Option<Vec<u8>>>,
}

/// How many lines QuickJS counts before a [`Compiled`] script's own.
pub(crate) const SCRIPT_LINE_SHIFT: u32 = 1;

impl Compiled {
    fn module(&self) -> String {
        format!(
            "export default\n{}",
            (self.source)().trim_end().trim_end_matches(';')
        )
    }

    /// Compiles the module in a runtime of its own and writes it as bytecode; `None` when
    /// QuickJS cannot (the module is then parsed on each load).
    fn compile(&self) -> Option<Vec<u8>> {
        let runtime = Runtime::new().ok()?;
        let context = Context::full(&runtime).ok()?;
        context.with(|ctx| {
            let module = Module::declare(ctx, self.name, self.module()).ok()?;
            module.write(WriteOptions::default()).ok()
        })
    }

    /// The script's value in `ctx`: from the process's bytecode, or parsed.
    fn load<'js, T: rquickjs::FromJs<'js>>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<T> {
        let module = match self.bytecode.get_or_init(|| self.compile()) {
            // SAFETY: the bytes were written by `Module::write` of this same QuickJS
            // build, in this process, from a script compiled into the binary, and are
            // never changed: they are valid bytecode for `JS_ReadObject`.
            Some(bytes) => unsafe { Module::load(ctx.clone(), bytes) }?,
            None => Module::declare(ctx.clone(), self.name, self.module())?,
        };
        let (module, promise) = module.eval()?;
        promise.finish::<()>()?;
        module.get("default")
    }
}

static PRELUDE_SCRIPT: Compiled = Compiled {
    name: PRELUDE_NAME,
    source: || PRELUDE,
    bytecode: OnceLock::new(),
};

static LIBRARY_SCRIPT: Compiled = Compiled {
    name: LIBRARY_NAME,
    source: || library().tagged.as_str(),
    bytecode: OnceLock::new(),
};

/// Evaluates the unit library in `ctx` and adds its exports to the API (its unit makers
/// wrapped by the prelude), once; later calls do nothing.
pub(crate) fn install_library(ctx: &Ctx<'_>, sample_rate: u32, seed: u64) -> rquickjs::Result<()> {
    let flux: Object = ctx.globals().get("__flux")?;
    let has: Function = flux.get("hasLibrary")?;
    if has.call::<_, bool>(())? {
        return Ok(());
    }
    let lib = library();
    let make: Function = LIBRARY_SCRIPT.load(ctx)?;
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
                    let (block, new) =
                        alloc.unit_of(&signal, &key, len as usize).map_err(|full| {
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
        let (alloc, state, imports, samples, uses) = (
            self.alloc.clone(),
            self.state.clone(),
            self.imports,
            self.samples,
            self.sample_uses,
        );
        let (sample_rate, trial) = (self.sample_rate, self.trial);
        hooks.set(
            "sample",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'_>, name: String, signal: String| {
                    let placed = crate::samples::place(
                        &name,
                        &imports,
                        &alloc,
                        &state,
                        &samples,
                        sample_rate,
                        trial,
                    )
                    .map_err(|why| {
                        rquickjs::Exception::throw_range(&ctx, &format!("sampler('{name}'): {why}"))
                    })?;
                    if let Ok(mut uses) = uses.lock() {
                        uses.push((signal, placed.key.clone()));
                    }
                    Ok::<Vec<f64>, rquickjs::Error>(vec![
                        placed.offset as f64,
                        placed.frames as f64,
                        placed.step,
                    ])
                },
            )?,
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
        // Where MIDI in's values are in `clocks`: the run of a field, the values' start, how
        // many, and where the voices' notes, gates and velocities begin, and their count.
        {
            use flux_engine::midi::at;
            let layout = [
                flux_engine::MAX_BLOCK,
                flux_engine::Clock::MIDI_AT,
                at::VALUES,
                at::NOTE,
                at::GATE,
                at::VELOCITY,
                flux_engine::MIDI_VOICES,
            ];
            hooks.set("clockLayout", layout.map(|x| x as f64).to_vec())?;
        }
        hooks.set(
            "clocks",
            TypedArray::<f64>::new(ctx.clone(), vec![0.0f64; flux_engine::Clock::LEN])?,
        )?;

        let make: Function = PRELUDE_SCRIPT.load(ctx)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    static PROBE: Compiled = Compiled {
        name: "probe.js",
        source: || "(function () {\n  return new Error('here').stack;\n})",
        bytecode: OnceLock::new(),
    };

    #[test]
    fn compiled_scripts_run_from_bytecode_one_line_lower() {
        assert!(PROBE.compile().is_some(), "QuickJS cannot write the module");
        for _ in 0..2 {
            let runtime = Runtime::new().unwrap();
            let context = Context::full(&runtime).unwrap();
            context.with(|ctx| {
                let f: Function = PROBE.load(&ctx).unwrap();
                let stack: String = f.call(()).unwrap();
                // The `new Error` is on the script's line 2: QuickJS says line 3.
                let line = 2 + SCRIPT_LINE_SHIFT;
                assert!(stack.contains(&format!("probe.js:{line}:")), "{stack}");
            });
        }
        assert!(PROBE.bytecode.get().is_some_and(Option::is_some));
    }

    #[test]
    fn the_prelude_and_the_library_compile_to_bytecode() {
        assert!(PRELUDE_SCRIPT.compile().is_some());
        assert!(LIBRARY_SCRIPT.compile().is_some());
    }
}
