//! The two tiers agree sample for sample: the examples, JavaScript's corner cases, and
//! randomly generated update functions, rendered once on each tier and compared bit for bit
//! (output and state memory). NaNs compare equal whatever their sign and payload: QuickJS
//! itself makes different NaN bits for `3 % 0` and `1.5 % 0`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flux_engine::{engine, EngineConfig, Fault, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader, TierChoice};
use proptest::prelude::*;

const SR: u32 = 48_000;

/// Renders `source` on one tier; returns the output, the state memory's first slots and
/// the faults (kind, channel and frame: the message wording differs between tiers).
fn render(
    source: &str,
    tier: TierChoice,
    channels: usize,
    frames: usize,
) -> (Vec<f32>, Vec<u64>, Vec<String>) {
    let state = Arc::new(StateMemory::new(1 << 20));
    let mut loader = Loader::new(
        state.clone(),
        StateAllocator::new(1 << 20, 64),
        LoadOptions {
            sample_rate: SR,
            channels,
            tier,
            load_time_limit: Duration::from_secs(5),
            ..LoadOptions::default()
        },
    );
    let loaded = loader
        .load_source("tiers.js", source)
        .unwrap_or_else(|d| panic!("{d}\n{source}"));
    let want = if tier == TierChoice::Native {
        Tier::Native
    } else {
        Tier::Js
    };
    for s in &loaded.signals {
        assert_eq!(s.tier, want, "{}: {:?}\n{source}", s.id, s.reason);
    }
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, channels), state.clone());
    ctl.swap(loaded.patch);
    let mut out = vec![0.0f32; frames * channels];
    // Uneven chunks, so blocks start at different frames.
    for chunk in out.chunks_mut(37 * channels) {
        eng.process(chunk);
    }
    let faults = ctl
        .collect()
        .into_iter()
        .map(|f| match f.fault {
            Fault::NonFinite {
                value,
                channel,
                frame,
            } => {
                format!("{} {:x} {channel} {frame}", f.id, bits(value))
            }
            other => format!("{} {other:?}", f.id),
        })
        .collect();
    let slots = (0..1024).map(|i| bits(state.get(i).unwrap())).collect();
    (out, slots, faults)
}

/// The bits of `x`, with every NaN the same.
fn bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// Renders on both tiers, asserts equal output, state and faults; returns the faults.
fn same_on_both_tiers(source: &str, channels: usize, frames: usize) -> Vec<String> {
    let (js_out, js_state, js_faults) = render(source, TierChoice::Js, channels, frames);
    let (native_out, native_state, native_faults) =
        render(source, TierChoice::Native, channels, frames);
    assert_eq!(js_faults, native_faults, "{source}");
    for (i, (a, b)) in js_out.iter().zip(&native_out).enumerate() {
        let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        assert!(same, "sample {i}: js {a} native {b}\n{source}");
    }
    for (i, (a, b)) in js_state.iter().zip(&native_state).enumerate() {
        assert_eq!(
            a,
            b,
            "state slot {i}: js {} native {}\n{source}",
            f64::from_bits(*a),
            f64::from_bits(*b)
        );
    }
    js_faults
}

#[test]
fn every_example_renders_the_same_on_both_tiers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "js") {
            let source = std::fs::read_to_string(&path).unwrap();
            let faults = same_on_both_tiers(&source, 3, 3000);
            assert!(faults.is_empty(), "{}: {faults:?}", path.display());
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} examples");
}

/// One signal that stores `exprs` (evaluated each frame with `t` counting up from `start`
/// in steps of `step`) in its state slots and returns the first.
fn corner(exprs: &[&str], start: f64, step: f64) -> String {
    let stores: String = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| format!("    mem[idx + {}] = {e};\n", i + 1))
        .collect();
    format!(
        "flux('c', (mem, idx) => ({{ update: () => {{\n    const t = {start:?} + mem[idx] * {step:?};\n    mem[idx] += 1;\n{stores}    return [Math.tanh(mem[idx + 1]) || 0];\n  }} }}));\n"
    )
}

#[test]
fn javascript_corner_cases_agree() {
    let cases: &[(&[&str], f64, f64)] = &[
        // % with negatives and fractions, -0, x % 1 fast path, NaN and infinities.
        (
            &[
                "t % 3",
                "-t % 3",
                "t % -2.5",
                "(-t) % 1",
                "t % 1",
                "(t - 5) % 1",
                "t % 0",
                "Infinity % 2",
                "5 % Infinity",
            ],
            -4.0,
            0.75,
        ),
        // Rounding: Math.round halves go up; -0.5 rounds to -0.
        (
            &[
                "Math.round(t)",
                "Math.round(-t)",
                "Math.floor(t)",
                "Math.ceil(t)",
                "Math.trunc(t)",
                "Math.sign(t)",
                "Math.abs(t)",
                "Math.fround(t * 0.1)",
            ],
            -3.0,
            0.5,
        ),
        // Bitwise ops: ToInt32 wraps at 2^32, shifts mask to 5 bits, >>> is unsigned.
        (
            &[
                "(t * 1e9) | 0",
                "~t",
                "t << 33",
                "-t >> 1",
                "-t >>> 0",
                "(t * 3e9) ^ 7",
                "(t * 7) & 5",
                "Math.clz32(t)",
                "Math.imul(t * 1e5, 3e5)",
            ],
            -2.0,
            1.5,
        ),
        // Comparisons with NaN and -0; truthiness; && || ?? and ?: on numbers.
        (
            &[
                "(t === 0) ? 1 : 2",
                "(t > 0) + (t < 0) * 2",
                "(NaN === NaN) ? 1 : 0",
                "(-0 === 0) ? 1 : 0",
                "t && 3",
                "t || 4",
                "(mem[idx + 40000000] ?? 7)",
                "!t ? 1 : 0",
                "(t != t) ? 1 : 0",
            ],
            -1.0,
            0.5,
        ),
        // ** and Math.pow corners: 1 ** Infinity is NaN in JavaScript.
        (
            &[
                "t ** 2",
                "2 ** t",
                "(-t) ** 0.5",
                "1 ** (t * Infinity)",
                "Math.pow(t, 3)",
                "Math.hypot(t, 4)",
                "Math.atan2(t, -1)",
                "Math.min(t, -0, 0)",
                "Math.max(t, NaN)",
            ],
            -2.0,
            0.5,
        ),
        // The C library functions QuickJS calls.
        (
            &[
                "Math.sin(t)",
                "Math.cos(t)",
                "Math.tan(t)",
                "Math.asin(t / 10)",
                "Math.acos(t / 10)",
                "Math.atan(t)",
                "Math.sinh(t)",
                "Math.cosh(t)",
                "Math.tanh(t)",
            ],
            -5.0,
            0.37,
        ),
        (
            &[
                "Math.asinh(t)",
                "Math.acosh(t)",
                "Math.atanh(t / 10)",
                "Math.exp(t)",
                "Math.expm1(t)",
                "Math.log(t)",
                "Math.log1p(t)",
                "Math.log2(t)",
                "Math.log10(t)",
                "Math.cbrt(t)",
                "Math.sqrt(t)",
            ],
            -2.0,
            0.31,
        ),
        // Out-of-range state reads are undefined (NaN in arithmetic); writes there do nothing.
        (
            &[
                "mem[-1] + 1",
                "mem[1.5] * 2",
                "(mem[idx + 100000] = 5, mem[idx + 100000] + 0)",
                "mem.length",
            ],
            0.0,
            1.0,
        ),
    ];
    for (exprs, start, step) in cases {
        let faults = same_on_both_tiers(&corner(exprs, *start, *step), 1, 64);
        assert!(faults.is_empty(), "{faults:?}");
    }
}

#[test]
fn loops_destructuring_helpers_and_objects_agree() {
    let src = "\
const table = [0.1, 0.2, 0.3, 0.4];
const params = { k: 3, gain: 0.25 };
function shape(x, { k }) { return Math.tanh(k * x); }
const pair = (a, b) => [a + b, a - b];
flux('x', (mem, idx) => {
  const base = 2;
  return {
    update(sr) {
      let acc = 0;
      for (let i = 0; i < 5; i++) {
        if (i === 3) continue;
        acc += table[(mem[idx] + i) % 4] * base;
        if (acc > 100) break;
      }
      let n = 0;
      while (n < 3) { n++; }
      do { n--; } while (n > 1);
      const [s, d] = pair(acc, n);
      let [a, b] = [s, d];
      [a, b] = [b, a];
      mem[idx] = (mem[idx] + 1) % 1000;
      mem[idx + 1] += a;
      mem[idx + 2]++;
      const o = { v: shape(b * 0.01, params), w: params.gain };
      return [o.v * o.w, a > b ? 0.1 : -0.1];
    }
  };
});
";
    assert!(same_on_both_tiers(src, 2, 500).is_empty());
}

#[test]
fn views_of_the_state_memory_are_live_on_both_tiers() {
    // Captured views are read and written through the state memory, never folded: the
    // native tier once folded them as load-time constants (silence instead of a ramp).
    let src = "\
flux('v', (mem, idx) => {
  const v = mem.subarray(idx, idx + 4);
  const w = new Float64Array(mem.buffer, (idx + 2) * 8, 2);
  return {
    update: () => {
      v[0] += 0.01;
      v[1] = v[0] * 2;
      w[1] += v[1];
      v[7] = 5;
      w[0]++;
      let s = 0;
      for (let i = 0; i < v.length + 2; i++) s += v[i] ?? 0.125;
      return [v[0] + (v[9] ?? 0.5), (w[1] + v.length + w.length + s) * 0.001];
    }
  };
});
";
    assert!(same_on_both_tiers(src, 2, 500).is_empty());
    let (out, slots, _) = render(src, TierChoice::Native, 2, 500);
    // A ramp: the view's first slot counts 0.01 a frame.
    assert_eq!(
        f64::from_bits(slots[0]),
        (0..500).fold(0.0, |x, _| x + 0.01)
    );
    assert!(out[2 * 499] > out[2 * 10]);
}

#[test]
fn what_the_compiler_does_not_handle_stays_on_the_javascript_tier_with_a_reason() {
    let state = Arc::new(StateMemory::new(4096));
    let mut loader = Loader::new(state, StateAllocator::new(4096, 64), LoadOptions::default());
    let src = "flux('s', () => ({ update: () => {\n  const name = 'x';\n  return 0;\n} }));\n\
               flux('ok', () => ({ update: () => 0 }));\n";
    let loaded = loader.load_source("r.js", src).unwrap();
    assert_eq!(loaded.signals[0].tier, Tier::Js);
    assert_eq!(loaded.signals[0].reason.as_deref(), Some("2:16: strings"));
    assert_eq!(loaded.signals[1].tier, Tier::Native);
    // Forcing the native tier turns the reason into a load error.
    let mut strict = Loader::new(
        Arc::new(StateMemory::new(4096)),
        StateAllocator::new(4096, 64),
        LoadOptions {
            tier: TierChoice::Native,
            ..LoadOptions::default()
        },
    );
    let err = strict.load_source("r.js", src).unwrap_err().to_string();
    assert_eq!(
        err,
        "r.js:1:1: signal 's' cannot run on the native tier: 2:16: strings"
    );
}

#[test]
fn an_endless_loop_in_native_code_runs_out_of_fuel() {
    let state = Arc::new(StateMemory::new(4096));
    let mut loader = Loader::new(
        state.clone(),
        StateAllocator::new(4096, 64),
        LoadOptions {
            tier: TierChoice::Native,
            ..LoadOptions::default()
        },
    );
    let src =
        "flux('spin', (mem, idx) => ({ update: () => { while (true) { mem[idx] += 1; } } }));\n\
               flux('ok', () => ({ update: () => 0.5 }));";
    let loaded = loader.load_source("spin.js", src).unwrap();
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), state);
    ctl.swap(loaded.patch);
    let mut out = vec![0.0f32; 256];
    eng.process(&mut out);
    let faults = ctl.collect();
    assert_eq!(faults.len(), 1);
    assert_eq!(
        faults[0].fault.to_string(),
        format!(
            "spin.js:1:39: update of 'spin' ran {} loop iterations in one block (an endless loop?)",
            flux_jit::FUEL_PER_BLOCK
        )
    );
    assert!(out[200..].iter().all(|&s| s == 0.5f32.tanh()));
}

// ----- generated programs -----

/// A random numeric expression over `t`, locals `a`/`b`, state slots and a helper.
fn expr(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        (-8i32..8).prop_map(|n| format!("({})", f64::from(n) * 0.5)),
        Just("t".to_owned()),
        Just("a".to_owned()),
        Just("b".to_owned()),
        (0u32..4).prop_map(|k| format!("mem[idx + {k}]")),
        Just("k".to_owned()),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let sub = || expr(depth - 1);
    prop_oneof![
        3 => leaf,
        4 => (sub(), prop::sample::select(vec!["+", "-", "*", "/", "%", "**", "<", ">=", "===", "!==", "&&", "||", "|", "&", "^", "<<", ">>", ">>>"]), sub())
            .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        2 => (prop::sample::select(vec!["sin", "cos", "tanh", "abs", "floor", "round", "sqrt", "exp", "log", "sign", "trunc", "fround"]), sub())
            .prop_map(|(f, a)| format!("Math.{f}({a})")),
        1 => (sub(), sub()).prop_map(|(a, b)| format!("Math.min({a}, {b})")),
        1 => (sub(), sub(), sub()).prop_map(|(c, a, b)| format!("(({c}) ? {a} : {b})")),
        1 => sub().prop_map(|a| format!("helper({a})")),
        1 => sub().prop_map(|a| format!("(-({a}))")),
        1 => sub().prop_map(|a| format!("(!{a} ? 1 : 0)")),
    ]
    .boxed()
}

/// A random statement: assignments, state writes, branches and bounded loops.
fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => expr(2).prop_map(|e| format!("a = +({e});")),
        2 => expr(2).prop_map(|e| format!("b += {e};")),
        2 => ((0u32..4), expr(2)).prop_map(|(k, e)| format!("mem[idx + {k}] = {e};")),
        1 => (expr(1), expr(2), expr(2)).prop_map(|(c, x, y)| format!("if ({c}) {{ a = +({x}); }} else {{ b = +({y}); }}")),
        1 => ((1u32..5), expr(1)).prop_map(|(n, e)| format!("for (let i = 0; i < {n}; i++) {{ a += {e} * i; if (a > 1e6) break; }}")),
        1 => expr(1).prop_map(|e| format!("let w = 0; while (w < 3) {{ w++; b -= {e}; }}")),
    ]
}

fn program() -> impl Strategy<Value = String> {
    (prop::collection::vec(statement(), 1..6), expr(2), (-4i32..4)).prop_map(|(stmts, ret, k)| {
        let body: String = stmts.iter().map(|s| format!("      {{ {s} }}\n")).collect();
        format!(
            "const k = {k};\nconst helper = (x) => x * k - 1;\n\
             flux('p', (mem, idx) => ({{\n  update: (sr) => {{\n      const t = mem[idx + 5]++ / 7;\n      let a = t;\n      let b = 1;\n{body}      return [+({ret}), a, b];\n  }}\n}}));\n"
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(debug_assertions) { 48 } else { 256 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_update_functions_agree(src in program()) {
        same_on_both_tiers(&src, 3, 40);
    }
}

#[test]
fn the_clock_reads_the_same_on_both_tiers() {
    // The global, the captured object, play()'s s.beat and s.bar, and the module's export.
    let script = "\
const c = clock;
flux('g', (mem, idx) => ({ update: () => {
  mem[idx] = clock.t; mem[idx + 1] = clock.beat; mem[idx + 2] = clock.bar; mem[idx + 3] = clock.bpm;
  return [Math.sin(clock.beat * 6.283) * 0.5, c.bar % 1, c.nothing === undefined ? 0.1 : 0];
} }));
play('p', (s) => (s.beat % 1) * 0.1 + (s.bar % 1) * 0.1 + s.t);
";
    let faults = same_on_both_tiers(script, 3, 30_000);
    assert!(faults.is_empty(), "{faults:?}");
    let module = "\
import { clock, play } from 'flux.js';
play('m', () => clock.beat % 0.5 < 0.25 ? clock.bar * 0.01 : -clock.t * 0.01);
";
    let faults = same_on_both_tiers(module, 1, 30_000);
    assert!(faults.is_empty(), "{faults:?}");
}
