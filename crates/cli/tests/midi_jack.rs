//! MIDI through JACK, end to end: a JACK server with the dummy driver, `flux play --null
//! --midi jack...`, and a JACK client of the test's own that sends notes, controllers and
//! clock to Flux, or reads Flux's clock. Skipped, saying why, only when `jackd` is missing.

mod common;
#[path = "../../audio/tests/support/jack.rs"]
mod server;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{flux, read_rendered};
use jack::{Client, ClientOptions, Control, MidiIn, MidiOut, Port, ProcessScope, RawMidi};

const RATE: u64 = server::RATE as u64;

/// Whether `jackd` can run here; says why not when it cannot.
fn have_jackd() -> bool {
    match Command::new("jackd").arg("--version").output() {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipped: jackd cannot run here ({e}); install jackd2 to run this test");
            false
        }
    }
}

/// The JACK frame counter, unwrapped, at the start of the cycle.
#[derive(Default)]
struct Frames {
    last: Option<u32>,
    now: u64,
}

impl Frames {
    fn at(&mut self, ps: &ProcessScope) -> u64 {
        let t = ps.last_frame_time();
        if let Some(last) = self.last {
            self.now += u64::from(t.wrapping_sub(last));
        }
        self.last = Some(t);
        self.now
    }
}

/// No schedule yet.
const NOT_YET: u64 = u64::MAX;

/// A client that sends `events` (frames from a start the test sets later, message) on its
/// MIDI output port.
struct Sender {
    port: Port<MidiOut>,
    events: Vec<(u64, Vec<u8>)>,
    next: usize,
    start: Arc<AtomicU64>,
    frames: Frames,
    /// The cycle's first frame, for the test to set the start from.
    now: Arc<AtomicU64>,
}

impl jack::ProcessHandler for Sender {
    fn process(&mut self, _: &Client, ps: &ProcessScope) -> Control {
        let now = self.frames.at(ps);
        self.now.store(now, Ordering::Relaxed);
        let start = self.start.load(Ordering::Relaxed);
        if start == NOT_YET {
            return Control::Continue;
        }
        let n = u64::from(ps.n_frames());
        let mut writer = self.port.writer(ps);
        while let Some((t, bytes)) = self.events.get(self.next) {
            let at = start + t;
            if at >= now + n {
                break;
            }
            let time = at.saturating_sub(now) as u32;
            writer.write(&RawMidi { time, bytes }).expect("write MIDI");
            self.next += 1;
        }
        Control::Continue
    }
}

/// A test client sending `events`, and the flux player connected to it.
struct Rig {
    _client: jack::AsyncClient<(), Sender>,
    start: Arc<AtomicU64>,
    player: Child,
    log: std::thread::JoinHandle<String>,
}

/// Starts the sender and `flux play --null --midi jack:NAME` with `args`; waits until Flux
/// has connected; starts the events 0.3 s later.
fn send_to_flux(events: Vec<(u64, Vec<u8>)>, file: &Path, args: &[&str]) -> Rig {
    let name = format!("flux-test-sender-{}", std::process::id());
    let (client, _) = Client::new(&name, ClientOptions::NO_START_SERVER).expect("a JACK client");
    let port = client.register_port("out", MidiOut::default()).unwrap();
    let out_name = port.name().unwrap();
    let start = Arc::new(AtomicU64::new(NOT_YET));
    let now = Arc::new(AtomicU64::new(0));
    let sender = Sender {
        port,
        events,
        next: 0,
        start: start.clone(),
        frames: Frames::default(),
        now: now.clone(),
    };
    let active = client.activate_async((), sender).unwrap();
    let player = flux()
        .arg("play")
        .arg(file)
        .args(["--null", "--no-listen", "--midi", &format!("jack:{name}")])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flux");
    let (player, log) = playing(player);
    let port = active.as_client().port_by_name(&out_name).unwrap();
    assert!(
        port.connected_count().is_ok_and(|n| n > 0),
        "flux did not connect to {out_name}"
    );
    start.store(
        now.load(Ordering::Relaxed) + RATE * 3 / 10,
        Ordering::Relaxed,
    );
    Rig {
        _client: active,
        start,
        player,
        log,
    }
}

/// Waits until `player` says it plays; its stderr, read on, is joined by the handle.
fn playing(mut player: Child) -> (Child, std::thread::JoinHandle<String>) {
    let stderr = player.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("playing ") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = player.kill();
        panic!("flux did not start playing: {}", log.join().unwrap());
    }
    (player, log)
}

/// Waits for flux; its stderr.
fn finish(mut rig: Rig) -> String {
    let status = rig.player.wait().unwrap();
    let err = rig.log.join().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_ne!(rig.start.load(Ordering::Relaxed), NOT_YET);
    err
}

/// The frequency from rising zero crossings over `samples`.
fn pitch(samples: &[f32]) -> f64 {
    common::frequency(samples, server::RATE)
}

#[test]
fn jack_midi_notes_and_a_controller_play_at_their_frames() {
    if !have_jackd() {
        return;
    }
    let _server = server::JackServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.js");
    std::fs::write(
        &file,
        "flux('keys', (mem, idx) => ({ update: (sr) => {\n\
           mem[idx] = (mem[idx] + mtof(midi.note) / sr) % 1;\n\
           return midi.gate * (0.25 + 0.5 * midi.cc(1)) * Math.sin(2 * Math.PI * mem[idx]);\n\
         } }));\n",
    )
    .unwrap();
    let (rec, stats) = (dir.path().join("out.wav"), dir.path().join("st.json"));
    let s = RATE / 10;
    let events = vec![
        (0, vec![0x90, 69, 100]),
        (6 * s, vec![0x80, 69, 0]),
        (6 * s, vec![0x90, 81, 100]),
        (9 * s, vec![0xb0, 1, 127]),
        (12 * s, vec![0x80, 81, 0]),
    ];
    let args = ["--seconds", "3", "--record"];
    let rig = send_to_flux(
        events,
        &file,
        &[
            &args[..],
            &[rec.to_str().unwrap(), "--stats", stats.to_str().unwrap()],
        ]
        .concat(),
    );
    // `flux midi` lists the sender's port among JACK's.
    let list = flux().arg("midi").output().unwrap();
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    let sender = format!("jack:flux-test-sender-{}:out", std::process::id());
    assert!(listed.lines().any(|l| l == sender), "{listed}");
    let err = finish(rig);
    assert!(err.contains("midi: from flux-test-sender-"), "{err}");
    let (_, ch, samples) = read_rendered(&rec, &stats);
    let mono: Vec<f32> = samples.chunks(usize::from(ch)).map(|f| f[0]).collect();
    let on = mono.iter().position(|&x| x != 0.0).expect("a note played");
    let off = mono.iter().rposition(|&x| x != 0.0).unwrap() + 1;
    let at = |t: u64| on + t as usize;
    // The notes last as long as they were sent for: 1.2 s of JACK's frames, mapped onto
    // the engine's to the frame while both keep time (a period's error at most). The dummy
    // server is not real-time: on a busy machine its frames fall behind the output's for a
    // while, so the bound is 25 ms, plus the output's underruns (their silence is no engine
    // frame). Printed, for the figures.
    let held = (off - on) as f64;
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let missing = st["missing_frames"].as_f64().unwrap();
    eprintln!("notes held {held} frames, sent for {}", 12 * s);
    let error = (held - (12 * s) as f64).abs();
    assert!(
        error <= 1200.0 + missing,
        "held {held} frames, sent for {}",
        12 * s
    );
    assert!((pitch(&mono[at(s)..at(5 * s)]) - 440.0).abs() < 1.0);
    assert!((pitch(&mono[at(7 * s)..at(85 * s / 10)]) - 880.0).abs() < 2.0);
    assert!((pitch(&mono[at(95 * s / 10)..at(115 * s / 10)]) - 880.0).abs() < 2.0);
    // CC 1 at 127 lifts the level from 0.25 to 0.75 (through the master's tanh).
    let peak = |a: u64, b: u64| {
        mono[at(a)..at(b)]
            .iter()
            .fold(0.0f32, |m, x| m.max(x.abs()))
    };
    assert!((peak(7 * s, 85 * s / 10) - 0.25f32.tanh()).abs() < 0.01);
    assert!((peak(95 * s / 10, 115 * s / 10) - 0.75f32.tanh()).abs() < 0.01);
}

#[test]
fn midi_clock_in_sets_the_tempo() {
    if !have_jackd() {
        return;
    }
    let _server = server::JackServer::start();
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("st.json");
    // Start, then 24 ticks a beat at 140 bpm for 2 s.
    let spacing = 60.0 * RATE as f64 / (140.0 * 24.0);
    let mut events = vec![(0, vec![0xfa])];
    events.extend((0..112).map(|k| ((k as f64 * spacing).round() as u64, vec![0xf8])));
    let rig = send_to_flux(
        events,
        &common::example("sine-440.js"),
        &[
            "--midi-clock",
            "in",
            "--seconds",
            "3",
            "--stats",
            stats.to_str().unwrap(),
        ],
    );
    let err = finish(rig);
    assert!(err.contains("following its MIDI clock"), "{err}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let bpm = s["bpm"].as_f64().unwrap();
    eprintln!("followed {bpm} bpm");
    assert!((bpm - 140.0).abs() < 0.5, "{s}");
}

/// A client that notes the JACK frame of each MIDI message it receives.
struct Receiver {
    port: Port<MidiIn>,
    frames: Frames,
    got: Arc<Mutex<Vec<(u64, u8)>>>,
}

impl jack::ProcessHandler for Receiver {
    fn process(&mut self, _: &Client, ps: &ProcessScope) -> Control {
        let now = self.frames.at(ps);
        if let Ok(mut got) = self.got.try_lock() {
            for m in self.port.iter(ps) {
                if let [byte] = m.bytes {
                    got.push((now + u64::from(m.time), *byte));
                }
            }
        }
        Control::Continue
    }
}

#[test]
fn midi_clock_out_ticks_every_1000_frames_at_120_bpm() {
    if !have_jackd() {
        return;
    }
    let _server = server::JackServer::start();
    let name = format!("flux-test-receiver-{}", std::process::id());
    let (client, _) = Client::new(&name, ClientOptions::NO_START_SERVER).expect("a JACK client");
    let port = client.register_port("in", MidiIn::default()).unwrap();
    let in_name = port.name().unwrap();
    let got = Arc::new(Mutex::new(Vec::with_capacity(4096)));
    let receiver = Receiver {
        port,
        frames: Frames::default(),
        got: got.clone(),
    };
    let active = client.activate_async((), receiver).unwrap();
    let player = flux()
        .arg("play")
        .arg(common::example("sine-440.js"))
        .args([
            "--null",
            "--no-listen",
            "--midi",
            "jack",
            "--midi-clock",
            "out",
        ])
        .args(["--bpm", "120", "--seconds", "3"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flux");
    // Connect Flux's clock out to the receiver once it is there.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let outs = active
            .as_client()
            .ports(Some("midi_out"), None, jack::PortFlags::IS_OUTPUT);
        // The port shows before its client is active, when it cannot connect yet.
        let connected = outs.first().is_some_and(|out| {
            active
                .as_client()
                .connect_ports_by_name(out, &in_name)
                .is_ok()
        });
        if connected {
            break;
        }
        assert!(Instant::now() < deadline, "flux made no midi_out port");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut player, log) = playing(player);
    let status = player.wait().unwrap();
    let err = log.join().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let got = got.lock().unwrap().clone();
    let ticks: Vec<u64> = got.iter().filter(|m| m.1 == 0xf8).map(|m| m.0).collect();
    assert!(
        ticks.len() >= 80,
        "{} ticks in about 2.5 s: {got:?}",
        ticks.len()
    );
    // 24 ticks a beat at 120 bpm: one each 1000 frames, within a JACK period.
    let period = u64::from(server::PERIOD);
    let gaps: Vec<u64> = ticks.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "{} ticks, {} to {} frames apart, {} of {} gaps exactly 1000 (the first: {:?})",
        ticks.len(),
        gaps.iter().min().unwrap(),
        gaps.iter().max().unwrap(),
        gaps.iter().filter(|&&d| d == 1000).count(),
        gaps.len(),
        &gaps[..4]
    );
    // On a busy machine the dummy server (not real-time) stalls now and then, and the
    // ticks around a stall are late: nine in ten must be on time.
    let on_time = gaps.iter().filter(|d| d.abs_diff(1000) <= period).count();
    assert!(
        on_time * 10 >= gaps.len() * 9,
        "{on_time} of {} on time: {ticks:?}",
        gaps.len()
    );
    let mut sorted = gaps.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted[sorted.len() / 2],
        1000,
        "the median spacing: {ticks:?}"
    );
    let mean = (ticks[ticks.len() - 1] - ticks[0]) as f64 / (ticks.len() - 1) as f64;
    assert!((mean - 1000.0).abs() < 10.0, "mean spacing {mean}");
    assert_eq!(got.last().map(|m| m.1), Some(0xfc), "a stop as flux ends");
}

#[test]
fn bad_midi_flags_are_refused_naming_the_value() {
    let play = |args: &[&str]| {
        let o = flux()
            .arg("play")
            .arg(common::example("sine-440.js"))
            .args(["--null", "--no-listen", "--seconds", "0.2"])
            .args(args)
            // A server nobody runs: JACK MIDI must say there is none.
            .env("JACK_DEFAULT_SERVER", "flux-test-no-such-server")
            .output()
            .unwrap();
        (o.status.code(), common::stderr(&o))
    };
    let (code, err) = play(&["--midi", "jack", "--midi-clock", "sideways"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("invalid value 'sideways' for '--midi-clock"),
        "{err}"
    );
    let (code, err) = play(&["--midi-clock", "in"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--midi"), "{err}");
    let (code, err) = play(&["--midi", "jack:keyboard"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no JACK server runs"), "{err}");
}
