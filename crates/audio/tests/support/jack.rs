//! A JACK server with the dummy driver, started and stopped by a test.
//!
//! Shared by the audio crate's device tests and the CLI's (`#[path]`-included there).
//! `jackd` must be installed (Debian and Ubuntu: package `jackd2`); without it the tests
//! that need it fail, on purpose, rather than pass without testing anything.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::fs::File;
use std::io::ErrorKind as IoErrorKind;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use flux_audio::list_devices;

/// Sample rate of the server.
pub const RATE: u32 = 48_000;
/// Period of the server in frames.
pub const PERIOD: u32 = 256;

/// One JACK server at a time: they share a name, and the client library reads it from
/// the environment.
static SERVER_LOCK: Mutex<()> = Mutex::new(());

/// The server name, unique to this test process.
pub fn server_name() -> String {
    format!("flux-audio-test-{}", std::process::id())
}

/// A `jackd` started by the test; terminated on drop, even when the test fails.
pub struct JackServer {
    child: Child,
    _lock: MutexGuard<'static, ()>,
}

impl JackServer {
    /// Starts a server and waits until clients can use it.
    pub fn start() -> JackServer {
        let lock = SERVER_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        static ENV: Once = Once::new();
        // Set once, before any JACK client exists, while no other test touches JACK.
        ENV.call_once(|| std::env::set_var("JACK_DEFAULT_SERVER", server_name()));

        let log_path =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", server_name()));
        let log = File::create(&log_path).expect("create the jackd log file");
        let spawned = Command::new("jackd")
            .args(["--name", &server_name(), "--no-realtime"])
            .args([
                "-d",
                "dummy",
                "-r",
                &RATE.to_string(),
                "-p",
                &PERIOD.to_string(),
            ])
            // No D-Bus device reservation: there is no session bus in CI.
            .env("JACK_NO_AUDIO_RESERVATION", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == IoErrorKind::NotFound => panic!(
                "jackd is not installed, so the device tests cannot run: install jackd2 \
                 (e.g. `sudo apt-get install jackd2`); CI installs it"
            ),
            Err(e) => panic!("cannot start jackd: {e}"),
        };
        let mut server = JackServer { child, _lock: lock };

        // Ready when a client can connect and see the JACK output device.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("jackd exited with {status} before accepting clients; its log:\n{log}");
            }
            if list_devices().iter().any(|d| d.host == "JACK") {
                return server;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("jackd did not accept clients within 15 s; its log:\n{log}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for JackServer {
    fn drop(&mut self) {
        // SIGTERM first so that jackd removes its sockets and shared memory.
        let pid = self.child.id().to_string();
        let terminated = Command::new("kill").args(["-TERM", &pid]).status();
        if terminated.is_ok_and(|status| status.success()) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
