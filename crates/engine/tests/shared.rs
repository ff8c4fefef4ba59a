//! What the threads share, exercised across two threads and small enough for Miri
//! (`scripts/miri.sh`): the state memory, a tap, the engine's queues, and the output ring.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{FailsLater, Sine};
use flux_engine::{
    engine, tap, DspThread, EngineConfig, Fault, Patch, PatchSignal, StateAllocator, StateMemory,
};

/// Frames per block in these tests: tiny, so Miri gets through them.
const BLOCK: usize = 8;

fn config() -> EngineConfig {
    EngineConfig {
        block: BLOCK,
        ..EngineConfig::new(48_000, 2)
    }
}

#[test]
fn the_state_memory_is_shared_through_atomics() {
    let state = Arc::new(StateMemory::new(16));
    let writer = {
        let state = state.clone();
        std::thread::spawn(move || {
            for i in 0..64 {
                state.set(i % 16, i as f64);
            }
        })
    };
    let mut seen = 0.0;
    for _ in 0..64 {
        // Whatever the other thread has stored so far, never a torn value.
        let v = state.get(3).unwrap();
        assert!(v == 0.0 || v % 16.0 == 3.0, "{v}");
        seen += v;
    }
    writer.join().unwrap();
    assert!(seen >= 0.0);
    assert_eq!(state.get(15), Some(63.0));
}

#[test]
fn a_tap_hands_whole_blocks_to_another_thread() {
    let (mut tx, mut rx) = tap(2, 3 * BLOCK);
    let writer = std::thread::spawn(move || {
        let mut written = 0;
        for b in 0..8 {
            let block = vec![b as f32; 2 * BLOCK];
            if tx.write(&block) {
                written += 1;
            }
            std::thread::yield_now();
        }
        written
    });
    let mut got = Vec::new();
    for _ in 0..16 {
        rx.read_into(&mut got, usize::MAX);
        std::thread::yield_now();
    }
    let written = writer.join().unwrap();
    rx.read_into(&mut got, usize::MAX);
    assert_eq!(got.len(), written * 2 * BLOCK);
    assert_eq!(rx.dropped_frames(), (8 - written as u64) * BLOCK as u64);
    // Blocks arrive whole and in order.
    for block in got.chunks(2 * BLOCK) {
        assert!(block.iter().all(|&s| s == block[0]));
    }
    assert!(got.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn patches_faults_and_retired_patches_cross_between_threads() {
    let state = Arc::new(StateMemory::new(64));
    let mut alloc = StateAllocator::new(64, 8);
    let (mut ctl, mut eng) = engine(config(), state.clone());
    let rounds = 4u32;
    let done = Arc::new(AtomicBool::new(false));
    let dsp = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut out = vec![0.0f32; 2 * BLOCK];
            while !done.load(Ordering::Relaxed) {
                eng.process(&mut out);
                std::thread::yield_now();
            }
            // The last patch plays long enough to fault.
            for _ in 0..8 {
                eng.process(&mut out);
            }
            eng
        })
    };
    let mut faults = 0;
    for round in 0..rounds {
        let block = alloc.block_of("s").unwrap();
        let sine = Sine {
            state: state.clone(),
            block,
            freq: 440.0 + f64::from(round),
            gain: 0.5,
        };
        let bad = alloc.block_of("bad").unwrap();
        let fails = FailsLater {
            ok_blocks: 1,
            fault: Some(Fault::Error("m.js:1:1: Error: boom".into())),
            location: None,
        };
        ctl.set_fade(if round % 2 == 0 { 0 } else { 12 });
        ctl.swap(Patch::new(vec![
            PatchSignal::new("s", block, Box::new(sine)),
            PatchSignal::new("bad", bad, Box::new(fails)),
        ]));
        for _ in 0..4 {
            faults += ctl.collect().len();
            std::thread::yield_now();
        }
    }
    done.store(true, Ordering::Relaxed);
    let eng = dsp.join().unwrap();
    faults += ctl.collect().len();
    // Each patch that played long enough faulted once; none was lost or doubled.
    assert!((1..=rounds as usize).contains(&faults), "{faults}");
    drop(eng);
}

#[test]
fn the_output_ring_carries_rendered_frames_to_the_output() {
    let state = Arc::new(StateMemory::new(64));
    let mut alloc = StateAllocator::new(64, 8);
    let (mut ctl, eng) = engine(config(), state.clone());
    let block = alloc.block_of("s").unwrap();
    let sine = Sine {
        state,
        block,
        freq: 440.0,
        gain: 0.5,
    };
    ctl.swap(Patch::new(vec![PatchSignal::new(
        "s",
        block,
        Box::new(sine),
    )]));
    let (dsp, mut output) = DspThread::spawn(eng, 4 * BLOCK, Vec::new()).unwrap();
    let mut out = vec![0.0f32; 2 * BLOCK];
    let mut heard = false;
    for _ in 0..64 {
        output.fill(&mut out);
        heard |= out.iter().any(|&s| s != 0.0);
        if heard {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(dsp.stop().is_some());
    assert!(heard);
}

/// What signal code does: plain 8-byte stores through [`StateMemory::as_ptr`] on one
/// thread while Rust reads the slot atomically on another. It never tears on the targets
/// Flux builds for, but it is outside the Rust memory model: Miri reports it as a data
/// race, which `scripts/miri.sh` runs on its own to show (see docs/ARCHITECTURE.md).
#[test]
fn plain_stores_through_the_pointer_race_with_atomic_reads() {
    let state = Arc::new(StateMemory::new(4));
    let writer = {
        let state = state.clone();
        std::thread::spawn(move || {
            let slot = state.as_ptr().wrapping_add(1);
            for i in 0..32 {
                // SAFETY: slot 1 of a 4-slot memory kept alive by `state`, aligned; the race
                // with the reader below is the point of this test.
                unsafe { slot.write_volatile(f64::from(i)) };
            }
        })
    };
    for _ in 0..32 {
        let v = state.get(1).unwrap();
        assert!(v.fract() == 0.0 && (0.0..32.0).contains(&v), "{v}");
    }
    writer.join().unwrap();
    assert_eq!(state.get(1), Some(31.0));
}
