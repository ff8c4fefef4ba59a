//! `flux render`: pitch, determinism, swaps and faults, through the binary.

mod common;

use common::{example, flux, frequency, read_wav, run, sine_file, stderr};

#[test]
fn the_seed_examples_render_at_their_pitch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sine.wav");
    let o = run(flux()
        .arg("render")
        .arg(example("sine-440.js"))
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "2"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let (rate, channels, samples) = read_wav(&out);
    assert_eq!((rate, channels, samples.len()), (48_000, 1, 96_000));
    let f = frequency(&samples, rate);
    assert!((f - 440.0).abs() < 0.01, "{f} Hz");

    // The breathing sine is a 220 Hz carrier; fm-vortex and vortex-morph sit on 110 Hz.
    let out = dir.path().join("breath.wav");
    let o = run(flux()
        .arg("render")
        .arg(example("breathing-sine.js"))
        .args([
            "-o".as_ref(),
            out.as_os_str(),
            "--seconds".as_ref(),
            "1".as_ref(),
        ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, _, samples) = read_wav(&out);
    let f = frequency(&samples, 48_000);
    assert!((f - 220.0).abs() < 0.05, "{f} Hz");
}

#[test]
fn every_example_renders_sound_without_faults() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "sine-440.js",
        "breathing-sine.js",
        "vortex-morph.js",
        "van-der-pol.js",
        "lorenz.js",
        "fm-vortex.js",
        "all-six.js",
    ] {
        let out = dir.path().join("x.wav");
        let o = run(flux()
            .arg("render")
            .arg(example(name))
            .arg("-o")
            .arg(&out)
            .args(["--seconds", "0.5", "--channels", "2"]));
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(!stderr(&o).contains("silenced"), "{name}: {}", stderr(&o));
        let (_, channels, samples) = read_wav(&out);
        assert_eq!(channels, 2);
        assert!(samples.iter().all(|s| s.is_finite() && s.abs() < 1.0));
        let rms = (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt();
        assert!(rms > 0.01, "{name} is silent");
    }
}

#[test]
fn two_renders_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.wav");
    let b = dir.path().join("b.wav");
    for out in [&a, &b] {
        let o = run(flux()
            .arg("render")
            .arg(example("all-six.js"))
            .arg("-o")
            .arg(out)
            .args(["--seconds", "1", "--swap"])
            .arg(format!("0.3:{}", example("vortex-morph.js").display())));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn a_swap_that_changes_the_frequency_keeps_the_phase() {
    let dir = tempfile::tempdir().unwrap();
    let low = dir.path().join("low.js");
    let high = dir.path().join("high.js");
    std::fs::write(&low, sine_file(220.0, "sin")).unwrap();
    std::fs::write(&high, sine_file(330.0, "sin")).unwrap();
    let out = dir.path().join("swap.wav");
    // 0.1234 s is not a multiple of the block size: the swap lands inside a block.
    let o = run(flux()
        .arg("render")
        .arg(&low)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "0.5", "--fade", "0", "--swap"])
        .arg(format!("0.1234:{}", high.display())));
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, _, s) = read_wav(&out);
    let at = (0.1234f64 * 48_000.0).round() as usize;
    // Rebuild the expected stream: one phase accumulator, its increment changes at `at`.
    let mut phase = 0.0f64;
    for (i, &got) in s.iter().enumerate() {
        let f = if i < at { 220.0 } else { 330.0 };
        phase = (phase + f / 48_000.0) % 1.0;
        let want = ((phase * 2.0 * std::f64::consts::PI).sin() * 0.5).tanh() as f32;
        assert_eq!(got, want, "sample {i} (swap at {at})");
    }
    // And no jump: the step across the swap is within the steps of the new tone.
    let max_step = s[at..]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!((s[at] - s[at - 1]).abs() <= max_step);
    assert!(stderr(&o).contains("0.123 s: "), "{}", stderr(&o));
}

#[test]
fn a_swap_to_a_broken_file_leaves_the_output_sample_identical() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.js");
    std::fs::write(
        &broken,
        "flux('a', () => ({ update: () => 0 }));\nlet x = ;\n",
    )
    .unwrap();
    let plain = dir.path().join("plain.wav");
    let swapped = dir.path().join("swapped.wav");
    let o = run(flux()
        .arg("render")
        .arg(example("vortex-morph.js"))
        .arg("-o")
        .arg(&plain)
        .args(["--seconds", "0.5"]));
    assert!(o.status.success());
    let o = run(flux()
        .arg("render")
        .arg(example("vortex-morph.js"))
        .arg("-o")
        .arg(&swapped)
        .args(["--seconds", "0.5", "--swap"])
        .arg(format!("0.25:{}", broken.display())));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}:2:9: SyntaxError: unexpected token in expression: ';' (still playing 1 signal;",
            broken.display()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(&swapped).unwrap()
    );
}

#[test]
fn a_throwing_or_nan_signal_leaves_the_others_intact() {
    let dir = tempfile::tempdir().unwrap();
    let good = sine_file(220.0, "sin");
    let bad = format!(
        "{good}\nflux('thrower', (mem, idx) => ({{ update: () => {{\n  mem[idx] += 1;\n  if (mem[idx] > 6000) throw new Error('gave up');\n  return 0.1; }} }}));\n\
         flux('nan', (mem, idx) => ({{ update: () => {{ mem[idx] += 1; return mem[idx] > 7000 ? [NaN] : [0.1]; }} }}));\n"
    );
    let good_file = dir.path().join("good.js");
    let bad_file = dir.path().join("bad.js");
    std::fs::write(&good_file, &good).unwrap();
    std::fs::write(&bad_file, &bad).unwrap();
    let good_wav = dir.path().join("good.wav");
    let bad_wav = dir.path().join("bad.wav");
    for (file, wav) in [(&good_file, &good_wav), (&bad_file, &bad_wav)] {
        let o = run(flux()
            .arg("render")
            .arg(file)
            .arg("-o")
            .arg(wav)
            .args(["--seconds", "0.2"]));
        assert!(o.status.success(), "{}", stderr(&o));
        if file == &bad_file {
            let err = stderr(&o);
            assert!(
                err.contains(&format!(
                    "{}:12:34: Error: gave up (signal 'thrower' silenced)",
                    bad_file.display()
                )),
                "{err}"
            );
            assert!(
                err.contains(&format!(
                    // A NaN has no place of its own: it is put at the signal's `update`.
                    "{}:14:38: update returned NaN on channel 0 at frame 7000 (signal 'nan' silenced)",
                    bad_file.display()
                )),
                "{err}"
            );
        }
    }
    let (_, _, g) = read_wav(&good_wav);
    let (_, _, b) = read_wav(&bad_wav);
    // Both faults happen after the pre-flight trial (100 ms): the block holding frame 6000
    // is dropped whole for the thrower, the NaN's from its bad frame on, and each fades out
    // from its last good frame over the crossfade (20 ms); from there on only the sine plays.
    assert_eq!(&g[7000 + 960..], &b[7000 + 960..]);
    assert_ne!(g[7000 + 958], b[7000 + 958]);
}

#[test]
fn render_refuses_bad_arguments_with_a_message() {
    let o = run(flux().arg("render").arg(example("sine-440.js")).args([
        "-o",
        "/tmp/x.wav",
        "--seconds",
        "1",
        "--swap",
        "soon:file.js",
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("\"soon\" in \"soon:file.js\" is not a number of seconds"));
    let o = run(flux().arg("render").arg("/no/such/file.js").args([
        "-o",
        "/tmp/x.wav",
        "--seconds",
        "1",
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/no/such/file.js: cannot load the file: cannot read it"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_file_that_fails_to_load_renders_nothing_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.js");
    std::fs::write(&f, "flux('a', () => { throw new TypeError('nope'); });").unwrap();
    let o = run(flux()
        .arg("render")
        .arg(&f)
        .args(["-o".as_ref(), dir.path().join("o.wav").as_os_str()])
        .args(["--seconds", "1"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("{}:1:29: TypeError: nope", f.display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_swap_crossfades_without_a_click_and_then_plays_the_true_phase() {
    let dir = tempfile::tempdir().unwrap();
    let sin = dir.path().join("sin.js");
    let cos = dir.path().join("cos.js");
    std::fs::write(&sin, sine_file(330.0, "sin")).unwrap();
    std::fs::write(&cos, sine_file(330.0, "cos")).unwrap();
    let render = |fade: &str| {
        let out = dir.path().join(format!("fade-{fade}.wav"));
        let o = run(flux()
            .arg("render")
            .arg(&sin)
            .arg("-o")
            .arg(&out)
            .args(["--seconds", "0.3", "--fade", fade, "--swap"])
            .arg(format!("0.1:{}", cos.display())));
        assert!(o.status.success(), "{}", stderr(&o));
        read_wav(&out).2
    };
    let step = |s: &[f32]| {
        s.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    };
    let at = 4800;
    let cut = render("0");
    let own = step(&cut[..at]);
    // Cutting from sin to cos on the same phase jumps by about the amplitude.
    assert!((cut[at] - cut[at - 1]).abs() > 10.0 * own);
    // The default 20 ms crossfade steps no further than the tone itself.
    let faded = render("20");
    let worst = step(&faded[at - 10..at + 970]);
    assert!(
        worst <= own * 1.1,
        "{worst} across the fade, {own} in the tone"
    );
    // Once faded, it is sample for sample what the new code plays on the true phase.
    assert_eq!(&faded[at + 960..], &cut[at + 960..]);
}
