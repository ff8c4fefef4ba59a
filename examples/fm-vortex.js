// signals: fm-vortex
// Flux signals file: flux(id, (mem, idx) => ({ update: (sr) => [sample] })).
import { flux, clear } from '../flux.js';

clear();

flux('fm-vortex', (mem, idx) => {
  const carrierFreq = 110.0;
  const modRatio = 1.618;
  const modIndex = 2.5;

  return {
    update: (sr) => {
      mem[idx] = (mem[idx] + (carrierFreq * modRatio) / sr) % 1.0;
      const modSignal = Math.sin(mem[idx] * 2 * Math.PI) * modIndex;

      const instantFreq = carrierFreq + modSignal * 100;
      mem[idx + 1] = (mem[idx + 1] + instantFreq / sr) % 1.0;

      return [Math.sin(mem[idx + 1] * 2 * Math.PI) * 0.5];
    }
  };
});
