// signals: morph
// A figure that never settles: y runs a fifth above x, a tenth of a hertz sharp, so the
// 2:3 figure turns slowly through all its shapes; an octave on y swells in and out over
// half a minute, and z rides on the sum of both phases.
// Watch it: flux scope examples/morph.js (X-Y or XYZ mode).
import { flux, clear } from '../flux.js';

clear();

flux('morph', (mem, idx) => {
  const base = 98.0;   // Hz, channel 1
  const fifth = 1.5;   // ratio of channel 2
  const sharp = 0.1;   // Hz: how fast the figure turns
  const swell = 1 / 30; // Hz: the octave's swell

  return {
    update: (sr) => {
      mem[idx] = (mem[idx] + base / sr) % 1.0;
      mem[idx + 1] = (mem[idx + 1] + (base * fifth + sharp) / sr) % 1.0;
      mem[idx + 2] = (mem[idx + 2] + swell / sr) % 1.0;
      const a = mem[idx] * 2 * Math.PI;
      const b = mem[idx + 1] * 2 * Math.PI;
      const m = 0.5 - 0.5 * Math.cos(mem[idx + 2] * 2 * Math.PI);
      const x = Math.sin(a) * 0.5;
      const y = (Math.sin(b) * (1 - 0.4 * m) + Math.sin(2 * b) * 0.4 * m) * 0.5;
      const z = Math.sin(a + b) * 0.35;
      return [x, y, z];
    }
  };
});
