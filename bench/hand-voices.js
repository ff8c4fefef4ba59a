// The sound of `library-voices.js`, written by hand with `mem[idx + k]`: the same
// phasor, sine, decay and TPT state-variable lowpass, step for step.
import { flux } from './flux.js';

for (let v = 0; v < 8; v++) {
  flux('voice' + v, (mem, idx) => {
    const f = 110 * (v + 1);
    const k = Math.pow(0.001, 1 / (0.3 * 48000));
    return {
      update: (sr) => {
        // phasor
        const c = mem[idx];
        const cn = c + (2 + v / 4) / sr;
        mem[idx] = cn - Math.floor(cn);
        const hit = c < 0.01;
        // sine
        const p = mem[idx + 1];
        const pn = p + f / sr;
        mem[idx + 1] = pn - Math.floor(pn);
        const x = Math.sin(6.283185307179586 * p);
        // decay
        const prev = mem[idx + 2] * k;
        const e = hit && !(mem[idx + 3] > 0) ? 1 : Math.abs(prev) < 1e-30 ? 0 : prev;
        mem[idx + 2] = e;
        mem[idx + 3] = hit;
        // lowpass (TPT SVF, tan cached while the cutoff stays)
        const fc = Math.max(1, Math.min(0.49 * sr, 400 + 200 * v));
        if (fc !== mem[idx + 6]) {
          mem[idx + 6] = fc;
          mem[idx + 7] = Math.tan((Math.PI * fc) / sr);
        }
        const g = mem[idx + 7];
        const kq = 1 / Math.max(0.1, Math.min(40, 1));
        const a1 = 1 / (1 + g * (g + kq));
        const a2 = g * a1;
        const a3 = g * a2;
        const ic1 = mem[idx + 4];
        const ic2 = mem[idx + 5];
        const v3 = x - ic2;
        const v1 = a1 * ic1 + a2 * v3;
        const v2 = ic2 + a2 * ic1 + a3 * v3;
        const n1 = 2 * v1 - ic1;
        const n2 = 2 * v2 - ic2;
        mem[idx + 4] = Math.abs(n1) < 1e-30 ? 0 : n1;
        mem[idx + 5] = Math.abs(n2) < 1e-30 ? 0 : n2;
        return v2 * e * 0.1;
      },
    };
  });
}
