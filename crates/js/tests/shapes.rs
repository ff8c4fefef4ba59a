//! Shapes that once overflowed the stack (and ended the process) load or are refused with
//! a diagnostic at their place: deep brackets, long operator chains, in a file or a module.

use std::sync::Arc;

use flux_engine::{StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader};

fn loader() -> Loader {
    Loader::new(
        Arc::new(StateMemory::new(1 << 16)),
        StateAllocator::new(1 << 16, 64),
        LoadOptions::default(),
    )
}

#[test]
fn arrays_nested_eight_thousand_deep_are_refused_at_their_place() {
    let src = format!(
        "flux('a', () => ({{ update: () => {}0{} }}));",
        "[".repeat(8_000),
        "]".repeat(8_000)
    );
    let d = loader().load_source("deep.js", &src).unwrap_err();
    assert_eq!(
        d.to_string(),
        "deep.js:1:1031: brackets nested more than 1000 deep: Flux does not load shapes this deep"
    );
}

#[test]
fn a_sum_of_nine_thousand_terms_loads_and_runs_native() {
    let src = format!(
        "flux('a', () => ({{ update: () => 0{} }}));",
        " + 0.0001".repeat(9_000)
    );
    let loaded = loader().load_source("sum.js", &src).unwrap();
    assert_eq!(loaded.signals[0].tier, Tier::Native);
}

#[test]
fn a_sum_of_twelve_thousand_terms_is_refused_at_its_place() {
    let src = format!(
        "const k = 1;\nflux('a', () => ({{ update: () => 0{} }}));",
        " + k".repeat(12_000)
    );
    let d = loader().load_source("sum.js", &src).unwrap_err();
    assert!(d.to_string().starts_with("sum.js:2:"), "{d}");
    assert!(d.message.contains("more than 10000 operators"), "{d}");
}

#[test]
fn a_module_nested_too_deep_is_refused_at_its_own_place() {
    let dir = std::env::temp_dir().join(format!("flux-shapes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("deep.js"),
        format!(
            "export const x = {}1{};\n",
            "(".repeat(2_000),
            ")".repeat(2_000)
        ),
    )
    .unwrap();
    let main = dir.join("main.js");
    std::fs::write(
        &main,
        "import { x } from './deep.js';\nflux('a', () => ({ update: () => x * 0 }));\n",
    )
    .unwrap();
    let d = loader().load_file(&main).unwrap_err();
    let text = d.to_string();
    assert!(text.contains("deep.js:1:1018"), "{text}");
    assert!(
        text.contains("brackets nested more than 1000 deep"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn helpers_that_call_each_other_a_million_times_stay_on_the_javascript_tier() {
    let mut src = String::from("const f0 = (x) => x * 0.5;\n");
    for level in 1..=6 {
        let call = format!("f{}(x)", level - 1);
        src += &format!("const f{level} = (x) => {};\n", vec![call; 10].join(" + "));
    }
    src += "flux('bomb', () => ({ update: () => f6(1e-9) }));\n";
    src += "flux('fine', () => ({ update: () => f2(0.001) }));\n";
    let loaded = loader().load_source("bomb.js", &src).unwrap();
    assert_eq!(loaded.signals[0].tier, Tier::Js);
    assert_eq!(
        loaded.signals[0].reason.as_deref(),
        Some("2:43: more than 4096 calls to inline (helpers that call each other many times over)")
    );
    assert_eq!(loaded.signals[1].tier, Tier::Native);
}

#[test]
fn a_file_of_five_thousand_small_functions_is_tagged_in_linear_time() {
    // Tagging was once quadratic (functions times references): a 700 KB file of 20,000
    // functions took 27 s. This one, a quarter of it, now loads at once; its last function
    // is found, tagged and compiled.
    let mut src = String::from("const k = 1;\n");
    for i in 0..5_000 {
        src += &format!("function f{i}(x) {{ return x * {i} + k; }}\n");
    }
    src += "flux('a', () => ({ update: () => f4999(0.001) * 0 }));\n";
    let loaded = loader().load_source("many.js", &src).unwrap();
    assert_eq!(loaded.signals[0].tier, Tier::Native);
    assert_eq!(loaded.signals[0].location.as_ref().unwrap().line, 5_002);
}

#[test]
fn a_thrown_value_whose_getter_loops_is_reported_instead_of_hanging() {
    let bad =
        "const bad = {};\nObject.defineProperty(bad, 'message', { get() { for (;;) {} } });\n";
    let d = loader()
        .load_source(
            "bad.js",
            &format!("{bad}flux('g', () => {{ throw bad; }});\n"),
        )
        .unwrap_err();
    assert_eq!(
        d.to_string(),
        "bad.js:3:1: threw a value whose description ran longer than 50 ms (a getter that loops?)"
    );
    // Thrown from update: on the DSP thread, the fault is reported the same way.
    let src = format!("{bad}flux('u', () => ({{ update: () => {{ throw bad; }} }}));\n");
    let loaded = loader().load_source("bad.js", &src).unwrap();
    let probe = loaded.probe_channels();
    let fault = probe[0].as_ref().unwrap_err().to_string();
    assert!(
        fault.contains("threw a value whose description ran longer than 50 ms"),
        "{fault}"
    );
}
