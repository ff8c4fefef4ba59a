//! The native render path allocates nothing: the seed's examples, compiled, rendered inside
//! `assert_no_alloc` (which aborts the test on any allocation or free).

use std::path::Path;
use std::sync::Arc;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use flux_engine::{engine, EngineConfig, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader, TierChoice};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn native_signals_render_without_allocating() {
    let state = Arc::new(StateMemory::new(65_536));
    let mut loader = Loader::new(
        state.clone(),
        StateAllocator::new(65_536, 64),
        LoadOptions {
            channels: 2,
            tier: TierChoice::Native,
            ..LoadOptions::default()
        },
    );
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 2), state);
    let mut out = vec![0.0f32; 1024 * 2];
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in [
        "all-six.js",
        "vortex-64-loop.js",
        "lissajous.js",
        "all-six.js",
    ] {
        let loaded = loader.load_file(&examples.join(name)).unwrap();
        assert!(loaded.signals.iter().all(|s| s.tier == Tier::Native));
        ctl.swap(loaded.patch);
        // The swap happens inside `process`, as on the DSP thread.
        assert_no_alloc(|| {
            for _ in 0..8 {
                eng.process(&mut out);
            }
        });
        // Retired patches (and their machine code) are freed here, on this thread.
        assert!(ctl.collect().is_empty());
        assert!(out.iter().any(|&s| s != 0.0), "{name} is silent");
    }
}

/// Counts frames in slot 0 and, after 300 of them, loops forever.
const SPINS: &str = "(mem, idx) => ({ update: () => { mem[idx] += 1; if (mem[idx] > 300) { while (true) { mem[idx + 1] += 1; } } return 0.1; } })";
/// Counts frames in slot 0 and, after 300 of them, returns undefined.
const UNDEF: &str =
    "(mem, idx) => ({ update: () => { mem[idx] += 1; if (mem[idx] > 300) return undefined; return 0.1; } })";

fn native_loader(state: &Arc<StateMemory>) -> Loader {
    Loader::new(
        state.clone(),
        StateAllocator::new(state.len(), 64),
        LoadOptions {
            channels: 2,
            tier: TierChoice::Native,
            ..LoadOptions::default()
        },
    )
}

/// The faults collected, as `id: message`, sorted.
fn reports(ctl: &mut flux_engine::Controller) -> Vec<String> {
    let mut got: Vec<String> = ctl
        .collect()
        .into_iter()
        .map(|f| format!("{}: {}", f.id, f.fault))
        .collect();
    got.sort();
    got
}

fn fuel_message(place: &str, id: &str) -> String {
    format!(
        "{id}: {place}: update of '{id}' ran {} loop iterations in one block (an endless loop?)",
        flux_jit::FUEL_PER_BLOCK
    )
}

fn undefined_message(place: &str, id: &str) -> String {
    format!("{id}: {place}: TypeError: update of '{id}' returned undefined; expected a number or an array of numbers")
}

#[test]
fn native_faults_are_plain_values_on_the_dsp_thread_and_named_on_the_main_thread() {
    let state = Arc::new(StateMemory::new(4096));
    let mut loader = native_loader(&state);
    let src = format!("flux('spin', {SPINS});\nflux('undef', {UNDEF});\n");
    let loaded = loader.load_source("a.js", &src).unwrap();
    assert!(loaded.signals.iter().all(|s| s.tier == Tier::Native));
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 2), state);
    ctl.swap(loaded.patch);
    let mut out = vec![0.0f32; 512 * 2];
    // Both fault at their 301st frame, inside this call.
    assert_no_alloc(|| eng.process(&mut out));
    // Each names the place of its `update`.
    assert_eq!(
        reports(&mut ctl),
        [
            fuel_message("a.js:1:39", "spin"),
            undefined_message("a.js:2:40", "undef")
        ]
    );
    // The blocks before the faulting one played; then their last frame fades out over the
    // shortest fault fade (5 ms, 240 frames); then silence.
    assert_eq!(out[255 * 2], (0.2f64).tanh() as f32);
    let g = 0.5 + 0.5 * (std::f64::consts::PI / 240.0).cos();
    assert!((f64::from(out[256 * 2]) - (0.2 * g).tanh()).abs() < 1e-7);
    assert!(out[(256 + 240) * 2..].iter().all(|&s| s == 0.0));
}

#[test]
fn faults_of_native_code_fading_out_are_reported_with_the_old_place() {
    let state = Arc::new(StateMemory::new(4096));
    let mut loader = native_loader(&state);
    // Replaced (crossfaded, old code on shadow state) and removed (faded out) signals,
    // each kind of fault.
    let a = format!(
        "flux('xf', {SPINS});\nflux('xu', {UNDEF});\nflux('yf', {SPINS});\nflux('yu', {UNDEF});\n"
    );
    let b = "flux('xf', () => ({ update: () => 0.25 }));\nflux('xu', () => ({ update: () => 0.25 }));\n";
    let first = loader.load_source("a.js", &a).unwrap();
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 2), state);
    ctl.swap(first.patch);
    let mut out = vec![0.0f32; 256 * 2];
    eng.process(&mut out);
    assert!(reports(&mut ctl).is_empty());
    let second = loader.load_source("b.js", b).unwrap();
    assert!(second.signals.iter().all(|s| s.tier == Tier::Native));
    ctl.set_fade(1000);
    ctl.swap(second.patch);
    // Frames 257 to 768: the old code of all four faults at its 301st frame, mid-fade.
    let mut out = vec![0.0f32; 512 * 2];
    assert_no_alloc(|| eng.process(&mut out));
    // Each names the place of its old `update`, in a.js.
    let mut expected = vec![
        fuel_message("a.js:1:37", "xf"),
        undefined_message("a.js:2:37", "xu"),
        fuel_message("a.js:3:37", "yf"),
        undefined_message("a.js:4:37", "yu"),
    ];
    expected.sort();
    assert_eq!(reports(&mut ctl), expected);
    // The new code plays on: past the fade, only its two signals.
    let mut out = vec![0.0f32; 1024 * 2];
    assert_no_alloc(|| eng.process(&mut out));
    assert_eq!(out[1023 * 2], (0.5f64).tanh() as f32);
    assert!(reports(&mut ctl).is_empty());
}

#[test]
fn a_patch_built_from_the_library_renders_and_crossfades_without_allocating() {
    let state = Arc::new(StateMemory::new(1 << 20));
    let mut loader = Loader::new(
        state.clone(),
        StateAllocator::new(1 << 20, 64).with_guard(64),
        LoadOptions {
            tier: TierChoice::Native,
            ..LoadOptions::default()
        },
    );
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 1), state);
    ctl.set_fade(300);
    let mut out = vec![0.0f32; 1024];
    for pitch in ["220", "330", "440"] {
        let source = format!(
            "flux('lead', () => {{ const lfo = sine(); const tone = sine(); \
             return {{ update: () => tone({pitch} + 3 * lfo(5)) * 0.3 }}; }});\n\
             play('hum', s => Math.sin(2 * Math.PI * 55 * s.t) * 0.2);"
        );
        let loaded = loader.load_source("lib.js", &source).unwrap();
        assert!(loaded.signals.iter().all(|s| s.tier == Tier::Native));
        ctl.swap(loaded.patch);
        // The swap, the crossfade over the units' shadow state and its end.
        assert_no_alloc(|| {
            for _ in 0..4 {
                eng.process(&mut out);
            }
        });
        assert!(ctl.collect().is_empty());
        assert!(out.iter().any(|&s| s != 0.0));
    }
}
