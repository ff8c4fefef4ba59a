//! One load's QuickJS runtime, its time limits, and the signals that run in it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use flux_engine::{Block, Fault, Signal, Tier, MAX_BLOCK};
use flux_jit::analyze::PositionMap;
use rquickjs::{CaughtError, Context, Ctx, Function, Object, Runtime, TypedArray};

use crate::diag::{describe_exception, Location, Place};

/// Takes positions QuickJS reports in the tagged source back to the user's file.
pub(crate) struct Locator {
    pub(crate) file: String,
    pub(crate) positions: Option<PositionMap>,
    /// Column maps of the imported modules the load tagged, by module name.
    pub(crate) modules: Arc<std::sync::Mutex<std::collections::HashMap<String, PositionMap>>>,
}

impl Locator {
    pub(crate) fn map(&self, mut l: Location) -> Location {
        if let (Some(map), true) = (&self.positions, l.file == self.file) {
            (l.line, l.col) = map.original(l.line, l.col);
        } else if l.file == crate::library::LIBRARY_NAME {
            // QuickJS runs the library as a module with a line of its own first.
            let line = l
                .line
                .saturating_sub(crate::hooks::SCRIPT_LINE_SHIFT)
                .max(1);
            (l.line, l.col) = crate::library::library().positions.original(line, l.col);
        } else if let Some(map) = self
            .modules
            .lock()
            .ok()
            .and_then(|m| m.get(&l.file).cloned())
        {
            (l.line, l.col) = map.original(l.line, l.col);
        }
        l
    }
}

/// How long describing a thrown value may run (its getters, `toString`...).
pub(crate) const DESCRIBE_LIMIT: Duration = Duration::from_millis(50);

/// The message of a caught exception and its location in the user's file, when known.
///
/// Describing the value runs its getters: that runs under `watchdog`, for at most
/// [`DESCRIBE_LIMIT`], so a getter that loops cannot hang the caller (the loader, or the
/// DSP thread for a throwing `update`).
pub(crate) fn caught_to_message<'js>(
    ctx: &Ctx<'js>,
    caught: CaughtError<'js>,
    locator: &Locator,
    watchdog: &Watchdog,
) -> (Option<Location>, String) {
    watchdog.arm(DESCRIBE_LIMIT);
    let (place, message) = match caught {
        CaughtError::Exception(e) => describe_exception(ctx, &e.into_value()),
        CaughtError::Value(v) => describe_exception(ctx, &v),
        CaughtError::Error(e) => (Place::Nowhere, e.to_string()),
    };
    let (place, message) = if watchdog.disarm() {
        (
            Place::Nowhere,
            format!(
                "threw a value whose description ran longer than {} ms (a getter that loops?)",
                DESCRIBE_LIMIT.as_millis()
            ),
        )
    } else {
        (place, message)
    };
    let location = match place {
        Place::Stack(l) => Some(locator.map(l)),
        Place::Api(l) => Some(l),
        Place::Nowhere => None,
    };
    (location, message)
}

/// The most characters of a value [`shown`] gives.
const MAX_SHOWN: usize = 2000;

/// `value` as the REPL shows it (the prelude's `shown`), or `None` when it is not shown
/// (`undefined`, a signal). Getters run under `watchdog` for at most [`DESCRIBE_LIMIT`];
/// a value whose description throws or runs too long is shown as saying so.
pub(crate) fn shown<'js>(
    ctx: &Ctx<'js>,
    flux: &Object<'js>,
    value: rquickjs::Value<'js>,
    watchdog: &Watchdog,
) -> Option<String> {
    use rquickjs::CatchResultExt;
    if value.is_undefined() {
        return None;
    }
    let show: Function = flux.get("shown").ok()?;
    watchdog.arm(DESCRIBE_LIMIT);
    let result = show.call::<_, Option<String>>((value,)).catch(ctx);
    let fired = watchdog.disarm();
    let text = match result {
        Ok(text) => text?,
        Err(_) if fired => format!(
            "(a value whose description ran longer than {} ms: a getter that loops?)",
            DESCRIBE_LIMIT.as_millis()
        ),
        Err(caught) => format!("(a value that cannot be shown: {caught})"),
    };
    Some(match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    })
}

/// A deadline the interrupt handler checks while JavaScript runs.
#[derive(Default)]
pub(crate) struct Watchdog {
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
    pub(crate) fn arm(&self, limit: Duration) {
        self.fired.store(false, Ordering::Relaxed);
        let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX / 2);
        self.deadline.store(now_ns() + limit, Ordering::Relaxed);
    }

    /// Disarms and tells whether the deadline passed while armed.
    pub(crate) fn disarm(&self) -> bool {
        self.deadline.store(0, Ordering::Relaxed);
        self.fired.swap(false, Ordering::Relaxed)
    }

    pub(crate) fn expired(&self) -> bool {
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
pub(crate) struct Cartridge {
    pub(crate) context: Context,
    pub(crate) runtime: Runtime,
    pub(crate) watchdog: Arc<Watchdog>,
    pub(crate) update_limit: Duration,
    pub(crate) sample_rate: u32,
    pub(crate) channels: usize,
    pub(crate) locator: Arc<Locator>,
}

impl Cartridge {
    /// Renders signal `index` into `block`; returns the channels of its first frame.
    pub(crate) fn render(&self, index: usize, block: &mut Block<'_>) -> Result<usize, Fault> {
        use rquickjs::CatchResultExt;
        let _keep = &self.runtime;
        self.context.with(|ctx| {
            type Hooks<'js> = (Function<'js>, TypedArray<'js, f64>, TypedArray<'js, f64>);
            let setup = || -> rquickjs::Result<Hooks<'_>> {
                let flux: Object = ctx.globals().get("__flux")?;
                Ok((flux.get("render")?, flux.get("out")?, flux.get("clocks")?))
            };
            let (render, out, clocks) = setup().map_err(|e| Fault::Error(e.to_string().into()))?;
            fill_clocks(&clocks, block);
            self.watchdog.arm(self.update_limit);
            let result = render
                .call::<_, f64>((index, block.frames, block.sample_rate, block.channels))
                .catch(&ctx);
            let fired = self.watchdog.disarm();
            match result {
                Ok(first) => {
                    let n = block.frames * block.channels;
                    // SAFETY: the bytes must stay valid while borrowed: no JavaScript runs until
                    // the copy below ends, so nothing can detach or resize the buffer.
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
                    let (location, message) =
                        caught_to_message(&ctx, caught, &self.locator, &self.watchdog);
                    Err(Fault::Error(match location {
                        Some(l) => format!("{l}: {message}").into(),
                        None => message.into(),
                    }))
                }
            }
        })
    }
}

/// Copies the block's clock into the prelude's `clocks`, laid out as [`flux_engine::Clock`]
/// is: `t`, `beat`, `bar`, `bpm`, `note`, `gate`, `velocity`, `bend`
/// ([`flux_engine::Clock::FIELDS`]), each a run of [`MAX_BLOCK`] frames (the block's
/// frames are copied), then MIDI in's values (their start, count and the changes used).
fn fill_clocks(clocks: &TypedArray<'_, f64>, block: &Block<'_>) {
    let Some(raw) = clocks.as_raw() else {
        return;
    };
    let len = raw.len() / 8;
    if len < flux_engine::Clock::LEN {
        return;
    }
    let c = block.clock;
    let src = c.as_ptr();
    let dst = raw.as_ptr().cast::<f64>();
    let frames = block.frames.min(MAX_BLOCK);
    let midi = &c.midi;
    let used = 3 * (midi.count as usize).min(midi.changes.len());
    let at = flux_engine::Clock::MIDI_AT;
    let runs = (0..flux_engine::Clock::FIELDS.len()).map(|k| (k * MAX_BLOCK, frames));
    let values = std::iter::once((at, midi.start.len() + 1 + used));
    for (from, n) in runs.chain(values) {
        // SAFETY: `src` points at the clock, `Clock::LEN` f64s (it is `repr(C)` and holds
        // only f64s), and `dst` at the typed array's `len >= Clock::LEN` f64s (checked
        // above), aligned as a Float64Array's elements are; `from + n` stays within both
        // (a run's frames are at most MAX_BLOCK; MIDI in's values end at its last change).
        // No JavaScript runs during the copy, so nothing can detach or resize the buffer,
        // and nothing else reads or writes it meanwhile.
        unsafe {
            std::ptr::copy_nonoverlapping(src.add(from), dst.add(from), n);
        }
    }
}

/// A signal on the JavaScript tier: its `update` is called once per frame.
pub(crate) struct JsSignal {
    pub(crate) cartridge: Arc<Cartridge>,
    pub(crate) index: usize,
    /// `file:line:col` of its `update`, when known.
    pub(crate) location: Option<String>,
}

impl Signal for JsSignal {
    fn render(&mut self, block: &mut Block<'_>) -> Result<(), Fault> {
        self.cartridge.render(self.index, block).map(drop)
    }

    fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    fn tier(&self) -> Tier {
        Tier::Js
    }
}
