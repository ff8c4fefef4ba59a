//! Loading signals files: the API, the examples, and every kind of bad input.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_engine::{engine, Fault, StateAllocator, StateMemory};
use flux_js::{LoadOptions, Loaded, Loader};

const SR: u32 = 48_000;

fn loader(channels: usize) -> Loader {
    let state = Arc::new(StateMemory::new(65_536));
    Loader::new(
        state,
        StateAllocator::new(65_536, 64),
        LoadOptions {
            sample_rate: SR,
            channels,
            load_time_limit: Duration::from_millis(500),
            update_time_limit: Duration::from_millis(200),
            ..LoadOptions::default()
        },
    )
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Renders `loaded` for `frames` frames through an engine, returning interleaved samples.
fn render(
    loader: &Loader,
    loaded: Loaded,
    frames: usize,
) -> (Vec<f32>, Vec<flux_engine::SignalFault>) {
    let channels = loader.options().channels;
    let (mut ctl, mut eng) = engine(
        flux_engine::EngineConfig::new(SR, channels),
        loader.state().clone(),
    );
    ctl.swap(loaded.patch);
    let mut out = vec![0.0f32; frames * channels];
    eng.process(&mut out);
    let faults = ctl.collect();
    (out, faults)
}

fn rising_crossings(samples: &[f32]) -> usize {
    samples
        .windows(2)
        .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
        .count()
}

#[test]
fn the_seed_examples_load_unchanged() {
    let expected = [
        ("sine-440.js", vec!["sine-440"]),
        ("breathing-sine.js", vec!["breathing-sine"]),
        ("vortex-morph.js", vec!["vortex-morph"]),
        ("van-der-pol.js", vec!["van-der-pol"]),
        ("lorenz.js", vec!["lorenz"]),
        ("fm-vortex.js", vec!["fm-vortex"]),
        (
            "all-six.js",
            vec![
                "sine-440",
                "breathing-sine",
                "vortex-morph",
                "van-der-pol",
                "lorenz",
                "fm-vortex",
            ],
        ),
    ];
    for (file, ids) in expected {
        let mut l = loader(1);
        let loaded = l
            .load_file(&example(file))
            .unwrap_or_else(|d| panic!("{d}"));
        let got: Vec<&str> = loaded.signals.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(got, ids, "{file}");
        let (out, faults) = render(&l, loaded, 4800);
        assert!(faults.is_empty(), "{file}: {faults:?}");
        assert!(out.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
        assert!(out.iter().any(|s| s.abs() > 0.01), "{file} is silent");
    }
    let mut l = loader(1);
    let loaded = l.load_file(&example("vortex-64-loop.js")).unwrap();
    assert_eq!(loaded.signals.len(), 64);
}

#[test]
fn sine_440_plays_at_440_hz() {
    let mut l = loader(1);
    let loaded = l.load_file(&example("sine-440.js")).unwrap();
    let (out, _) = render(&l, loaded, SR as usize);
    let n = rising_crossings(&out);
    assert!(
        (439..=441).contains(&n),
        "{n} rising zero crossings in one second"
    );
}

#[test]
fn the_js_tier_computes_what_the_seed_computes() {
    // The seed's sine-440 at 48 kHz: phase += 440/48000 mod 1, sample = tanh(sin(2 pi phase) / 2).
    let mut l = loader(1);
    let loaded = l.load_file(&example("sine-440.js")).unwrap();
    let (out, _) = render(&l, loaded, 1000);
    let mut phase = 0.0f64;
    for (i, &s) in out.iter().enumerate() {
        phase = (phase + 440.0 / 48_000.0) % 1.0;
        let want = ((phase * 2.0 * std::f64::consts::PI).sin() * 0.5).tanh() as f32;
        assert_eq!(s, want, "frame {i}");
    }
}

#[test]
fn a_script_without_imports_uses_the_global_api() {
    let mut l = loader(1);
    let loaded = l
        .load_source(
            "script.js",
            "flux('a', (mem, idx) => ({ update: () => 0.25 }));\nflux('b', () => ({ update: () => [0.25] }));\nconsole.log('ids', list());",
        )
        .unwrap();
    assert_eq!(loaded.signals.len(), 2);
    assert_eq!(l.drain_logs().0, vec!["ids [\"a\",\"b\"]".to_string()]);
    let (out, _) = render(&l, loaded, 10);
    assert!(out.iter().all(|&s| s == 0.5f32.tanh()));
}

#[test]
fn clear_and_remove_shape_the_patch_and_a_redefinition_moves_to_the_end() {
    let mut l = loader(1);
    let loaded = l
        .load_source(
            "s.js",
            "flux('x', () => ({ update: () => 0 }));\nclear();\n\
             flux('a', () => ({ update: () => 0 }));\nflux('b', () => ({ update: () => 0 }));\n\
             flux('c', () => ({ update: () => 0 }));\nremove('b');\nflux('a', () => ({ update: () => 0 }));",
        )
        .unwrap();
    let ids: Vec<&str> = loaded.signals.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["c", "a"]);
}

#[test]
fn ids_with_equal_character_sums_get_separate_state() {
    let mut l = loader(1);
    let src = "for (const id of ['ab', 'ba']) {\n\
        flux(id, (mem, idx) => ({ update: () => { mem[idx] += id === 'ab' ? 1 : 100; return 0; } }));\n}";
    let loaded = l.load_source("ids.js", src).unwrap();
    let (a, b) = (loaded.signals[0].block, loaded.signals[1].block);
    assert_ne!(a.offset, b.offset);
    let state = l.state().clone();
    render(&l, loaded, 10);
    assert_eq!(state.get(a.offset), Some(10.0));
    assert_eq!(state.get(b.offset), Some(1000.0));
}

#[test]
fn state_survives_a_reload_and_a_removed_signal_resumes() {
    let mut l = loader(1);
    let counter = "flux('n', (mem, idx) => ({ update: () => { mem[idx] += 1; return 0; } }));";
    let first = l.load_source("s.js", counter).unwrap();
    let block = first.signals[0].block;
    render(&l, first, 100);
    let empty = l.load_source("s.js", "// nothing").unwrap();
    assert!(empty.signals.is_empty());
    let again = l.load_source("s.js", counter).unwrap();
    assert_eq!(again.signals[0].block, block);
    render(&l, again, 50);
    assert_eq!(l.state().get(block.offset), Some(150.0));
}

#[test]
fn channels_map_onto_the_output() {
    let mut l = loader(2);
    let src = "flux('mono', () => ({ update: () => [0.1] }));\n\
               flux('stereo', () => ({ update: () => [0.2, -0.2] }));\n\
               flux('three', () => ({ update: () => [0.01, 0.02, 5] }));\n\
               flux('bare', () => ({ update: () => 0.05 }));\n\
               flux('short', () => ({ update: () => [] }));";
    let loaded = l.load_source("ch.js", src).unwrap();
    let probe: Vec<Result<usize, String>> = loaded
        .probe_channels()
        .into_iter()
        .map(|r| r.map_err(|f| f.to_string()))
        .collect();
    assert_eq!(probe[..4], [Ok(1), Ok(2), Ok(3), Ok(1)]);
    // An empty array is no sound: an error, as on the native tier.
    assert!(
        probe[4]
            .as_ref()
            .unwrap_err()
            .contains("returned an empty array"),
        "{probe:?}"
    );
    let (out, faults) = render(&l, loaded, 4);
    assert_eq!(faults.len(), 1, "{faults:?}");
    let left = (0.1f64 + 0.2 + 0.01 + 0.05).tanh() as f32;
    let right = (0.1f64 - 0.2 + 0.02 + 0.05).tanh() as f32;
    assert_eq!(&out[..2], &[left, right]);
}

#[test]
fn modules_can_import_relative_helpers() {
    let dir = tempdir();
    std::fs::write(dir.join("helpers.js"), "export const gain = 0.5;\n").unwrap();
    std::fs::write(
        dir.join("main.js"),
        "import { flux } from 'https://anywhere/flux.js';\nimport { gain } from './helpers.js';\n\
         flux('g', () => ({ update: () => gain }));\n",
    )
    .unwrap();
    let mut l = loader(1);
    let loaded = l
        .load_file(&dir.join("main.js"))
        .unwrap_or_else(|d| panic!("{d}"));
    let (out, _) = render(&l, loaded, 1);
    assert_eq!(out[0], 0.5f32.tanh());
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flux-js-test-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load_error(src: &str) -> String {
    let mut l = loader(1);
    l.load_source("bad.js", src).unwrap_err().to_string()
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    assert_eq!(
        load_error("flux('a', () => ({ update: () => 0 }));\n  let b = ;\n"),
        "bad.js:2:11: SyntaxError: unexpected token in expression: ';'"
    );
    assert_eq!(
        load_error(
            "import { flux } from './flux.js';\nflux('a', () => ({ update: () => 0 }))\n}\n"
        ),
        "bad.js:3:1: SyntaxError: unexpected token in expression: '}'"
    );
}

#[test]
fn exceptions_while_loading_name_their_place() {
    assert_eq!(
        load_error("\n\nthrow new Error('top');"),
        "bad.js:3:11: Error: top"
    );
    assert_eq!(
        load_error("flux('a', (mem, idx) => {\n  return nope.update;\n});"),
        "bad.js:2:10: ReferenceError: nope is not defined"
    );
    assert_eq!(
        load_error("flux('a', () => 42);"),
        "bad.js:1:1: TypeError: flux('a', factory): the factory must return an object with an update(sr) function, not a number"
    );
    assert_eq!(
        load_error("throw 'plain';"),
        "bad.js:1:1: uncaught exception: \"plain\""
    );
}

#[test]
fn an_endless_loop_while_loading_is_cut_off() {
    let started = Instant::now();
    let msg = load_error("let x = 0;\nwhile (true) { x++; }\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(msg.starts_with("bad.js:"), "{msg}");
    assert!(
        msg.ends_with("the file ran longer than 500 ms while loading (an endless loop?)"),
        "{msg}"
    );
    let msg = load_error("flux('a', () => { for (;;) {} });");
    assert!(msg.contains("ran longer than 500 ms"), "{msg}");
}

#[test]
fn an_update_that_throws_faults_with_its_location() {
    let mut l = loader(1);
    let src = "flux('ok', () => ({ update: () => 0.1 }));\n\
               flux('bad', (mem, idx) => ({\n  update: (sr) => {\n    mem[idx] += 1;\n    if (mem[idx] > 5) throw new RangeError('too far');\n    return 0; } }));";
    let loaded = l.load_source("u.js", src).unwrap();
    let (out, faults) = render(&l, loaded, 256);
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].id, "bad");
    assert_eq!(
        faults[0].fault.to_string(),
        "u.js:5:33: RangeError: too far"
    );
    assert!(out.iter().all(|&s| s == 0.1f32.tanh()));
}

#[test]
fn bad_return_values_fault_with_a_clear_message() {
    let mut l = loader(1);
    let loaded = l
        .load_source("r.js", "flux('s', () => ({ update: () => 'loud' }));")
        .unwrap();
    let (_, faults) = render(&l, loaded, 8);
    assert!(
        faults[0].fault.to_string().ends_with(
            "TypeError: update of 's' returned a string; expected a number or an array of numbers"
        ),
        "{}",
        faults[0].fault
    );
}

#[test]
fn a_nan_from_javascript_is_caught() {
    let mut l = loader(1);
    let loaded = l
        .load_source(
            "n.js",
            "flux('n', (mem, idx) => ({ update: () => [Math.sqrt(-1 - mem[idx])] }));",
        )
        .unwrap();
    let (out, faults) = render(&l, loaded, 8);
    assert!(matches!(faults[0].fault, Fault::NonFinite { .. }));
    assert!(out.iter().all(|&s| s == 0.0));
}

#[test]
fn an_endless_update_is_disabled() {
    let state = Arc::new(StateMemory::new(4096));
    let mut l = Loader::new(
        state,
        StateAllocator::new(4096, 64),
        LoadOptions {
            update_time_limit: Duration::from_millis(200),
            tier: flux_js::TierChoice::Js,
            ..LoadOptions::default()
        },
    );
    let loaded = l
        .load_source(
            "e.js",
            "flux('spin', () => ({ update: () => { while (true) {} } }));",
        )
        .unwrap();
    let started = Instant::now();
    let (_, faults) = render(&l, loaded, 1024);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(faults[0].fault, Fault::TimeLimit { limit_ms: 200 });
}

#[test]
fn the_api_is_closed_once_the_file_has_loaded() {
    let mut l = loader(1);
    let loaded = l
        .load_source("late.js", "flux('late', () => ({ update: () => { flux('x', () => ({ update: () => 0 })); return 0; } }));")
        .unwrap();
    let (_, faults) = render(&l, loaded, 4);
    assert!(
        faults[0]
            .fault
            .to_string()
            .contains("flux() can only be called while the file loads"),
        "{}",
        faults[0].fault
    );
}

#[test]
fn live_control_calls_are_collected_in_order() {
    let mut l = loader(1);
    let src = "play('p', (s) => Math.sin(s.t * 440 * 2 * Math.PI) * 0.2, 0.5);\n\
               mute('a');\nunmute('b', 0.1);\nsolo('p', 2);\nstop('c');\ngain(0.5);\nclear(1);\n\
               play('q', (s) => 0.1);";
    let loaded = l
        .load_snippet("live.js", src, &["a".into(), "b".into()])
        .unwrap();
    use flux_js::Action::*;
    assert_eq!(
        loaded.actions,
        vec![
            Fade("p".into(), 0.5),
            Mute("a".into(), None),
            Unmute("b".into(), Some(0.1)),
            Solo("p".into(), Some(2.0)),
            Stop("c".into(), None),
            Gain(0.5),
            Clear(Some(1.0)),
        ]
    );
    // clear() emptied the registry, so only the signal defined after it remains.
    let ids: Vec<&str> = loaded.signals.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["q"]);
}

#[test]
fn unsolo_is_a_call_of_the_api_and_of_its_module() {
    let mut l = loader(1);
    let loaded = l
        .load_snippet("u.js", "solo('a');\nunsolo();\nunsolo(0.5);", &["a".into()])
        .unwrap();
    use flux_js::Action::*;
    assert_eq!(
        loaded.actions,
        vec![Solo("a".into(), None), Unsolo(None), Unsolo(Some(0.5))]
    );
    let module = "import { unsolo } from './flux.js';\nunsolo(1);";
    let loaded = l.load_snippet("m.js", module, &[]).unwrap();
    assert_eq!(loaded.actions, vec![Unsolo(Some(1.0))]);
    assert_eq!(
        load_error("unsolo(-1);"),
        "bad.js:1:1: TypeError: unsolo: the fade must be a number of seconds, not a number"
    );
}

#[test]
fn a_snippet_gives_the_value_it_ends_with() {
    let mut l = loader(1);
    let value =
        |l: &mut flux_js::Loader, code: &str| l.load_snippet("v.js", code, &[]).unwrap().value;
    assert_eq!(value(&mut l, "1 + 1").as_deref(), Some("2"));
    assert_eq!(
        value(&mut l, "[1, 'a', [null]]").as_deref(),
        Some(r#"[1, "a", [null]]"#)
    );
    // Undefined, and the signal flux() returns, are not shown.
    assert_eq!(value(&mut l, "let x = 3;"), None);
    assert_eq!(
        value(&mut l, "flux('s', () => ({ update: () => 0 }))"),
        None
    );
    // A module has no value.
    assert_eq!(
        value(&mut l, "import { list } from './flux.js';\nlist()"),
        None
    );
}

#[test]
fn list_shows_the_running_signals_to_sent_code() {
    let mut l = loader(1);
    let loaded = l
        .load_snippet(
            "s.js",
            "flux('new', () => ({ update: () => 0 }));\nconsole.log(list().join(','));",
            &["old".into(), "new".into()],
        )
        .unwrap();
    assert_eq!(loaded.signals.len(), 1);
    assert_eq!(l.drain_logs().0, vec!["old,new".to_string()]);
}

#[test]
fn play_gives_time_that_survives_a_reload() {
    let mut l = loader(1);
    let src = "play('t', (s) => s.t < 0.005 ? 0.25 : -0.25);";
    let first = l.load_snippet("p.js", src, &[]).unwrap();
    let (out, faults) = render(&l, first, 480);
    assert!(faults.is_empty(), "{faults:?}");
    assert!(out[..230].iter().all(|&s| s == 0.25f32.tanh()));
    assert!(out[250..].iter().all(|&s| s == (-0.25f32).tanh()));
    // Loaded again, the signal goes on from t = 0.01 s instead of starting over.
    let again = l.load_snippet("p.js", src, &["t".into()]).unwrap();
    let (out, _) = render(&l, again, 10);
    assert!(out.iter().all(|&s| s == (-0.25f32).tanh()), "{out:?}");
}

#[test]
fn bad_fades_and_ids_are_reported_where_they_are() {
    assert_eq!(
        load_error("\nmute('a', 'slow');"),
        "bad.js:2:1: TypeError: mute: the fade must be a number of seconds, not a string"
    );
    assert_eq!(
        load_error("solo(3);"),
        "bad.js:1:1: TypeError: solo(id, fade?): id must be a non-empty string, not a number"
    );
}

/// The state memory's first `n` slots, bit for bit.
fn slots(loader: &Loader, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| loader.state().get(i).unwrap().to_bits())
        .collect()
}

/// How many slots differ, and the first that does.
fn changed(a: &[u64], b: &[u64]) -> (usize, Option<usize>) {
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    (diff.len(), diff.first().copied())
}

#[test]
fn a_failed_load_or_snippet_changes_no_state_and_hands_out_no_block() {
    let mut loader = loader(1);
    let good = "import { flux } from './flux.js';\n\
        flux('tone', (mem, idx) => { mem[idx] = 0.25; return { update: (sr) => {\n\
          mem[idx] = (mem[idx] + 440 / sr) % 1;\n\
          return [Math.sin(mem[idx] * 2 * Math.PI) * 0.5];\n\
        } }; });\n";
    let loaded = loader.load_source("song.js", good).unwrap();
    let tone = loaded.signals[0].block;
    assert_eq!(loader.state().get(tone.offset), Some(0.25));
    let before = slots(&loader, 65_536);
    let used = loader.allocator_used();
    for (what, bad) in [
        (
            "top level",
            "import { flux } from './flux.js';\n\
             FLUX_STATE.fill(NaN);\n\
             throw new Error('after writing');\n",
        ),
        (
            "a factory of a running id",
            "import { flux } from './flux.js';\n\
             flux('tone', (mem, idx) => { mem.fill(7); throw new Error('factory'); });\n",
        ),
        (
            "a new id, then a throw",
            "import { flux } from './flux.js';\n\
             flux('new', (mem, idx) => { mem[idx] = 3; return { update: () => 0 }; });\n\
             flux('tone', (mem, idx) => { mem[idx] = NaN; return { update: () => 0 }; });\n\
             throw new Error('late');\n",
        ),
    ] {
        let err = loader.load_source("song.js", bad).unwrap_err();
        assert!(err.to_string().starts_with("song.js:"), "{what}: {err}");
        let now = slots(&loader, 65_536);
        assert_eq!(
            changed(&now, &before),
            (0, None),
            "{what} changed the state"
        );
        assert_eq!(loader.allocator_used(), used, "{what} took state");
        let err = loader
            .load_snippet_at("song.js", bad, &["tone".to_owned()], 20, 1)
            .unwrap_err();
        assert!(err.to_string().starts_with("song.js:2"), "{what}: {err}");
        let now = slots(&loader, 65_536);
        assert_eq!(
            changed(&now, &before),
            (0, None),
            "{what} sent changed the state"
        );
        assert_eq!(loader.allocator_used(), used, "{what} sent took state");
    }
    // A load that succeeds writes what its factories write, on the real state.
    let again = good.replace("mem[idx] = 0.25", "mem[idx] = 0.5");
    loader.load_source("song.js", &again).unwrap();
    assert_eq!(loader.state().get(tone.offset), Some(0.5));
}

#[test]
fn an_invalid_regular_expression_is_reported_at_its_place() {
    let mut loader = loader(1);
    for (source, want) in [
        (
            "import { flux } from './flux.js';\n\nconst r = /a(b/;\n",
            "song.js:3:13: SyntaxError: expecting ')'",
        ),
        (
            "flux('a', (mem, idx) => {\n  const r = /x[/u;\n  return { update: () => 0 };\n});\n",
            "song.js:2:",
        ),
    ] {
        let err = loader
            .load_source("song.js", source)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(want), "{err}");
    }
    // Sent code: the place in the file it came from.
    let err = loader
        .load_snippet_at("song.js", "const r = /a(b/;\n", &[], 20, 5)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("song.js:20:"), "{err}");
}

#[test]
fn a_long_set_of_new_ids_never_runs_out_of_state() {
    // 65,536 slots: without reclaiming, about 13 ids with a 0.1 s delay line fill them.
    let mut loader = loader(1);
    let start = Instant::now();
    let mut high = 0;
    for i in 0..200u64 {
        let id = format!("v{i}");
        let source = format!(
            "import {{ flux, delay }} from './flux.js';\n\
             flux('{id}', (mem, idx) => {{ const d = delay(0.1); \
             return {{ update: (sr) => d(0.1, 0.05) }}; }});\n"
        );
        // A reload a minute after the one before; the engine has ended every patch but the
        // playing one (generation i).
        let playing = [format!("v{}", i.saturating_sub(1))];
        loader.reclaim(&playing, i, i, start + Duration::from_secs(61 * i));
        let loaded = loader
            .load_source("set.js", &source)
            .unwrap_or_else(|e| panic!("load {i}: {e}"));
        assert_eq!(loaded.signals[0].id, id);
        high = high.max(loader.allocator_used());
    }
    assert!(high < 65_536 / 2, "the state used went up to {high} slots");
}

#[test]
fn an_id_back_within_a_minute_keeps_its_state() {
    let mut loader = loader(1);
    let start = Instant::now();
    let tone = "import { flux } from './flux.js';\n\
        flux('a', (mem, idx) => { mem[idx] = mem[idx] || 0.5; return { update: () => 0 }; });\n";
    let a = loader.load_source("set.js", tone).unwrap().signals[0].block;
    loader.state().set(a.offset, 0.75);
    let other = "import { flux } from './flux.js';\nflux('b', () => ({ update: () => 0 }));\n";
    loader.reclaim(&["a".to_owned()], 1, 1, start);
    loader.load_source("set.js", other).unwrap();
    loader.reclaim(&["b".to_owned()], 2, 2, start + Duration::from_secs(30));
    loader.load_source("set.js", other).unwrap();
    loader.reclaim(&["b".to_owned()], 3, 3, start + Duration::from_secs(59));
    let back = loader.load_source("set.js", tone).unwrap().signals[0].block;
    assert_eq!(back, a);
    assert_eq!(
        loader.state().get(a.offset),
        Some(0.75),
        "its state is kept"
    );
}

#[test]
fn a_byte_that_is_not_utf8_is_reported_at_its_line_and_column() {
    let dir = std::env::temp_dir().join(format!("flux-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("main.js");
    std::fs::write(
        &main,
        b"import { flux } from './flux.js';\nconst s = '\xc3\xa9\xff';\n",
    )
    .unwrap();
    let err = loader(1).load_file(&main).unwrap_err();
    assert_eq!(err.location.line, 2);
    assert_eq!(err.location.col, 13, "after the 'é' that is valid");
    assert!(
        err.message.ends_with("it is not UTF-8 text (a byte 0xff)"),
        "{err}"
    );
    std::fs::write(dir.join("bad.js"), b"export const y = 1;\n// caf\xe9\n").unwrap();
    std::fs::write(
        &main,
        "import { flux } from './flux.js';\nimport { y } from './bad.js';\n",
    )
    .unwrap();
    let err = loader(1).load_file(&main).unwrap_err().to_string();
    assert!(err.contains("(a byte 0xe9) at "), "{err}");
    assert!(err.contains("bad.js:2:7"), "{err}");
}

#[test]
fn an_endless_loop_at_the_top_level_is_reported_at_the_loop() {
    let source = "import { flux } from './flux.js';\nlet i = 0;\n\n  while (true) { i++; }\n";
    let err = loader(1).load_source("song.js", source).unwrap_err();
    assert_eq!(
        err.to_string(),
        "song.js:4:3: the file ran longer than 500 ms while loading (an endless loop?)"
    );
}

#[test]
fn what_a_load_prints_is_shown_once_whether_it_fails_or_not() {
    let mut loader = loader(1);
    let failing = "console.log('before the throw');\nthrow new Error('no');\n";
    loader.load_source("song.js", failing).unwrap_err();
    assert_eq!(loader.drain_logs().0, ["before the throw"]);
    let good = "console.log('loading');\nflux('a', () => ({ update: () => 0 }));\n";
    loader.load_source("song.js", good).unwrap();
    assert_eq!(loader.drain_logs().0, ["loading"]);
}

#[test]
fn what_a_failed_trial_wrote_is_gone_for_the_next_load() {
    let state = Arc::new(StateMemory::new(65_536));
    let mut loader = Loader::new(
        state,
        StateAllocator::new(65_536, 64).with_guard(128),
        LoadOptions {
            sample_rate: SR,
            channels: 1,
            preflight: Duration::from_millis(100),
            ..LoadOptions::default()
        },
    );
    let tone = "flux('tone', (mem, idx) => ({ update: () => 0.25 }));\n";
    loader.load_source("song.js", tone).unwrap();
    let poison = format!("{tone}FLUX_STATE.fill(NaN);\nthrow new Error('after writing');\n");
    loader.load_source("song.js", &poison).unwrap_err();
    // A new id's block and guards lie where the failed trial wrote NaN: they are zero for
    // the next trial, so it passes.
    let more = format!("{tone}flux('more', (mem, idx) => ({{ update: () => mem[idx] }}));\n");
    let loaded = loader
        .load_source("song.js", &more)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.signals.len(), 2);
}
