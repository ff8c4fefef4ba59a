// Eight plucked voices from the unit library (benchmark: `scripts/bench_library.sh`).
// `hand-voices.js` is the same sound written by hand with `mem[idx + k]`.
import { flux, sine, phasor, decay, lowpass } from './flux.js';

for (let v = 0; v < 8; v++) {
  flux('voice' + v, () => {
    const clock = phasor();
    const osc = sine();
    const env = decay(0.3);
    const lp = lowpass();
    const f = 110 * (v + 1);
    return {
      update: () => {
        const hit = clock(2 + v / 4) < 0.01;
        return lp(osc(f), 400 + 200 * v, 1) * env(hit) * 0.1;
      },
    };
  });
}
