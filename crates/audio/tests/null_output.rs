//! The null output keeps real time, calls the source with whole periods, and stops at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use flux_audio::{ErrorKind, NullOutput};

/// Counts frames and the calls whose length is not exactly one period.
fn counting_source(
    expected_len: usize,
    channels: usize,
) -> (
    impl FnMut(&mut [f32]) + Send + 'static,
    Arc<AtomicU64>,
    Arc<AtomicU64>,
) {
    let frames = Arc::new(AtomicU64::new(0));
    let wrong_calls = Arc::new(AtomicU64::new(0));
    let source = {
        let frames = Arc::clone(&frames);
        let wrong_calls = Arc::clone(&wrong_calls);
        move |out: &mut [f32]| {
            if out.len() != expected_len {
                wrong_calls.fetch_add(1, Ordering::Relaxed);
            }
            out.fill(0.0);
            frames.fetch_add((out.len() / channels) as u64, Ordering::Relaxed);
        }
    };
    (source, frames, wrong_calls)
}

#[test]
fn null_output_consumes_frames_at_real_time_in_whole_periods() {
    let (rate, channels, period) = (48_000, 2, 256);
    let (source, frames, wrong_calls) = counting_source(period as usize * 2, 2);
    let started = Instant::now();
    let running = NullOutput::new(rate, channels, period).start(source);
    assert_eq!(running.name(), "null");
    assert_eq!(running.period_frames(), Some(period));
    thread::sleep(Duration::from_millis(500));
    let counted = frames.load(Ordering::Relaxed) as f64;
    let elapsed = started.elapsed().as_secs_f64();
    running.stop();

    // Never ahead of real time (a busy machine can only make it fall behind), and moving.
    let real_time = elapsed * f64::from(rate);
    assert!(
        counted <= real_time + f64::from(period),
        "null output consumed {counted} frames in {elapsed:.3} s; real time is {real_time:.0}"
    );
    assert!(counted >= f64::from(period), "{counted} frames");
    assert_eq!(
        wrong_calls.load(Ordering::Relaxed),
        0,
        "a call was not one whole period"
    );

    // Stopped means stopped: the source is not called any more.
    let after_stop = frames.load(Ordering::Relaxed);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(frames.load(Ordering::Relaxed), after_stop);
}

#[test]
fn stop_wakes_a_sleeping_null_output_at_once() {
    // One period lasts a minute (48 frames a second), so the thread is asleep when it is
    // stopped: a stop that waited for the period to end would take that minute.
    let (source, frames, _) = counting_source(2880, 1);
    let running = NullOutput::new(48, 1, 2880).start(source);
    thread::sleep(Duration::from_millis(50));
    let stopping = Instant::now();
    drop(running);
    assert!(
        stopping.elapsed() < Duration::from_secs(30),
        "stopping took {:?}",
        stopping.elapsed()
    );
    // The first period is pulled as soon as the output starts, like a device.
    assert_eq!(frames.load(Ordering::Relaxed), 2880);
}

#[test]
fn a_panicking_source_is_reported_not_hidden() {
    let running = NullOutput::new(48_000, 2, 64).start(|_: &mut [f32]| panic!("boom"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        if let Some(error) = running.take_error() {
            break error;
        }
        assert!(Instant::now() < deadline, "the panic was never reported");
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(error.kind(), ErrorKind::Stream);
    assert_eq!(
        error.to_string(),
        "output \"null\": the source panicked and the output stopped: boom"
    );
    assert!(running.take_error().is_none(), "one panic, one error");
}

#[test]
#[should_panic(expected = "at least 1 channel")]
fn null_output_refuses_zero_channels() {
    NullOutput::new(48_000, 0, 64);
}

/// Compile-time check: outputs and errors can move between threads.
#[test]
fn outputs_and_errors_are_send() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<flux_audio::Running>();
    send::<flux_audio::NullOutput>();
    send::<flux_audio::WavWriter>();
    send::<flux_audio::Error>();
    sync::<flux_audio::Error>();
}
