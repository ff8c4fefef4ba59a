// Rhythms and a bass line written in the mini-notation of `pattern`: x is a hit, a number
// a value, . a rest, [ ] splits a step, *n repeats, < > takes turns bar by bar. Edit a
// pattern and save: the change lands on the grid (with `--quantize bar`, on the bar).
import { flux, tempo, pattern, sine, noise, saw, decay, ar, highpass, lowpass, pan, mtof } from './flux.js';

tempo(122);

flux('kick', () => {
  const hits = pattern('x . x . x . [x x] .', 4);   // eighths; a double at the end
  const body = sine();
  const amp = ar(0.002, 0.35);
  const pitch = decay(0.07);
  return {
    update: () => {
      const hit = hits();
      return body(46 + 150 * pitch(hit)) * amp(hit) * 0.7;
    },
  };
});

flux('hat', () => {
  const hits = pattern('[. x]*4 <. [x x]>', 5);       // offbeats, a flam every other bar
  const hiss = noise();
  const air = highpass();
  const amp = decay(0.05);
  return { update: () => pan(air(hiss(), 7500, 0.7) * amp(hits()) * 0.22, 0.35) };
});

flux('bass', (mem, idx) => {
  const notes = pattern('33 . 33 [36 .] <31 38> . [33 45] .', 4);
  const osc = saw();
  const lp = lowpass();
  const env = ar(0.003, 0.2);
  return {
    update: () => {
      const n = notes();
      if (n > 0) mem[idx] = n;                      // hold the last note for the pitch
      const e = env(n);                             // each note's onset triggers it
      return lp(osc(mtof(mem[idx] || 33)), 200 + 1600 * e, 1.4) * e * 0.3;
    },
  };
});
