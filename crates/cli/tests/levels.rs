//! The master section and the meters, through the binary: `--master limit|clip|none|tanh`
//! on the rendered samples, `render --levels`, `play --stats` and the `levels` request.

mod common;
mod live;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{flux, read_wav, run, sine_file, stderr};
use live::{serial, Player};

/// -1 dBFS, the default ceiling.
const CEILING: f32 = 0.891_251;

/// A file of sines: `(id, freq, amplitude)`, each on every channel.
fn sines(list: &[(&str, f64, f64)]) -> String {
    list.iter()
        .map(|(id, freq, amp)| {
            format!(
                "flux('{id}', (mem, idx) => ({{ update: (sr) => {{\n\
                   mem[idx] = (mem[idx] + {freq:?} / sr) % 1.0;\n\
                   return Math.sin(mem[idx] * 2 * Math.PI) * {amp:?};\n\
                 }} }}));\n"
            )
        })
        .collect()
}

/// `flux render` of `source` for `seconds` with `extra`; the samples and standard error.
fn render(dir: &Path, source: &str, seconds: &str, extra: &[&str]) -> (Vec<f32>, String) {
    let file = dir.join("signals.js");
    std::fs::write(&file, source).unwrap();
    let out = dir.join("out.wav");
    let o = run(flux()
        .arg("render")
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .args(["--seconds", seconds])
        .args(extra));
    assert!(o.status.success(), "{}", stderr(&o));
    (read_wav(&out).2, stderr(&o))
}

fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0, |p, x| p.max(x.abs()))
}

/// The number after `what ` in the part of a `levels:` line about `who`.
fn level(line: &str, who: &str, what: &str) -> f64 {
    let line = line.lines().find(|l| l.starts_with("levels: ")).unwrap();
    let part = line["levels: ".len()..]
        .split(" | ")
        .find(|p| p.starts_with(&format!("{who} ")))
        .unwrap_or_else(|| panic!("no {who} in {line}"));
    let rest = &part[part.find(&format!("{what} ")).unwrap() + what.len() + 1..];
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn limit_keeps_every_sample_of_a_loud_sum_at_or_under_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    // Two full-scale sines: their sum reaches 2.0.
    let source = sines(&[("a", 110.0, 1.0), ("b", 110.0, 1.0)]);
    let (raw, _) = render(
        dir.path(),
        &source,
        "1",
        &["--master", "none", "--channels", "2"],
    );
    assert!(peak(&raw) > 1.99, "{}", peak(&raw));
    let (out, err) = render(
        dir.path(),
        &source,
        "1",
        &["--master", "limit", "--channels", "2"],
    );
    assert!(
        err.contains("96 frames (2.0 ms) of look-ahead latency"),
        "{err}"
    );
    assert!(peak(&out) <= CEILING, "{}", peak(&out));
    assert!(peak(&out) > 0.89, "{}", peak(&out));
    // Another ceiling.
    let (out, _) = render(
        dir.path(),
        &source,
        "1",
        &["--master", "limit", "--ceiling", "-6"],
    );
    assert!(peak(&out) <= 0.501_188, "{}", peak(&out));
}

#[test]
fn limit_leaves_a_half_scale_sine_unchanged_but_for_its_delay() {
    let dir = tempfile::tempdir().unwrap();
    let source = sine_file(1000.0, "sin");
    let (plain, _) = render(dir.path(), &source, "1", &["--master", "none"]);
    let (limited, _) = render(dir.path(), &source, "1", &["--master", "limit"]);
    let delay = 96;
    assert!(limited[..delay].iter().all(|&x| x == 0.0));
    for (l, p) in limited[delay..].iter().zip(&plain) {
        if p.abs() > 1e-3 {
            let db = 20.0 * (l / p).abs().log10();
            assert!(db.abs() <= 0.01, "{l} against {p}");
        }
    }
}

#[test]
fn clip_cuts_at_the_ceiling_and_none_passes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let source = sines(&[("a", 440.0, 1.5)]);
    let (clipped, _) = render(dir.path(), &source, "0.5", &["--master", "clip"]);
    assert!(
        peak(&clipped) <= CEILING && peak(&clipped) > 0.8912,
        "{}",
        peak(&clipped)
    );
    let (raw, _) = render(dir.path(), &source, "0.5", &["--master", "none"]);
    assert!((peak(&raw) - 1.5).abs() < 1e-3, "{}", peak(&raw));
    // Where the sine is under the ceiling, clip leaves it alone.
    for (c, r) in clipped.iter().zip(&raw) {
        if r.abs() < 0.89 {
            assert_eq!(c, r);
        }
    }
}

/// The default is `tanh`, sample for sample what Flux always wrote: `tanh(x)` of the f64
/// mix, rounded to f32. A ramp of values that f32 holds exactly (no fade-in to blur them)
/// lets `--master none` show the mix itself.
#[test]
fn tanh_is_the_default_and_writes_what_flux_always_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let source = "flux('ramp', (mem, idx) => ({ update: () => {\n\
                    mem[idx] = (mem[idx] + 1) % 1024;\n\
                    return mem[idx] / 256 - 2;\n\
                  } }));\n";
    let (raw, _) = render(
        dir.path(),
        source,
        "0.1",
        &["--master", "none", "--fade", "0"],
    );
    assert!(raw.iter().any(|&x| x == -2.0) && raw.iter().any(|&x| x > 1.99));
    let (default, _) = render(dir.path(), source, "0.1", &["--fade", "0"]);
    let (tanh, _) = render(
        dir.path(),
        source,
        "0.1",
        &["--master", "tanh", "--fade", "0"],
    );
    assert_eq!(default, tanh);
    for (t, r) in default.iter().zip(&raw) {
        assert_eq!(
            t.to_bits(),
            (f64::from(*r).tanh() as f32).to_bits(),
            "tanh({r})"
        );
    }
}

#[test]
fn the_dc_blocker_takes_an_offset_away() {
    let dir = tempfile::tempdir().unwrap();
    let source = "flux('dc', () => ({ update: () => 0.3 }));\n";
    let (raw, _) = render(dir.path(), source, "2", &["--master", "none"]);
    assert!((raw[raw.len() - 1] - 0.3).abs() < 1e-6);
    let (out, _) = render(dir.path(), source, "2", &["--master", "none", "--dc-block"]);
    let last = out[out.len() - 4800..]
        .iter()
        .fold(0.0f32, |p, x| p.max(x.abs()));
    assert!(last < 1e-3, "{last}");
}

#[test]
fn bad_master_options_are_refused_with_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, sine_file(440.0, "sin")).unwrap();
    for (args, says) in [
        (["--master", "loud"], "unknown master mode \"loud\""),
        (["--ceiling", "3"], "not 3"),
    ] {
        let o = run(flux()
            .arg("render")
            .arg(&file)
            .args(["-o", "x.wav", "--seconds", "1"])
            .args(args));
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
}

#[test]
fn render_levels_read_a_half_scale_sine() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plain) = render(dir.path(), &sine_file(1000.0, "sin"), "1", &[]);
    assert!(!plain.contains("levels:"), "{plain}");
    let (_, err) = render(
        dir.path(),
        &sine_file(1000.0, "sin"),
        "1",
        &["--master", "none", "--levels"],
    );
    for who in ["master", "tone"] {
        let peak = level(&err, who, "peak");
        let rms = level(&err, who, "rms");
        assert!((peak + 6.02).abs() < 0.1, "{who}: {err}");
        assert!((rms + 9.03).abs() < 0.1, "{who}: {err}");
    }
}

/// EBU Tech 3341, case 1: a stereo 1 kHz sine at -23 dBFS reads -23.0 LUFS.
#[test]
fn a_stereo_sine_at_minus_23_dbfs_reads_minus_23_lufs() {
    let dir = tempfile::tempdir().unwrap();
    let amp = 10f64.powf(-23.0 / 20.0);
    let source = sines(&[("ref", 1000.0, amp)]);
    let args = ["--master", "none", "--channels", "2", "--levels"];
    let (_, err) = render(dir.path(), &source, "4", &args);
    let line = err.lines().find(|l| l.starts_with("levels: ")).unwrap();
    let lufs: f64 = line
        .split(" LUFS")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((lufs + 23.0).abs() <= 0.1, "{line}");
}

/// One request on a connection of its own; the reply.
fn request(addr: &str, line: &str) -> serde_json::Value {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(conn).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap()
}

#[test]
fn play_gives_levels_on_request_and_over_the_run_in_stats() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, sine_file(1000.0, "sin")).unwrap();
    let st = dir.path().join("st.json");
    let player = Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--channels"),
        OsStr::new("2"),
        OsStr::new("--seconds"),
        OsStr::new("4"),
        OsStr::new("--master"),
        OsStr::new("limit"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--stats"),
        st.as_os_str(),
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let reply = request(player.addr(), r#"{"op":"levels"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    for part in [
        &reply["levels"]["master"],
        &reply["levels"]["signals"]["tone"],
    ] {
        let peak = part["peak_dbfs"].as_f64().unwrap();
        let rms = part["rms_dbfs"].as_f64().unwrap();
        assert!(
            (peak + 6.02).abs() < 0.1 && (rms + 9.03).abs() < 0.1,
            "{reply}"
        );
    }
    let (code, lines) = player.finish();
    assert_eq!(code, Some(0), "{lines}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&st).unwrap()).unwrap();
    let levels = &stats["levels"];
    let master = &levels["master"];
    assert!(
        (master["peak_dbfs"].as_f64().unwrap() + 6.02).abs() < 0.1,
        "{levels}"
    );
    // Over the run the RMS includes the fade-in: a little under the tone's own.
    assert!(
        (master["rms_dbfs"].as_f64().unwrap() + 9.03).abs() < 0.1,
        "{levels}"
    );
    // A stereo sine at -6.02 dBFS reads -6.0 LUFS (3 s windows: 4 s are enough).
    assert!(
        (master["lufs_short"].as_f64().unwrap() + 6.02).abs() < 0.2,
        "{levels}"
    );
    assert_eq!(master["clips"], 0, "{levels}");
    let tone = &levels["signals"]["tone"];
    assert!(
        (tone["peak_dbfs"].as_f64().unwrap() + 6.02).abs() < 0.1,
        "{levels}"
    );
    assert!(
        (tone["rms_dbfs"].as_f64().unwrap() + 9.03).abs() < 0.1,
        "{levels}"
    );
}

#[test]
fn the_master_request_changes_the_stage_while_playing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, sine_file(1000.0, "sin")).unwrap();
    let mut player = Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--seconds"),
        OsStr::new("3"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
    ]);
    let addr = player.addr().to_owned();
    let reply = request(&addr, r#"{"op":"master","mode":"loud"}"#);
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("unknown master mode \"loud\""),
        "{reply}"
    );
    let reply = request(&addr, r#"{"op":"master","mode":"clip","ceiling":-12}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    player.wait_for("control: master clip at -12 dBFS", Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(700));
    // The 0.5 sine (-6 dBFS) now leaves clipped at -12 dBFS.
    let reply = request(&addr, r#"{"op":"levels"}"#);
    let peak = reply["levels"]["master"]["peak_dbfs"].as_f64().unwrap();
    assert!((peak + 12.0).abs() < 0.1, "{reply}");
    let tone = reply["levels"]["signals"]["tone"]["peak_dbfs"]
        .as_f64()
        .unwrap();
    assert!((tone + 6.02).abs() < 0.1, "{reply}");
    let (code, lines) = player.finish();
    assert_eq!(code, Some(0), "{lines}");
}
