//! The output's side of the ring allocates nothing, underrun or not: taking frames, noting
//! an underrun with its place and length, and copying what it played into a tap (the
//! recorder's).

use std::sync::Arc;
use std::time::Duration;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use flux_engine::{engine, tap, DspThread, EngineConfig, StateMemory, Underrun};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn an_underrun_is_noted_and_recorded_without_allocating() {
    let state = Arc::new(StateMemory::new(4096));
    let (_ctl, eng) = engine(EngineConfig::new(48_000, 2), state);
    let (mut dsp, mut reader) = DspThread::spawn(eng, 256, Vec::new()).unwrap();
    assert!(reader.wait_primed(Duration::from_secs(5)));
    let (mut record, mut recorded) = tap(2, 4096);
    let counters = reader.counters().clone();
    // More than the ring holds: the output plays the rest as silence.
    let mut out = vec![1.0f32; 1024 * 2];
    assert_no_alloc(|| {
        reader.fill(&mut out);
        record.write(&out);
    });
    let mut seen = 0;
    let (list, lost) = counters.underruns_since(&mut seen);
    assert_eq!(lost, 0);
    assert_eq!(list.len(), 1, "{list:?}");
    let Underrun { frame, missing } = list[0];
    assert_eq!(frame + missing, 1024);
    assert!(missing >= 1024 - 256, "{missing}");
    assert_eq!(counters.underrun_frames(), missing);
    // The recorder's copy holds the silence where the output played it.
    let mut copy = Vec::new();
    assert_eq!(recorded.read_into(&mut copy, usize::MAX), 1024);
    assert!(copy[frame as usize * 2..].iter().all(|&x| x == 0.0));
    dsp.stop_within(Duration::from_secs(5)).unwrap();
}
