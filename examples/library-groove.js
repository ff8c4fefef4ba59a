// A groove made from the unit library: kick, hat, bass and a pad through a reverb.
// Every unit keeps its state by the name it is bound to: insert, reorder or edit lines
// while it plays and save; nothing restarts. `flux check` says native for all four.
import { flux, sine, saw, noise, phasor, decay, ar, adsr, lowpass, highpass, reverb, pan, mtof } from './flux.js';

const BPM = 124;
const beatHz = BPM / 60;

flux('kick', () => {
  const beat = phasor();
  const body = sine();
  const amp = ar(0.002, 0.4);                 // 2 ms of attack: a thump, not a click
  const pitch = decay(0.08);
  return {
    update: () => {
      const hit = beat(beatHz) < 0.01;          // the first 1 % of each beat
      const p = pitch(hit);
      return body(48 + 140 * p) * amp(hit) * 0.9;
    },
  };
});

flux('hat', () => {
  const eighth = phasor();
  const hiss = noise();
  const air = highpass();
  const amp = decay(0.06);
  return {
    update: () => {
      const step = eighth(beatHz * 2);
      const hit = step > 0.5 && step < 0.52;    // on the offbeat eighths
      return pan(air(hiss(), 7000, 0.8) * amp(hit) * 0.25, 0.3);
    },
  };
});

flux('bass', () => {
  const osc = saw();
  const sub = sine();
  const bar = phasor();
  const env = adsr(0.004, 0.15, 0.35, 0.08);
  const lp = lowpass();
  const notes = [33, 33, 36, 31];
  return {
    update: () => {
      const pos = bar(beatHz / 4) * 4;          // beats into the bar
      const note = notes[Math.floor(pos)];
      const gate = pos % 1 > 0.5 && pos % 1 < 0.9 ? 1 : 0;
      const e = env(gate);
      const f = mtof(note);
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
