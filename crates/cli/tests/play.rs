//! `flux play` in real time: reloads on save, bad saves, outputs. Headless: the null output,
//! and a JACK server with the dummy driver for the device path.

mod common;
#[path = "../../audio/tests/support/jack.rs"]
mod jack;
mod live;

use std::path::Path;
use std::time::Duration;

use common::{flux, frequency, read_rendered, run, sine_file, stderr};
use live::Player;

fn stats(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Saves `text` the way Vim does: write a new file, rename it over the old one.
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("js.swp-new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Saves `text` in place: truncate first, then write, with a pause in between.
fn save_by_truncate(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    std::thread::sleep(Duration::from_millis(3));
    f.write_all(text.as_bytes()).unwrap();
}

/// Samples of the first sound's fade-in (20 ms at 48 kHz), skipped by the silence checks.
const FADE_IN: usize = 960;

/// RMS of `samples` in windows of `window` samples; the smallest one.
fn quietest_window(samples: &[f32], window: usize) -> f32 {
    samples
        .chunks_exact(window)
        .map(|w| (w.iter().map(|s| s * s).sum::<f32>() / window as f32).sqrt())
        .fold(f32::INFINITY, f32::min)
}

#[test]
fn twenty_five_saves_while_playing_never_silence_the_sound() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    let (st, rec) = (dir.path().join("st.json"), dir.path().join("rec.wav"));
    std::fs::write(&file, sine_file(300.0, "sin")).unwrap();
    let mut player = Player::start(&[
        file.as_os_str(),
        "--null".as_ref(),
        "--channels".as_ref(),
        "1".as_ref(),
        "--seconds".as_ref(),
        "6".as_ref(),
        "--stats".as_ref(),
        st.as_os_str(),
        "--record".as_ref(),
        rec.as_os_str(),
    ]);
    let mut last = 0.0;
    for i in 0..25 {
        std::thread::sleep(Duration::from_millis(120));
        last = 300.0 + 10.0 * f64::from(i + 1);
        let text = sine_file(last, "sin");
        match i % 5 {
            // A syntax error: the sound plays on.
            3 => save_by_rename(
                &file,
                "flux('tone', () => ({ update: () => 0 }));\nlet x = ;\n",
            ),
            // An editor that truncates and writes: the empty file is never loaded.
            4 => save_by_truncate(&file, &text),
            _ => save_by_rename(&file, &text),
        }
    }
    player.wait_for("ok, 1 signal", Duration::from_secs(5));
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("SyntaxError"), "{log}");
    let s = stats(&st);
    // Underruns and latencies depend on how busy the machine is: benchmarks measure them
    // (scripts/reload-soak.sh); this test holds the behaviour.
    assert!(s["reloads"].as_u64().unwrap() >= 20, "{s}\n{log}");
    assert_eq!(s["reload_errors"], 5, "{s}\n{log}");
    assert_eq!(
        s["reload_ms"].as_array().unwrap().len() as u64,
        s["reloads"].as_u64().unwrap()
    );
    // Every good load was heard: its first frame left the ring after it was ready.
    let heard = s["reload_to_audible_ms"].as_array().unwrap();
    assert!(heard.len() >= 20, "{s}");
    assert!(heard.iter().all(|ms| ms.as_f64().unwrap() >= 0.0), "{s}");
    assert!(s["frames"].as_u64().unwrap() > 0, "{s}");

    let (_, _, samples) = read_rendered(&rec, &st);
    // Never silent: no 10 ms stretch without sound, from the first save to the last.
    assert!(
        quietest_window(&samples[FADE_IN..], 480) > 0.2,
        "a silent stretch in the recording"
    );
    // The last save is what plays at the end.
    let tail = &samples[samples.len() - 24_000..];
    let f = frequency(tail, 48_000);
    assert!(
        (f - last).abs() < 0.5,
        "{f} Hz at the end, {last} Hz saved last"
    );
}

#[test]
fn an_endless_loop_in_a_save_is_cut_off_and_the_sound_goes_on() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    let (st, rec) = (dir.path().join("st.json"), dir.path().join("rec.wav"));
    std::fs::write(&file, sine_file(200.0, "sin")).unwrap();
    let mut player = Player::start(&[
        file.as_os_str(),
        "--null".as_ref(),
        "--seconds".as_ref(),
        "7.5".as_ref(),
        "--stats".as_ref(),
        st.as_os_str(),
        "--record".as_ref(),
        rec.as_os_str(),
    ]);
    save_by_rename(&file, "let n = 0;\nwhile (true) { n++; }\n");
    let line = player.wait_for("ran longer", Duration::from_secs(8));
    // QuickJS does not record the position of a loop it interrupts; the file's only loop at
    // the top level is named.
    assert!(
        line.contains(&format!(" s: {}:2:1: ", file.display())),
        "{line}"
    );
    assert!(line.contains("the file ran longer than 5000 ms while loading (an endless loop?) (still playing 1 signal;"), "{line}");
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    // What was rendered: the sound went on while the save ran.
    let (_, channels, samples) = read_rendered(&rec, &st);
    assert_eq!(channels, 2);
    let left: Vec<f32> = samples.iter().step_by(2).copied().collect();
    assert!(
        quietest_window(&left[FADE_IN..], 480) > 0.2,
        "a silent stretch in the recording"
    );
    let f = frequency(&left, 48_000);
    assert!((f - 200.0).abs() < 0.1, "{f}");
}

#[test]
fn an_unknown_device_is_refused_with_the_list_of_devices() {
    let o = run(flux()
        .args(["play", "--device", "no-such-device-xyz", "--seconds", "1"])
        .arg(common::example("sine-440.js")));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    // The list, or on a machine with none (ALSA's unclocked `null` is not offered), that.
    assert!(
        err.contains("no output device named \"no-such-device-xyz\"; available devices are")
            || err.contains(
                "no output device named \"no-such-device-xyz\"; no output devices are available"
            ),
        "{err}"
    );
}

#[test]
fn without_a_usable_device_play_says_so_and_uses_the_null_output() {
    let _serial = live::serial();
    let o = run(flux()
        .arg("play")
        .arg(common::example("sine-440.js"))
        .args(["--seconds", "0.5"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    if err.contains(" on null ") {
        assert!(err.contains("no usable audio device ("), "{err}");
    } else {
        // A machine with a sound card played on it.
        assert!(err.contains("playing "), "{err}");
    }
}

#[test]
fn play_runs_on_a_real_device_through_jack() {
    let _serial = live::serial();
    let _server = jack::JackServer::start();
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("st.json");
    let o = run(flux()
        .arg("play")
        .arg(common::example("sine-440.js"))
        .args(["--device", "jack", "--seconds", "2", "--stats"])
        .arg(&st));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stats(&st);
    assert_eq!(s["output"], "JACK: JACK Output", "{s}");
    assert_eq!(s["sample_rate"], jack::RATE, "{s}");
    // The device pulled frames; how many in two seconds, and whether it ran short, is
    // for benchmarks on a quiet machine.
    assert!(s["frames"].as_u64().unwrap() > 0, "{s}");
}
