// expect: error * SyntaxError
flux('a', () => ({ update: () => 0 });
