// expect: ok 1
flux('nanidx', (mem, idx) => ({ update: () => { mem[NaN] = 1; return 0; } }));
