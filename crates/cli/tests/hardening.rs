//! Hostile and clumsy command lines and files: a clear refusal, never a panic or a hang.

mod common;

use common::{flux, run, sine_file, stderr};

#[test]
fn check_survives_a_64_kib_id_and_refuses_ids_over_256_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("long.js");
    let id = "x".repeat(64 << 10);
    std::fs::write(
        &f,
        format!("flux('{id}', () => ({{ update: () => 0 }}));\n"),
    )
    .unwrap();
    let o = run(flux().arg("check").arg(&f));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("long.js:1:"), "{text}");
    assert!(
        text.contains("an id is at most 256 bytes, not 65536"),
        "{text}"
    );
    // 256 bytes is fine, and the listing pads without a format width.
    let id = "y".repeat(256);
    std::fs::write(
        &f,
        format!("flux('{id}', () => ({{ update: () => 0 }}));\n"),
    )
    .unwrap();
    let o = run(flux().arg("check").arg(&f));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn sample_rates_outside_8_khz_to_768_khz_are_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.js");
    std::fs::write(&f, sine_file(440.0, "sin")).unwrap();
    let out = dir.path().join("o.wav");
    for rate in ["1", "7999", "768001"] {
        let o = run(flux().arg("play").arg(&f).args([
            "--null",
            "--no-listen",
            "--seconds",
            "1",
            "--sample-rate",
            rate,
        ]));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!("a sample rate of {rate} Hz is refused")),
            "{e}"
        );
        assert!(e.contains("from 8000 to 768000 Hz"), "{e}");
        let o = run(flux().arg("render").arg(&f).arg("-o").arg(&out).args([
            "--seconds",
            "1",
            "--sample-rate",
            rate,
        ]));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let o = run(flux()
            .arg("bench")
            .arg(&f)
            .args(["--seconds", "0.1", "--sample-rate", rate]));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    }
    for channels in ["0", "65"] {
        let o = run(flux().arg("render").arg(&f).arg("-o").arg(&out).args([
            "--seconds",
            "1",
            "--channels",
            channels,
        ]));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    }
    for seconds in ["inf", "NaN", "-1", "0"] {
        let o = run(flux().arg("bench").arg(&f).args(["--seconds", seconds]));
        assert_eq!(o.status.code(), Some(2), "{seconds}: {}", stderr(&o));
        let o =
            run(flux()
                .arg("play")
                .arg(&f)
                .args(["--null", "--no-listen", "--seconds", seconds]));
        assert_eq!(o.status.code(), Some(2), "{seconds}: {}", stderr(&o));
    }
    let o = run(flux().arg("play").arg(&f).args([
        "--null",
        "--no-listen",
        "--seconds",
        "1",
        "--buffer",
        "1",
    ]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn render_refuses_to_write_over_its_inputs_and_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("song.js");
    let lib = dir.path().join("lib.js");
    let other = dir.path().join("other.js");
    let notes = dir.path().join("notes.txt");
    let text = "import { flux } from './flux.js';\nimport { amp } from './lib.js';\n\
                flux('a', () => ({ update: () => amp }));\n";
    std::fs::write(&song, text).unwrap();
    std::fs::write(&lib, "export const amp = 0.25;\n").unwrap();
    std::fs::write(&other, sine_file(440.0, "sin")).unwrap();
    std::fs::write(&notes, "my notes\n").unwrap();
    let render = |out: &std::path::Path, extra: &[&str]| {
        run(flux()
            .arg("render")
            .arg(&song)
            .arg("-o")
            .arg(out)
            .args(["--seconds", "0.1"])
            .args(extra))
    };
    let swap = format!("0.05:{}", other.display());
    for (out, what) in [(&song, &song), (&lib, &lib), (&other, &other)] {
        let o = render(out, &["--swap", &swap]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!("-o {} is an input of this render", out.display()))
                && e.contains(&what.display().to_string())
                && e.contains("--force"),
            "{e}"
        );
    }
    assert_eq!(std::fs::read_to_string(&song).unwrap(), text);
    assert_eq!(
        std::fs::read_to_string(&lib).unwrap(),
        "export const amp = 0.25;\n"
    );
    let o = render(&notes, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "-o {} exists and is not a WAV file",
            notes.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    // A WAV file is written over; --force writes over anything.
    let wav = dir.path().join("out.wav");
    assert!(render(&wav, &[]).status.success());
    assert!(render(&wav, &[]).status.success());
    let o = render(&notes, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&std::fs::read(&notes).unwrap()[..4], b"RIFF");
}

#[test]
fn a_render_past_the_wav_limit_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.js");
    std::fs::write(&f, sine_file(440.0, "sin")).unwrap();
    let out = dir.path().join("o.wav");
    let o = run(flux()
        .arg("render")
        .arg(&f)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", "1e12"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("a WAV file holds at most 4 GiB: at most 22370 s at this rate"),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn play_refuses_to_record_or_write_stats_over_its_signals_file() {
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("song.js");
    let text = sine_file(440.0, "sin");
    std::fs::write(&song, &text).unwrap();
    for flag in ["--record", "--stats"] {
        let o = run(flux()
            .arg("play")
            .arg(&song)
            .args(["--null", "--no-listen", "--seconds", "0.2", flag])
            .arg(&song));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "{flag} {} is {}, an input of this session",
                song.display(),
                song.display()
            )),
            "{}",
            stderr(&o)
        );
    }
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "keep me\n").unwrap();
    let o = run(flux()
        .arg("play")
        .arg(&song)
        .args(["--null", "--no-listen", "--seconds", "0.2", "--record"])
        .arg(&notes));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exists and is not a WAV file"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&song).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me\n");
}
