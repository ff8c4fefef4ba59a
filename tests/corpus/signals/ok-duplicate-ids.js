// expect: ok 1
flux('dup', () => ({ update: () => 0.1 }));
flux('dup', () => ({ update: () => 0.2 }));
