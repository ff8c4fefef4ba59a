// signals: vortex-morph
// Flux signals file: flux(id, (mem, idx) => ({ update: (sr) => [sample] })).
import { flux, clear } from '../flux.js';

clear();

flux('vortex-morph', (mem, idx) => {
  const baseFreq = 110.0;
  const modRatio = 1.618;
  const morphSpeed = 0.2;
  const intensity = 6.0;

  return {
    update: (sr) => {
      let p1 = mem[idx];
      let p2 = mem[idx + 1];
      let t  = mem[idx + 2];

      p1 = (p1 + baseFreq / sr) % 1.0;
      p2 = (p2 + (baseFreq * modRatio) / sr) % 1.0;
      t  = (t + morphSpeed / sr) % 1.0;

      mem[idx] = p1;
      mem[idx + 1] = p2;
      mem[idx + 2] = t;

      const depthLFO = Math.sin(t * 2 * Math.PI) * intensity;
      const modulator = Math.sin(p2 * 2 * Math.PI) * depthLFO;
      const sample = Math.sin(p1 * 2 * Math.PI + modulator);

      return [sample * 0.5];
    }
  };
});
