// expect: error 2:* null
flux('t', () => { throw null; });
