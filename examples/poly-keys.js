// A polyphonic synth for a MIDI keyboard: `flux play examples/poly-keys.js --midi`.
// Eight voices (midi.voices), each a saw through a lowpass with its own envelope; the
// engine gives each key a voice (midi.noteOf(i), gateOf(i), velocityOf(i)). The mod wheel
// (CC 1) opens the filter, the pitch bend bends by up to two semitones.
import { flux, midi, saw, adsr, lowpass, mix, mtof } from './flux.js';

function voice(i) {
  const osc = saw();
  const env = adsr(0.005, 0.3, 0.6, 0.4);
  const filter = lowpass();
  return () => {
    const level = env(midi.gateOf(i)) * midi.velocityOf(i);
    const pitch = mtof(midi.noteOf(i) + 2 * midi.bend);
    return filter(osc(pitch), 400 + 6000 * midi.cc(1) + 3000 * level, 0.9) * level;
  };
}

flux('keys', () => {
  const v = [0, 1, 2, 3, 4, 5, 6, 7].map(voice);
  return {
    update: () => mix(v[0](), v[1](), v[2](), v[3](), v[4](), v[5](), v[6](), v[7]()) * 0.25,
  };
});
