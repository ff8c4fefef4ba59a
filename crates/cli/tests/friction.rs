//! What a newcomer meets in the first hour (issue 11, item 10): no `ALSA lib` noise, an
//! honest device list, `check` that tries each signal, examples in every `--help`, `render`
//! as wide as its widest signal, and REPL values.

mod common;
mod live;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{example, flux, run, stderr};
use live::Player;

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
    let o = run(flux().arg("render").arg(&f).arg("-o").arg(&out).args([
        "--seconds",
        "0.01",
        "--fade",
        "0",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, channels, samples) = common::read_wav(&out);
    assert_eq!(channels, 2);
    // Both channels as written (after the master's tanh), frame by frame.
    for (k, frame) in samples.chunks(2).enumerate().take(300) {
        let ramp = ((k + 1) % 100) as f64;
        let (left, right) = ((ramp / 200.0).tanh(), (-ramp / 400.0).tanh());
        assert!(
            (f64::from(frame[0]) - left).abs() < 1e-6,
            "frame {k}: {frame:?}"
        );
        assert!(
            (f64::from(frame[1]) - right).abs() < 1e-6,
            "frame {k}: {frame:?}"
        );
    }
    // --channels still wins.
    let o = run(flux().arg("render").arg(&f).arg("-o").arg(&out).args([
        "--seconds",
        "0.01",
        "--channels",
        "1",
    ]));
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

/// Two tones, 300 Hz and 500 Hz, on one channel.
const TWO_TONES: &str = "flux('a', (mem, idx) => ({ update: (sr) => {\n\
  mem[idx] = (mem[idx] + 300 / sr) % 1.0;\n\
  return Math.sin(mem[idx] * 2 * Math.PI) * 0.3;\n\
} }));\n\
flux('b', (mem, idx) => ({ update: (sr) => {\n\
  mem[idx] = (mem[idx] + 500 / sr) % 1.0;\n\
  return Math.sin(mem[idx] * 2 * Math.PI) * 0.3;\n\
} }));\n";

/// `flux play` of `source` on the null output, mono, listening on a free port, recording.
fn play(dir: &Path, source: &str, seconds: &str) -> Player {
    let file = dir.join("signals.js");
    std::fs::write(&file, source).unwrap();
    let rec = dir.join("rec.wav");
    let stats = dir.join("stats.json");
    Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--channels"),
        OsStr::new("1"),
        OsStr::new("--seconds"),
        OsStr::new(seconds),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--record"),
        rec.as_os_str(),
        OsStr::new("--stats"),
        stats.as_os_str(),
    ])
}

/// One request on a connection of its own; the reply.
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

/// The playing time a `flux play` line starts with (`1.234 s: ...`).
fn time_of(line: &str) -> f64 {
    let (t, _) = line
        .split_once(" s: ")
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    t.parse().unwrap_or_else(|_| panic!("no time in {line:?}"))
}

/// Whether the signal `id` is muted, as `list` says.
fn muted(addr: &str, id: &str) -> bool {
    let reply = request(addr, r#"{"op":"list"}"#);
    let signals = reply["signals"].as_array().unwrap();
    let s = signals.iter().find(|s| s["id"] == id).unwrap();
    s["muted"].as_bool().unwrap()
}

#[test]
fn unsolo_brings_back_every_soloed_out_signal() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut player = play(dir.path(), TWO_TONES, "4.4");
    let addr = player.addr().to_owned();
    let mut times = Vec::new();
    let mut at = |player: &mut Player, wait: f64, line: &str, said: &str| {
        std::thread::sleep(Duration::from_secs_f64((wait - player.now()).max(0.0)));
        let reply = request(&addr, line);
        assert_eq!(reply["ok"], true, "{line}: {reply}");
        times.push(time_of(&player.wait_for(said, Duration::from_secs(5))));
    };
    // Over the protocol, then in JavaScript.
    at(
        &mut player,
        0.7,
        r#"{"op":"solo","signal":"a"}"#,
        "solo 'a'",
    );
    at(&mut player, 1.5, r#"{"op":"unsolo"}"#, ": unsolo");
    at(
        &mut player,
        2.3,
        r#"{"op":"eval","code":"solo('b')","name":"s.js"}"#,
        "s.js: ok",
    );
    at(
        &mut player,
        3.1,
        r#"{"op":"eval","code":"unsolo()","name":"u.js"}"#,
        "u.js: ok",
    );
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");

    // The sound the code made, without the silences of underruns a busy machine causes.
    let (rate, _, samples) =
        common::read_rendered(&dir.path().join("rec.wav"), &dir.path().join("stats.json"));
    let window = |from: f64, to: f64| live::window(&samples, rate, from + 0.15, to - 0.05);
    let both = live::rms(window(0.2, times[0]));
    assert!(both > 0.25, "both tones: rms {both}");
    // Solo 'a': 300 Hz alone; unsolo: both again; solo 'b': 500 Hz alone; unsolo: both.
    let solo_a = window(times[0], times[1]);
    assert!((common::frequency(solo_a, rate) - 300.0).abs() < 2.0);
    assert!(live::rms(solo_a) < 0.23, "{}", live::rms(solo_a));
    let again = live::rms(window(times[1], times[2]));
    assert!(
        (again - both).abs() < 0.01,
        "{again} after unsolo, {both} before"
    );
    let solo_b = window(times[2], times[3]);
    assert!((common::frequency(solo_b, rate) - 500.0).abs() < 2.0);
    let last = live::rms(window(times[3], 4.3));
    assert!(
        (last - both).abs() < 0.01,
        "{last} after unsolo(), {both} before"
    );
}

#[test]
fn unsolo_leaves_a_signal_muted_by_hand_muted() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let three = format!("{TWO_TONES}flux('c', () => ({{ update: () => 0 }}));\n");
    let player = play(dir.path(), &three, "3");
    let addr = player.addr().to_owned();
    request(&addr, r#"{"op":"mute","signal":"c"}"#);
    request(&addr, r#"{"op":"solo","signal":"a"}"#);
    assert!(!muted(&addr, "a") && muted(&addr, "b") && muted(&addr, "c"));
    // `:solo` alone in the REPL.
    let mut repl = flux()
        .args(["repl", "--to", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    repl.stdin.take().unwrap().write_all(b":solo\n").unwrap();
    let out = repl.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unsolo"),
        "{}",
        stderr(&out)
    );
    assert!(!muted(&addr, "a") && !muted(&addr, "b") && muted(&addr, "c"));
    // Nothing soloed: unsolo changes nothing.
    assert_eq!(request(&addr, r#"{"op":"unsolo"}"#)["ok"], true);
    assert!(!muted(&addr, "a") && !muted(&addr, "b") && muted(&addr, "c"));
    drop(player);
}

/// What `flux repl` prints for `entries`, one a line, sent to a playing `flux play`.
fn repl(addr: &str, entries: &str) -> String {
    let mut repl = flux()
        .args(["repl", "--to", addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    repl.stdin
        .take()
        .unwrap()
        .write_all(entries.as_bytes())
        .unwrap();
    let out = repl.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_repl_prints_values() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let player = play(dir.path(), TWO_TONES, "8");
    let addr = player.addr().to_owned();
    let said = repl(
        &addr,
        "1 + 1\n\
         list()\n\
         'hi'\n\
         ({ f: 0.5, g: [1, 2], s: 'x', h: null, fn: Math.sin })\n\
         play('hum', s => 0)\n\
         mute('hum')\n\
         undefined\n\
         new Float64Array(3)\n",
    );
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines[0], "2", "{said}");
    assert_eq!(lines[1], r#"["a", "b"]"#, "{said}");
    assert_eq!(lines[2], r#""hi""#, "{said}");
    assert_eq!(
        lines[3],
        r#"{ f: 0.5, g: [1, 2], s: "x", h: null, fn: [function sin] }"#
    );
    // A statement that makes a signal or acts on one prints what it always has.
    assert!(
        lines[4].starts_with("repl-5: ok, 1 signal, loaded in"),
        "{said}"
    );
    assert!(
        lines[5].starts_with("repl-6: ok, 0 signals, loaded in"),
        "{said}"
    );
    assert!(
        lines[6].starts_with("repl-7: ok, 0 signals, loaded in"),
        "{said}"
    );
    assert_eq!(lines[7], "Float64Array(3) [0, 0, 0]", "{said}");
    drop(player);
}

#[test]
fn the_repl_describes_hostile_values_safely() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let player = play(dir.path(), TWO_TONES, "10");
    let addr = player.addr().to_owned();
    let said = repl(
        &addr,
        "new Array(1e6).fill(7)\n\
         { const o = { n: 1 }; o.self = o; o }\n\
         ({ ok: 1, get bad() { throw new Error('no') } })\n\
         ({ get spin() { for (;;) {} } })\n\
         new Proxy({}, { ownKeys() { for (;;) {} } })\n\
         'x'.repeat(5000)\n\
         ({ a: { b: { c: { d: { e: 1 } } } } })\n",
    );
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(
        lines[0], "[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, ... 999980 more]",
        "{said}"
    );
    assert_eq!(lines[1], "{ n: 1, self: [cycle] }", "{said}");
    assert_eq!(lines[2], "{ ok: 1, bad: [threw] }", "{said}");
    let slow = "(a value whose description ran longer than 50 ms: a getter that loops?)";
    assert_eq!(lines[3], slow, "{said}");
    assert_eq!(lines[4], slow, "{said}");
    assert_eq!(lines[5], format!("\"{}...\"", "x".repeat(80)), "{said}");
    assert_eq!(lines[6], "{ a: { b: { c: {...} } } }", "{said}");
    // The sound went on.
    let reply = request(&addr, r#"{"op":"status"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    drop(player);
}

#[test]
fn osc_unsolo_brings_back_every_soloed_out_signal() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, TWO_TONES).unwrap();
    let mut player = Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--seconds"),
        OsStr::new("3"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--osc"),
        OsStr::new("0"),
    ]);
    let (addr, port) = (player.addr().to_owned(), player.osc.expect("no osc line"));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |path: &str, args: Vec<rosc::OscType>| {
        let packet = rosc::OscPacket::Message(rosc::OscMessage {
            addr: path.into(),
            args,
        });
        let bytes = rosc::encoder::encode(&packet).unwrap();
        socket.send_to(&bytes, ("127.0.0.1", port)).unwrap();
    };
    send("/flux/solo", vec![rosc::OscType::String("b".into())]);
    player.wait_for("solo 'b'", Duration::from_secs(5));
    assert!(muted(&addr, "a") && !muted(&addr, "b"));
    send("/flux/unsolo", vec![rosc::OscType::Float(0.1)]);
    player.wait_for("unsolo", Duration::from_secs(5));
    assert!(!muted(&addr, "a") && !muted(&addr, "b"));
    drop(player);
}

#[test]
fn play_gives_reload_and_fault_lines_the_playing_time() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut player = play(dir.path(), &common::sine_file(300.0, "sin"), "3");
    let file = dir.path().join("signals.js");
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(&file, common::sine_file(400.0, "sin")).unwrap();
    let name = file.display().to_string();
    let reload = player.wait_for(&format!("{name}: ok"), Duration::from_secs(5));
    let t = time_of(&reload);
    assert!(t > 0.3 && t < 2.5, "{reload}");
    assert!(
        reload.starts_with(&format!("{t:.3} s: {name}: ok, 1 signal, loaded in ")),
        "{reload}"
    );
    // A signal that throws once it plays: its fault line carries the time too.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(
        &file,
        // It throws after 0.2 s, past the pre-flight trial.
        "flux('tone', (mem, idx) => ({ update: () => { mem[idx] += 1; if (mem[idx] > 9600) { throw new Error('boom'); } return 0; } }));\n",
    )
    .unwrap();
    let fault = player.wait_for("boom", Duration::from_secs(5));
    assert!(time_of(&fault) > t, "{fault}");
    assert!(
        fault.contains(&format!(
            " s: {name}:1:95: Error: boom (signal 'tone' silenced)"
        )),
        "{fault}"
    );
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn midi_lists_ports_or_says_why_it_cannot_and_play_refuses_a_missing_port() {
    let o = run(flux().arg("midi"));
    let err = stderr(&o);
    match o.status.code() {
        Some(0) => assert!(!String::from_utf8_lossy(&o.stdout).is_empty()),
        Some(2) => assert!(err.contains("MIDI in is not available here: "), "{err}"),
        other => panic!("flux midi exited {other:?}: {err}"),
    }
    assert!(!err.contains("ALSA lib"), "alsa-lib's own lines: {err}");
    let o = run(flux()
        .arg("play")
        .arg(example("sine-440.js"))
        .args(["--null", "--seconds", "0.2", "--no-listen"])
        .args(["--midi", "no such port anywhere"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("MIDI in is not available here: ")
            || err.contains("no MIDI input port matches \"no such port anywhere\"")
            || err.contains("no MIDI input ports"),
        "{err}"
    );
}
