// expect: fault huge
flux('huge', () => ({ update: () => 1e308 }));
