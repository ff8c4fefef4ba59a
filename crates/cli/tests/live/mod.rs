//! A `flux play` with its control server, for the live-coding tests.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::common::flux;

/// Real-time runs one at a time, so they do not compete for the two cores of a CI machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the real-time slot of this test binary.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A `flux play` child whose standard error is read line by line.
pub struct Player {
    child: Child,
    lines: Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
    /// When the `playing ...` line arrived: the recording started no later.
    pub started: Instant,
    /// The control server's address, `127.0.0.1:PORT`, when it listens.
    pub addr: Option<String>,
    /// The OSC port, when `--osc` was given.
    pub osc: Option<u16>,
}

impl Player {
    /// Starts `flux play ARGS` and waits until it plays.
    pub fn start(args: &[&OsStr]) -> Player {
        let mut child = flux()
            .arg("play")
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start flux play");
        let (tx, lines) = channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut player = Player {
            child,
            lines,
            seen: Vec::new(),
            started: Instant::now(),
            addr: None,
            osc: None,
        };
        player.wait_for("playing ", Duration::from_secs(15));
        player.started = Instant::now();
        for line in &player.seen {
            if let Some(a) = line.strip_prefix("control: listening on ") {
                let port = a.rsplit(':').next().unwrap();
                player.addr = Some(format!("127.0.0.1:{port}"));
            }
            if let Some(a) = line.strip_prefix("osc: listening on udp ") {
                player.osc = Some(a.rsplit(':').next().unwrap().parse().unwrap());
            }
        }
        player
    }

    /// The control address; panics when it does not listen.
    pub fn addr(&self) -> &str {
        self.addr
            .as_deref()
            .unwrap_or_else(|| panic!("no control address in:\n{}", self.seen.join("\n")))
    }

    /// Seconds since it started playing.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Waits for a line containing `text`; panics with everything seen after `timeout`.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
        panic!("no line with {text:?} in:\n{}", self.seen.join("\n"));
    }

    /// Waits for the process to end; returns its exit code and all its lines.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        self.seen.extend(self.lines.try_iter());
        (status.code(), self.seen.join("\n"))
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        // A test that panics must not leave a player behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The frames of `samples` (mono, `rate` Hz) between `from` and `to` seconds, clamped to
/// the recording; panics when less than 0.2 s is left.
pub fn window(samples: &[f32], rate: u32, from: f64, to: f64) -> &[f32] {
    let at = |t: f64| ((t * f64::from(rate)) as usize).min(samples.len());
    let (a, b) = (at(from.max(0.0)), at(to));
    assert!(
        b > a && b - a >= rate as usize / 5,
        "the window {from:.2}..{to:.2} s is too short ({} frames recorded)",
        samples.len()
    );
    &samples[a..b]
}

/// Root mean square.
pub fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}
