// signals: lissajous 3:2
// An X-Y figure: channel 1 at three times the base frequency, channel 2 at twice it, a
// quarter turn apart. Both come from one phase, so the figure stands still.
// Watch it: flux scope examples/lissajous.js (X-Y mode).
import { flux, clear } from '../flux.js';

clear();

flux('lissajous', (mem, idx) => {
  const base = 110.0; // Hz: x plays 330 Hz, y 220 Hz
  const amp = 0.5;

  return {
    update: (sr) => {
      mem[idx] = (mem[idx] + base / sr) % 1.0;
      const t = mem[idx] * 2 * Math.PI;
      return [Math.cos(3 * t) * amp, Math.sin(2 * t) * amp];
    }
  };
});
