// A groove made from the unit library on the transport's clock: kick, hat, a Euclidean
// rim, a bass line and a pad through a reverb. Every unit keeps its state by the name it
// is bound to: insert, reorder or edit lines while it plays and save; nothing restarts,
// and every part stays on the grid. `flux check` says native for all of it.
import {
  flux, tempo, every, euclid, seq, sine, saw, noise, decay, ar, adsr, lowpass, highpass,
  bandpass, reverb, pan, mtof,
} from './flux.js';

tempo(124);

flux('kick', () => {
  const beat = every(1);
  const body = sine();
  const amp = ar(0.002, 0.4);                  // 2 ms of attack: a thump, not a click
  const pitch = decay(0.08);
  return {
    update: () => {
      const hit = beat();
      return body(48 + 140 * pitch(hit)) * amp(hit) * 0.9;
    },
  };
});

flux('hat', () => {
  const offbeat = euclid(1, 2, 0.5, 1);        // the second eighth of every beat
  const hiss = noise();
  const air = highpass();
  const amp = decay(0.06);
  return {
    update: () => pan(air(hiss(), 7000, 0.8) * amp(offbeat()) * 0.25, 0.3),
  };
});

flux('rim', () => {
  const pattern = euclid(3, 8, 0.25, 2);       // x..x..x. on sixteenths, turned by two
  const click = noise();
  const tone = bandpass();
  const amp = decay(0.03);
  return {
    update: () => pan(tone(click(), 1800, 6) * amp(pattern()) * 0.6, -0.4),
  };
});

flux('bass', () => {
  const notes = seq([33, 33, 36, 31], 1);      // one note a beat
  const gate = seq([0, 1], 0.5);                // on the offbeat eighths
  const osc = saw();
  const sub = sine();
  const env = adsr(0.004, 0.15, 0.35, 0.08);
  const lp = lowpass();
  return {
    update: () => {
      const f = mtof(notes());
      const e = env(gate());
      return (lp(osc(f), 180 + 1400 * e, 1.5) * 0.5 + sub(f) * 0.3) * e;
    },
  };
});

flux('pad', () => {
  const a = saw();
  const b = saw();
  const c = saw();
  const lfo = sine();
  const soft = lowpass();
  const room = reverb(3.5, 0.4, 0.45);
  return {
    update: () => {
      const cutoff = 900 + 500 * lfo(0.07);
      const chord = a(mtof(57)) + b(mtof(60) * 1.003) + c(mtof(64) * 0.997);
      return room(soft(chord, cutoff, 0.9) * 0.07);
    },
  };
});
