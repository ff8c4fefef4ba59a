//! Faults of sent code name the file's real lines on both tiers, and are pushed to the
//! connections that subscribed; `flux panic` silences a playing engine within 50 ms.

mod common;
mod live;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{flux, sine_file};
use live::{serial, Player};

/// Throws on its 3rd line (line 22 of the file when sent with `--line 20`): a ReferenceError
/// at column 26.
const THROWS: &str = "flux('bad', (mem, idx) => ({\n  update: (sr) => {\n    \
                      const x = mem[idx] + frq;\n    return [x];\n  }\n}));\n";
/// Returns NaN after 100 frames; its `update` is on its 2nd line (21 of the file).
const NAN: &str = "flux('nan', (mem, idx) => ({\n  update: (sr) => {\n    mem[idx] += 1;\n    \
                   return [mem[idx] > 100 ? NaN : 0];\n  }\n}));\n";
/// The fix of `THROWS`.
const FIXED: &str = "flux('bad', (mem, idx) => ({\n  update: (sr) => {\n    \
                     const x = mem[idx] * 0;\n    return [x];\n  }\n}));\n";

/// A connection subscribed to faults.
struct Subscriber {
    reader: BufReader<TcpStream>,
}

impl Subscriber {
    fn connect(addr: &str) -> Subscriber {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"{\"op\":\"subscribe\",\"events\":[\"faults\"],\"id\":1}\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut s = Subscriber {
            reader: BufReader::new(stream),
        };
        let reply = s.next(|_| true, Duration::from_secs(5));
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(reply["id"], 1, "{reply}");
        s
    }

    /// The next event for which `wanted` holds; panics with what came after `timeout`.
    fn next(
        &mut self,
        wanted: impl Fn(&serde_json::Value) -> bool,
        timeout: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut line = String::new();
        while Instant::now() < deadline {
            match self.reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                    line.clear();
                    if wanted(&v) {
                        return v;
                    }
                    seen.push(v);
                }
                Err(_) => continue,
            }
        }
        panic!("no wanted event in {seen:?}");
    }
}

/// Sends `code` as lines 20 on of `song.js`.
fn send_at_line_20(addr: &str, code: &str) {
    let mut child = flux()
        .args([
            "send", "-", "--to", addr, "--name", "song.js", "--line", "20",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(code.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn player(dir: &std::path::Path, seconds: &str, extra: &[&str]) -> Player {
    let file = dir.join("signals.js");
    std::fs::write(&file, sine_file(300.0, "sin")).unwrap();
    let mut args: Vec<&OsStr> = vec![
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--seconds"),
        OsStr::new(seconds),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        // Faults while playing are what these are about: no pre-flight refuses the code.
        OsStr::new("--preflight"),
        OsStr::new("0"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    Player::start(&args)
}

fn is_fault(id: &str) -> impl Fn(&serde_json::Value) -> bool + '_ {
    move |v| v["event"] == "fault" && v["id"] == id
}

#[test]
fn runtime_faults_of_code_sent_at_line_20_name_the_files_lines_and_reach_subscribers() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut player = player(dir.path(), "20", &[]);
    let mut sub = Subscriber::connect(player.addr());
    let wait = Duration::from_secs(10);

    // A throw (the JavaScript tier: the compiler takes no unknown global) on the 3rd line.
    send_at_line_20(player.addr(), THROWS);
    let line = player.wait_for("(signal 'bad' silenced)", wait);
    assert!(
        line.contains(" s: song.js:22:26: ReferenceError: frq is not defined"),
        "{line}"
    );
    let fault = sub.next(is_fault("bad"), wait);
    assert_eq!(
        (&fault["file"], &fault["line"], &fault["col"]),
        (&"song.js".into(), &22.into(), &26.into()),
        "{fault}"
    );
    assert_eq!(fault["message"], "ReferenceError: frq is not defined");

    // NaN on the native tier: the place of its `update`, on the 2nd line.
    send_at_line_20(player.addr(), NAN);
    let line = player.wait_for("(signal 'nan' silenced)", wait);
    assert!(
        line.contains(" s: song.js:21:11: update returned NaN"),
        "{line}"
    );
    let fault = sub.next(is_fault("nan"), wait);
    assert_eq!((&fault["line"], &fault["col"]), (&21.into(), &11.into()));

    // The fix clears the fault.
    send_at_line_20(player.addr(), FIXED);
    let cleared = sub.next(|v| v["event"] == "cleared", wait);
    assert_eq!(cleared["id"], "bad", "{cleared}");
    assert_eq!(cleared["file"], "song.js", "{cleared}");

    // A signal stopped takes its fault along.
    let mut stop = TcpStream::connect(player.addr()).unwrap();
    stop.write_all(b"{\"op\":\"stop\",\"signal\":\"nan\"}\n")
        .unwrap();
    let cleared = sub.next(|v| v["event"] == "cleared" && v["id"] == "nan", wait);
    assert_eq!(cleared["file"], serde_json::Value::Null, "{cleared}");

    // Only faults can be subscribed to; the refusal says so and leaves the rest alone.
    let mut other = TcpStream::connect(player.addr()).unwrap();
    other
        .write_all(b"{\"op\":\"subscribe\",\"events\":[\"meters\"]}\n")
        .unwrap();
    let mut refusal = String::new();
    BufReader::new(other).read_line(&mut refusal).unwrap();
    assert!(
        refusal.contains("unknown event kind \\\"meters\\\""),
        "{refusal}"
    );

    // A syntax error is pushed too, at its line.
    send_load_error(player.addr());
    let error = sub.next(|v| v["event"] == "error", wait);
    assert_eq!(
        (&error["file"], &error["line"]),
        (&"song.js".into(), &3.into())
    );
}

/// Sends a paragraph with a syntax error on its 3rd line, at line 1.
fn send_load_error(addr: &str) {
    let out = flux()
        .args(["send", "-", "--to", addr, "--name", "song.js"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"\n\nflux('x', ;\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn on_the_javascript_tier_a_nan_names_the_real_line_of_its_update() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut player = player(dir.path(), "20", &["--tier", "js"]);
    let mut sub = Subscriber::connect(player.addr());
    let wait = Duration::from_secs(10);
    send_at_line_20(player.addr(), NAN);
    let line = player.wait_for("(signal 'nan' silenced)", wait);
    assert!(line.contains(" s: song.js:21:"), "{line}");
    assert!(line.contains("update returned NaN"), "{line}");
    let fault = sub.next(is_fault("nan"), wait);
    assert_eq!(fault["line"], 21, "{fault}");
    send_at_line_20(player.addr(), THROWS);
    let line = player.wait_for("(signal 'bad' silenced)", wait);
    assert!(line.contains(" s: song.js:22:26: "), "{line}");
}

#[test]
fn flux_panic_silences_a_playing_engine_within_50_ms_until_start() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let stats = dir.path().join("stats.json");
    let mut player = player(
        dir.path(),
        "4",
        &[
            "--record",
            wav.to_str().unwrap(),
            "--stats",
            stats.to_str().unwrap(),
        ],
    );
    std::thread::sleep(Duration::from_millis(1000));
    let out = flux()
        .args(["panic", "--to", player.addr()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "panic");
    player.wait_for("control: panic", Duration::from_secs(5));
    let (code, lines) = player.finish();
    assert_eq!(code, Some(0), "{lines}");

    // The sound the code made, without the silences of underruns a busy machine causes.
    let (rate, channels, samples) = common::read_rendered(&wav, &stats);
    let mono: Vec<f32> = samples.iter().step_by(channels as usize).copied().collect();
    let within = (rate / 20) as usize; // 50 ms
                                       // The tone played, then from some frame on everything is exactly 0 to the end.
    let last = mono
        .iter()
        .rposition(|&s| s != 0.0)
        .expect("the tone played");
    let silent = mono.len() - last - 1;
    assert!(
        silent > rate as usize,
        "silent for only {silent} frames at the end:\n{lines}"
    );
    // The fade took at most 50 ms: 50 ms before the last sound, the tone was at full level.
    let before = &mono[last.saturating_sub(2 * within)..last - within];
    let peak = before.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(
        peak > 0.45,
        "the fade began more than 50 ms before silence: peak {peak}"
    );
    // No click: no step is larger than the tone's own largest.
    let steps = |s: &[f32]| {
        s.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    };
    let tone = steps(&mono[..last - 2 * within]);
    assert!(steps(&mono[last - 2 * within..]) <= tone * 1.01);
}
