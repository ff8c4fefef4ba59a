//! Pre-flight trials and faults while playing, through `flux render`: a change that fails
//! its first moments never reaches the output, and a signal that fails later fades out.

mod common;

use std::path::Path;

use common::{flux, read_wav, run, stderr};

/// A sine of `freq` Hz at 0.4 whose phase is `mem[idx]`, with `body` spliced into `update`
/// before the phase moves (line 5 of the file is the phase line).
fn tone(freq: &str, body: &str) -> String {
    format!(
        "flux('tone', (mem, idx) => {{\n  const freq = 440;\n  return {{\n    update: (sr) => {{\n      mem[idx] = (mem[idx] + {freq} / sr) % 1; {body}\n      return [Math.sin(mem[idx] * 2 * Math.PI) * 0.4];\n    }}\n  }};\n}});\n"
    )
}

/// Renders `first` for 2 s, swapping `second` in at 1 s; returns the samples and stderr.
fn render_swap(dir: &Path, first: &str, second: &str, extra: &[&str]) -> (Vec<f32>, String) {
    let a = dir.join("a.js");
    let b = dir.join("b.js");
    let wav = dir.join(format!("out-{}.wav", extra.join("")));
    std::fs::write(&a, first).unwrap();
    std::fs::write(&b, second).unwrap();
    let o = run(flux()
        .arg("render")
        .arg(&a)
        .arg("-o")
        .arg(&wav)
        .args(["--seconds", "2", "--swap"])
        .arg(format!("1:{}", b.display()))
        .args(extra));
    assert!(o.status.success(), "{}", stderr(&o));
    (read_wav(&wav).2, stderr(&o))
}

/// RMS of each 50 ms window, in dB.
fn rms_windows(samples: &[f32]) -> Vec<f64> {
    samples
        .chunks(2400)
        .map(|w| {
            let sum: f64 = w.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            10.0 * (sum / w.len() as f64).log10()
        })
        .collect()
}

#[test]
fn a_typo_in_update_is_refused_before_it_plays_and_the_old_sound_never_drops() {
    let dir = tempfile::tempdir().unwrap();
    let good = tone("freq", "");
    let typo = tone("frq", "");
    for tier in ["auto", "js"] {
        let (out, err) = render_swap(dir.path(), &good, &typo, &["--tier", tier]);
        assert!(
            err.contains("b.js:5:30: ReferenceError: frq is not defined (pre-flight of 'tone', 100 ms: refused) (still playing 1 signal;"),
            "{err}"
        );
        // The old code plays on, sample for sample as if nothing was sent.
        let (alone, _) = render_swap(dir.path(), &good, &good, &["--tier", tier]);
        assert_eq!(out, alone, "tier {tier}");
        // The first window holds the fade-in of the first load.
        let rms = rms_windows(&out[2400..]);
        let (lo, hi) = rms
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
        assert!(hi - lo < 1.0, "RMS moved from {lo} to {hi} dB");
    }
}

#[test]
fn nan_and_endless_loops_in_the_first_moments_are_refused_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let good = tone("freq", "");
    // NaN from frame 99 of the trial on (it counts on from the tone's phase, below 1).
    let nan = "flux('tone', (mem, idx) => ({\n  update: () => {\n    mem[idx] += 1;\n    return mem[idx] > 100 ? [NaN] : [0.1];\n  }\n}));\n";
    let (out, err) = render_swap(dir.path(), &good, nan, &[]);
    assert!(err.contains("b.js:2:11: update returned NaN on channel 0 at frame 99 (pre-flight of 'tone', 100 ms: refused)"), "{err}");
    let (alone, _) = render_swap(dir.path(), &good, &good, &[]);
    assert_eq!(out, alone);
    // An endless loop: native code runs out of fuel, JavaScript out of time.
    let endless = tone("freq", "while (mem[idx] >= 0) { mem[idx + 1] += 1; }");
    for tier in ["native", "js"] {
        let (out, err) = render_swap(dir.path(), &good, &endless, &["--tier", tier]);
        assert!(
            err.contains("b.js:") && err.contains("pre-flight of 'tone'"),
            "{tier}: {err}"
        );
        let (alone, _) = render_swap(dir.path(), &good, &good, &["--tier", tier]);
        assert_eq!(out, alone, "tier {tier}");
    }
}

#[test]
fn a_trial_leaves_the_playing_state_alone() {
    // A change that passes its trial: the trial ran on a copy, so the new code starts on
    // the true phase, exactly as without pre-flight.
    let dir = tempfile::tempdir().unwrap();
    let good = tone("freq", "");
    let higher = tone("freq * 1.5", "");
    for tier in ["native", "js"] {
        let (with, err) = render_swap(dir.path(), &good, &higher, &["--tier", tier]);
        assert!(!err.contains("refused"), "{err}");
        let (without, _) = render_swap(
            dir.path(),
            &good,
            &higher,
            &["--tier", tier, "--preflight", "0"],
        );
        assert_eq!(with, without, "tier {tier}");
    }
}

#[test]
fn a_signal_that_throws_while_playing_fades_out_without_a_click() {
    // It throws after 2 s of tone: past any trial, so it fails while playing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("late.js");
    // Native code cannot throw: it fails with NaN.
    for (tier, fail) in [
        ("js", "throw new Error('late')"),
        ("native", "mem[idx] = NaN"),
    ] {
        let late = tone(
            "freq",
            &format!("mem[idx + 1] += 1; if (mem[idx + 1] > 96000) {fail};"),
        );
        std::fs::write(&file, late).unwrap();
        let wav = dir.path().join(format!("late-{tier}.wav"));
        let o = run(flux().arg("render").arg(&file).arg("-o").arg(&wav).args([
            "--seconds",
            "3",
            "--tier",
            tier,
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("late.js:") && err.contains("(signal 'tone' silenced)"),
            "{err}"
        );
        let (_, _, out) = read_wav(&wav);
        let step = |w: &[f32]| (w[1] - w[0]).abs();
        let tone_step = out[..95_000].windows(2).map(step).fold(0.0, f32::max);
        let end_step = out[95_000..].windows(2).map(step).fold(0.0, f32::max);
        assert!(
            end_step <= tone_step,
            "{tier}: a step of {end_step} > {tone_step}"
        );
        // It fades out over the crossfade (20 ms) from the block it failed in.
        assert!(out[96_000 + 960..].iter().all(|&s| s == 0.0), "{tier}");
        assert!(
            out[96_000 - 128..96_000].iter().any(|&s| s != 0.0),
            "{tier}"
        );
    }
}
