// signals: van-der-pol
// Flux signals file: flux(id, (mem, idx) => ({ update: (sr) => [sample] })).
import { flux, clear } from '../flux.js';

clear();

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
