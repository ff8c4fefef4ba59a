//! The device path, end to end, against a real JACK server with the dummy driver.
//!
//! Each test starts its own `jackd` under a server name unique to this process, and stops
//! it at the end. `jackd` must be installed (Debian and Ubuntu: package `jackd2`); without
//! it these tests fail, on purpose, rather than pass without testing anything.

use std::fs::File;
use std::io::ErrorKind as IoErrorKind;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use flux_audio::{list_devices, open_device, ErrorKind, OutputConfig};

const RATE: u32 = 48_000;
const PERIOD: u32 = 256;

/// One JACK server at a time: they share a name, and the client library reads it from
/// the environment.
static SERVER_LOCK: Mutex<()> = Mutex::new(());

fn server_name() -> String {
    format!("flux-audio-test-{}", std::process::id())
}

/// A `jackd` started by the test; terminated on drop, even when the test fails.
struct JackServer {
    child: Child,
    _lock: MutexGuard<'static, ()>,
}

impl JackServer {
    fn start() -> JackServer {
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

#[test]
fn jack_output_streams_frames_at_real_time() {
    let _server = JackServer::start();
    let config = OutputConfig {
        period_frames: Some(PERIOD),
        ..OutputConfig::default()
    };
    let device = open_device(Some("JACK Output"), &config).expect("open the JACK output");
    assert_eq!(device.name(), "JACK: JACK Output");
    assert_eq!(device.sample_rate(), RATE);
    assert_eq!(device.channels(), 2);
    assert_eq!(device.period_frames(), Some(PERIOD));
    assert_eq!(device.sample_format(), "f32");

    let frames = Arc::new(AtomicU64::new(0));
    let partial_frames = Arc::new(AtomicU64::new(0));
    let source = {
        let frames = Arc::clone(&frames);
        let partial_frames = Arc::clone(&partial_frames);
        move |out: &mut [f32]| {
            if !out.len().is_multiple_of(2) {
                partial_frames.fetch_add(1, Ordering::Relaxed);
            }
            out.fill(0.0);
            frames.fetch_add(out.len() as u64 / 2, Ordering::Relaxed);
        }
    };
    let started = Instant::now();
    let running = device.start(source).expect("start the JACK output");
    assert_eq!(running.name(), "JACK: JACK Output");
    assert_eq!(running.period_frames(), Some(PERIOD));
    thread::sleep(Duration::from_millis(500));
    let counted = frames.load(Ordering::Relaxed) as f64;
    let elapsed = started.elapsed().as_secs_f64();
    let error = running.take_error();
    running.stop();

    assert!(
        error.is_none(),
        "the stream reported an error: {}",
        error.unwrap()
    );
    let expected = elapsed * f64::from(RATE);
    let slack = 0.3 * expected + 2.0 * f64::from(PERIOD);
    assert!(
        (counted - expected).abs() <= slack,
        "JACK consumed {counted} frames in {elapsed:.3} s; real time is {expected:.0}"
    );
    assert_eq!(
        partial_frames.load(Ordering::Relaxed),
        0,
        "a call had a partial frame"
    );
    let after_stop = frames.load(Ordering::Relaxed);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        frames.load(Ordering::Relaxed),
        after_stop,
        "called after stop"
    );
}

#[test]
fn device_lookup_and_configuration_errors_say_what_is_available() {
    let _server = JackServer::start();
    let any = OutputConfig::default();

    let error = open_device(Some("no-such-device-xyz"), &any).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeviceNotFound);
    let message = error.to_string();
    assert!(
        message
            .starts_with("no output device named \"no-such-device-xyz\"; available devices are: "),
        "{message}"
    );
    assert!(
        message.contains("\"JACK: JACK Output\" [output]"),
        "{message}"
    );
    assert!(
        !message.contains("JACK Input"),
        "inputs are not outputs: {message}"
    );

    // Case-insensitive substring match, on the name or on "HOST: name".
    let device = open_device(Some("jack: jack out"), &any).expect("substring match");
    assert_eq!(device.name(), "JACK: JACK Output");

    // JACK runs at the server's rate only.
    let wrong_rate = OutputConfig {
        sample_rate: Some(44_100),
        ..OutputConfig::default()
    };
    let error = open_device(Some("JACK Output"), &wrong_rate).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnsupportedConfig);
    assert!(
        error
            .to_string()
            .starts_with("\"JACK: JACK Output\" does not support 44100 Hz with 2 channels; it supports 1-64 channels at 48000 Hz"),
        "{error}"
    );

    // A period the server does not run at is not asked for; the server's is reported.
    let other_period = OutputConfig {
        period_frames: Some(PERIOD * 2),
        channels: Some(4),
        ..OutputConfig::default()
    };
    let device = open_device(Some("JACK Output"), &other_period).expect("open with 4 channels");
    assert_eq!(device.period_frames(), Some(PERIOD));
    assert_eq!(device.channels(), 4);

    let error = open_device(Some(""), &any).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}
