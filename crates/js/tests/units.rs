//! Units of the library keep their state by name: across inserts, reorders and edits of the
//! code around them, on both tiers; a signal cannot write into its neighbour's state.

use std::sync::Arc;

use flux_engine::{
    engine, Controller, Engine, EngineConfig, Fault, StateAllocator, StateMemory, Tier,
};
use flux_js::{LoadOptions, Loader, TierChoice};

const SR: u32 = 48_000;

struct Rig {
    loader: Loader,
    ctl: Controller,
    eng: Engine,
}

fn rig(tier: TierChoice, fade: u32) -> Rig {
    let state = Arc::new(StateMemory::new(1 << 20));
    let loader = Loader::new(
        state.clone(),
        StateAllocator::new(1 << 20, 64).with_guard(64),
        LoadOptions {
            sample_rate: SR,
            tier,
            ..LoadOptions::default()
        },
    );
    let (mut ctl, eng) = engine(EngineConfig::new(SR, 1), state);
    ctl.set_fade(fade);
    Rig { loader, ctl, eng }
}

impl Rig {
    fn load(&mut self, name: &str, source: &str, tier: Tier) -> flux_js::Loaded {
        let loaded = self
            .loader
            .load_source(name, source)
            .unwrap_or_else(|d| panic!("{d}\n{source}"));
        for s in &loaded.signals {
            assert_eq!(s.tier, tier, "{}: {:?}", s.id, s.reason);
        }
        loaded
    }

    fn swap(&mut self, name: &str, source: &str, tier: Tier) -> flux_js::UnitReport {
        let loaded = self.load(name, source, tier);
        let units = loaded.units.clone();
        self.ctl.swap(loaded.patch);
        units
    }

    fn render(&mut self, frames: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; frames];
        self.eng.process(&mut out);
        out
    }
}

fn tiers() -> [(TierChoice, Tier); 2] {
    [
        (TierChoice::Native, Tier::Native),
        (TierChoice::Js, Tier::Js),
    ]
}

const BEFORE: &str = "import { flux, sine } from './flux.js';
flux('a', () => {
  const lfo = sine();
  const tone = sine();
  return { update: () => tone(440 + 0 * lfo(3)) * 0.5 };
});";

/// A unit inserted before the others, the declarations reordered, an argument changed.
const AFTER: &str = "import { flux, sine, phasor } from './flux.js';
flux('a', () => {
  const extra = phasor();
  const tone = sine();
  const lfo = sine();
  return { update: () => tone(440 + 0 * lfo(5)) * 0.5 + 0 * extra(2) };
});";

#[test]
fn units_keep_their_phase_across_inserts_reorders_and_edits() {
    for (choice, tier) in tiers() {
        let mut reference = rig(choice, 0);
        reference.swap("set.js", BEFORE, tier);
        let want = reference.render(9_000);

        let mut edited = rig(choice, 0);
        edited.swap("set.js", BEFORE, tier);
        let mut got = edited.render(4_000);
        let report = edited.swap("set.js", AFTER, tier);
        got.extend(edited.render(5_000));
        assert_eq!(
            got, want,
            "{tier:?}: the tone went on as if nothing changed"
        );
        assert_eq!(report.kept, ["a:lfo", "a:tone"], "{tier:?}");
        assert_eq!(report.made, ["a:extra"], "{tier:?}");
        assert!(report.dropped.is_empty(), "{tier:?}");
    }
}

#[test]
fn a_crossfade_ends_on_the_true_phase_of_the_units() {
    for (choice, tier) in tiers() {
        let mut reference = rig(choice, 0);
        reference.swap("set.js", BEFORE, tier);
        let want = reference.render(9_000);

        // A 1,000-frame crossfade: the old code runs on a shadow copy of the units' state,
        // so once it is over the output is the untouched tone again.
        let mut faded = rig(choice, 1_000);
        faded.swap("set.js", BEFORE, tier);
        let mut got = faded.render(4_000);
        faded.swap("set.js", AFTER, tier);
        got.extend(faded.render(5_000));
        assert_eq!(got[5_000..], want[5_000..], "{tier:?}");
    }
}

#[test]
fn renaming_a_unit_starts_it_afresh_and_reports_what_was_dropped() {
    for (choice, tier) in tiers() {
        let mut r = rig(choice, 0);
        r.swap("set.js", BEFORE, tier);
        r.render(1_000);
        let renamed = BEFORE.replace("tone", "voice");
        let report = r.swap("set.js", &renamed, tier);
        assert_eq!(report.kept, ["a:lfo"]);
        assert_eq!(report.made, ["a:voice"]);
        assert_eq!(report.dropped, ["a:tone"]);
        let out = r.render(2);
        // A fresh sine starts at phase 0: sin(0) = 0, then one step of 440 Hz.
        assert_eq!(out[0], 0.0, "{tier:?}");
        let step = (2.0 * std::f64::consts::PI * 440.0 / f64::from(SR)).sin() * 0.5;
        assert_eq!(out[1], step.tanh() as f32, "{tier:?}");
    }
}

#[test]
fn units_made_in_loops_and_helpers_each_get_their_own_state() {
    let source = "
function voice(f) { const o = sine(); return () => o(f); }
flux('chord', () => {
  const low = voice(1000);
  const high = voice(1500);
  const many = [];
  for (let i = 0; i < 3; i++) many.push(sine());
  return { update: () => (low() + high() + many[0](500) + many[1](0) + many[2](0)) * 0.1 };
});";
    for (choice, tier) in tiers() {
        let mut r = rig(choice, 0);
        let report = r.swap("loop.js", source, tier);
        assert_eq!(
            report.made,
            [
                "chord:high/o",
                "chord:low/o",
                "chord:many",
                "chord:many#1",
                "chord:many#2"
            ]
        );
        let out = r.render(4_800);
        // Each voice runs at its own pitch: the sum repeats every 96 frames (500 Hz), which
        // it would not if two of them shared a phase.
        let period = (SR / 500) as usize;
        for i in 0..200 {
            assert!((out[i] - out[i + period]).abs() < 1e-5, "frame {i}");
        }
    }
}

#[test]
fn a_unit_made_in_update_is_an_error_that_names_the_unit() {
    let mut r = rig(TierChoice::Auto, 0);
    r.swap(
        "bad.js",
        "flux('b', () => ({ update: () => sine()(440) }));",
        Tier::Js,
    );
    r.render(128);
    let faults = r.ctl.collect();
    assert_eq!(faults.len(), 1);
    let message = faults[0].fault.to_string();
    assert!(
        message.contains("sine() makes a unit: call it while the file loads"),
        "{message}"
    );
}

#[test]
fn a_signal_writing_past_its_block_is_stopped_and_its_neighbour_keeps_its_pitch() {
    let source = "
flux('a', (mem, idx) => ({ update: () => { mem[idx] = (mem[idx] + 1) % 96; mem[idx + K] = 1; return 0; } }));
flux('b', (mem, idx) => ({ update: () => { mem[idx] = (mem[idx] + 1) % 96; return Math.sin(2 * Math.PI * mem[idx] / 96) * 0.5; } }));";
    for (choice, tier) in tiers() {
        for k in ["64", "100", "idx - idx + 70", "-5", "-64"] {
            let mut r = rig(choice, 0);
            r.swap("over.js", &source.replace('K', k), tier);
            let out = r.render(960);
            let faults = r.ctl.collect();
            assert_eq!(faults.len(), 1, "{tier:?} {k}");
            assert_eq!(faults[0].id, "a");
            assert!(
                matches!(faults[0].fault, Fault::Overrun { len: 64, .. }),
                "{:?}",
                faults[0].fault
            );
            // 'b' plays a 500 Hz sine: exactly 96 frames a period.
            for i in 0..860 {
                assert_eq!(out[i], out[i + 96], "{tier:?} {k} frame {i}");
            }
            assert!(out.iter().any(|&x| x > 0.4));
        }
    }
}

#[test]
fn functions_and_units_imported_from_the_users_modules_run_native() {
    let dir = std::env::temp_dir().join(format!("flux-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("helpers.js"),
        "import { sine } from './flux.js';\n\
         export function vibrato(rate) { const l = sine(); return (f) => f * (1 + 0.01 * l(rate)); }\n\
         export const soft = (x) => Math.tanh(3 * x) * 0.3;\n",
    )
    .unwrap();
    let main = dir.join("main.js");
    std::fs::write(
        &main,
        "import { flux, sine } from './flux.js';\nimport { vibrato, soft } from './helpers.js';\n\
         flux('lead', () => { const vib = vibrato(5); const o = sine(); return { update: () => soft(o(vib(220))) }; });\n",
    )
    .unwrap();
    let mut outs = Vec::new();
    for (choice, tier) in tiers() {
        let mut r = rig(choice, 0);
        let loaded = r.loader.load_file(&main).unwrap();
        assert_eq!(
            loaded.signals[0].tier, tier,
            "{:?}",
            loaded.signals[0].reason
        );
        assert_eq!(loaded.units.made, ["lead:l", "lead:o"]);
        r.ctl.swap(loaded.patch);
        outs.push(r.render(4_800));
    }
    assert_eq!(outs[0], outs[1], "both tiers give the same samples");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failed_load_keeps_none_of_the_state_it_was_given() {
    let mut r = rig(TierChoice::Auto, 0);
    r.swap("set.js", BEFORE, Tier::Native);
    let before = r.loader.block_of("a").unwrap();
    let failed = "for (let i = 0; i < 2000; i++) flux('many' + i, () => ({ update: () => 0 }));\n\
                  flux('b', () => { const o = sine(); return { update: () => o(1) }; });\n\
                  throw new Error('late');";
    let d = r.loader.load_source("set.js", failed).unwrap_err();
    assert_eq!(d.to_string(), "set.js:3:11: Error: late");
    assert_eq!(r.loader.block_of("many7"), None);
    assert_eq!(r.loader.block_of("a"), Some(before));
    // The next new id gets the room the failed load had taken, as if it never ran.
    let next = "flux('c', () => ({ update: () => 0 }));";
    let c = r.load("set.js", next, Tier::Native).signals[0].block;
    let mut fresh = rig(TierChoice::Auto, 0);
    fresh.swap("set.js", BEFORE, Tier::Native);
    assert_eq!(fresh.load("set.js", next, Tier::Native).signals[0].block, c);
}
