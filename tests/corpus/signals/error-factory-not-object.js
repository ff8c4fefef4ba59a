// expect: error 2:* update
flux('nf', () => 42);
