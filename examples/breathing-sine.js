// signals: breathing-sine
// Flux signals file: flux(id, (mem, idx) => ({ update: (sr) => [sample] })).
import { flux, clear } from '../flux.js';

clear();

flux('breathing-sine', (mem, idx) => {
  const carrierFreq = 220.0; // A3
  const lfoFreq = 0.5;       // breathe twice per second
  const lfoDepth = 0.7;

  return {
    update: (sr) => {
      let carrierPhase = mem[idx];
      carrierPhase = (carrierPhase + carrierFreq / sr) % 1.0;
      mem[idx] = carrierPhase;
      const carrier = Math.sin(carrierPhase * 2 * Math.PI);

      let lfoPhase = mem[idx + 1];
      lfoPhase = (lfoPhase + lfoFreq / sr) % 1.0;
      mem[idx + 1] = lfoPhase;
      const lfo = (Math.sin(lfoPhase * 2 * Math.PI) + 1) * 0.5;

      const amplitude = (1 - lfoDepth) + lfo * lfoDepth;
      return [carrier * amplitude * 0.5];
    }
  };
});
