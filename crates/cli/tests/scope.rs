//! The scope: `flux play --scope` serves a page and streams what plays over a WebSocket;
//! a page that is missing, slow or stuck never disturbs the sound; headless Chromium draws
//! a known X-Y figure where it belongs.

mod common;
mod live;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{flux, stderr};
use serde_json::{json, Value};
use tungstenite::Message;

/// A counter on channel 1 (a ramp through 1000 steps) and minus half of it on channel 2, so
/// a client can tell every frame's place in the sequence and check the interleaving.
const COUNTER: &str = "import { flux } from './flux.js';\n\
    flux('count', (mem, idx) => ({ update: () => {\n\
      mem[idx] = (mem[idx] + 1) % 1000;\n\
      const v = mem[idx] / 1000 - 0.5;\n\
      return [v, -0.5 * v];\n\
    } }));\n";

/// A circle of radius 0.3 about (0.15, -0.2), 100 times a second, before the clip.
const CIRCLE: &str = "import { flux } from './flux.js';\n\
    flux('circle', (mem, idx) => ({ update: (sr) => {\n\
      mem[idx] = (mem[idx] + 100 / sr) % 1.0;\n\
      const t = mem[idx] * 2 * Math.PI;\n\
      return [0.15 + 0.3 * Math.cos(t), -0.2 + 0.3 * Math.sin(t)];\n\
    } }));\n";

/// Where the circle is after the `tanh` clip, at angle `t`.
fn circle(t: f64) -> (f64, f64) {
    ((0.15 + 0.3 * t.cos()).tanh(), (-0.2 + 0.3 * t.sin()).tanh())
}

/// A `flux play --scope` child.
struct Player {
    inner: live::Player,
    port: u16,
}

impl Player {
    /// Plays `source` with the scope on a free port, for `seconds`.
    fn start(dir: &Path, source: &str, seconds: &str, extra: &[&str]) -> Player {
        let file = dir.join("signals.js");
        std::fs::write(&file, source).unwrap();
        let stats = dir.join("st.json");
        let mut args: Vec<&OsStr> = vec![file.as_os_str()];
        // No fade-in: the counter signal must reach the scope exactly as written.
        let fixed = [
            "--null",
            "--no-listen",
            "--scope=127.0.0.1:0",
            "--fade",
            "0",
            "--seconds",
            seconds,
            "--stats",
        ];
        args.extend(fixed.iter().map(OsStr::new));
        args.push(stats.as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        let mut inner = live::Player::start(&args);
        let prefix = "scope: http://127.0.0.1:";
        let seen = inner.seen.iter().find(|l| l.starts_with(prefix)).cloned();
        let line = seen.unwrap_or_else(|| inner.wait_for(prefix, Duration::from_secs(10)));
        let port = line.trim_start_matches(prefix).trim_end_matches('/');
        let port = port.parse().unwrap_or_else(|_| panic!("{line}"));
        Player { inner, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits for the end; returns the stats file and every line.
    fn finish(self, dir: &Path) -> (Value, String) {
        let (code, log) = self.inner.finish();
        assert_eq!(code, Some(0), "{log}");
        let stats = std::fs::read_to_string(dir.join("st.json")).unwrap();
        (serde_json::from_str(&stats).unwrap(), log)
    }
}

/// A decoded binary message: the gap flag, channels, and the samples.
struct Frames {
    gap: bool,
    channels: usize,
    sample_rate: u32,
    samples: Vec<f32>,
}

fn decode(bytes: &[u8]) -> Frames {
    let word = |i: usize| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    let (flags, channels, frames, sample_rate) = (word(0), word(1), word(2), word(3));
    let samples: Vec<f32> = bytes[16..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(samples.len(), (channels * frames) as usize, "message size");
    Frames {
        gap: flags & 1 != 0,
        channels: channels as usize,
        sample_rate,
        samples,
    }
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn connect(port: u16) -> Socket {
    let (ws, response) = tungstenite::connect(format!("ws://127.0.0.1:{port}/ws"))
        .expect("cannot open the scope's WebSocket");
    assert_eq!(response.status(), 101);
    ws
}

/// The counter's step (0..1000) from a frame, after checking channel 2 against channel 1.
fn step_of(frame: &[f32]) -> u32 {
    let v = f64::from(frame[0]).atanh();
    let expected = (-0.5 * v).tanh();
    assert!(
        (f64::from(frame[1]) - expected).abs() < 1e-5,
        "channel 2 is {} where {expected} belongs (channel 1 {})",
        frame[1],
        frame[0]
    );
    let step = (v + 0.5) * 1000.0;
    assert!((step - step.round()).abs() < 0.05, "{step} is not a step");
    step.round() as u32 % 1000
}

/// Reads a stream of the counter for `time`; returns the frames and the gaps seen after the
/// first message, and the status messages.
fn read_counter(ws: &mut Socket, time: Duration) -> (usize, usize, Vec<Value>) {
    let deadline = Instant::now() + time;
    let (mut frames, mut gaps, mut statuses) = (0, 0, Vec::new());
    let mut last: Option<u32> = None;
    while Instant::now() < deadline {
        match ws.read().expect("the stream ended early") {
            Message::Binary(bytes) => {
                let m = decode(&bytes);
                assert_eq!((m.channels, m.sample_rate), (2, 48_000));
                if m.gap && last.is_some() {
                    gaps += 1;
                    last = None;
                }
                for frame in m.samples.chunks_exact(2) {
                    let step = step_of(frame);
                    if let Some(prev) = last {
                        assert_eq!(step, (prev + 1) % 1000, "frame {frames} out of order");
                    }
                    last = Some(step);
                    frames += 1;
                }
            }
            Message::Text(text) => statuses.push(serde_json::from_str(&text).unwrap()),
            _ => {}
        }
    }
    (frames, gaps, statuses)
}

#[test]
fn the_stream_carries_every_frame_in_order_with_a_hello_and_status() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::start(dir.path(), COUNTER, "3", &["--channels", "2"]);
    let mut ws = connect(player.port);
    let hello: Value = match ws.read().unwrap() {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("the first message is {other:?}"),
    };
    assert_eq!(
        hello,
        json!({"type": "hello", "protocol": 1, "sample_rate": 48000, "channels": 2,
               "streamed_channels": 2})
    );
    let started = Instant::now();
    let (frames, gaps, statuses) = read_counter(&mut ws, Duration::from_millis(1500));
    let expected = started.elapsed().as_secs_f64() * 48_000.0;
    assert_eq!(gaps, 0, "frames were lost");
    assert!(
        frames as f64 > 0.8 * expected,
        "{frames} frames in {expected} frames' time"
    );
    let status = statuses.last().expect("no status message");
    assert_eq!(status["type"], "status");
    assert_eq!(status["signals"][0]["id"], "count", "{status}");
    let tier = status["signals"][0]["tier"].as_str().unwrap();
    assert!(["js", "native"].contains(&tier), "{status}");
    assert!(status["file"].as_str().unwrap().ends_with("signals.js"));
    assert!(status["message"]
        .as_str()
        .unwrap()
        .contains(": ok, 1 signal"));
    assert_eq!(status["output"], "null");
    for key in [
        "dsp_load",
        "dsp_load_max",
        "underruns",
        "scope_dropped_frames",
    ] {
        assert!(status[key].is_number(), "{key} in {status}");
    }
    // The levels for the meter bars: the master and each signal.
    let levels = &status["levels"];
    assert!(levels["master"]["peak_dbfs"].is_number(), "{status}");
    assert!(levels["signals"]["count"].is_object(), "{status}");
    // The transport: tempo and bar.beat, counted from 1.
    assert_eq!(status["bpm"], 120.0, "{status}");
    assert!(
        status["bar_beat"].as_str().unwrap().contains('.'),
        "{status}"
    );
    drop(ws);
    let (stats, log) = player.finish(dir.path());
    // Underruns depend on the machine's load: benchmarks report them, tests do not.
    assert!(stats["underruns"].is_u64(), "{stats}\n{log}");
}

#[test]
fn no_page_and_a_stuck_page_cost_the_sound_nothing() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    // Four seconds: the first half with no page at all, the second with one page that never
    // reads beside one that does.
    let player = Player::start(dir.path(), COUNTER, "4", &["--channels", "2"]);
    std::thread::sleep(Duration::from_secs(2));
    let stuck = connect(player.port);
    let mut live = connect(player.port);
    let (frames, gaps, _) = read_counter(&mut live, Duration::from_millis(1500));
    assert_eq!(gaps, 0, "the live page lost frames beside the stuck one");
    assert!(frames > 48_000, "{frames}");
    let (stats, log) = player.finish(dir.path());
    drop(stuck);
    // Underruns depend on the machine's load: benchmarks report them, tests do not.
    assert!(stats["underruns"].is_u64(), "{stats}\n{log}");
    // The tap was read all along: nothing dropped there, page or no page.
    assert_eq!(stats["scope_dropped_frames"], 0, "{stats}");
    assert_eq!(stats["recording_dropped_frames"], 0, "{stats}");
}

#[test]
fn the_page_is_served_to_loopback_names_only() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::start(dir.path(), COUNTER, "1.5", &[]);
    let get = |path: &str, host: &str| -> String {
        let mut s = TcpStream::connect(("127.0.0.1", player.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let local = format!("127.0.0.1:{}", player.port);
    let page = get("/", &local);
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("<script src=\"scope.js\""), "{page}");
    for asset in ["/scope.js", "/scope.css"] {
        assert!(get(asset, &local).starts_with("HTTP/1.1 200 OK\r\n"));
    }
    let rebound = get("/", &format!("attacker.example:{}", player.port));
    assert!(rebound.starts_with("HTTP/1.1 403 "), "{rebound}");
    assert!(get("/nothing", &local).starts_with("HTTP/1.1 404 "));
    player.finish(dir.path());
}

#[test]
fn a_scope_address_off_this_machine_is_refused() {
    let o = common::run(flux().args([
        "play",
        "--null",
        "--seconds",
        "1",
        "--scope=0.0.0.0:7780",
        "signals.js",
    ]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(
            "\"0.0.0.0:7780\" is not a loopback address; the scope serves this machine only"
        ),
        "{err}"
    );
}

// ---- The browser ----

/// The Chromium flags of the tests: headless, no GPU, nothing from the network.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Headless Chromium driven through chromedriver's WebDriver API.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

/// The first of `names` found on the PATH.
fn find_program(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

impl Browser {
    fn start() -> Browser {
        let missing = "the browser test needs Chromium and chromedriver: install them with \
                       scripts/setup.sh --deps-only (Debian packages chromium, chromium-driver)";
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("{missing}: no chromium on the PATH"));
        let driver_bin = find_program(&["chromedriver"])
            .unwrap_or_else(|| panic!("{missing}: no chromedriver on the PATH"));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{missing}: cannot start chromedriver: {e}"));
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while webdriver(port, "GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        ));
        args.push("--window-size=1000,700".into());
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium, "args": args}}}});
        let answer = webdriver(port, "POST", "/session", Some(&caps))
            .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
        browser.session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("cannot start chromium: {answer}"))
            .to_owned();
        browser
    }

    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let answer = webdriver(self.port, method, &path, body).unwrap();
        assert!(
            answer["value"].get("error").is_none(),
            "{method} {path}: {answer}"
        );
        answer["value"].clone()
    }

    fn open(&self, url: &str) {
        self.command("POST", "/url", Some(&json!({ "url": url })));
    }

    fn eval(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// Waits until `script` returns true.
    fn wait_until(&self, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.eval(script) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {script}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self) -> Image {
        let png = base64_decode(self.command("GET", "/screenshot", None).as_str().unwrap());
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let step = info.color_type.samples();
        Image {
            width: info.width as usize,
            height: info.height as usize,
            step,
            pixels,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = webdriver(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One WebDriver request over plain HTTP/1.1.
fn webdriver(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut reader = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(std::io::Error::other)?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("{c} is not base64"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(c.len() - 1)
        })
        .collect()
}

/// A decoded screenshot, RGB or RGBA.
struct Image {
    width: usize,
    height: usize,
    step: usize,
    pixels: Vec<u8>,
}

impl Image {
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * self.step;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// The most trace-like green within `r` pixels of (x, y): green above red, which the
    /// grey graticule does not have.
    fn green_near(&self, x: f64, y: f64, r: i64) -> u8 {
        let (cx, cy) = (x.round() as i64, y.round() as i64);
        let mut best = 0;
        for py in cy - r..=cy + r {
            for px in cx - r..=cx + r {
                if px >= 0 && py >= 0 && (px as usize) < self.width && (py as usize) < self.height {
                    let [r, g, _] = self.rgb(px as usize, py as usize);
                    best = best.max(g.saturating_sub(r));
                }
            }
        }
        best
    }

    /// Which pixels of the screen (the left three quarters) show a trace: green or blue well
    /// above red, unlike the grey graticule and its labels.
    fn traces(&self) -> Vec<bool> {
        let mut lit = Vec::new();
        for y in 0..self.height {
            for x in 0..self.width * 3 / 4 {
                let [r, g, b] = self.rgb(x, y);
                let top = g.max(b);
                lit.push(top > 100 && top.saturating_sub(r) > 50);
            }
        }
        lit
    }
}

/// Where the page puts the X-Y point (x, y), in screenshot pixels.
fn project(browser: &Browser, scale: f64, x: f64, y: f64) -> (f64, f64) {
    let p = browser.eval(&format!("return fluxScope.project({x}, {y})"));
    (
        p["x"].as_f64().unwrap() * scale,
        p["y"].as_f64().unwrap() * scale,
    )
}

#[test]
fn the_url_takes_a_mode_by_its_button_name() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::start(dir.path(), CIRCLE, "20", &["--channels", "2"]);
    let browser = Browser::start();
    for (fragment, mode) in [
        ("fft", "spectrum"),
        ("FFT", "spectrum"),
        ("Y-T", "yt"),
        ("x-y", "xy"),
        ("XYZ", "xyz"),
        ("spectrum", "spectrum"),
    ] {
        browser.open(&player.url(&format!("/#mode={fragment}")));
        assert_eq!(
            browser.eval("return fluxScope.settings.mode"),
            json!(mode),
            "#mode={fragment}"
        );
    }
    // A name that is no mode changes nothing.
    browser.open(&player.url("/#mode=waterfall"));
    assert_eq!(
        browser.eval("return fluxScope.settings.mode"),
        json!("spectrum")
    );
    assert_eq!(browser.eval("return fluxScope.errors"), json!([]));
    drop(browser);
    drop(player);
}

#[test]
fn chromium_draws_the_x_y_figure_where_it_belongs() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::start(dir.path(), CIRCLE, "20", &["--channels", "2"]);
    let browser = Browser::start();
    browser.open(&player.url("/#mode=xy&gain=1&persist=300"));
    // A second of frames, and the status shown.
    browser.wait_until(
        "return fluxScope.frames() > 48000 && fluxScope.status() !== null",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let shot = browser.screenshot();
    let scale = shot.width as f64 / browser.eval("return window.innerWidth").as_f64().unwrap();

    // Every point of the circle is lit, in the trace's green.
    let curve: Vec<(f64, f64)> = (0..360)
        .map(|i| circle(f64::from(i).to_radians()))
        .collect();
    for (i, &(x, y)) in curve.iter().enumerate().step_by(15) {
        let (px, py) = project(&browser, scale, x, y);
        let g = shot.green_near(px, py, 2);
        assert!(
            g > 80,
            "no trace at {i}° ({x:.3}, {y:.3}) = pixel ({px:.0}, {py:.0}): green {g}"
        );
    }
    // Its mirror images are dark where they are off the circle: X is channel 1, Y is
    // channel 2 and points up.
    let off_curve = |x: f64, y: f64| curve.iter().all(|&(cx, cy)| (cx - x).hypot(cy - y) > 0.1);
    let mut dark = 0;
    for &(x, y) in curve.iter().step_by(10) {
        for (mx, my) in [(-x, y), (x, -y), (y, x)] {
            if off_curve(mx, my) {
                let (px, py) = project(&browser, scale, mx, my);
                let g = shot.green_near(px, py, 1);
                assert!(
                    g < 30,
                    "trace at ({mx:.3}, {my:.3}), off the figure: green {g}"
                );
                dark += 1;
            }
        }
    }
    assert!(dark > 30, "only {dark} mirror points checked");
    // The middle of the circle is dark too.
    let (cx, cy) = project(&browser, scale, 0.15f64.tanh(), (-0.2f64).tanh());
    assert!(shot.green_near(cx, cy, 3) < 30);
    let signals = browser.eval("return document.getElementById('signals').textContent");
    assert!(signals.as_str().unwrap().contains("circle"), "{signals}");
    // Meter bars: the master and the signal, each with its RMS bar and peak mark.
    let bars = browser.eval("return document.querySelectorAll('#meters .bar .rms').length");
    assert_eq!(
        bars,
        2,
        "{}",
        browser.eval("return document.getElementById('meters').outerHTML")
    );
    let meters = browser.eval("return document.getElementById('meters').textContent");
    assert!(meters.as_str().unwrap().contains("LUFS"), "{meters}");

    // Y-T, without persistence: triggered, the trace stands still.
    browser.open(&player.url("/#mode=yt&tdiv=2&gain=1&persist=0"));
    browser.wait_until(
        "return document.getElementById('readout').textContent.includes('trig ch1')",
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(200));
    let a = browser.screenshot().traces();
    std::thread::sleep(Duration::from_millis(350));
    let b = browser.screenshot().traces();
    let both = a.iter().zip(&b).filter(|(x, y)| **x && **y).count();
    let either = a.iter().zip(&b).filter(|(x, y)| **x || **y).count();
    assert!(either > 1000, "no Y-T trace: {either} lit pixels");
    assert!(
        both as f64 > 0.85 * either as f64,
        "the Y-T trace moved: {both} of {either} lit pixels in common"
    );
    assert!(
        !browser
            .eval("return document.getElementById('readout').textContent")
            .as_str()
            .unwrap()
            .contains("auto"),
        "Y-T ran untriggered"
    );

    // XYZ and the spectrum draw too, and nothing threw.
    for mode in ["xyz", "spectrum"] {
        browser.open(&player.url(&format!("/#mode={mode}&persist=300")));
        browser.wait_until("return fluxScope.frames() > 24000", Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(300));
        let count = browser.screenshot().traces().iter().filter(|&&l| l).count();
        assert!(count > 500, "{mode}: only {count} lit pixels");
    }
    assert_eq!(browser.eval("return fluxScope.errors"), json!([]));
    drop(browser);
    drop(player);
}
