//! The render path allocates nothing (swaps, fades to their end, faults, full queues), the
//! DSP thread sleeps instead of spinning, and a tap nobody reads never holds the output up.

mod common;

use std::sync::Arc;
use std::time::Duration;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use common::{FailsLater, Sine};
use flux_engine::{
    engine, tap, DspThread, EngineConfig, Fault, Patch, PatchSignal, StateAllocator, StateMemory,
};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn process_and_swap_allocate_nothing() {
    let state = Arc::new(StateMemory::new(4096));
    let mut alloc = StateAllocator::new(4096, 64);
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    // Crossfades (old code on shadow state, fade-ins and fade-outs) allocate nothing either.
    ctl.set_fade(700);
    let mut out = vec![0.0f32; 512 * 2];
    for round in 0..20 {
        let mut signals = Vec::new();
        // A different set each round: some signals stay, some come, some go.
        for n in (round % 3)..(round % 3 + 4) {
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
        if round % 2 == 0 {
            ctl.swap(Patch::new(signals));
        } else {
            // Keep s0 running, upsert the others.
            let keep = vec![alloc.block_of("s0").unwrap()];
            ctl.merge(Patch::new(signals), keep);
        }
        ctl.set_gain(alloc.block_of("s1").unwrap(), 0.5, 300);
        ctl.set_master(0.9, 200);
        ctl.stop();
        ctl.start();
        // The swap, stop and start are applied inside `process`.
        assert_no_alloc(|| eng.process(&mut out));
        ctl.collect();
    }
    assert!(out.iter().any(|&s| s != 0.0));
    // The last crossfade runs to its natural end (700 frames) and the old patch goes back.
    let mut long = vec![0.0f32; 1024 * 2];
    assert_no_alloc(|| eng.process(&mut long));
    assert!(ctl.collect().is_empty());
    assert!(long[2000..].iter().any(|&s| s != 0.0));
}

/// A signal that plays `ok_blocks` blocks, then faults with `fault`.
fn fails(
    alloc: &mut StateAllocator,
    id: &str,
    ok_blocks: u32,
    fault: Fault,
    location: Option<&'static str>,
) -> PatchSignal {
    let block = alloc.block_of(id).unwrap();
    let code = FailsLater {
        ok_blocks,
        fault: Some(fault),
        location,
    };
    PatchSignal::new(id, block, Box::new(code))
}

#[test]
fn faults_playing_and_fading_are_reported_without_allocating() {
    let state = Arc::new(StateMemory::new(4096));
    let mut alloc = StateAllocator::new(4096, 64);
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    let error = || Fault::Error("p1.js:3:9: Error: boom".into());
    let fuel = Fault::OutOfFuel { iterations: 7 };
    // `old` will be replaced (its old code crossfades out on shadow state) and `gone`
    // removed (it fades out on its own state); both fault during the fade.
    ctl.swap(Patch::new(vec![
        fails(&mut alloc, "old", 2, error(), None),
        fails(&mut alloc, "gone", 2, fuel, Some("p1.js:5:20")),
    ]));
    let mut out = vec![0.0f32; 128 * 2];
    assert_no_alloc(|| eng.process(&mut out));
    assert!(ctl.collect().is_empty());
    ctl.set_fade(700);
    let block = alloc.block_of("old").unwrap();
    let sine = Sine {
        state: state.clone(),
        block,
        freq: 440.0,
        gain: 0.5,
    };
    ctl.swap(Patch::new(vec![
        PatchSignal::new("old", block, Box::new(sine)),
        // Faults after the fade, while playing steadily.
        fails(
            &mut alloc,
            "late",
            7,
            Fault::ReturnedUndefined,
            Some("p2.js:2:4"),
        ),
    ]));
    // Eight blocks: the fade's two faults, the fade's natural end (the old patch goes back
    // to this thread), then the late fault.
    let mut out = vec![0.0f32; 1024 * 2];
    assert_no_alloc(|| eng.process(&mut out));
    let mut got: Vec<String> = ctl
        .collect()
        .into_iter()
        .map(|f| format!("{} | {}", f.id, f.fault))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "gone | p1.js:5:20: update of 'gone' ran 7 loop iterations in one block (an endless loop?)",
            "late | p2.js:2:4: TypeError: update of 'late' returned undefined; expected a number or an array of numbers",
            "old | p1.js:3:9: Error: boom",
        ]
    );
    // The new sine plays on alone.
    assert!(out[900 * 2..].iter().any(|&s| s != 0.0));
}

/// A patch of `n` signals on one state block, each playing 0.25 for `ok_blocks` blocks
/// and then running out of fuel.
fn quarters(state: &Arc<StateMemory>, n: usize, ok_blocks: u32) -> Patch {
    let block = StateAllocator::new(state.len(), 8).block_of("q").unwrap();
    let signals = (0..n)
        .map(|i| {
            let code = FailsLater {
                ok_blocks,
                fault: Some(Fault::OutOfFuel { iterations: 1 }),
                location: None,
            };
            PatchSignal::new(format!("q{i}"), block, Box::new(code))
        })
        .collect();
    Patch::new(signals)
}

#[test]
fn a_full_event_queue_drops_reports_without_allocating() {
    let state = Arc::new(StateMemory::new(64));
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 1), state.clone());
    // More faults in one block than the event queue holds (256).
    ctl.swap(quarters(&state, 300, 0));
    let mut out = vec![0.0f32; 128];
    assert_no_alloc(|| eng.process(&mut out));
    let faults = ctl.collect();
    assert_eq!(faults.len(), 256);
    assert!(faults.iter().all(|f| f.id.starts_with('q')));
    assert!(out.iter().all(|&s| s == 0.0));
    // The queue drained, later faults get through again.
    ctl.swap(quarters(&state, 3, 1));
    let mut out = vec![0.0f32; 256];
    assert_no_alloc(|| eng.process(&mut out));
    assert_eq!(ctl.collect().len(), 3);
}

#[test]
fn a_full_retired_queue_holds_swaps_back_without_allocating() {
    let state = Arc::new(StateMemory::new(64));
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 1), state.clone());
    // 40 swaps, nobody collecting: the retired queue (16) fills and the rest wait.
    for _ in 0..39 {
        ctl.swap(quarters(&state, 1, u32::MAX));
    }
    let last = ctl.swap(quarters(&state, 2, u32::MAX));
    let mut out = vec![0.0f32; 128];
    assert_no_alloc(|| {
        for _ in 0..4 {
            eng.process(&mut out);
        }
    });
    // Not there yet: the old patches must come back to this thread first.
    assert!(eng.counters().snapshot().blocks == 4);
    assert_eq!(out[0], 0.25f32.tanh());
    for _ in 0..4 {
        ctl.collect();
        assert_no_alloc(|| eng.process(&mut out));
    }
    // Every swap was taken, in order, and none was dropped on this thread.
    assert_eq!(out[127], 0.5f32.tanh());
    assert!(ctl.is_flushed());
    assert_eq!(last, 40);
    ctl.collect();
}

/// A patch of one 440 Hz sine on every channel.
fn sine_patch(state: &Arc<StateMemory>) -> Patch {
    let mut alloc = StateAllocator::new(state.len(), 64);
    let block = alloc.block_of("sine").unwrap();
    let sine = Sine {
        state: state.clone(),
        block,
        freq: 440.0,
        gain: 0.5,
    };
    Patch::new(vec![PatchSignal::new("sine", block, Box::new(sine))])
}

#[test]
fn a_tap_copies_or_drops_a_block_without_allocating() {
    let state = Arc::new(StateMemory::new(64));
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    ctl.swap(sine_patch(&state));
    // Room for one 128-frame block and a half.
    let (mut tap, mut reader) = tap(2, 192);
    let mut out = vec![0.0f32; 128 * 2];
    let copied = assert_no_alloc(|| {
        eng.process(&mut out);
        let first = tap.write(&out);
        eng.process(&mut out);
        // No room for a whole second block: it is dropped, not cut.
        let second = tap.write(&out);
        (first, second)
    });
    assert_eq!(copied, (true, false));
    assert_eq!(reader.dropped_frames(), 128);
    assert_eq!(reader.available_frames(), 128);
    let mut got = Vec::new();
    assert_eq!(reader.read_into(&mut got, usize::MAX), 128);
    assert!(got.iter().any(|&s| s != 0.0));
    assert!(assert_no_alloc(|| tap.write(&out)));
    assert_eq!(reader.skip(1000), 128);
    assert_eq!(reader.available_frames(), 0);
}

#[test]
fn a_tap_nobody_reads_never_holds_up_the_output() {
    let state = Arc::new(StateMemory::new(64));
    let (mut ctl, eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    ctl.swap(sine_patch(&state));
    let (full, reader) = tap(2, 256);
    let (slow, mut slow_reader) = tap(2, 48_000);
    let (dsp, mut output) = DspThread::spawn(eng, 512, vec![full, slow]).unwrap();
    assert!(output.wait_primed(Duration::from_secs(2)));
    // Drain at half the speed of a 48 kHz output for a second, so a late wake-up of this
    // thread cannot empty the ring: the output runs short only if the DSP thread stalls.
    // Nobody reads the first tap; the second is read only at the end.
    let mut buf = vec![0.0f32; 256 * 2];
    let start = std::time::Instant::now();
    for period in 1..=94u32 {
        output.fill(&mut buf);
        let due = Duration::from_secs_f64(f64::from(period) * 2.0 * 256.0 / 48_000.0);
        std::thread::sleep(due.saturating_sub(start.elapsed()));
    }
    drop(dsp);
    let stats = output.counters().snapshot();
    // The unread tap kept its first (whole) blocks and dropped the rest.
    assert_eq!(reader.available_frames(), 256);
    assert_eq!(
        reader.dropped_frames() + 256,
        stats.frames_rendered,
        "{stats:?}"
    );
    // The roomy tap has every frame that was rendered, in order, and dropped none.
    assert_eq!(slow_reader.dropped_frames(), 0);
    let mut got = Vec::new();
    let frames = slow_reader.read_into(&mut got, usize::MAX);
    assert_eq!(frames as u64, stats.frames_rendered);
    assert!(got.iter().any(|&s| s != 0.0));
}

#[test]
fn an_empty_patch_does_not_spin_a_core() {
    let state = Arc::new(StateMemory::new(64));
    let (_ctl, eng) = engine(EngineConfig::new(48_000, 2), state);
    let (dsp, mut reader) = DspThread::spawn(eng, 512, Vec::new()).unwrap();
    assert!(reader.wait_primed(Duration::from_secs(2)));
    // Drain like a 48 kHz output would, in 256-frame periods, for half a second.
    let mut buf = vec![0.0f32; 256 * 2];
    let start = std::time::Instant::now();
    for period in 1..=94u32 {
        reader.fill(&mut buf);
        let due = Duration::from_secs_f64(f64::from(period) * 256.0 / 48_000.0);
        std::thread::sleep(due.saturating_sub(start.elapsed()));
    }
    drop(dsp);
    let counters = reader.counters();
    let blocks = counters.snapshot().blocks;
    // Each turn of the DSP loop renders a block or sleeps until about one block of room
    // is free: a few turns per block. A loop that spun would turn thousands of times per
    // block; a busy machine only makes the sleeps longer, so this cannot fail under load.
    let turns = counters.heartbeat();
    assert!(blocks > 0);
    assert!(
        turns <= 8 * blocks + 64,
        "{turns} turns of the DSP loop for {blocks} blocks"
    );
}

#[test]
fn the_output_side_takes_frames_without_allocating() {
    let state = Arc::new(StateMemory::new(64));
    let (mut ctl, eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    ctl.swap(sine_patch(&state));
    let (dsp, mut output) = DspThread::spawn(eng, 512, Vec::new()).unwrap();
    assert!(output.wait_primed(Duration::from_secs(2)));
    // What a device callback does, including the reload-to-audible bookkeeping after a
    // swap, and an underrun when it asks for more than the ring holds.
    ctl.swap(sine_patch(&state));
    let mut small = vec![0.0f32; 128 * 2];
    let mut huge = vec![0.0f32; 4096 * 2];
    for _ in 0..8 {
        assert_no_alloc(|| output.fill(&mut small));
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_no_alloc(|| output.fill(&mut huge));
    drop(dsp);
    ctl.collect();
    let stats = output.counters().snapshot();
    assert!(stats.underruns >= 1);
    assert!(small.iter().any(|&s| s != 0.0));
}

#[test]
fn limiter_dc_blocker_and_meters_allocate_nothing() {
    let state = Arc::new(StateMemory::new(4096));
    let mut alloc = StateAllocator::new(4096, 64);
    let (mut ctl, mut eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    let config = flux_engine::MasterConfig {
        mode: flux_engine::MasterMode::Limit,
        ceiling_db: -1.0,
        dc_block: true,
    };
    ctl.set_master_stage(config).unwrap();
    // Two loud signals: the limiter works, every signal and the master are metered.
    let signals = ["a", "b"]
        .into_iter()
        .map(|id| {
            let block = alloc.block_of(id).unwrap();
            let code = Sine {
                state: state.clone(),
                block,
                freq: 220.0,
                gain: 1.0,
            };
            PatchSignal::new(id, block, Box::new(code))
        })
        .collect();
    ctl.swap(Patch::new(signals));
    let meters = ctl.meters();
    let mut out = vec![0.0f32; 512 * 2];
    for _ in 0..20 {
        assert_no_alloc(|| eng.process(&mut out));
    }
    // Modes change live without allocating either.
    for mode in [
        flux_engine::MasterMode::Clip,
        flux_engine::MasterMode::None,
        flux_engine::MasterMode::Tanh,
    ] {
        ctl.set_master_stage(flux_engine::MasterConfig { mode, ..config })
            .unwrap();
        assert_no_alloc(|| eng.process(&mut out));
    }
    let master = meters.take_master();
    assert!(
        master.clips > 0,
        "a sum of two full-scale sines clips going in"
    );
    assert_eq!(meters.take_signals().len(), 2);
}

/// Plays `midi.note / 128` while the gate is open (reads the clock).
struct Keys;

impl flux_engine::Signal for Keys {
    fn render(&mut self, b: &mut flux_engine::Block<'_>) -> Result<(), Fault> {
        for (f, frame) in b.out.chunks_mut(b.channels).enumerate() {
            frame.fill(b.clock.note[f] / 128.0 * b.clock.gate[f]);
        }
        Ok(())
    }

    fn tier(&self) -> flux_engine::Tier {
        flux_engine::Tier::Native
    }
}

/// A mono engine playing [`Keys`].
fn keys_engine() -> (flux_engine::Controller, flux_engine::Engine) {
    let state = Arc::new(StateMemory::new(4096));
    let mut alloc = StateAllocator::new(4096, 64);
    let (mut ctl, eng) = engine(EngineConfig::new(48_000, 1), state);
    let block = alloc.block_of("keys").unwrap();
    ctl.swap(Patch::new(vec![PatchSignal::new(
        "keys",
        block,
        Box::new(Keys),
    )]));
    (ctl, eng)
}

#[test]
fn midi_in_allocates_nothing_and_lands_on_its_frame() {
    let (mut ctl, mut eng) = keys_engine();
    let mut midi = ctl.take_midi().unwrap();
    assert!(ctl.take_midi().is_none(), "one sender");
    for (frame, bytes) in [(300, [0x90, 64, 90]), (700, [0x80, 64, 0])] {
        midi.send(flux_engine::MidiEvent { frame, bytes });
    }
    let mut out = vec![0.0f32; 1000];
    for chunk in out.chunks_mut(100) {
        assert_no_alloc(|| eng.process(chunk));
    }
    let on = (0.5f64).tanh() as f32;
    assert!(out[..300].iter().all(|&x| x == 0.0));
    assert!(out[300..700].iter().all(|&x| x == on), "{}", out[300]);
    assert!(out[700..].iter().all(|&x| x == 0.0));
}

#[test]
fn a_dsp_thread_that_drives_its_output_plays_every_frame_in_order_without_allocating() {
    let state = Arc::new(StateMemory::new(64));
    let (mut ctl, eng) = engine(EngineConfig::new(48_000, 2), state.clone());
    ctl.swap(sine_patch(&state));
    // The same patch rendered offline, block by block, is what the output must take.
    let offline_state = Arc::new(StateMemory::new(64));
    let (mut offline_ctl, mut offline) =
        engine(EngineConfig::new(48_000, 2), offline_state.clone());
    offline_ctl.swap(sine_patch(&offline_state));
    let periods = 64;
    let mut want = vec![0.0f32; 128 * 2 * periods];
    for chunk in want.chunks_mut(128 * 2) {
        offline.process(chunk);
    }
    // The drive takes 128-frame periods into a buffer made beforehand, then hands it over.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut taken = Vec::with_capacity(want.len());
    let mut period = vec![0.0f32; 128 * 2];
    let mut sent = false;
    let drive = move |reader: &mut flux_engine::OutputReader| {
        std::thread::sleep(Duration::from_micros(200));
        if taken.len() < taken.capacity() {
            assert_no_alloc(|| {
                reader.fill(&mut period);
                taken.extend_from_slice(&period);
            });
        } else if !sent {
            sent = true;
            let _ = tx.send(std::mem::take(&mut taken));
        }
    };
    let dsp = DspThread::spawn_driving(eng, 512, Vec::new(), drive).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    drop(dsp);
    assert_eq!(got.len(), want.len());
    let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "the first sample that differs");
    assert!(got.iter().any(|&s| s != 0.0));
    assert_eq!(ctl.counters().snapshot().underruns, 0);
}

#[test]
fn midi_clock_out_and_voices_allocate_nothing() {
    let (mut ctl, mut eng) = keys_engine();
    let mut ticks = ctl.take_midi_clock().unwrap();
    let mut midi = ctl.take_midi().unwrap();
    // Eight voices, a ninth that steals one, controllers, a bend, all notes off.
    for k in 0..9u8 {
        midi.send(flux_engine::MidiEvent {
            frame: 100 + u64::from(k),
            bytes: [0x90, 60 + k, 100],
        });
    }
    for (frame, bytes) in [
        (2000, [0xb0, 1, 64]),
        (2001, [0xe0, 0, 0]),
        (3000, [0xb0, 123, 0]),
    ] {
        midi.send(flux_engine::MidiEvent { frame, bytes });
    }
    let mut out = vec![0.0f32; 4800];
    for chunk in out.chunks_mut(100) {
        assert_no_alloc(|| eng.process(chunk));
    }
    // 4800 frames at 120 bpm: start, then ticks at frames 0, 1000, ..., 4000.
    let got: Vec<(u64, u8)> = std::iter::from_fn(|| ticks.pop())
        .map(|m| (m.frame, m.byte))
        .collect();
    assert_eq!(
        got,
        [
            (0, 0xfa),
            (0, 0xf8),
            (1000, 0xf8),
            (2000, 0xf8),
            (3000, 0xf8),
            (4000, 0xf8)
        ]
    );
}
