// expect: fault spin
flux('spin', () => ({ update: () => { while (true) {} } }));
