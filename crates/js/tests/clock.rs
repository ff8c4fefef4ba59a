//! The transport's clock on both tiers: every signal reads the same values to the frame,
//! whenever it was made; sequencing units fire on their frames; tempo glides stay smooth.

mod clock_rig;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use clock_rig::{both, rig};
use flux_js::TierChoice;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn a_signal_added_later_reads_the_same_beat() {
    let first = "flux('a', () => ({ update: () => [clock.beat * 1e-3, 0] }));";
    let second = "flux('a', () => ({ update: () => [clock.beat * 1e-3, 0] }));\n\
                  play('late', (s) => [0, s.beat * 1e-3]);";
    let out = both(2, |rig| {
        rig.swap(first);
        let mut out = rig.render(62_400);
        rig.swap(second);
        out.extend(rig.render(20_000));
        out
    });
    // From 1.3 s on, both channels carry the same beat (from 2.6 on), frame by frame.
    let frames: Vec<&[f32]> = out.chunks(2).collect();
    assert_eq!(frames[62_399][1], 0.0);
    assert!(frames[62_400][1] > 0.0);
    for (f, frame) in frames.iter().enumerate().skip(62_400) {
        assert_eq!(frame[0], frame[1], "frame {f}");
    }
    assert!((f64::from(frames[62_400][1]).atanh() * 1e3 - 2.6).abs() < 1e-3);
}

/// Frames of `out` (mono) that are not silent.
fn onsets(out: &[f32]) -> Vec<usize> {
    (0..out.len()).filter(|&f| out[f] != 0.0).collect()
}

#[test]
fn every_beat_fires_on_frames_0_24000_48000() {
    let source =
        "flux('k', () => { const beat = every(1); return { update: () => beat() * 0.5 }; });";
    let out = both(1, |rig| {
        rig.swap(source);
        rig.render(100_000)
    });
    assert_eq!(onsets(&out), [0, 24_000, 48_000, 72_000, 96_000]);
    assert!(out.iter().all(|&x| x == 0.0 || x == 0.5f64.tanh() as f32));
}

#[test]
fn euclid_3_8_fires_on_its_steps() {
    // Steps of a quarter beat are 6000 frames at 120 bpm; E(3, 8) = x..x..x. fires on steps
    // 0, 3 and 6 of every 8; rotated by 1, on steps 2, 5 and 7.
    let source = "flux('e', () => { const e = euclid(3, 8, 0.25); return { update: () => e() * 0.5 }; });\n\
                  flux('r', () => { const e = euclid(3, 8, 0.25, 1); return { update: () => e() * 0.25 }; });";
    let out = both(1, |rig| {
        rig.swap(source);
        rig.render(96_000)
    });
    let (e, r) = (0.5f64.tanh() as f32, 0.25f64.tanh() as f32);
    let plain: Vec<usize> = (0..out.len()).filter(|&f| out[f] == e).collect();
    let rotated: Vec<usize> = (0..out.len()).filter(|&f| out[f] == r).collect();
    let want = |steps: &[usize]| -> Vec<usize> {
        (0..2)
            .flat_map(|bar| steps.iter().map(move |s| (bar * 8 + s) * 6_000))
            .collect()
    };
    assert_eq!(plain, want(&[0, 3, 6]));
    assert_eq!(rotated, want(&[2, 5, 7]));
    assert_eq!(onsets(&out).len(), 12);
}

#[test]
fn seq_steps_through_its_values_and_swing_delays_the_odd_steps() {
    // Half-beat steps (12000 frames): 0.1, 0.2, 0.3, 0.1...; with a swing of 1/3 the odd
    // steps start a third of a step (4000 frames) late.
    let source =
        "flux('s', () => { const n = seq([0.1, 0.2, 0.3], 0.5); return { update: () => n() }; });";
    let out = both(1, |rig| {
        rig.swap(source);
        rig.render(48_000)
    });
    let level = |x: f64| x.tanh() as f32;
    assert_eq!(out[11_999], level(0.1));
    assert_eq!(out[12_000], level(0.2));
    assert_eq!(out[24_000], level(0.3));
    assert_eq!(out[36_000], level(0.1));
    let swung = "swing(1 / 3);\n\
                 flux('h', () => { const h = every(0.5); return { update: () => h() * 0.5 }; });";
    let out = both(1, |rig| {
        rig.swap(swung);
        rig.render(48_000)
    });
    assert_eq!(onsets(&out), [0, 16_000, 24_000, 40_000]);
}

#[test]
fn a_trigger_made_later_keeps_to_the_grid() {
    // Added at 1.3 s (beat 2.6): no trigger until beat 3, at frame 72000, like the first.
    let first =
        "flux('a', () => { const t = every(1); return { update: () => [t() * 0.5, 0] }; });";
    let second = "flux('a', () => { const t = every(1); return { update: () => [t() * 0.5, 0] }; });\n\
                  flux('b', () => { const t = every(1); return { update: () => [0, t() * 0.5] }; });";
    let out = both(2, |rig| {
        rig.swap(first);
        let mut out = rig.render(62_400);
        rig.swap(second);
        out.extend(rig.render(40_000));
        out
    });
    let a: Vec<f32> = out.iter().step_by(2).copied().collect();
    let b: Vec<f32> = out.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(onsets(&a), [0, 24_000, 48_000, 72_000, 96_000]);
    assert_eq!(onsets(&b), [72_000, 96_000]);
}

#[test]
fn a_tempo_glide_is_smooth_on_both_tiers() {
    // 120 to 60 bpm over half a second, from frame 4800: the beat's step per frame shrinks
    // steadily, never by more than the glide allows in one frame.
    let source = "play('b', (s) => s.beat * 0.01);";
    let out = both(1, |rig| {
        rig.swap(source);
        let mut out = rig.render(4_800);
        rig.ctl.set_tempo(60.0, 24_000);
        out.extend(rig.render(40_000));
        out
    });
    let beat: Vec<f64> = out.iter().map(|&x| f64::from(x).atanh() * 100.0).collect();
    let inc: Vec<f64> = beat.windows(2).map(|w| w[1] - w[0]).collect();
    let (fast, slow) = (120.0 / 60.0 / 48_000.0, 60.0 / 60.0 / 48_000.0);
    assert!((inc[2_000] - fast).abs() < fast * 0.05, "{}", inc[2_000]);
    assert!((inc[40_000] - slow).abs() < slow * 0.05, "{}", inc[40_000]);
    // f32 output rounds the beat: compare increments over 100 frames.
    let per100: Vec<f64> = beat
        .windows(101)
        .step_by(100)
        .map(|w| w[100] - w[0])
        .collect();
    let most = per100
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f64, f64::max);
    assert!(
        most < 3e-5,
        "the beat's slope stepped by {most} per 100 frames"
    );
}

#[test]
fn a_pattern_fires_its_onsets_with_their_values_on_their_frames() {
    // One bar of 4 beats (96000 frames at 120 bpm): steps of a beat, a split step, a
    // repeat, and an alternation that takes turns bar by bar.
    let source = "flux('p', () => { const p = pattern('x . x [x x]'); return { update: () => [p() * 0.5, 0] }; });\n\
                  flux('v', () => { const v = pattern('0.25 <0.125 0.0625>*2', 2); return { update: () => [0, v()] }; });";
    let out = both(2, |rig| {
        rig.swap(source);
        rig.render(2 * 96_000)
    });
    let frames: Vec<&[f32]> = out.chunks(2).collect();
    let fired = |ch: usize| -> Vec<(usize, f32)> {
        (0..frames.len())
            .filter(|&f| frames[f][ch] != 0.0)
            .map(|f| (f, frames[f][ch]))
            .collect()
    };
    let half = 0.5f64.tanh() as f32;
    let p: Vec<(usize, f32)> = [0, 96_000]
        .iter()
        .flat_map(|&bar| [0, 48_000, 72_000, 84_000].map(|f| (bar + f, half)))
        .collect();
    assert_eq!(fired(0), p);
    // Cycles of 2 beats (48000 frames): 0.25 on the first beat, then the alternation twice
    // in the second: 0.125 and 0.0625 in turn (cycle c plays copies 2c and 2c + 1).
    let level = |x: f64| x.tanh() as f32;
    let want: Vec<(usize, f32)> = (0..4)
        .flat_map(|c| {
            let at = c * 48_000;
            [
                (at, level(0.25)),
                (at + 24_000, level(0.125)),
                (at + 36_000, level(0.0625)),
            ]
        })
        .collect();
    assert_eq!(fired(1), want);
}

#[test]
fn a_pattern_with_a_mistake_names_it_and_where() {
    let mut rig = rig(TierChoice::Auto, 1);
    for (text, says) in [
        ("x [x x", "pattern(\"x [x x\"): missing ']' at character 7"),
        (
            "x q",
            "pattern(\"x q\"): 'q' is not x, a number, '.', '~', '[' or '<' at character 3",
        ),
        (
            "x*0",
            "pattern(\"x*0\"): '*' must be followed by a whole number from 1 to 64 at character 2",
        ),
        (
            "x ]",
            "pattern(\"x ]\"): ']' without its opening at character 3",
        ),
        (
            "<x . . . . . .> <x . . . . . . . . . .>",
            "it repeats only after more than 64 cycles",
        ),
        // 7 x 11 x 13 cycles, five times within a step: still past the cap.
        (
            "[<x . . . . . .> <x . . . . . . . . . .> <x . . . . . . . . . . . .>]*5",
            "it repeats only after more than 64 cycles",
        ),
    ] {
        let source = format!("flux('k', () => {{\n  const t = pattern('{text}');\n  return {{ update: () => t() }};\n}});");
        let e = rig
            .loader
            .load_source("clock.js", &source)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("clock.js:2:13: "), "{e}");
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn sequencing_units_render_natively_without_allocating() {
    let mut rig = rig(TierChoice::Native, 1);
    let source = "swing(0.2);\n\
                  flux('k', () => {\n\
                    const kick = every(1), rim = euclid(5, 8, 0.25, 2), note = seq([1, 2, 3], 0.5);\n\
                    const hat = pattern('. x <x [x x]> x*2', 2);\n\
                    return { update: () => (kick() + rim() + hat()) * 0.1 * note() + clock.bar * 1e-3 };\n\
                  });";
    rig.swap(source);
    let mut out = vec![0.0f32; 4096];
    assert_no_alloc(|| {
        for _ in 0..8 {
            rig.eng.process(&mut out);
        }
    });
    assert!(rig.ctl.collect().is_empty());
    assert!(out.iter().any(|&x| x != 0.0));
}

#[test]
fn a_unit_given_a_bad_value_names_it_and_the_place_of_the_call() {
    let mut rig = rig(TierChoice::Auto, 1);
    for (source, says) in [
        ("flux('k', () => {\n  const t = every(0);\n  return { update: () => t() };\n});", "clock.js:2:13: RangeError: every(beats): beats must be a number above 0, not 0"),
        ("flux('k', () => {\n  const t = euclid(9, 8, 0.25);\n  return { update: () => t() };\n});", "clock.js:2:13: RangeError: euclid(pulses, steps, ...): pulses must be a number from 0 to 8, not 9"),
        ("flux('k', () => {\n  const t = seq([], 1);\n  return { update: () => t() };\n});", "clock.js:2:13: TypeError: seq(values, stepBeats): values must be a non-empty array of numbers"),
        ("swing(-1);", "clock.js:1:1: RangeError: swing(amount): amount must be a number from 0 to 0.75, not -1"),
    ] {
        let e = rig.loader.load_source("clock.js", source).unwrap_err();
        assert_eq!(e.to_string(), says);
    }
}

/// Note on (`on`) or off of `key` at `frame`.
fn note(frame: u64, key: u8, on: bool) -> flux_engine::MidiEvent {
    flux_engine::MidiEvent {
        frame,
        bytes: if on { [0x90, key, 100] } else { [0x80, key, 0] },
    }
}

#[test]
fn midi_notes_play_at_their_frame_on_both_tiers() {
    // A sine at the note's pitch while the gate is open; the velocity scales it.
    let source = "import { flux, midi, mtof } from './flux.js';\n\
        flux('keys', (mem, idx) => ({ update: (sr) => {\n\
          mem[idx] = (mem[idx] + mtof(midi.note) / sr) % 1;\n\
          return [midi.gate * midi.velocity * Math.sin(mem[idx] * 2 * Math.PI) * 0.5, 0, 0];\n\
        } }));\n\
        flux('probe', () => ({ update: () => [0, midi.note / 128, midi.beat === undefined ? 0.5 : 1] }));\n";
    let out = both(3, |r| {
        r.swap(source);
        let mut midi = r.ctl.take_midi().expect("the sender");
        // A4 from frame 1000 to 25000; E5 held over it from 13000 to 37000.
        midi.send(note(1000, 69, true));
        midi.send(note(13_000, 76, true));
        midi.send(note(25_000, 69, false));
        midi.send(note(37_000, 76, false));
        let out = r.render(48_000);
        assert_eq!(midi.dropped(), 0);
        out
    });
    let frames: Vec<&[f32]> = out.chunks(3).collect();
    let keys: Vec<f32> = frames.iter().map(|f| f[0]).collect();
    // Silent to the frame before the first note on and from the frame of the last off.
    assert!(keys[..1000].iter().all(|&x| x == 0.0));
    assert!(keys[1000..1010].iter().any(|&x| x != 0.0));
    assert!(keys[37_000..].iter().all(|&x| x == 0.0));
    // The note each frame reads, to the frame (mixed through tanh: 69/128 and 76/128).
    let probe = |f: usize| f64::from(frames[f][1]).atanh() * 128.0;
    assert!((probe(999) - 0.0).abs() < 1e-4);
    assert!((probe(1000) - 69.0).abs() < 1e-4);
    assert!((probe(12_999) - 69.0).abs() < 1e-4);
    assert!((probe(13_000) - 76.0).abs() < 1e-4);
    // A4 is released while E5 is held: E5 goes on.
    assert!((probe(30_000) - 76.0).abs() < 1e-4);
    // `midi` has no transport fields, on either tier.
    assert!(frames
        .iter()
        .all(|f| (f64::from(f[2]).atanh() - 0.5).abs() < 1e-6));
    // Pitch: 440 Hz, then 659.26 Hz (rising zero crossings over 0.2 s of each).
    let rising = |a: usize, b: usize| {
        keys[a..b]
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count()
    };
    assert_eq!(rising(2000, 11_600), 88, "A4: 440 Hz over 0.2 s");
    assert_eq!(rising(14_000, 23_600), 132, "E5: 659 Hz over 0.2 s");
}
