// expect: ok 2
flux('bass ♪ é', () => ({ update: () => 0.1 }));
flux('🎛️', () => ({ update: () => 0.1 }));
