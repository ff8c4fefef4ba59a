//! Code sent as a part of a file (`Loader::load_snippet_at`) reports every place in the
//! file's lines and columns: syntax errors, `flux()` calls, throws while playing, and the
//! `update` of a signal whose fault has no place of its own, on both tiers.

use std::sync::Arc;
use std::time::Duration;

use flux_engine::{engine, EngineConfig, Fault, SignalFault, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loaded, Loader, TierChoice};

const SR: u32 = 48_000;

fn loader(tier: TierChoice) -> Loader {
    Loader::new(
        Arc::new(StateMemory::new(65_536)),
        StateAllocator::new(65_536, 64),
        LoadOptions {
            sample_rate: SR,
            channels: 1,
            load_time_limit: Duration::from_millis(500),
            tier,
            ..LoadOptions::default()
        },
    )
}

/// The faults of `loaded` over 4800 frames.
fn faults(loader: &Loader, loaded: Loaded) -> Vec<SignalFault> {
    let (mut ctl, mut eng) = engine(EngineConfig::new(SR, 1), loader.state().clone());
    ctl.swap(loaded.patch);
    let mut out = vec![0.0f32; 4800];
    eng.process(&mut out);
    ctl.collect()
}

/// Throws on its 3rd line, at column 26.
const THROWS: &str = "flux('bad', (mem, idx) => ({\n  update: (sr) => {\n    \
                      const x = mem[idx] + frq;\n    return [x];\n  }\n}));\n";
/// Returns NaN after 100 frames; its `update` starts on its 2nd line, column 11.
const NAN: &str = "flux('nan', (mem, idx) => ({\n  update: (sr) => {\n    mem[idx] += 1;\n    \
                   return [mem[idx] > 100 ? NaN : 0];\n  }\n}));\n";

#[test]
fn a_syntax_error_is_at_the_files_line_and_column() {
    let mut l = loader(TierChoice::Auto);
    let e = l
        .load_snippet_at("set.js", "\n\nflux('x', ;\n", &[], 20, 1)
        .unwrap_err();
    assert_eq!(e.location.to_string(), "set.js:22:11");
    // A column moves the first line only.
    let e = l
        .load_snippet_at("set.js", "flux('x', ;", &[], 7, 5)
        .unwrap_err();
    assert_eq!(e.location.to_string(), "set.js:7:15");
}

#[test]
fn a_throw_while_playing_names_the_files_line_and_the_flux_call_its_place() {
    let mut l = loader(TierChoice::Auto);
    let loaded = l.load_snippet_at("set.js", THROWS, &[], 20, 1).unwrap();
    assert_eq!(loaded.signals[0].tier, Tier::Js);
    assert_eq!(
        loaded.signals[0].location.as_ref().unwrap().to_string(),
        "set.js:20:1"
    );
    let f = faults(&l, loaded);
    assert_eq!(f.len(), 1, "{f:?}");
    let Fault::Error(message) = &f[0].fault else {
        panic!("{f:?}")
    };
    assert_eq!(
        message.to_string(),
        "set.js:22:26: ReferenceError: frq is not defined"
    );
}

#[test]
fn a_nan_names_the_update_at_the_files_line_on_both_tiers() {
    for (tier, expected) in [
        (TierChoice::Native, Tier::Native),
        (TierChoice::Js, Tier::Js),
    ] {
        let mut l = loader(tier);
        let loaded = l.load_snippet_at("set.js", NAN, &[], 20, 1).unwrap();
        assert_eq!(loaded.signals[0].tier, expected);
        let f = faults(&l, loaded);
        assert!(matches!(f[0].fault, Fault::NonFinite { .. }), "{f:?}");
        let place = f[0].location.as_deref().unwrap();
        assert!(place.starts_with("set.js:21:"), "{expected:?}: {place}");
    }
}

#[test]
fn placed_code_may_be_a_module() {
    let mut l = loader(TierChoice::Auto);
    let src = "import { flux } from './flux.js';\nflux('m', () => ({ update: () => 0 }));\n";
    let loaded = l.load_snippet_at("set.js", src, &[], 40, 1).unwrap();
    assert_eq!(
        loaded.signals[0].location.as_ref().unwrap().to_string(),
        "set.js:41:1"
    );
}
