// expect: ok 1
flux('rnd', () => ({ update: () => (Math.random() - 0.5) * 0.01 + Date.now() * 0 }));
