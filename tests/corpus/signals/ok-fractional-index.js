// expect: ok 1
flux('frac', (mem, idx) => ({ update: () => { mem[idx + 0.5] = 1; return mem[idx] * 0; } }));
