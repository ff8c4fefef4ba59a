// expect: ok 1
flux('acc', (mem, idx) => {
  let n = 0;
  return { update: () => { n = (n + 1) % 100; mem[idx] = n; return n / 1000; } };
});
