//! The render path allocates nothing, and the DSP thread sleeps instead of spinning.

mod common;

use std::sync::Arc;
use std::time::Duration;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use common::Sine;
use flux_engine::{
    engine, DspThread, EngineConfig, Patch, PatchSignal, StateAllocator, StateMemory,
};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn process_and_swap_allocate_nothing() {
    let state = Arc::new(StateMemory::new(4096));
    let mut alloc = StateAllocator::new(4096, 64);
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    let mut out = vec![0.0f32; 512 * 2];
    for round in 0..20 {
        let mut signals = Vec::new();
        for n in 0..4 {
            let id = format!("s{n}");
            let block = alloc.block_of(&id).unwrap();
            signals.push(PatchSignal::new(
                id,
                block,
                Box::new(Sine {
                    state: state.clone(),
                    block,
                    freq: 100.0 * f64::from(n + 1) + f64::from(round),
                    gain: 0.2,
                }),
            ));
        }
        ctl.swap(Patch::new(signals));
        ctl.stop();
        ctl.start();
        // The swap, stop and start are applied inside `process`.
        assert_no_alloc(|| eng.process(&mut out));
        ctl.collect();
    }
    assert!(out.iter().any(|&s| s != 0.0));
}

/// CPU time of this process in seconds (user + system), from /proc.
#[cfg(target_os = "linux")]
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[cfg(target_os = "linux")]
#[test]
fn an_empty_patch_does_not_spin_a_core() {
    let state = Arc::new(StateMemory::new(64));
    let (_ctl, eng) = engine(EngineConfig::new(48_000, 2), state);
    let (dsp, mut reader) = DspThread::spawn(eng, 512, None).unwrap();
    assert!(reader.wait_primed(Duration::from_secs(2)));
    let before = cpu_seconds();
    // Drain like a 48 kHz output would, in 256-frame periods, for one second.
    let mut buf = vec![0.0f32; 256 * 2];
    let start = std::time::Instant::now();
    for period in 1..=187u32 {
        reader.fill(&mut buf);
        let due = Duration::from_secs_f64(f64::from(period) * 256.0 / 48_000.0);
        std::thread::sleep(due.saturating_sub(start.elapsed()));
    }
    let used = cpu_seconds() - before;
    let wall = start.elapsed().as_secs_f64();
    drop(dsp);
    // A busy loop would use about one core (1.0); sleeping costs a few percent.
    assert!(used / wall < 0.25, "used {used:.3} s of CPU in {wall:.3} s");
    assert!(reader.counters().snapshot().frames_rendered > 40_000);
}
