// expect: fault vandal
flux('vandal', (mem, idx) => ({ update: () => { for (let i = 64; i < 256; i++) mem[idx - 128 + i] = 7; return 0; } }));
