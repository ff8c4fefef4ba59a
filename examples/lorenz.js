// signals: lorenz
// Flux signals file: flux(id, (mem, idx) => ({ update: (sr) => [sample] })).
import { flux, clear } from '../flux.js';

clear();

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
