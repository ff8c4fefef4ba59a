// expect: error 2:* 42
flux('t', () => { throw 42; });
