//! MIDI in's controllers, pitch bend and polyphonic voices on both tiers: to the frame,
//! bit-identical, and without allocating on the native tier.

mod clock_rig;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use clock_rig::{rig, Rig};
use flux_engine::MidiEvent;
use flux_js::TierChoice;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

/// Runs `scenario` on both tiers, asserts they agree bit for bit, returns the output as
/// the signals gave it (the master's tanh undone).
fn both(channels: usize, scenario: impl Fn(&mut Rig) -> Vec<f32>) -> Vec<f64> {
    clock_rig::both(channels, scenario)
        .iter()
        .map(|&x| f64::from(x).atanh())
        .collect()
}

fn ev(frame: u64, bytes: [u8; 3]) -> MidiEvent {
    MidiEvent { frame, bytes }
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-5
}

#[test]
fn controllers_and_bend_change_at_their_frame_on_both_tiers() {
    let source = "flux('cc', () => ({ update: () => [\n\
          midi.cc(7) * 0.5,\n\
          midi.bend * 0.5,\n\
          midi.cc(128) + midi.cc(-1) + midi.cc(1.5) + midi.cc() + 0.25 * (midi.cc(1) === 0),\n\
        ] }));";
    let out = both(3, |r| {
        r.swap(source);
        let mut midi = r.ctl.take_midi().expect("the sender");
        midi.send(ev(1234, [0xb0, 7, 127]));
        midi.send(ev(1300, [0xb5, 7, 0]));
        midi.send(ev(1301, [0xb0, 7, 64]));
        midi.send(ev(5000, [0xe0, 0, 0]));
        midi.send(ev(6000, [0xe0, 0, 0x40]));
        midi.send(ev(7000, [0xe0, 0x7f, 0x7f]));
        r.render(9000)
    });
    let frame = |f: usize| &out[f * 3..f * 3 + 3];
    assert!(near(frame(1233)[0], 0.0));
    assert!(near(frame(1234)[0], 0.5), "the CC lands on its frame");
    assert!(near(frame(1299)[0], 0.5));
    assert!(near(frame(1300)[0], 0.0), "every channel counts");
    assert!(near(frame(1301)[0], 0.5 * 64.0 / 127.0));
    assert!(
        near(frame(8999)[0], 0.5 * 64.0 / 127.0),
        "the last value stays"
    );
    assert!(near(frame(4999)[1], 0.0));
    assert!(near(frame(5000)[1], -0.5));
    assert!(near(frame(6000)[1], 0.0));
    assert!(near(frame(7000)[1], 0.5));
    // Out of range and fractional controllers read 0.
    assert!((0..9000).all(|f| near(frame(f)[2], 0.25)));
}

#[test]
fn voices_take_a_key_each_on_both_tiers() {
    // Each voice's note where its gate is open, summed over the voices in a loop.
    let source = "flux('poly', () => ({ update: () => {\n\
          let sum = 0, open = 0;\n\
          for (let i = 0; i < midi.voices; i++) {\n\
            sum += midi.gateOf(i) * midi.noteOf(i);\n\
            open += midi.gateOf(i);\n\
          }\n\
          return [sum / 1000, open / 100, midi.velocityOf(1) * 0.5, midi.noteOf(8) + midi.gateOf(-1)];\n\
        } }));";
    let out = both(4, |r| {
        r.swap(source);
        let mut midi = r.ctl.take_midi().expect("the sender");
        midi.send(ev(100, [0x90, 60, 127]));
        midi.send(ev(150, [0x90, 64, 64]));
        midi.send(ev(200, [0x90, 67, 100]));
        midi.send(ev(300, [0x80, 64, 0]));
        midi.send(ev(400, [0x90, 64, 0]));
        midi.send(ev(450, [0xb0, 123, 0]));
        r.render(600)
    });
    let frame = |f: usize| &out[f * 4..f * 4 + 4];
    let voices = |f: usize| (frame(f)[0] * 1000.0, frame(f)[1] * 100.0);
    let is = |(a, b): (f64, f64), (c, d): (f64, f64)| near(a, c) && near(b, d);
    assert!(is(voices(99), (0.0, 0.0)));
    assert!(is(voices(100), (60.0, 1.0)));
    assert!(is(voices(150), (124.0, 2.0)));
    assert!(is(voices(200), (191.0, 3.0)));
    assert!(near(frame(200)[2], 0.5 * 64.0 / 127.0), "voice 1 plays 64");
    assert!(is(voices(300), (127.0, 2.0)));
    // A note on with velocity 0 is a note off; all notes off (CC 123) closes the rest.
    assert!(is(voices(400), (127.0, 2.0)));
    assert!(is(voices(449), (127.0, 2.0)));
    assert!(is(voices(450), (0.0, 0.0)));
    assert!((0..600).all(|f| frame(f)[3] == 0.0));
}

#[test]
fn the_polyphonic_example_plays_chords_natively_without_allocating() {
    let source = include_str!("../../../examples/poly-keys.js");
    let chord = |r: &mut Rig| {
        let mut midi = r.ctl.take_midi().expect("the sender");
        for (k, key) in [60, 64, 67, 71, 74, 77, 81, 84, 88].into_iter().enumerate() {
            midi.send(ev(1000 + 500 * k as u64, [0x90, key, 100]));
        }
        midi.send(ev(4000, [0xb0, 1, 127]));
        midi.send(ev(6000, [0x80, 60, 0]));
        midi
    };
    let out = both(1, |r| {
        r.swap(source);
        let _midi = chord(r);
        r.render(24_000)
    });
    assert!(out[..1000].iter().all(|&x| x == 0.0));
    assert!(out[1000..1200].iter().any(|&x| x != 0.0));
    assert!(out.iter().all(|x| x.is_finite()));
    // The native tier renders it (and reads the voices) without allocating.
    let mut r = rig(TierChoice::Native, 1);
    r.swap(source);
    let _midi = chord(&mut r);
    let mut block = vec![0.0f32; 512];
    assert_no_alloc(|| {
        for _ in 0..40 {
            r.eng.process(&mut block);
        }
    });
    assert!(r.ctl.collect().is_empty());
}
