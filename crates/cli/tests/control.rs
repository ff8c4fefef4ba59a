//! The live-coding surface in real time: the control server, `flux send`, `flux repl` and
//! OSC, against `flux play --null --record`.

mod common;
mod live;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{flux, frequency, read_rendered, run, sine_file, stderr};
use live::{rms, serial, window, Player};

/// A signal whose frequency is slot 1 of its state block (300 Hz to begin with).
const STATE_TONE: &str = "flux('tone', (mem, idx) => {\n\
  mem[idx + 1] = 300;\n\
  return { update: (sr) => {\n\
    mem[idx] = (mem[idx] + mem[idx + 1] / sr) % 1.0;\n\
    return [Math.sin(mem[idx] * 2 * Math.PI) * 0.5];\n\
  } };\n\
});\n";

/// `flux play FILE --null --channels 1 --listen 127.0.0.1:0 --seconds S --record OUT.wav
/// --stats OUT.json` and `extra`.
fn play(dir: &Path, source: &str, seconds: &str, extra: &[&str]) -> Player {
    let file = dir.join("signals.js");
    std::fs::write(&file, source).unwrap();
    let mut args: Vec<&OsStr> = vec![
        file.as_os_str(),
        "--null".as_ref(),
        "--channels".as_ref(),
        "1".as_ref(),
        "--seconds".as_ref(),
        seconds.as_ref(),
    ];
    let (rec, st) = (dir.join("rec.wav"), dir.join("st.json"));
    args.extend([
        OsStr::new("--record"),
        rec.as_os_str(),
        OsStr::new("--stats"),
        st.as_os_str(),
    ]);
    if !extra.contains(&"--listen") {
        args.extend([OsStr::new("--listen"), OsStr::new("127.0.0.1:0")]);
    }
    args.extend(extra.iter().map(OsStr::new));
    Player::start(&args)
}

fn stats(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("st.json")).unwrap()).unwrap()
}

/// One request on a connection of its own.
fn request(addr: &str, line: &str) -> serde_json::Value {
    let mut conn = Connection::open(addr);
    conn.send(line.as_bytes())
}

/// A connection to the control server.
struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(addr: &str) -> Connection {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Connection { stream, reader }
    }

    /// Sends `frame` and a newline; returns the reply.
    fn send(&mut self, frame: &[u8]) -> serde_json::Value {
        self.stream.write_all(frame).unwrap();
        self.stream.write_all(b"\n").unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }
}

#[test]
fn send_changes_the_recorded_sound_and_reports_syntax_errors() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut player = play(dir.path(), &sine_file(300.0, "sin"), "3", &[]);
    let addr = player.addr().to_owned();
    std::thread::sleep(Duration::from_millis(800));

    // The same id, a new pitch: upserted into the running patch.
    let snippet = dir.path().join("live.js");
    std::fs::write(
        &snippet,
        "flux('tone', (mem, idx) => ({ update: (sr) => {\n\
           mem[idx] = (mem[idx] + 500 / sr) % 1.0;\n\
           return Math.sin(mem[idx] * 2 * Math.PI) * 0.5;\n\
         } }));\n",
    )
    .unwrap();
    let sent = player.now();
    let out = run(flux().arg("send").arg(&snippet).args(["--to", &addr]));
    let acked = player.now();
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("live.js: ok, 1 signal"), "{said}");
    player.wait_for("live.js: ok", Duration::from_secs(5));

    // A syntax error: FILE:LINE:COL on stderr, exit 1, the sound plays on.
    let bad = dir.path().join("bad.js");
    std::fs::write(&bad, "play('x', s => 0);\nlet y = ;\n").unwrap();
    let out = run(flux().arg("send").arg(&bad).args(["--to", &addr]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let expected = format!("{}:2:9: SyntaxError", bad.display());
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    // Part of a file: `--line` moves the diagnostic to the file's line.
    let out = run(flux()
        .args([
            "send", "-", "--name", "part.js", "--line", "10", "--to", &addr,
        ])
        .stdin(std::fs::File::open(&bad).unwrap()));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("part.js:11:9: SyntaxError"),
        "{}",
        stderr(&out)
    );

    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    let (rate, _, samples) =
        read_rendered(&dir.path().join("rec.wav"), &dir.path().join("st.json"));
    let before = frequency(window(&samples, rate, 0.1, sent - 0.05), rate);
    let after = frequency(window(&samples, rate, acked + 0.3, 2.95), rate);
    assert!((before - 300.0).abs() < 2.0, "before: {before} Hz\n{log}");
    assert!((after - 500.0).abs() < 2.0, "after: {after} Hz\n{log}");
    // Underruns depend on the machine's load: the benchmarks report them, tests do not.
    assert!(stats(dir.path())["underruns"].is_u64(), "{log}");
}

#[test]
fn osc_state_and_mute_change_the_recorded_sound() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut player = play(dir.path(), STATE_TONE, "4", &["--osc", "0"]);
    let port = player.osc.expect("no osc line");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let send = |addr: &str, args: Vec<rosc::OscType>| {
        let packet = rosc::OscPacket::Message(rosc::OscMessage {
            addr: addr.into(),
            args,
        });
        let bytes = rosc::encoder::encode(&packet).unwrap();
        socket.send_to(&bytes, ("127.0.0.1", port)).unwrap();
    };
    let s = |x: &str| rosc::OscType::String(x.into());
    std::thread::sleep(Duration::from_millis(800));

    // Slot 1 of 'tone' is its frequency: a fader moves it.
    let turned = player.now();
    send(
        "/flux/state",
        vec![
            s("tone"),
            rosc::OscType::Int(1),
            rosc::OscType::Float(600.0),
        ],
    );
    // Outside the block: refused, on the terminal and back to the sender.
    send(
        "/flux/state",
        vec![s("tone"), rosc::OscType::Int(64), rosc::OscType::Float(1.0)],
    );
    player.wait_for(
        "slot 64 is outside the state block of 'tone' (0 to 63)",
        Duration::from_secs(5),
    );
    let mut buf = [0u8; 1024];
    let (n, _) = socket.recv_from(&mut buf).expect("no /flux/error reply");
    let (_, reply) = rosc::decoder::decode_udp(&buf[..n]).unwrap();
    let rosc::OscPacket::Message(reply) = reply else {
        panic!("not a message: {reply:?}")
    };
    assert_eq!(reply.addr, "/flux/error");

    std::thread::sleep(Duration::from_millis(1000));
    let muting = player.now();
    send("/flux/mute", vec![s("tone")]);
    player.wait_for("osc: mute 'tone'", Duration::from_secs(5));
    let muted = player.now();

    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    let (rate, _, samples) =
        read_rendered(&dir.path().join("rec.wav"), &dir.path().join("st.json"));
    let before = frequency(window(&samples, rate, 0.1, turned - 0.05), rate);
    let after = frequency(window(&samples, rate, turned + 0.5, muting - 0.05), rate);
    let silence = rms(window(&samples, rate, muted + 0.3, 3.95));
    assert!((before - 300.0).abs() < 2.0, "before: {before} Hz\n{log}");
    assert!((after - 600.0).abs() < 3.0, "after: {after} Hz\n{log}");
    assert!(silence < 1e-3, "muted: rms {silence}\n{log}");
}

#[test]
fn malformed_and_oversized_frames_get_error_replies_and_the_engine_plays_on() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let player = play(dir.path(), &sine_file(300.0, "sin"), "2.5", &[]);
    let mut conn = Connection::open(player.addr());

    // The first line must be a request; after it, bad frames get error replies.
    let reply = conn.send(br#"{"op":"status"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = conn.send(b"this is not json");
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("malformed"),
        "{reply}"
    );

    let reply = conn.send(br#"{"op":"dance"}"#);
    assert!(
        reply["error"].as_str().unwrap().contains("dance"),
        "{reply}"
    );

    // 1.5 MiB in one frame: refused, read to its end, and the connection goes on.
    let mut big = br#"{"op":"eval","code":"// "#.to_vec();
    big.resize(3 << 19, b'x');
    big.extend_from_slice(br#""}"#);
    let reply = conn.send(&big);
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("1 MiB"),
        "{reply}"
    );

    let reply = conn.send(br#"{"id":"s1","op":"status"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["id"], "s1", "{reply}");
    assert!(reply["status"]["frames"].as_u64().unwrap() > 0, "{reply}");

    let reply = conn.send(br#"{"op":"list"}"#);
    assert_eq!(reply["signals"][0]["id"], "tone", "{reply}");
    assert_eq!(reply["signals"][0]["muted"], false, "{reply}");
    drop(conn);

    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    let s = stats(dir.path());
    assert!(s["frames"].as_u64().unwrap() > 0, "{s}\n{log}");
    let (rate, _, samples) =
        read_rendered(&dir.path().join("rec.wav"), &dir.path().join("st.json"));
    let freq = frequency(window(&samples, rate, 0.1, 2.4), rate);
    assert!((freq - 300.0).abs() < 2.0, "{freq} Hz\n{log}");
}

#[test]
fn a_public_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, sine_file(300.0, "sin")).unwrap();
    let out = run(flux().arg("play").arg(&file).args([
        "--null",
        "--seconds",
        "5",
        "--listen",
        "0.0.0.0:0",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--listen 0.0.0.0:0 is not a loopback address") && err.contains("--token"),
        "{err}"
    );
    assert!(!err.contains("playing"), "{err}");
}

#[test]
fn with_a_token_every_request_must_carry_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let player = play(
        dir.path(),
        &sine_file(300.0, "sin"),
        "3",
        &["--listen", "0.0.0.0:0", "--token", "s3cret"],
    );
    let addr = player.addr().to_owned();

    let reply = request(&addr, r#"{"op":"list"}"#);
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("token"),
        "{reply}"
    );
    let reply = request(&addr, r#"{"op":"list","token":"guess"}"#);
    assert_eq!(reply["error"], "refused: wrong token", "{reply}");
    let reply = request(&addr, r#"{"op":"mute","signal":"tone","token":"s3cret"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["signals"][0]["muted"], true, "{reply}");

    // `flux send` without the token fails; with it, it goes through.
    let snippet = dir.path().join("live.js");
    std::fs::write(&snippet, "play('hum', s => 0);\n").unwrap();
    let out = run(flux().arg("send").arg(&snippet).args(["--to", &addr]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("token"), "{}", stderr(&out));
    let out = run(flux()
        .arg("send")
        .arg(&snippet)
        .args(["--to", &addr, "--token", "s3cret"]));
    assert!(out.status.success(), "{}", stderr(&out));

    // `flux repl` reads piped input too: an entry, then a command.
    let mut repl = flux()
        .args(["repl", "--to", &addr, "--token", "s3cret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    repl.stdin
        .take()
        .unwrap()
        .write_all(b"play('buzz',\n  s => 0)\n:list\n")
        .unwrap();
    let out = repl.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("repl-1: ok, 1 signal"),
        "{said}\n{}",
        stderr(&out)
    );
    assert!(said.contains("buzz") && said.contains("hum"), "{said}");
    assert!(said.contains("(muted)"), "{said}");

    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
}

/// Everything the server sends on `stream` until it closes the connection.
fn read_to_close(mut stream: TcpStream) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset also closes; a time-out means the server kept the connection open.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection stayed open: {e}; read {got:?}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_browser_post_or_websocket_upgrade_is_closed_before_its_body_runs() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let player = play(dir.path(), &sine_file(300.0, "sin"), "3", &[]);
    let addr = player.addr().to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let body =
        "{\"op\":\"eval\",\"code\":\"flux('intruder', (m, i) => ({ update: () => [0.9] }))\"}\n\
                {\"op\":\"gain\",\"value\":0}\n";
    let post = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let upgrade = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n{body}"
    );
    for attack in [post, upgrade] {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.write_all(attack.as_bytes()).unwrap();
        let said = read_to_close(stream);
        assert_eq!(said.lines().count(), 1, "{said:?}");
        let reply: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
        assert_eq!(reply["ok"], false, "{reply}");
        let error = reply["error"].as_str().unwrap();
        assert!(error.contains("not a flux control connection"), "{error}");
    }

    // Nothing ran: no intruder, the gain untouched, the tone plays on.
    let reply = request(&addr, r#"{"op":"list"}"#);
    let ids: Vec<&str> = reply["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tone"], "{reply}");
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains("intruder") && !log.contains("control: gain"),
        "{log}"
    );
    let (rate, _, samples) =
        read_rendered(&dir.path().join("rec.wav"), &dir.path().join("st.json"));
    let level = rms(window(&samples, rate, 0.2, 2.9));
    // tanh(0.5 sin) all along: a gain of 0 would have silenced it.
    assert!((level - 0.333).abs() < 0.01, "rms {level}\n{log}");
}

#[test]
fn trickling_connections_give_way_to_a_real_request() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let player = play(dir.path(), &sine_file(300.0, "sin"), "3", &[]);
    let addr = player.addr().to_owned();
    // Eight connections take every slot: half started a frame, half sent nothing.
    let mut trickling = Vec::new();
    for i in 0..8 {
        let mut stream = TcpStream::connect(&addr).unwrap();
        if i % 2 == 0 {
            stream.write_all(b"{\"op\":").unwrap();
        }
        trickling.push(stream);
    }
    std::thread::sleep(Duration::from_millis(200));
    let reply = request(&addr, r#"{"id":7,"op":"status"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["id"], 7, "{reply}");
    // The oldest idle one gave way: it was closed.
    let oldest = trickling.remove(0);
    let said = read_to_close(oldest);
    assert!(!said.contains("\"ok\":true"), "{said}");
    drop(trickling);
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn control_characters_in_ids_and_names_are_escaped_on_the_terminal() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut player = play(dir.path(), &sine_file(300.0, "sin"), "2.5", &[]);
    let addr = player.addr().to_owned();
    let eval = serde_json::json!({
        "op": "eval",
        "name": "x\u{1b}[2J\nforged: ok.js",
        "code": "flux('a\\u001b[2J\\nb', (m, i) => ({ update: () => [0] }));",
    });
    let reply = request(&addr, &eval.to_string());
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = request(&addr, r#"{"op":"mute","signal":"a\u001b[2J\nb"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    player.wait_for("control: mute", Duration::from_secs(5));
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
    assert!(
        log.contains("x\\x1b[2J\\nforged: ok.js: ok, 1 signal"),
        "{log}"
    );
    assert!(log.contains("control: mute 'a\\x1b[2J\\nb'"), "{log}");
}

#[test]
fn a_huge_or_infinite_gain_never_makes_the_output_nan() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut player = play(dir.path(), &sine_file(300.0, "sin"), "2", &["--osc", "0"]);
    let addr = player.addr().to_owned();
    let reply = request(&addr, r#"{"op":"gain","value":1e300}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = request(&addr, r#"{"op":"gain","value":-1}"#);
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("the gain must be a number from 0 to 4, not -1"),
        "{reply}"
    );
    let osc = UdpSocket::bind("127.0.0.1:0").unwrap();
    let packet = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: "/flux/gain".into(),
        args: vec![rosc::OscType::Float(f32::INFINITY)],
    }))
    .unwrap();
    osc.send_to(&packet, ("127.0.0.1", player.osc.unwrap()))
        .unwrap();
    player.wait_for(
        "the gain must be a number from 0 to 4, not inf",
        Duration::from_secs(5),
    );
    // A loaded file's gain(Infinity) is refused too, with a line.
    let eval = r#"{"op":"eval","code":"gain(Infinity);"}"#;
    assert_eq!(request(&addr, eval)["ok"], true);
    player.wait_for("gain(inf) refused", Duration::from_secs(5));
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    let (_, _, samples) = read_rendered(&dir.path().join("rec.wav"), &dir.path().join("st.json"));
    assert!(samples.iter().all(|s| s.is_finite()), "{log}");
    // Clamped to 4: tanh(4 * 0.5) at the peaks.
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 2f32.tanh()).abs() < 1e-3, "peak {peak}\n{log}");
}
