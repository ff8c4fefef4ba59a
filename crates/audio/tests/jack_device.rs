//! The device path, end to end, against a real JACK server with the dummy driver.
//!
//! Each test starts its own `jackd` under a server name unique to this process, and stops
//! it at the end. `jackd` must be installed (Debian and Ubuntu: package `jackd2`); without
//! it these tests fail, on purpose, rather than pass without testing anything.

#[path = "support/jack.rs"]
mod jack;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use flux_audio::{open_device, ErrorKind, OutputConfig};
use jack::{JackServer, PERIOD, RATE};

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
