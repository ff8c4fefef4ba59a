//! Panic: the whole output fades out within 50 ms, without a click, and stays silent until
//! a start, which fades it back in; nothing on the render path allocates meanwhile.

mod common;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use common::tone_engine;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const SR: u32 = 48_000;
/// 50 ms at 48 kHz.
const WITHIN: usize = 2400;

/// The largest step between neighbouring samples.
fn largest_step(samples: &[f32]) -> f32 {
    samples
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

#[test]
fn a_panic_fades_everything_out_within_50_ms_and_stays_silent_until_start() {
    let (mut ctl, mut eng) = tone_engine(SR, 440.0, 0.5);
    let mut before = vec![0.0f32; 4800];
    eng.process(&mut before);
    let tone_step = largest_step(&before);
    assert!(tone_step > 0.01, "the tone plays: largest step {tone_step}");

    ctl.panic();
    let mut after = vec![0.0f32; 9600];
    assert_no_alloc(|| eng.process(&mut after));
    // No click: the step across the panic and every step of the fade stay within the
    // tone's own.
    assert!((after[0] - before[before.len() - 1]).abs() <= tone_step * 1.01);
    assert!(largest_step(&after) <= tone_step * 1.01);
    assert!(
        after[..100].iter().any(|&s| s != 0.0),
        "the fade starts at once"
    );
    let loud: Vec<usize> = (WITHIN..after.len()).filter(|&i| after[i] != 0.0).collect();
    assert!(
        loud.is_empty(),
        "not silent from frame {WITHIN} on: {loud:?}"
    );

    // It stays stopped, block after block, until a start.
    let mut later = vec![0.0f32; 48_000];
    assert_no_alloc(|| eng.process(&mut later));
    assert!(later.iter().all(|&s| s == 0.0));

    ctl.start();
    let mut back = vec![0.0f32; 4800];
    assert_no_alloc(|| eng.process(&mut back));
    // It comes back softly: from silence, no step larger than the tone's.
    assert!(
        back[0].abs() <= tone_step * 1.01,
        "first sample {}",
        back[0]
    );
    assert!(largest_step(&back) <= tone_step * 1.01);
    let peak = back[2400..].iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(
        (peak - 0.5f32.tanh()).abs() < 1e-3,
        "peak {peak} after the start"
    );
    ctl.collect();
}

#[test]
fn a_panic_while_stopped_stays_silent_and_a_start_fades_in() {
    let (mut ctl, mut eng) = tone_engine(SR, 440.0, 0.5);
    ctl.stop();
    ctl.panic();
    let mut out = vec![0.0f32; 4800];
    eng.process(&mut out);
    assert!(out.iter().all(|&s| s == 0.0));
    ctl.start();
    eng.process(&mut out);
    assert!(out[0].abs() < 0.01, "first sample {}", out[0]);
    assert!(out.iter().any(|&s| s.abs() > 0.4));
}
