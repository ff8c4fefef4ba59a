// expect: fault si
flux('si', (mem, idx) => ({ update: () => { mem[idx] = Infinity; return mem[idx] - mem[idx]; } }));
