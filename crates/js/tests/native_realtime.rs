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
