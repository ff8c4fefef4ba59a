//! A DSP thread that panicked or is stuck is noticed, stopping it waits a bounded time, and
//! commands toward an engine that takes none do not pile up without end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_engine::{
    engine, Block, DspFailure, DspThread, EngineConfig, Fault, Patch, PatchSignal, Signal,
    StateAllocator, StateMemory, Tier, PENDING_LIMIT, STALL_LIMIT,
};

/// Panics on its first block.
struct Panics;

impl Signal for Panics {
    fn render(&mut self, _: &mut Block<'_>) -> Result<(), Fault> {
        panic!("a test signal panicked on purpose");
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

/// Hangs in its first block until released.
struct Hangs(Arc<AtomicBool>);

impl Signal for Hangs {
    fn render(&mut self, _: &mut Block<'_>) -> Result<(), Fault> {
        while !self.0.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

fn start(code: Box<dyn Signal>) -> (flux_engine::Controller, DspThread) {
    let state = Arc::new(StateMemory::new(64));
    let block = StateAllocator::new(64, 64).block_of("bad").unwrap();
    let (mut ctl, eng) = engine(EngineConfig::new(48_000, 2), state);
    ctl.swap(Patch::new(vec![PatchSignal::new("bad", block, code)]));
    let (dsp, _output) = DspThread::spawn(eng, 512, Vec::new()).unwrap();
    (ctl, dsp)
}

/// Calls `check` every 20 ms, as the play loop does, until it fails (at most 10 s).
fn first_failure(dsp: &mut DspThread) -> DspFailure {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Err(failure) = dsp.check() {
            return failure;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the DSP thread's failure went unnoticed");
}

#[test]
fn a_panicked_dsp_thread_is_reported_dead() {
    let (mut ctl, mut dsp) = start(Box::new(Panics));
    let failure = first_failure(&mut dsp);
    assert_eq!(
        failure,
        DspFailure::Panicked("a test signal panicked on purpose".into())
    );
    assert_eq!(
        failure.to_string(),
        "the DSP thread panicked and stopped: a test signal panicked on purpose"
    );
    // It stays dead, and stopping it returns at once.
    assert_eq!(dsp.check(), Err(failure.clone()));
    assert_eq!(dsp.stop_within(Duration::from_secs(2)).err(), Some(failure));
    ctl.collect();
}

#[test]
fn a_stuck_dsp_thread_is_reported_and_stopping_it_gives_up_in_time() {
    let release = Arc::new(AtomicBool::new(false));
    let (_ctl, mut dsp) = start(Box::new(Hangs(release.clone())));
    let failure = first_failure(&mut dsp);
    match failure {
        DspFailure::Stalled(d) => assert!(d >= STALL_LIMIT, "{d:?}"),
        other => panic!("{other:?}"),
    }
    assert!(failure
        .to_string()
        .starts_with("the DSP thread has not run for "));
    // Asked to stop, it cannot: the wait ends and says so.
    let wait = Duration::from_millis(50);
    assert_eq!(
        dsp.stop_within(wait).err(),
        Some(DspFailure::NotStopped(wait))
    );
    release.store(true, Ordering::Relaxed);
}

#[test]
fn a_healthy_dsp_thread_passes_its_checks_and_stops() {
    let release = Arc::new(AtomicBool::new(true));
    let (_ctl, mut dsp) = start(Box::new(Hangs(release)));
    for _ in 0..10 {
        assert_eq!(dsp.check(), Ok(()));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dsp.stop().is_some());
}

#[test]
fn commands_toward_an_engine_that_takes_none_are_bounded() {
    let state = Arc::new(StateMemory::new(64));
    // Nobody ever processes this engine.
    let (mut ctl, _eng) = engine(EngineConfig::new(48_000, 2), state);
    let extra = 10;
    // The engine's own queue holds some; `PENDING_LIMIT` more wait; the rest are dropped.
    let mut sent = 0;
    while ctl.dropped_commands() == 0 {
        ctl.set_master(0.5, 0);
        sent += 1;
        assert!(sent <= 1_000_000, "the controller never drops a command");
    }
    for _ in 1..extra {
        ctl.set_master(0.5, 0);
        ctl.swap(Patch::default());
    }
    assert!(sent > PENDING_LIMIT);
    assert_eq!(ctl.dropped_commands(), 1 + 2 * (extra - 1));
    assert!(!ctl.is_flushed());
}
