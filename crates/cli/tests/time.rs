//! Time through the binary: `--bpm`, `tempo()`, `--quantize` on renders (to the frame, on
//! both tiers), and tempo and clock over the control protocol.

mod common;
mod live;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{flux, read_rendered, read_wav, run, stderr};
use live::{serial, Player};

/// Renders `a` for `seconds` with `args`, swapping to `b` at 1.1 s; returns the samples.
fn render_swap(dir: &Path, a: &str, b: &str, seconds: &str, args: &[&str]) -> Vec<f32> {
    let (fa, fb, out) = (dir.join("a.js"), dir.join("b.js"), dir.join("out.wav"));
    std::fs::write(&fa, a).unwrap();
    std::fs::write(&fb, b).unwrap();
    let swap = format!("1.1:{}", fb.display());
    let o = run(flux()
        .arg("render")
        .arg(&fa)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", seconds, "--swap", &swap])
        .args(args));
    assert!(o.status.success(), "{}", stderr(&o));
    read_wav(&out).2
}

#[test]
fn a_render_quantized_to_the_bar_swaps_at_frame_96000_on_both_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let a = "play('x', () => 0.25);";
    let b = "play('x', () => 0.5);";
    for tier in ["js", "native"] {
        let args = [
            "--quantize",
            "bar",
            "--bpm",
            "120",
            "--fade",
            "0",
            "--tier",
            tier,
        ];
        let samples = render_swap(dir.path(), a, b, "2.5", &args);
        let first = samples.iter().position(|&x| x == 0.5f64.tanh() as f32);
        assert_eq!(first, Some(96_000), "{tier}");
        assert!(samples[..96_000]
            .iter()
            .all(|&x| x == 0.25f64.tanh() as f32));
        // With a crossfade, it starts there: after the first load's fade-in, the first
        // frame that differs is 96000.
        let args = ["--quantize", "bar", "--bpm", "120", "--tier", tier];
        let samples = render_swap(dir.path(), a, b, "2.5", &args);
        let first = samples[2_000..]
            .iter()
            .position(|&x| x != 0.25f64.tanh() as f32);
        assert_eq!(first.map(|f| f + 2_000), Some(96_000), "{tier}");
    }
    // Without quantizing, the swap lands at 1.1 s; at 90 bpm, a bar is 2.667 s.
    let samples = render_swap(dir.path(), a, b, "2.5", &["--fade", "0"]);
    let first = samples.iter().position(|&x| x == 0.5f64.tanh() as f32);
    assert_eq!(first, Some(52_800));
    let args = ["--fade", "0", "--quantize", "2", "--bpm", "90"];
    let samples = render_swap(dir.path(), a, b, "2.5", &args);
    let first = samples.iter().position(|&x| x == 0.5f64.tanh() as f32);
    assert_eq!(first, Some(64_000), "beat 2 at 90 bpm is 1.333 s");
}

#[test]
fn bpm_and_tempo_set_the_clock_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bpm = "play('x', () => clock.bpm / 1000);";
    let tempo = "tempo(150);\nplay('x', () => clock.bpm / 1000);";
    let samples = render_swap(dir.path(), bpm, bpm, "0.1", &["--bpm", "90"]);
    // After the first load's fade-in.
    assert_eq!(samples[4_000], 0.09f64.tanh() as f32);
    let samples = render_swap(dir.path(), tempo, tempo, "0.1", &["--bpm", "90"]);
    assert_eq!(samples[4_000], 0.15f64.tanh() as f32);
    for (flag, value, says) in [
        ("--bpm", "1000", "from 20 to 999"),
        (
            "--quantize",
            "sometimes",
            "none, beat, bar or a number of beats",
        ),
    ] {
        let o = run(flux()
            .args([
                "render",
                "a.js",
                "-o",
                "x.wav",
                "--seconds",
                "1",
                flag,
                value,
            ])
            .current_dir(dir.path()));
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    // tempo() with a bad value is an error at its place.
    let file = dir.path().join("bad.js");
    std::fs::write(&file, "play('x', () => 0);\ntempo('fast');\n").unwrap();
    let o = run(flux()
        .arg("render")
        .arg(&file)
        .args(["-o", "x.wav", "--seconds", "0.1"])
        .current_dir(dir.path()));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("bad.js:2:1: TypeError: tempo(bpm, glide?): bpm must be a number"),
        "{}",
        stderr(&o)
    );
}

fn request(addr: &str, line: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
}

#[test]
fn tempo_and_the_clock_over_the_control_protocol_and_in_the_stats() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, "play('x', (s) => Math.sin(s.beat) * 0.1);").unwrap();
    let st = dir.path().join("st.json");
    let args: Vec<&OsStr> = vec![
        file.as_os_str(),
        "--null".as_ref(),
        "--seconds".as_ref(),
        "3".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--bpm".as_ref(),
        "100".as_ref(),
        "--stats".as_ref(),
        st.as_os_str(),
    ];
    let mut player = Player::start(&args);
    let addr = player.addr().to_owned();
    let reply = request(&addr, r#"{"op":"status"}"#);
    assert_eq!(reply["status"]["bpm"], 100.0, "{reply}");
    let reply = request(&addr, r#"{"op":"tempo","bpm":140,"glide":0}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = request(&addr, r#"{"op":"tempo","bpm":"fast"}"#);
    assert_eq!(reply["ok"], false, "{reply}");
    let reply = request(&addr, r#"{"op":"tempo","bpm":-3}"#);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("the tempo must be a number of beats per minute"),
        "{reply}"
    );
    // A quantize that is not one refuses the code; a good one takes it.
    let reply = request(
        &addr,
        r#"{"op":"eval","code":"play('y', () => 0)","quantize":"often"}"#,
    );
    assert_eq!(reply["ok"], false, "{reply}");
    let reply = request(
        &addr,
        r#"{"op":"eval","code":"play('y', () => 0)","quantize":"beat"}"#,
    );
    assert_eq!(reply["ok"], true, "{reply}");
    player.wait_for("control: tempo 140", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let reply = request(&addr, r#"{"op":"status"}"#);
    assert_eq!(reply["status"]["bpm"], 140.0, "{reply}");
    assert!(reply["status"]["beat"].as_f64().unwrap() > 0.0, "{reply}");
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&st).unwrap()).unwrap();
    assert_eq!(stats["bpm"], 140.0);
    let (beat, bar) = (
        stats["beat"].as_f64().unwrap(),
        stats["bar"].as_f64().unwrap(),
    );
    assert!(beat > 3.0 && (bar * 4.0 - beat).abs() < 1e-9, "{stats}");
}

#[test]
fn code_sent_to_a_quantized_play_takes_over_on_a_bar_line_to_the_frame() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, "play('x', () => 0.25);").unwrap();
    let (rec, st) = (dir.path().join("rec.wav"), dir.path().join("st.json"));
    let args: Vec<&OsStr> = vec![
        file.as_os_str(),
        "--null".as_ref(),
        "--channels".as_ref(),
        "1".as_ref(),
        "--seconds".as_ref(),
        "2.6".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--quantize".as_ref(),
        "bar".as_ref(),
        "--fade".as_ref(),
        "0".as_ref(),
        "--record".as_ref(),
        rec.as_os_str(),
        "--stats".as_ref(),
        st.as_os_str(),
    ];
    let player = Player::start(&args);
    let addr = player.addr().to_owned();
    std::thread::sleep(Duration::from_millis(300));
    let snippet = dir.path().join("live.js");
    std::fs::write(&snippet, "play('x', () => 0.5);").unwrap();
    let out = run(flux().arg("send").arg(&snippet).args(["--to", &addr]));
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = run(flux()
        .arg("send")
        .arg(&snippet)
        .args(["--to", &addr, "--quantize", "often"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("not 'often'"), "{}", stderr(&bad));
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&st).unwrap()).unwrap();
    assert_eq!(stats["recording_dropped_frames"], 0, "{stats}");
    // What was rendered starts on the engine's first frame: the new code is heard from a bar
    // line on (frame 96000 at 120 bpm), exactly.
    let (_, _, samples) = read_rendered(&rec, &st);
    let first = samples.iter().position(|&x| x == 0.5f64.tanh() as f32);
    assert_eq!(first, Some(96_000), "{log}");
    assert!(samples[2_000..96_000]
        .iter()
        .all(|&x| x == 0.25f64.tanh() as f32));
}
