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
