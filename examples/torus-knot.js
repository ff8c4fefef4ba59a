// signals: torus knot
// A (2,3) torus knot, the trefoil, on three channels: x, y, z. The knot is traced 55 times
// a second and tumbles slowly about two axes.
// Watch it: flux scope examples/torus-knot.js (XYZ mode; the null output has 3 channels).
import { flux, clear } from '../flux.js';

clear();

flux('torus-knot', (mem, idx) => {
  const base = 55.0;    // Hz: one trip round the knot
  const p = 2;          // turns about the torus axis
  const q = 3;          // turns through the hole
  const major = 0.42;   // torus radii
  const minor = 0.2;
  const tumble = 0.043; // turns per second about x
  const spin = 0.029;   // turns per second about z

  return {
    update: (sr) => {
      mem[idx] = (mem[idx] + base / sr) % 1.0;
      mem[idx + 1] = (mem[idx + 1] + tumble / sr) % 1.0;
      mem[idx + 2] = (mem[idx + 2] + spin / sr) % 1.0;
      const t = mem[idx] * 2 * Math.PI;
      const ring = major + minor * Math.cos(q * t);
      const x = ring * Math.cos(p * t);
      const y = ring * Math.sin(p * t);
      const z = minor * Math.sin(q * t);
      // Tumble about x, then spin about z.
      const a = mem[idx + 1] * 2 * Math.PI;
      const b = mem[idx + 2] * 2 * Math.PI;
      const y1 = y * Math.cos(a) - z * Math.sin(a);
      const z1 = y * Math.sin(a) + z * Math.cos(a);
      const x2 = x * Math.cos(b) - y1 * Math.sin(b);
      const y2 = x * Math.sin(b) + y1 * Math.cos(b);
      return [x2, y2, z1];
    }
  };
});
