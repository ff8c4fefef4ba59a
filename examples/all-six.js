// signals: all six together
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

const vanDerPolStep = (state, { mu, dt }) => {
  const [x, y] = state;
  const dx = y;
  const dy = mu * (1 - x * x) * y - x;
  return [x + dx * dt, y + dy * dt];
};

flux('van-der-pol', (mem, idx) => {
  const params = { mu: 1.5, dt: 0.12 };

  if (mem[idx] === 0) {
    mem[idx] = 0.1;
    mem[idx + 1] = 0.1;
  }

  return {
    update: () => {
      const current = [mem[idx], mem[idx + 1]];
      const [nextX, nextY] = vanDerPolStep(current, params);
      mem[idx] = nextX;
      mem[idx + 1] = nextY;
      return [nextX * 0.4];
    }
  };
});

const lorenzStep = (state, { sigma, rho, beta, dt }) => {
  const [x, y, z] = state;
  const dx = sigma * (y - x);
  const dy = x * (rho - z) - y;
  const dz = x * y - beta * z;
  return [x + dx * dt, y + dy * dt, z + dz * dt];
};

flux('lorenz', (mem, idx) => {
  const params = { sigma: 10, rho: 28, beta: 8 / 3, dt: 0.005 };

  if (mem[idx] === 0) {
    mem[idx] = 0.1;
    mem[idx + 1] = 0.1;
    mem[idx + 2] = 0.1;
  }

  return {
    update: () => {
      const current = [mem[idx], mem[idx + 1], mem[idx + 2]];
      const [nextX, nextY, nextZ] = lorenzStep(current, params);
      mem[idx] = nextX;
      mem[idx + 1] = nextY;
      mem[idx + 2] = nextZ;
      return [nextX * 0.05];
    }
  };
});

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
