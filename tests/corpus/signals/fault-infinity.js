// expect: fault inf
flux('inf', () => ({ update: () => Infinity }));
