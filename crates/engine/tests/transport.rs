//! The transport: one clock for every signal, to the frame; tempo glides keep the beat
//! continuous; quantized swaps land on their boundary frame; none of it allocates.

use std::sync::Arc;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use flux_engine::{
    engine, Block, Controller, Engine, EngineConfig, Fault, Patch, PatchSignal, Quantize, Signal,
    StateAllocator, StateMemory, Tier,
};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const SR: u32 = 48_000;

/// Plays one field of the clock: 0 t, 1 beat, 2 bar, 3 bpm; scaled so the soft clip keeps
/// it readable (`tanh` of a small value, undone by the test).
struct ClockOut(usize, f64);

impl Signal for ClockOut {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        let field = [&b.clock.t, &b.clock.beat, &b.clock.bar, &b.clock.bpm][self.0];
        for (f, frame) in b.out.chunks_mut(b.channels).enumerate() {
            frame.fill(field[f] * self.1);
        }
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

/// A constant.
struct Level(f64);

impl Signal for Level {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        b.out.fill(self.0);
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

fn setup() -> (Controller, Engine, StateAllocator) {
    let state = Arc::new(StateMemory::new(4096));
    let alloc = StateAllocator::new(4096, 64);
    let (ctl, eng) = engine(EngineConfig::new(SR, 1), state);
    (ctl, eng, alloc)
}

fn patch(alloc: &mut StateAllocator, id: &str, code: Box<dyn Signal>) -> Patch {
    let block = alloc.block_of(id).unwrap();
    Patch::new(vec![PatchSignal::new(id, block, code)])
}

/// Renders `frames` in uneven chunks; returns the output, `atanh`-undone, over `scale`.
fn run(eng: &mut Engine, frames: usize, scale: f64) -> Vec<f64> {
    let mut out = vec![0.0f32; frames];
    for chunk in out.chunks_mut(97) {
        eng.process(chunk);
    }
    out.iter().map(|&x| f64::from(x).atanh() / scale).collect()
}

/// 0.5 on each frame where the beat reaches a whole number.
struct Onsets(f64);

impl Signal for Onsets {
    fn render(&mut self, b: &mut Block<'_>) -> Result<(), Fault> {
        for (f, frame) in b.out.chunks_mut(b.channels).enumerate() {
            let beat = b.clock.beat[f];
            let on = beat.floor() > self.0.floor() || beat == 0.0;
            self.0 = beat;
            frame.fill(if on { 0.5 } else { 0.0 });
        }
        Ok(())
    }

    fn tier(&self) -> Tier {
        Tier::Native
    }
}

#[test]
fn the_beat_is_whole_on_the_frames_of_the_tempo() {
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "beat", Box::new(Onsets(-1.0))));
    let out = run(&mut eng, 100_000, 1.0);
    let onsets: Vec<usize> = (0..out.len()).filter(|&f| out[f] > 0.25).collect();
    assert_eq!(onsets, [0, 24_000, 48_000, 72_000, 96_000]);
    assert_eq!(ctl.clock().read().bpm, 120.0);
    assert!((ctl.clock().read().bar - 100_000.0 / 96_000.0).abs() < 1e-9);
}

#[test]
fn a_glide_keeps_the_beat_continuous() {
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "bpm", Box::new(ClockOut(3, 1e-4))));
    run(&mut eng, 4_800, 1e-4);
    // 120 to 180 bpm over one second: the tempo climbs by 60/48000 bpm per frame.
    ctl.set_tempo(180.0, SR);
    let bpm = run(&mut eng, 60_000, 1e-4);
    assert!((bpm[0] - 120.0).abs() < 1e-3, "{}", bpm[0]);
    assert!((bpm[59_999] - 180.0).abs() < 1e-3, "{}", bpm[59_999]);
    let most = bpm.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    assert!(
        most < 60.0 / 48_000.0 * 1.5,
        "the tempo jumped by {most} in one frame"
    );
    // The beat's increment per frame never steps by more than the glide allows.
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "beat", Box::new(ClockOut(1, 1e-3))));
    run(&mut eng, 4_800, 1e-3);
    ctl.set_tempo(180.0, SR);
    let beat = run(&mut eng, 60_000, 1e-3);
    let inc: Vec<f64> = beat.windows(2).map(|w| w[1] - w[0]).collect();
    let slope = inc
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f64, f64::max);
    // The increment grows by (60/48000 bpm)/(60*48000) per frame; f32 output adds noise.
    assert!(slope < 1e-6, "the beat's slope stepped by {slope}");
    assert!(inc.iter().all(|&d| d > 0.0));
}

#[test]
fn a_quantized_swap_waits_for_the_bar_line_to_the_frame() {
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "a", Box::new(Level(0.25))));
    let mut out = run(&mut eng, 52_800, 1.0);
    ctl.set_quantize(Quantize::Bar);
    ctl.swap(patch(&mut alloc, "a", Box::new(Level(0.5))));
    out.extend(run(&mut eng, 100_000, 1.0));
    let switch = out.iter().position(|&x| (x - 0.5).abs() < 1e-6).unwrap();
    assert_eq!(switch, 96_000);
    assert!((out[95_999] - 0.25).abs() < 1e-6);
}

#[test]
fn a_swap_quantized_to_beats_lands_on_the_next_beat() {
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "a", Box::new(Level(0.25))));
    let mut out = run(&mut eng, 1_000, 1.0);
    ctl.set_quantize(Quantize::Beats(0.5));
    ctl.swap(patch(&mut alloc, "a", Box::new(Level(0.5))));
    out.extend(run(&mut eng, 20_000, 1.0));
    let switch = out.iter().position(|&x| (x - 0.5).abs() < 1e-6).unwrap();
    assert_eq!(switch, 12_000);
}

#[test]
fn a_stopped_transport_holds_the_clock_and_locate_moves_it() {
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "beat", Box::new(ClockOut(1, 1e-3))));
    run(&mut eng, 1_000, 1e-3);
    ctl.set_transport(false);
    let held = run(&mut eng, 1_000, 1e-3);
    assert!(held.windows(2).all(|w| w[0] == w[1]));
    ctl.locate(8.0);
    ctl.set_transport(true);
    let moved = run(&mut eng, 10, 1e-3);
    assert!((moved[0] - 8.0).abs() < 1e-3, "{}", moved[0]);
    assert!((ctl.clock().read().bar - 2.0).abs() < 1e-3);
    assert_eq!(ctl.clock().read().bar_beat(), "3.1");
}

#[test]
fn the_transport_allocates_nothing() {
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "beat", Box::new(ClockOut(1, 1e-3))));
    let mut out = vec![0.0f32; 512];
    for round in 0..20 {
        ctl.set_tempo(100.0 + f64::from(round), 300);
        ctl.set_meter(3.0);
        ctl.locate(f64::from(round));
        ctl.set_transport(round % 3 != 0);
        ctl.set_quantize(if round % 2 == 0 {
            Quantize::Bar
        } else {
            Quantize::Beats(0.25)
        });
        ctl.swap(patch(&mut alloc, "beat", Box::new(ClockOut(1, 1e-3))));
        // A merge folded into the swap still waiting for its boundary.
        let keep = vec![alloc.block_of("beat").unwrap()];
        ctl.merge(patch(&mut alloc, "more", Box::new(Level(0.1))), keep);
        assert_no_alloc(|| eng.process(&mut out));
        ctl.collect();
    }
}

#[test]
fn two_quantized_merges_in_one_bar_both_land_on_the_bar_line() {
    let (mut ctl, mut eng, mut alloc) = setup();
    let a = alloc.block_of("a").unwrap();
    ctl.swap(patch(&mut alloc, "a", Box::new(Level(0.125))));
    let mut out = run(&mut eng, 10_000, 1.0);
    ctl.set_quantize(Quantize::Bar);
    // `b` comes, then `c`, both keeping what plays (and `c` keeping `b`, as the session
    // counts it playing once sent).
    let b = alloc.block_of("b").unwrap();
    ctl.merge(patch(&mut alloc, "b", Box::new(Level(0.25))), vec![a]);
    out.extend(run(&mut eng, 10_000, 1.0));
    ctl.merge(patch(&mut alloc, "c", Box::new(Level(0.5))), vec![a, b]);
    out.extend(run(&mut eng, 90_000, 1.0));
    // Until the bar line `a` alone, from it all three, to the frame.
    assert!((out[95_999] - 0.125).abs() < 1e-6, "{}", out[95_999]);
    assert!((out[96_000] - 0.875).abs() < 1e-6, "{}", out[96_000]);
    assert!((out[109_999] - 0.875).abs() < 1e-6);
}

#[test]
fn a_start_at_a_frame_puts_beat_0_on_that_frame() {
    // A start for frame 1000 sent at frame 0 (a MIDI start stamped ahead): the clock
    // stands still until frame 1000, where the beat is exactly 0, and a beat later (24,000
    // frames at 120 bpm) exactly 1.
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "beat", Box::new(ClockOut(1, 1e-3))));
    let early = run(&mut eng, 500, 1e-3);
    ctl.start_at(1_000);
    let out = run(&mut eng, 30_000, 1e-3);
    let beat = |f: usize| if f < 500 { early[f] } else { out[f - 500] };
    // Until frame 1000 the clock holds the beat it had when the start came.
    let held = beat(500);
    assert!((beat(999) - held).abs() < 1e-9, "{} {}", beat(999), held);
    assert!(beat(1_000).abs() < 1e-9, "{}", beat(1_000));
    assert!((beat(25_000) - 1.0).abs() < 1e-6, "{}", beat(25_000));
    // A start whose frame is past: the beat it would have reached since (2,400 frames ago:
    // a tenth of a beat at 120 bpm), at once.
    let (mut ctl, mut eng, mut alloc) = setup();
    ctl.swap(patch(&mut alloc, "beat", Box::new(ClockOut(1, 1e-3))));
    run(&mut eng, 4_800, 1e-3);
    ctl.start_at(2_400);
    let late = run(&mut eng, 100, 1e-3);
    assert!((late[0] - 0.1).abs() < 1e-6, "{}", late[0]);
    assert!(ctl.collect().is_empty());
}
