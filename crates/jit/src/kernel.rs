//! Compiled kernels and the signals that run them.

use std::sync::{Arc, Mutex};

use cranelift_jit::JITModule;
use flux_engine::{Block, Fault, Signal, StateMemory, Tier, MAX_BLOCK};

/// What a kernel reads and writes for one block. Laid out for the generated code.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct KernelCtx {
    pub state: *mut f64,
    pub out: *mut f64,
    pub frames: u64,
    pub sample_rate: f64,
    pub fuel: u64,
    pub rng: u64,
    /// The instance's parameters: the captured numbers of a kernel shared by several
    /// signals (see `Captured::Param`).
    pub params: *const f64,
    /// The block's [`Clock`](flux_engine::Clock): field `k` of frame `f` at `k * MAX_BLOCK + f`.
    pub clock: *const f64,
}

/// Byte offsets of [`KernelCtx`] fields, for the code generator.
pub(crate) mod ctx_offset {
    pub const STATE: i32 = 0;
    pub const OUT: i32 = 8;
    pub const FRAMES: i32 = 16;
    pub const SAMPLE_RATE: i32 = 24;
    pub const FUEL: i32 = 32;
    pub const PARAMS: i32 = 48;
    pub const CLOCK: i32 = 56;
}

// The generated code addresses the context by these offsets.
const _: () = {
    assert!(std::mem::offset_of!(KernelCtx, state) == ctx_offset::STATE as usize);
    assert!(std::mem::offset_of!(KernelCtx, out) == ctx_offset::OUT as usize);
    assert!(std::mem::offset_of!(KernelCtx, frames) == ctx_offset::FRAMES as usize);
    assert!(std::mem::offset_of!(KernelCtx, sample_rate) == ctx_offset::SAMPLE_RATE as usize);
    assert!(std::mem::offset_of!(KernelCtx, fuel) == ctx_offset::FUEL as usize);
    assert!(std::mem::offset_of!(KernelCtx, params) == ctx_offset::PARAMS as usize);
    assert!(std::mem::offset_of!(KernelCtx, clock) == ctx_offset::CLOCK as usize);
};

/// Kernel results.
pub(crate) mod status {
    pub const OK: u32 = 0;
    pub const OUT_OF_FUEL: u32 = 1;
    pub const RETURNED_UNDEFINED: u32 = 2;
}

/// Loop iterations one block of one signal may run before it is stopped.
pub const FUEL_PER_BLOCK: u64 = 50_000_000;

/// A kernel: renders a block of one signal. `extern "C" fn(*mut KernelCtx) -> u32`.
pub(crate) type KernelFn = unsafe extern "C" fn(*mut KernelCtx) -> u32;

/// The machine code of one load, freed when the last signal using it is dropped.
///
/// Patches are dropped on the main thread, after the DSP thread has handed them back, so
/// no kernel of this code is running when it is freed.
pub(crate) struct Code {
    module: Mutex<Option<JITModule>>,
    /// Constant tables the code reads (captured arrays); they live as long as the code.
    _tables: Vec<Box<[f64]>>,
}

impl Code {
    pub(crate) fn new(module: JITModule, tables: Vec<Box<[f64]>>) -> Self {
        Self {
            module: Mutex::new(Some(module)),
            _tables: tables,
        }
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        let module = self
            .module
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(module) = module {
            // SAFETY: kernel pointers into this module live only in `NativeSignal`s, each of
            // which holds an `Arc<Code>`; this is the last `Arc`, so every such signal has
            // been dropped and none of the module's functions can run or be called again.
            unsafe { module.free_memory() };
        }
    }
}

/// A signal on the native tier.
///
/// Its kernel was compiled for one channel count; [`render`](Signal::render) panics on a
/// block of another shape rather than let the kernel write past it.
pub struct NativeSignal {
    code: Arc<Code>,
    kernel: KernelFn,
    state: Arc<StateMemory>,
    rng: u64,
    /// Output channels the kernel writes per frame.
    channels: usize,
    /// `file:line:col` of the `update`, for naming faults on the main thread.
    location: String,
    /// Its parameters, when its kernel is shared with other signals.
    params: Box<[f64]>,
    /// Whether its code reads the transport's clock.
    reads_clock: bool,
}

impl NativeSignal {
    pub(crate) fn new(
        code: Arc<Code>,
        kernel: KernelFn,
        state: Arc<StateMemory>,
        seed: u64,
        location: String,
        channels: usize,
        params: Vec<f64>,
    ) -> Self {
        Self {
            code,
            kernel,
            state,
            rng: seed | 1,
            channels,
            location,
            params: params.into_boxed_slice(),
            reads_clock: true,
        }
    }

    /// Says whether the kernel reads the transport's clock (the compiler knows).
    pub(crate) fn reading_clock(mut self, reads: bool) -> Self {
        self.reads_clock = reads;
        self
    }
}

impl NativeSignal {
    /// The address of its machine code: signals made by one function of the same shape
    /// (voices made in a loop) share it.
    pub fn kernel_address(&self) -> usize {
        self.kernel as usize
    }
}

impl Signal for NativeSignal {
    fn render(&mut self, block: &mut Block<'_>) -> Result<(), Fault> {
        let _alive = &self.code;
        // The kernel writes `frames * self.channels` samples: check the block holds them.
        assert_eq!(
            block.channels, self.channels,
            "a native kernel compiled for {} channels cannot render {}",
            self.channels, block.channels
        );
        assert!(
            block.frames <= MAX_BLOCK,
            "a block of {} frames is longer than {MAX_BLOCK}",
            block.frames
        );
        assert!(
            block.out.len() >= block.frames * block.channels,
            "a block of {} frames of {} channels needs {} samples, not {}",
            block.frames,
            block.channels,
            block.frames * block.channels,
            block.out.len()
        );
        let mut ctx = KernelCtx {
            state: self.state.as_ptr(),
            out: block.out.as_mut_ptr(),
            frames: block.frames as u64,
            sample_rate: block.sample_rate,
            fuel: FUEL_PER_BLOCK,
            rng: self.rng,
            params: self.params.as_ptr(),
            clock: block.clock.as_ptr(),
        };
        // SAFETY: `ctx` is a valid, exclusive `KernelCtx` for the call. The kernel was
        // compiled for `self.channels` (asserted equal to `block.channels` above) and writes
        // exactly `frames * channels` samples from `out`, which the asserts above show
        // `block.out` holds. It reads and writes the state memory only at indices it has
        // checked against the memory's length (`state` is alive: `self.state`); it reads
        // `params` only below the number of parameters its compile gave every instance
        // (`self.params` holds that many); it reads the clock only at frames below `frames`
        // (at most `MAX_BLOCK`, asserted); and its machine code is alive as long as
        // `self.code`.
        let status = unsafe { (self.kernel)(&mut ctx) };
        self.rng = ctx.rng;
        match status {
            status::OK => Ok(()),
            // Plain values: the main thread names the signal and formats the message.
            status::OUT_OF_FUEL => Err(Fault::OutOfFuel {
                iterations: FUEL_PER_BLOCK,
            }),
            _ => Err(Fault::ReturnedUndefined),
        }
    }

    fn location(&self) -> Option<&str> {
        Some(&self.location)
    }

    fn rebased(&self, state: &Arc<StateMemory>) -> Option<Box<dyn Signal>> {
        // The kernel checks indices against the length it was compiled for.
        (state.len() == self.state.len()).then(|| {
            Box::new(NativeSignal {
                code: self.code.clone(),
                kernel: self.kernel,
                state: state.clone(),
                rng: self.rng,
                channels: self.channels,
                location: self.location.clone(),
                params: self.params.clone(),
                reads_clock: self.reads_clock,
            }) as Box<dyn Signal>
        })
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }

    fn reads_clock(&self) -> bool {
        self.reads_clock
    }

    fn fills_block(&self) -> bool {
        // Every return writes every channel (missing ones as 0).
        true
    }
}

// Runtime functions the generated code calls. Each calls the C library's function, as
// QuickJS does, so both tiers round alike.

pub(crate) extern "C" fn js_fmod(a: f64, b: f64) -> f64 {
    a % b
}

/// `**` and `Math.pow` as QuickJS computes them: NaN for (±1) ** ±Infinity and NaN.
pub(crate) extern "C" fn js_pow(a: f64, b: f64) -> f64 {
    if !b.is_finite() && a.abs() == 1.0 {
        f64::NAN
    } else {
        a.powf(b)
    }
}

/// `Math.round`: halves go up, and -0.5 <= x < 0 gives -0.
pub(crate) extern "C" fn js_round(a: f64) -> f64 {
    let bits = a.to_bits();
    let e = ((bits >> 52) & 0x7ff) as u32;
    if e < 1023 {
        let sign = bits & (1 << 63);
        // |a| >= 0.5 (but not -0.5) rounds away to ±1; the rest to ±0.
        if e == 1022 && bits != 0xbfe0_0000_0000_0000 {
            f64::from_bits(sign | (1023u64 << 52))
        } else {
            f64::from_bits(sign)
        }
    } else if e < 1023 + 52 {
        let s = bits >> 63;
        let one = 1u64 << (52 - (e - 1023));
        let rounded = (bits + (one >> 1) - s) & !(one - 1);
        f64::from_bits(rounded)
    } else {
        a
    }
}

/// `Math.sign`.
pub(crate) extern "C" fn js_sign(a: f64) -> f64 {
    if a.is_nan() || a == 0.0 {
        a
    } else if a < 0.0 {
        -1.0
    } else {
        1.0
    }
}

/// ToInt32.
pub(crate) extern "C" fn js_to_int32(a: f64) -> i32 {
    if !a.is_finite() {
        return 0;
    }
    let t = a.trunc();
    let m = t % 4_294_967_296.0;
    let m = if m < 0.0 { m + 4_294_967_296.0 } else { m };
    (m as u64 as u32) as i32
}

/// `Math.random`: xorshift64* on the signal's own generator (seeded with `--seed`).
pub(crate) extern "C" fn js_random(ctx: *mut KernelCtx) -> f64 {
    // SAFETY: generated code calls this only with its own `ctx` argument: the exclusive
    // `&mut KernelCtx` that `NativeSignal::render` made for the call, alive until it returns.
    let ctx = unsafe { &mut *ctx };
    let mut x = ctx.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ctx.rng = x;
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

/// MIDI in's value `k` at frame `frame` of the block (`midi.cc(n)`, `midi.noteOf(i)`...),
/// when the block has changes (with none, the kernel loads the start value itself).
pub(crate) extern "C" fn midi_value(clock: *const flux_engine::Clock, frame: u64, k: u64) -> f64 {
    // SAFETY: generated code calls this only with the block's clock (`KernelCtx::clock`,
    // from `Clock::as_ptr`), which `NativeSignal::render` borrows for the whole call.
    let clock = unsafe { &*clock };
    clock.midi.value(frame as usize, k as usize)
}

macro_rules! unary {
    ($($name:ident => $f:ident),* $(,)?) => {
        $(pub(crate) extern "C" fn $name(a: f64) -> f64 { a.$f() })*
    };
}

unary! {
    js_sin => sin, js_cos => cos, js_tan => tan, js_asin => asin, js_acos => acos,
    js_atan => atan, js_sinh => sinh, js_cosh => cosh, js_tanh => tanh, js_exp => exp, js_exp_m1 => exp_m1, js_ln => ln,
    js_ln_1p => ln_1p, js_log2 => log2, js_log10 => log10, js_cbrt => cbrt,
}

// Rust computes these with its own formulas; QuickJS calls the C library's.
extern "C" {
    fn asinh(x: f64) -> f64;
    fn acosh(x: f64) -> f64;
    fn atanh(x: f64) -> f64;
}

pub(crate) extern "C" fn js_asinh(a: f64) -> f64 {
    // SAFETY: the C library's `double f(double)`: no pointers, no state beyond `errno`.
    unsafe { asinh(a) }
}

pub(crate) extern "C" fn js_acosh(a: f64) -> f64 {
    // SAFETY: the C library's `double f(double)`: no pointers, no state beyond `errno`.
    unsafe { acosh(a) }
}

pub(crate) extern "C" fn js_atanh(a: f64) -> f64 {
    // SAFETY: the C library's `double f(double)`: no pointers, no state beyond `errno`.
    unsafe { atanh(a) }
}

pub(crate) extern "C" fn js_atan2(a: f64, b: f64) -> f64 {
    a.atan2(b)
}

pub(crate) extern "C" fn js_hypot(a: f64, b: f64) -> f64 {
    a.hypot(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_matches_javascript() {
        for (x, want) in [
            (2.5, 3.0),
            (-2.5, -2.0),
            (0.49999999999999994, 0.0),
            (-0.5, -0.0),
            (-0.4, -0.0),
            (0.5, 1.0),
            (1.5, 2.0),
            (-1.5, -1.0),
            (4503599627370495.5, 4503599627370496.0),
        ] {
            let got = js_round(x);
            assert_eq!(got.to_bits(), f64::to_bits(want), "round({x}) = {got}");
        }
        assert!(js_round(f64::NAN).is_nan());
    }

    #[test]
    fn to_int32_wraps() {
        assert_eq!(js_to_int32(4_294_967_296.0 + 5.0), 5);
        assert_eq!(js_to_int32(2_147_483_648.0), -2_147_483_648);
        assert_eq!(js_to_int32(-1.9), -1);
        assert_eq!(js_to_int32(f64::NAN), 0);
        assert_eq!(js_to_int32(-4_294_967_297.0), -1);
    }

    #[test]
    fn pow_of_one_to_infinity_is_nan() {
        assert!(js_pow(1.0, f64::INFINITY).is_nan());
        assert!(js_pow(-1.0, f64::NEG_INFINITY).is_nan());
        assert_eq!(js_pow(2.0, 10.0), 1024.0);
        assert!(js_pow(1.0, f64::NAN).is_nan());
    }
}
