// expect: ok 1
flux('tone', (mem, idx) => ({
  update: (sr) => {
    mem[idx] = (mem[idx] + 330 / sr) % 1.0;
    return Math.sin(mem[idx] * 2 * Math.PI) * 0.3;
  },
}));
