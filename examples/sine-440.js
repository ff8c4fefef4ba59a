// signals: sine-440
// Flux signals file: flux(id, (mem, idx) => ({ update: (sr) => [sample] })).
import { flux, clear } from '../flux.js';

clear();

flux('sine-440', (mem, idx) => {
  const freq = 440.0;

  return {
    update: (sr) => {
      mem[idx] = (mem[idx] + freq / sr) % 1.0;
      return [Math.sin(mem[idx] * 2 * Math.PI) * 0.5];
    }
  };
});
