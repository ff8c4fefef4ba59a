//! What the native tier reads of captured values is bounded and never stale: shared
//! arrays are read once, a load has a budget, typed arrays are not folded as constants,
//! and the prelude's internals cannot be replaced by user code.

use std::sync::Arc;

use flux_engine::{engine, EngineConfig, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader, TierChoice};

fn loader(tier: TierChoice) -> (Arc<StateMemory>, Loader) {
    let state = Arc::new(StateMemory::new(4096));
    let loader = Loader::new(
        state.clone(),
        StateAllocator::new(4096, 64),
        LoadOptions {
            tier,
            ..LoadOptions::default()
        },
    );
    (state, loader)
}

/// Each signal's id, tier and reason for staying on the JavaScript tier.
fn tiers(source: &str) -> Vec<(String, Tier, Option<String>)> {
    let (_, mut loader) = loader(TierChoice::Auto);
    let loaded = loader
        .load_source("c.js", source)
        .unwrap_or_else(|d| panic!("{d}"));
    loaded
        .signals
        .into_iter()
        .map(|s| (s.id, s.tier, s.reason))
        .collect()
}

#[test]
fn a_row_shared_many_times_is_read_once() {
    // 65536 references to one row of 65536: four billion elements if each were read.
    let src = "const row = new Array(65536).fill(0.25);\n\
               const table = new Array(65536).fill(row);\n\
               flux('t', () => ({ update: () => table[3][2] + table[65535][65535] }));\n";
    assert_eq!(tiers(src), [("t".to_owned(), Tier::Native, None)]);
}

#[test]
fn captures_past_the_load_budget_stay_on_the_javascript_tier() {
    // Ten distinct rows of 65536 per signal: the first fits in the budget, the second
    // does not.
    let rows = |name: &str| {
        format!(
            "const {name} = [];\nfor (let i = 0; i < 10; i++) {name}.push(new Array(65536).fill(i));\n"
        )
    };
    let src = format!(
        "{}{}flux('a', () => ({{ update: () => a[1][2] }}));\nflux('b', () => ({{ update: () => b[1][2] }}));\n",
        rows("a"),
        rows("b")
    );
    let got = tiers(&src);
    assert_eq!(got[0], ("a".to_owned(), Tier::Native, None));
    assert_eq!(
        got[1],
        (
            "b".to_owned(),
            Tier::Js,
            Some("the file's captured values pass the budget of 1048576 values".to_owned())
        )
    );
}

#[test]
fn typed_arrays_other_than_views_of_the_state_are_not_folded() {
    let src = "const table = new Float64Array(4).fill(0.5);\n\
               flux('t', () => ({ update: () => table[1] }));\n\
               flux('f', (mem) => { const f = new Float32Array(mem.buffer, 0, 8); return { update: () => f[1] }; });\n\
               flux('v', (mem, idx) => { const v = mem.subarray(idx, idx + 2); return { update: () => v[1] }; });\n";
    let got = tiers(src);
    assert_eq!(
        got[0],
        (
            "t".to_owned(),
            Tier::Js,
            Some("2:34: indexing a captured value that is a Float64Array (its elements can change while playing; plain arrays are folded)".to_owned())
        )
    );
    assert_eq!(
        got[1],
        (
            "f".to_owned(),
            Tier::Js,
            Some("3:91: indexing a captured value that is a Float32Array over FLUX_STATE (only Float64Array views of it compile)".to_owned())
        )
    );
    assert_eq!(got[2], ("v".to_owned(), Tier::Native, None));
}

#[test]
fn user_code_cannot_replace_the_prelude_s_hooks() {
    let src = "\
flux('a', () => ({ update: () => 0.5 }));
const silence = () => 0;
const attempts = [
  () => { __flux.render = silence; },
  () => { Object.defineProperty(__flux, 'render', { value: silence }); },
  () => { globalThis.__flux = { render: silence }; },
  () => { __flux.api.flux = silence; },
  () => { __fx.call = silence; },
  () => { delete globalThis.__flux; },
];
// Sloppy-mode code fails silently, strict code throws: either way nothing changes.
for (const attempt of attempts) {
  try { attempt(); } catch (e) {}
}
if (__flux.render === silence || __flux.api.flux === silence || __fx.call === silence) {
  throw new Error('a hook was replaced');
}
";
    let (state, mut loader) = loader(TierChoice::Js);
    let loaded = loader
        .load_source("c.js", src)
        .unwrap_or_else(|d| panic!("{d}"));
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 1), state);
    ctl.swap(loaded.patch);
    let mut out = vec![0.0f32; 256];
    eng.process(&mut out);
    assert!(ctl.collect().is_empty());
    assert!(out.iter().all(|&s| s == 0.5f32.tanh()), "{:?}", &out[..4]);
}

#[test]
fn reading_captures_is_held_to_the_load_s_time_limit() {
    let state = Arc::new(StateMemory::new(4096));
    let mut loader = Loader::new(
        state,
        StateAllocator::new(4096, 64),
        LoadOptions {
            load_time_limit: std::time::Duration::from_millis(300),
            ..LoadOptions::default()
        },
    );
    // Reading the captured object runs its getter, which never returns.
    let src = "const o = {};\n\
               Object.defineProperty(o, 'x', { get: function () { for (;;) {} }, enumerable: true });\n\
               flux('g', () => ({ update: () => o.x }));\n\
               flux('ok', () => ({ update: () => 0.5 }));\n";
    let loaded = loader.load_source("c.js", src).unwrap();
    let g = &loaded.signals[0];
    assert_eq!(g.tier, Tier::Js);
    let reason = g.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("reading its captured values passed the load's time limit ("),
        "{reason}"
    );
    // The next signal is not read: the time is up.
    assert_eq!(loaded.signals[1].tier, Tier::Js);
}
