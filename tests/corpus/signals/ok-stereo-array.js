// expect: ok 1
flux('st', () => ({ update: () => [0.1, -0.1] }));
