//! What a newcomer meets in the first hour (issue 11, item 10): no `ALSA lib` noise, an
//! honest device list, `check` that tries each signal, examples in every `--help`, `render`
//! as wide as its widest signal, and REPL values.

mod common;

use common::{flux, run, stderr};

/// Every subcommand `flux help` lists.
fn subcommands() -> Vec<String> {
    let o = run(flux().arg("--help"));
    let text = String::from_utf8(o.stdout).unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_subcommand_help_ends_with_examples() {
    let commands = subcommands();
    assert!(commands.len() >= 8, "{commands:?}");
    for c in &commands {
        let o = run(flux().arg(c).arg("--help"));
        assert_eq!(o.status.code(), Some(0), "flux {c} --help: {}", stderr(&o));
        let text = String::from_utf8(o.stdout).unwrap();
        let examples = text
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("flux {c} --help has no Examples: section:\n{text}"))
            .1;
        assert!(
            examples.contains(&format!("flux {c}")),
            "flux {c} --help: no example of it:\n{examples}"
        );
    }
}

#[test]
fn help_examples_that_need_no_sound_card_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // The examples of check, render and bench that name files of examples/.
    let mut ran = 0;
    for c in ["check", "render", "bench"] {
        let o = run(flux().arg(c).arg("--help"));
        let text = String::from_utf8(o.stdout).unwrap();
        let examples = text.split_once("\nExamples:\n").unwrap().1;
        for line in examples.lines() {
            // The command, without the description after two spaces.
            let command = line.trim_start().split("  ").next().unwrap_or("");
            let words: Vec<&str> = command.split_whitespace().collect();
            if words.len() < 3 || words[0] != "flux" || !words[2].starts_with("examples/") {
                continue;
            }
            // Short renders and benches, written to the temporary folder.
            let args: Vec<String> = words[1..]
                .iter()
                .map(|w| match *w {
                    "30" | "10" | "5" if c == "render" => "0.2".to_owned(),
                    w if w.ends_with(".wav") => dir.path().join(w).display().to_string(),
                    w => w.to_owned(),
                })
                .collect();
            let mut cmd = flux();
            cmd.current_dir(&root).args(&args);
            if c == "bench" {
                cmd.args(["--seconds", "0.1", "--warmup", "0", "--reps", "1"]);
            }
            let o = run(&mut cmd);
            assert_eq!(o.status.code(), Some(0), "{line}: {}", stderr(&o));
            ran += 1;
        }
    }
    assert!(ran >= 5, "only {ran} examples ran");
}

#[test]
fn no_alsa_lib_lines_precede_flux_s_own_message() {
    // On a machine with no sound card (this one), alsa-lib has plenty to say; Flux does not
    // pass it on. With a sound card, there is nothing to say: the test holds either way.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, common::sine_file(440.0, "sin")).unwrap();
    let play = run(flux()
        .arg("play")
        .arg(&file)
        .args(["--seconds", "0.2", "--no-listen"]));
    let devices = run(flux().arg("devices"));
    for (what, o) in [("play", &play), ("devices", &devices)] {
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(o));
        let err = stderr(o);
        assert!(
            !err.lines().any(|l| l.starts_with("ALSA lib")),
            "flux {what}:\n{err}"
        );
    }
}

#[test]
fn devices_does_not_offer_alsa_s_unclocked_null_sink() {
    let o = run(flux().arg("devices"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(!text.contains("[null]"), "{text}");
    assert!(!text.contains("Discard all samples"), "{text}");
}

/// A file with a good signal, one that returns NaN on frame 100, one that throws on frame
/// 1000 and one with a typo.
const FAILING: &str = "flux('ok', (mem, idx) => ({ update: () => [0.1, 0.2] }));\n\
flux('nan', (mem, idx) => ({ update: () => {\n\
  mem[idx] += 1;\n\
  return [0.1, mem[idx] > 100 ? NaN : 0];\n\
} }));\n\
flux('late', (mem, idx) => ({ update: () => {\n\
  mem[idx] += 1;\n\
  if (mem[idx] > 1000) throw new Error('late');\n\
  return 0;\n\
} }));\n\
flux('typo', (mem, idx) => ({ update: (sr) => Math.sin(frq / sr) }));\n";

#[test]
fn check_tries_each_signal_and_warns_of_what_would_silence_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("failing.js");
    std::fs::write(&f, FAILING).unwrap();
    let name = f.display().to_string();
    let o = run(flux().arg("check").arg(&f));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for want in [
        format!("{name}:2:1: warning: update of 'nan' fails: update returned NaN on channel 1 at frame 100"),
        format!("{name}:8:32: warning: update of 'late' fails: Error: late"),
        format!("{name}:11:56: warning: update of 'typo' fails: ReferenceError: frq is not defined"),
    ] {
        assert!(text.lines().any(|l| l == want), "no {want:?} in\n{text}");
    }
    assert!(!text.contains("'ok'"), "{text}");
    // --strict: the same lines, exit 1.
    let strict = run(flux().arg("check").arg("--strict").arg(&f));
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(String::from_utf8(strict.stdout).unwrap(), text);
    // JSON: warnings with their place.
    let json = run(flux().args(["check", "--json", "--strict"]).arg(&f));
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let warnings: Vec<(u64, u64)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "warning")
        .map(|d| (d["line"].as_u64().unwrap(), d["col"].as_u64().unwrap()))
        .collect();
    assert_eq!(warnings, [(2, 1), (8, 32), (11, 56)]);
}

#[test]
fn check_strict_passes_a_good_file_and_stops_an_endless_loop() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.js");
    std::fs::write(&good, common::sine_file(440.0, "sin")).unwrap();
    let o = run(flux().args(["check", "--strict"]).arg(&good));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A loop that starts on the fourth frame: stopped by update's time limit.
    let looping = dir.path().join("loop.js");
    std::fs::write(
        &looping,
        "flux('spin', (mem, idx) => ({ update: () => {\n  mem[idx] += 1;\n  \
         if (mem[idx] > 3) { while (true) {} }\n  return 0;\n} }));\n",
    )
    .unwrap();
    let o = run(flux().args(["check", "--strict"]).arg(&looping));
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "{}:1:1: warning: update of 'spin' fails: update ran longer than 250 ms for one block",
            looping.display()
        )),
        "{text}"
    );
}

#[test]
fn check_shows_what_the_first_frame_logs_not_the_whole_trial() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("log.js");
    std::fs::write(
        &f,
        "flux('s', () => ({ update: () => { console.log('hi'); return 0; } }));\n",
    )
    .unwrap();
    let o = run(flux().arg("check").arg(&f));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().filter(|l| *l == "hi").count(), 1, "{text}");
}

/// A stereo signal: a ramp on the left, minus half of it on the right.
const STEREO: &str = "flux('lr', (mem, idx) => ({ update: () => {\n\
  mem[idx] = (mem[idx] + 1) % 100;\n\
  return [mem[idx] / 200, -mem[idx] / 400];\n\
} }));\n";

#[test]
fn render_is_as_wide_as_its_widest_signal_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("stereo.js");
    std::fs::write(&f, STEREO).unwrap();
    let out = dir.path().join("out.wav");
    let o = run(flux()
        .arg("render")
        .arg(&f)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "0.01", "--fade", "0"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, channels, samples) = common::read_wav(&out);
    assert_eq!(channels, 2);
    // Both channels as written (after the master's tanh), frame by frame.
    for (k, frame) in samples.chunks(2).enumerate().take(300) {
        let ramp = ((k + 1) % 100) as f64;
        let (left, right) = ((ramp / 200.0).tanh(), (-ramp / 400.0).tanh());
        assert!((f64::from(frame[0]) - left).abs() < 1e-6, "frame {k}: {frame:?}");
        assert!((f64::from(frame[1]) - right).abs() < 1e-6, "frame {k}: {frame:?}");
    }
    // --channels still wins.
    let o = run(flux()
        .arg("render")
        .arg(&f)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "0.01", "--channels", "1"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(common::read_wav(&out).1, 1);
    // A mono file with a stereo swap: as wide as the swap.
    let mono = dir.path().join("mono.js");
    std::fs::write(&mono, common::sine_file(440.0, "sin")).unwrap();
    let o = run(flux()
        .arg("render")
        .arg(&mono)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "0.02", "--swap"])
        .arg(format!("0.01:{}", f.display())));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(common::read_wav(&out).1, 2);
    let o = run(flux()
        .arg("render")
        .arg(&mono)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "0.01"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(common::read_wav(&out).1, 1);
}
