// expect: error 2:*
flux(Symbol('s'), () => ({ update: () => 0 }));
